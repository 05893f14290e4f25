//! Planning a build: stage graph and target selection, cache keys, .dockerignore,
//! glob matching.

pub mod cache;
pub mod glob;
pub mod hashcache;
pub mod ignore;
pub mod stages;
