//! push and pull.

use crate::error::Result;
use crate::registry::{pull, push, RegistryOptions, RemoteRef};
use crate::store::Store;
use clap::{ArgAction, Args};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RemoteArgs {
    /// USER:PASSWORD for the registry
    #[arg(long)]
    pub creds: Option<String>,
    /// Auth file (default: $REGISTRY_AUTH_FILE, else ~/.docker/config.json)
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// Verify TLS certificates; false: HTTPS accepting any certificate, else plain http
    /// (always so for 127.0.0.1/localhost)
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub tls_verify: bool,
    /// No progress output
    #[arg(short, long)]
    pub quiet: bool,
}

impl RemoteArgs {
    fn options(&self, chunk_size: usize) -> RegistryOptions {
        RegistryOptions {
            creds: self.creds.clone(),
            authfile: self.authfile.clone(),
            insecure: !self.tls_verify,
            chunk_size,
            quiet: self.quiet,
        }
    }
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Local image NAME[:TAG]
    pub image: String,
    /// REGISTRY/REPO[:TAG] (default: the image's own name)
    pub destination: Option<String>,
    /// Upload blobs in chunks of this many bytes (default: one request per blob)
    #[arg(long, default_value_t = 0)]
    pub chunk_size: usize,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// REGISTRY/REPO[:TAG|@DIGEST]
    pub reference: String,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub fn push_cmd(store: &Store, a: PushArgs) -> Result<i32> {
    let target = RemoteRef::parse(a.destination.as_deref().unwrap_or(&a.image))?;
    let o = a.remote.options(a.chunk_size);
    let quiet = o.quiet;
    let (digest, _) = push::push(store, &a.image, &target, &o, &mut |l| {
        if !quiet {
            println!("{l}")
        }
    })?;
    if quiet {
        println!("{digest}");
    }
    Ok(0)
}

pub fn pull_cmd(store: &Store, a: PullArgs) -> Result<i32> {
    let r = RemoteRef::parse(&a.reference)?;
    let o = a.remote.options(0);
    let quiet = o.quiet;
    let img = pull::pull(store, &r, &o, &mut |l| {
        if !quiet {
            println!("{l}")
        }
    })?;
    if quiet {
        println!("{}", img.id());
    }
    Ok(0)
}
