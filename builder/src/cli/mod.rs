//! The command line: one file per group of commands; each parses, calls the library,
//! prints. Errors are printed once, by main, as `berth-build: <what>: <why>`.

mod build;
mod bundle;
mod images;
mod import;
mod prune;
mod registry;

use crate::error::Result;
use crate::store::Store;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "berth-build",
    version,
    about = "Build OCI images from Dockerfiles, daemonless"
)]
pub struct Cli {
    /// Image store, an OCI image layout directory (default: $BERTH_STORE, else /var/lib/berth;
    /// for an ordinary user $XDG_DATA_HOME/berth, else ~/.local/share/berth)
    #[arg(long, global = true)]
    pub store: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Build an image from a Dockerfile
    Build(Box<build::BuildArgs>),
    /// List images
    Images(images::ImagesArgs),
    /// Show an image's manifest, config and RootFS
    Inspect(images::InspectArgs),
    /// Give an image another name
    Tag { source: String, target: String },
    /// Remove image names
    Rmi {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove blobs, snapshots (and with --cache, build cache) nothing refers to
    Prune(prune::PruneArgs),
    /// Make a one-layer base image from a rootfs directory or tarball
    Import(import::ImportArgs),
    /// Write images to an oci-archive or docker-archive
    Save(images::SaveArgs),
    /// Read images from an oci-archive or docker-archive
    Load {
        #[arg(short, long)]
        input: PathBuf,
    },
    /// Make an OCI runtime bundle (config.json + overlay rootfs) of an image
    Bundle(bundle::BundleArgs),
    /// Show the overlay (lowerdirs, upperdir) and network behind a bundle
    Mounts { dir: PathBuf },
    /// A bundle's record and network state, as JSON
    InspectBundle { dir: PathBuf },
    /// Make an image of a bundle's changes (one new layer)
    Commit(bundle::CommitArgs),
    /// Push an image to a registry (OCI distribution spec)
    Push(registry::PushArgs),
    /// Pull an image from a registry
    Pull(registry::PullArgs),
    /// OCI hook for bridge networking (add|del DIR; container state on stdin)
    #[command(hide = true)]
    NetworkHook { cmd: String, dir: PathBuf },
}

/// Run a command; returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match &cli.cmd {
        Cmd::Mounts { dir } => return bundle::mounts(dir),
        Cmd::InspectBundle { dir } => return bundle::inspect(dir),
        Cmd::NetworkHook { cmd, dir } => return bundle::network_hook(cmd, dir),
        _ => {}
    }
    if let Cmd::Bundle(a) = &cli.cmd {
        let bridge = !a.publish.is_empty() || a.network.as_deref() == Some("bridge");
        if bridge && crate::rootless::active() {
            return Err(crate::Error::invalid(
                "rootless berth-build bundle",
                "--publish and --network bridge need a bridge and veth pair, which an ordinary user cannot create: run it as root, or use --network host or none",
            ));
        }
    }
    if matches!(cli.cmd, Cmd::Bundle(_) | Cmd::Commit(_)) && crate::rootless::active() {
        // A bundle's overlay would live in a namespace that ends with this process.
        return Err(crate::Error::invalid(
            "rootless berth-build",
            "bundle and commit need root (an ordinary user can build, import, load, pull, push and save)",
        ));
    }
    // An ordinary user's commands run in a user namespace of their own (see rootless).
    if let crate::rootless::Role::Done(code) = crate::rootless::enter()? {
        return Ok(code);
    }
    let store = Store::open(cli.store.unwrap_or_else(crate::store::default_root))?;
    match cli.cmd {
        Cmd::Build(a) => build::run(&store, *a),
        Cmd::Images(a) => images::images(&store, a),
        Cmd::Inspect(a) => images::inspect(&store, a),
        Cmd::Tag { source, target } => {
            let img = store.resolve(&source)?;
            store.tag(&img.manifest_desc, &target)?;
            Ok(0)
        }
        Cmd::Rmi { images } => {
            for i in images {
                for n in store.untag(&i)? {
                    println!("Untagged: {n}");
                }
            }
            Ok(0)
        }
        Cmd::Prune(a) => prune::run(&store, a),
        Cmd::Import(a) => import::run(&store, a),
        Cmd::Save(a) => images::save(&store, a),
        Cmd::Push(a) => registry::push_cmd(&store, a),
        Cmd::Pull(a) => registry::pull_cmd(&store, a),
        Cmd::Bundle(a) => bundle::bundle(&store, a),
        Cmd::Commit(a) => bundle::commit(&store, a),
        Cmd::Mounts { .. } | Cmd::InspectBundle { .. } | Cmd::NetworkHook { .. } => {
            unreachable!("handled above")
        }
        Cmd::Load { input } => {
            for n in crate::store::archive::load(&store, &input)? {
                println!("Loaded image: {n}");
            }
            Ok(0)
        }
    }
}
