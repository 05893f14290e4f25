//! Runtime bundles made from images: `config.json` from the image config (plus the
//! user's overrides) next to an overlay rootfs whose lowerdirs are the store's shared,
//! read-only layer snapshots (keyed by chain id) and whose upper/work dirs belong to
//! the bundle.
//!
//! ```text
//! DIR/config.json          the OCI runtime spec (root.path = "rootfs")
//! DIR/rootfs               overlay: lowerdir=STORE/berth/snapshots/<chain>…, upperdir=DIR/upper
//! DIR/upper, DIR/work      the container's writes (what `commit` turns into a layer)
//! DIR/hostname, hosts, resolv.conf   bind-mounted over the image's files
//! DIR/berth-bundle.json    Meta: image, store, lowerdirs, network (read by mounts/commit/--rm)
//! STORE/berth/bundles/<sha256(DIR)>  registration: prune keeps the bundle's layers
//! ```

pub mod commit;
pub mod spec;

use crate::digest::{chain_ids, sha256_hex};
use crate::error::{Error, IoContext, Result};
use crate::exec::mount;
use crate::layer::snapshot::ensure_snapshot;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

pub const META: &str = "berth-bundle.json";

/// What the user asked for on top of the image config.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    pub env: Vec<String>,
    pub hostname: Option<String>,
    /// HOST:CTR[:ro]
    pub volumes: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub entrypoint: Option<String>,
    /// Replace the image's Cmd (when non-empty).
    pub args: Vec<String>,
    pub network: crate::network::NetworkOptions,
}

/// The record of a bundle, `DIR/berth-bundle.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub store: PathBuf,
    /// The name the image was given as (normalised when it was a name).
    pub image: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub diff_ids: Vec<String>,
    /// Top-most first, as in the overlay's lowerdir option.
    pub lowerdirs: Vec<PathBuf>,
    pub upperdir: PathBuf,
    pub workdir: PathBuf,
    pub rootfs: PathBuf,
    /// Paths (relative to the rootfs) that are mount points of the bundle, left out
    /// of a commit when the runtime had to create them.
    pub mount_points: Vec<String>,
    #[serde(default)]
    pub network: crate::network::NetworkMeta,
}

impl Meta {
    pub fn load(dir: &Path) -> Result<Meta> {
        let p = dir.join(META);
        let data = fs::read(&p).map_err(|e| {
            Error::invalid(
                dir.display().to_string(),
                format!("not a berth-build bundle ({}: {e})", p.display()),
            )
        })?;
        serde_json::from_slice(&data).map_err(|source| Error::Json { path: p, source })
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let p = dir.join(META);
        let tmp = dir.join(format!(".{META}.tmp"));
        let data = serde_json::to_vec_pretty(self).map_err(|e| Error::Build(e.to_string()))?;
        fs::write(&tmp, data).at(&tmp)?;
        fs::rename(&tmp, &p).at(&p)
    }
}

fn registration(store: &Store, dir: &Path) -> PathBuf {
    let key = sha256_hex(dir.as_os_str().as_encoded_bytes());
    store.berth_dir().join("bundles").join(key)
}

/// Bundle dirs registered in the store (whose berth-bundle.json still exists).
pub fn registered(store: &Store) -> Vec<PathBuf> {
    let d = store.berth_dir().join("bundles");
    let Ok(rd) = fs::read_dir(&d) else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .map(|s| PathBuf::from(s.trim()))
        .filter(|p| p.join(META).is_file())
        .collect()
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    let cwd = std::env::current_dir().at(".")?;
    Ok(cwd.join(dir))
}

