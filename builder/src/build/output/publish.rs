//! Pushes after a successful build (`--push`, `type=registry`, `type=image,push=true`):
//! each name was given to the image in the store by the build, and goes out through
//! `registry::push` as `berth-build push NAME` sends it (same blobs-then-manifest flow,
//! credentials from `--creds` or the auth file, for that registry only).

use super::Outputs;
use crate::error::Result;
use crate::registry::{push, RegistryOptions, RemoteRef};
use crate::store::Store;

impl Outputs {
    /// Push every name to be pushed; returns (name, manifest digest) of each.
    pub fn publish(
        &self,
        store: &Store,
        o: &RegistryOptions,
        out: &mut dyn FnMut(&str),
    ) -> Result<Vec<(String, String)>> {
        let mut done = vec![];
        for name in &self.push {
            let target = RemoteRef::parse(name)?;
            let (digest, _) = push::push(store, name, &target, o, out)?;
            done.push((name.clone(), digest));
        }
        Ok(done)
    }
}
