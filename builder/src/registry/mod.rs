//! Push and pull through the OCI distribution spec.
//!
//! A small client on ureq (already used for ADD <url>) rather than the `oci-client` crate.
//! oci-client (0.18, checked against its source) has everything the flows need: `blob_exists`
//! (HEAD), `mount_blob`, `push_blob_stream` (monolithic or chunked), `push_manifest_raw`,
//! `pull_blob` into any `AsyncWrite`, basic and bearer auth, `accept_invalid_certificates`.
//! What it costs: every one of those is an `async fn` on reqwest 0.13 and tokio, with no
//! blocking API, so this synchronous, daemonless CLI would start a tokio runtime per push or
//! pull; and `cargo tree` of a scratch crate depending on oci-client 0.18 (default features)
//! plus tokio's runtime lists 77 crates that berth-builder's tree (109) does not have: 69 new
//! ones (tokio, hyper, reqwest, tower, futures, aws-lc-rs with aws-lc-sys, a second TLS crypto
//! backend built from C, …) and second versions of 8 it has (sha2, digest, base64, …).
//! What it does not do, so the code here would be needed anyway: retries on transient errors
//! (none in the crate), credentials from `~/.docker/config.json` or `REGISTRY_AUTH_FILE`
//! (the caller passes a `RegistryAuth`), `--tls-verify=false`'s HTTPS-then-HTTP probe (the
//! scheme is fixed per registry by `ClientProtocol`), progress lines (the caller would wrap
//! the stream), and a 202 to a mount request (the registry declined and opened an upload)
//! is an error rather than the upload session to use.
//!
//! `reference` parses REGISTRY/REPO:TAG, `auth` finds credentials and answers
//! challenges (basic, bearer), `client` does requests with retries, `push` and `pull`
//! are the two flows.

pub mod auth;
pub mod cache;
pub mod client;
pub mod origin;
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
    /// loopback registries, as Docker and buildah treat them). Otherwise HTTPS with the host's
    /// trust store only.
    pub insecure: bool,
    /// Upload blobs in chunks of this many bytes (0: one monolithic PUT).
    pub chunk_size: usize,
    /// No progress lines.
    pub quiet: bool,
}
