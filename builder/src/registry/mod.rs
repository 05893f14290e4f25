//! Push and pull through the OCI distribution spec.
//!
//! A small client on ureq (already used for ADD <url>) rather than the `oci-client`
//! crate: oci-client is async (it would bring tokio + reqwest into a builder that is
//! otherwise synchronous), takes whole blobs in memory for push, and has no hook for
//! per-layer progress lines or for our store's atomic, digest-checked blob writer.
//! What it would give us — the distribution endpoints, token auth — is small.
//!
//! `reference` parses REGISTRY/REPO:TAG, `auth` finds credentials and answers
//! challenges (basic, bearer), `client` does requests with retries, `push` and `pull`
//! are the two flows.

pub mod auth;
pub mod cache;
pub mod client;
pub mod pull;
pub mod push;
pub mod reference;
mod tls;

pub use reference::RemoteRef;

/// Options shared by push and pull.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `--creds user:pass`.
    pub creds: Option<String>,
    /// `--authfile` (else REGISTRY_AUTH_FILE, else ~/.docker/config.json).
    pub authfile: Option<std::path::PathBuf>,
    /// `--tls-verify=false`: HTTPS accepting any certificate, else plain HTTP (always so for
    /// loopback registries, as Docker and buildah treat them).
    pub insecure: bool,
    /// Upload blobs in chunks of this many bytes (0: one monolithic PUT).
    pub chunk_size: usize,
    /// No progress lines.
    pub quiet: bool,
}