/// Make a bundle of `image` in `dir` (which must not exist or be empty). On error
/// nothing is left: no mount, no directory, no registration.
pub fn create(store: &Store, image: &str, dir: &Path, opts: &BundleOptions) -> Result<Meta> {
    let dir = absolute(dir)?;
    if fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::invalid(
            dir.display().to_string(),
            "bundle directory exists and is not empty",
        ));
    }
    // Lowerdirs must be absolute: the bundle is used from anywhere.
    let store = &Store::open(absolute(store.root())?)?;
    let _lock = store.lock_shared()?;
    let img = store.resolve(image)?;
    let existed = dir.exists();
    fs::create_dir_all(&dir).at(&dir)?;
    let res = create_in(store, image, &img, &dir, opts);
    if res.is_err() {
        let _ = teardown(store, &dir);
        if existed {
            let _ = fs::create_dir(&dir);
        }
    }
    res
}

fn create_in(
    store: &Store,
    name: &str,
    img: &crate::store::Image,
    dir: &Path,
    opts: &BundleOptions,
) -> Result<Meta> {
    let chains = chain_ids(&img.config.rootfs.diff_ids);
    let mut lowers = vec![];
    let diffs = &img.config.rootfs.diff_ids;
    for ((c, d), l) in chains.iter().zip(diffs).zip(&img.manifest.layers) {
        lowers.push(ensure_snapshot(store, c, d, l)?);
    }
    lowers.reverse();
    let (upper, work, rootfs) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    for d in [&upper, &work, &rootfs] {
        fs::create_dir_all(d).at(d)?;
    }
    let reg = registration(store, dir);
    fs::create_dir_all(reg.parent().expect("has parent")).at(&reg)?;
    fs::write(&reg, dir.display().to_string()).at(&reg)?;
    let m = mount::overlay(&lowers, Some((&upper, &work)), &rootfs, &dir.join("empty"))?;
    m.keep();
    let image = crate::store::reference::normalize(name).unwrap_or_else(|_| name.to_string());
    let mut meta = Meta {
        store: store.root().to_path_buf(),
        image,
        manifest_digest: img.manifest_desc.digest.clone(),
        config_digest: img.manifest.config.digest.clone(),
        diff_ids: img.config.rootfs.diff_ids.clone(),
        lowerdirs: lowers,
        upperdir: upper,
        workdir: work,
        rootfs,
        mount_points: vec![],
        network: Default::default(),
    };
    // Saved at once: from here on a failure must release the reserved address.
    meta.save(dir)?;
    meta.network = crate::network::prepare(dir, &opts.network)?;
    meta.save(dir)?;
    let cfg = spec::build(dir, &meta, img, opts)?;
    meta.mount_points = spec::mount_points(&cfg);
    meta.save(dir)?;
    let p = dir.join("config.json");
    let data = serde_json::to_vec_pretty(&cfg).map_err(|e| Error::Build(e.to_string()))?;
    fs::write(&p, data).at(&p)?;
    Ok(meta)
}

/// Is `p` a mount point (per /proc/self/mountinfo)?
pub fn is_mounted(p: &Path) -> bool {
    let want = p.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape(m) == want)
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Unmount and remove a bundle (and release its network, if the runtime's poststop
/// hook did not). Safe to call on half-made bundles.
pub fn remove(store: &Store, dir: &Path) -> Result<()> {
    let dir = absolute(dir)?;
    let meta = Meta::load(&dir)?;
    // The registration is in the store the bundle was made from.
    let store = if meta.store.join("index.json").is_file() {
        Store::open(&meta.store).unwrap_or_else(|_| store.clone())
    } else {
        store.clone()
    };
    teardown(&store, &dir)
}

fn teardown(store: &Store, dir: &Path) -> Result<()> {
    if let Ok(meta) = Meta::load(dir) {
        crate::network::release(dir, &meta.network)?;
    }
    let rootfs = dir.join("rootfs");
    while is_mounted(&rootfs) {
        use nix::mount::{umount2, MntFlags};
        umount2(&rootfs, MntFlags::empty())
            .or_else(|_| umount2(&rootfs, MntFlags::MNT_DETACH))
            .at(&rootfs)?;
    }
    let reg = registration(store, dir);
    let _ = fs::remove_file(&reg);
    if dir.exists() {
        fs::remove_dir_all(dir).at(dir)?;
    }
    Ok(())
}
