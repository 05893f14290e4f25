//! containerd-shim-berth-v2: containerd's runtime v2 shim (ttrpc Task API) for berth.
//!
//! Synchronous on purpose: a handful of threads and no async runtime keep one shim per
//! container small. Container processes are started by spawning `berth`, never by forking
//! this multithreaded process.

mod container;
mod error;
mod events;
mod io;
mod logbin;
mod logger;
mod oom;
mod options;
mod process;
mod rootfs;
mod runtime;
mod service;
mod stats;
mod task;

fn main() {
    // One malloc arena: per-thread arenas cost the idle shim more than they save.
    // SAFETY: mallopt before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    containerd_shim::run::<service::Service>("io.containerd.berth.v2", None);
}
