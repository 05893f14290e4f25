//! Container lifecycle: state on disk, create, exec, and the other operations.
pub mod create;
pub mod events;
pub mod exec;
pub mod ops;
pub mod run;
pub mod state;
pub mod supervise;
pub mod update;
