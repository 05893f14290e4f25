//! Issue 15's re-audit of the path joins left in the builder: each site that read a
//! stranger's tree through a host path, and now goes through descriptors.

use berth_builder::layer::pack::write_tar;
use berth_builder::layer::{Compression, PackOptions};
use berth_builder::store::{load::load, Store};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn exchange(a: &Path, b: &Path) {
    let (a, b) = (
        CString::new(a.as_os_str().as_bytes()).unwrap(),
        CString::new(b.as_os_str().as_bytes()).unwrap(),
    );
    // SAFETY: two NUL-terminated paths; RENAME_EXCHANGE swaps the two entries atomically.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(r, 0, "renameat2: {}", std::io::Error::last_os_error());
}

/// Packing a tree a stranger can still write to: `commit --pause=false` packs the upper
/// directory of a running container, whose processes can swap a directory for a symlink
/// to a host directory at any moment. The packer must fail or pack the link, never read
/// the host through it. Here a directory of the tree keeps swapping places with a symlink
/// to a host directory that holds a secret: over many packs (5 s), no layer may hold it.
#[test]
fn pack_never_reads_the_host_through_a_swapped_directory() {
    let t = tempfile::Builder::new()
        .prefix("fuzz-pack-race")
        .tempdir()
        .unwrap();
    let (tree, host) = (t.path().join("upper"), t.path().join("host"));
    std::fs::create_dir_all(tree.join("d")).unwrap();
    std::fs::write(tree.join("d/ordinary"), "layer data").unwrap();
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("secret-file"), "HOST-SECRET").unwrap();
    std::os::unix::fs::symlink(&host, tree.join("l")).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, a, b) = (stop.clone(), tree.join("d"), tree.join("l"));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                exchange(&a, &b);
            }
        })
    };
    let opts = PackOptions {
        compression: Compression::None,
        epoch: None,
        overlay_whiteouts: false,
    };
    let (mut packed, mut leaked) = (0, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let Ok(tar) = write_tar(&tree, Vec::new(), opts) else {
            continue; // a swap seen mid-walk may fail the pack: that is allowed
        };
        packed += 1;
        if tar.windows(11).any(|w| w == b"HOST-SECRET") {
            leaked += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    assert!(packed > 0, "no pack succeeded");
    assert_eq!(
        leaked, 0,
        "{leaked} of {packed} layers held the host's secret"
    );
}

/// `load` of an archive whose manifest.json is a device node: the member must be refused
/// unopened (opening a device node acts on the host's device). The node here names no
/// driver, so an open fails with ENXIO: that error means the device was opened.
#[test]
fn load_never_opens_a_device_member() {
    let t = tempfile::Builder::new()
        .prefix("fuzz-load-dev")
        .tempdir()
        .unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let mut b = tar::Builder::new(vec![]);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Char);
    h.set_device_major(4000).unwrap();
    h.set_device_minor(4000).unwrap();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    b.append_data(&mut h, "manifest.json", std::io::empty())
        .unwrap();
    let src = t.path().join("dev.tar");
    std::fs::write(&src, b.into_inner().unwrap()).unwrap();
    let e = load(&store, &src).unwrap_err().to_string();
    assert!(e.contains("manifest.json is not a regular file"), "{e}");
}

/// A RUN step's rootfs whose /etc is a symlink to a host directory holding resolv.conf and
/// hosts: probed in the rootfs's own root, /etc resolves to nothing there, so the host's
/// name files are not bind-mounted onto it.
#[test]
fn run_name_files_are_probed_in_the_rootfs_not_on_the_host() {
    use berth_builder::exec::bundle::{write_config, ProcessSpec};
    let t = tempfile::Builder::new()
        .prefix("fuzz-runnames")
        .tempdir()
        .unwrap();
    let (bundle, rootfs, host) = (t.path().join("b"), t.path().join("r"), t.path().join("h"));
    for d in [&bundle, &rootfs, &host] {
        std::fs::create_dir_all(d).unwrap();
    }
    for f in ["hosts", "resolv.conf"] {
        std::fs::write(host.join(f), "host\n").unwrap();
    }
    std::os::unix::fs::symlink(&host, rootfs.join("etc")).unwrap();
    let p = ProcessSpec {
        args: vec!["true".into()],
        env: vec![],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        network_none: false,
        hostname: "h".into(),
        extra_mounts: vec![],
    };
    write_config(&bundle, &rootfs, &p).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let dests: Vec<&str> = cfg["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .collect();
    assert!(
        !dests.iter().any(|d| d.starts_with("/etc/")),
        "bound through the host: {dests:?}"
    );
}
