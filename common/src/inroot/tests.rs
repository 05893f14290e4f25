use super::*;
use std::os::unix::fs::{symlink, MetadataExt};

fn real(fd: &OwnedFd) -> PathBuf {
    std::fs::read_link(fd_path(fd)).unwrap()
}

/// A tree with links out of it, next to a "host" directory that must stay untouched.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let host = t.path().join("host");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("keep"), "host").unwrap();
    symlink(&host, root.join("abs")).unwrap();
    symlink("../../../../host", root.join("up")).unwrap();
    // Where the links land inside the tree.
    std::fs::create_dir_all(root.join(host.strip_prefix("/").unwrap())).unwrap();
    std::fs::create_dir_all(root.join("host")).unwrap();
    (t, root, host)
}

#[test]
fn resolution_stays_in_the_tree() {
    let (_t, root, _host) = setup();
    symlink("/etc", root.join("etclink")).unwrap();
    let r = Root::open(&root).unwrap();
    assert_eq!(
        real(&r.resolve(Path::new("/etclink")).unwrap()),
        root.join("etc")
    );
    // `..` past the top stops at the top.
    assert_eq!(real(&r.resolve(Path::new("../../..")).unwrap()), root);
    let made = r.mkdir_all(Path::new("/up/../y/z"), 0o755).unwrap();
    assert_eq!(real(&made), root.join("y/z"));
    let made = r.mkdir_all(Path::new("/up/y/z"), 0o755).unwrap();
    assert_eq!(real(&made), root.join("host/y/z"));
}

#[test]
fn writes_through_links_out_land_inside() {
    let (_t, root, host) = setup();
    let r = Root::open(&root).unwrap();
    for p in ["/abs/f", "up/f", "abs/sub/f"] {
        let (d, n) = r.parent_all(Path::new(p), 0o755).unwrap();
        d.create(&n, 0o644).unwrap();
    }
    assert!(!host.join("f").exists() && !host.join("sub").exists());
    assert!(root
        .join(host.strip_prefix("/").unwrap())
        .join("f")
        .exists());
    assert!(root.join("host/f").exists());
    // Removing through a link removes the link, never the host directory.
    r.remove_all(Path::new("/abs")).unwrap();
    assert!(host.join("keep").exists());
    assert!(std::fs::symlink_metadata(root.join("abs")).is_err());
}

#[test]
fn final_symlinks_are_never_followed() {
    let (_t, root, host) = setup();
    symlink(host.join("keep"), root.join("evil")).unwrap();
    symlink(host.join("new"), root.join("dangling")).unwrap();
    let r = Root::open(&root).unwrap();
    let top = r.top().unwrap();
    assert!(top.create(OsStr::new("dangling"), 0o644).is_err());
    assert!(!host.join("new").exists());
    top.chmod(OsStr::new("evil"), 0o4777).unwrap();
    assert_ne!(
        std::fs::metadata(host.join("keep")).unwrap().mode() & 0o7777,
        0o4777
    );
    top.chown(OsStr::new("evil"), 1, 1).unwrap();
    assert_eq!(std::fs::metadata(host.join("keep")).unwrap().uid(), 0);
    top.set_times(OsStr::new("evil"), (1, 0), (1, 0)).unwrap();
    assert_ne!(std::fs::metadata(host.join("keep")).unwrap().mtime(), 1);
    assert!(top.set_xattr(OsStr::new("evil"), "user.x", b"y").is_err());
    assert!(top.open_dir(OsStr::new("abs")).is_err());
    top.remove_all(OsStr::new("evil")).unwrap();
    assert_eq!(std::fs::read_to_string(host.join("keep")).unwrap(), "host");
}

#[test]
fn names_must_be_single_components() {
    let (_t, root, host) = setup();
    let top = Root::open(&root).unwrap().top().unwrap();
    for bad in ["", ".", "..", "abs/keep", "../host"] {
        assert!(top.unlink(OsStr::new(bad)).is_err(), "{bad}");
        assert!(top.create(OsStr::new(bad), 0o644).is_err(), "{bad}");
    }
    assert!(host.join("keep").exists());
}

#[test]
fn modes_are_exact_and_dirs_are_removed_whole() {
    let (_t, root, _host) = setup();
    let r = Root::open(&root).unwrap();
    let top = r.top().unwrap();
    top.create(OsStr::new("suid"), 0o4755).unwrap();
    assert_eq!(
        std::fs::metadata(root.join("suid")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert!(top.mkdir(OsStr::new("d"), 0o1777).unwrap());
    assert!(!top.mkdir(OsStr::new("d"), 0o755).unwrap());
    assert_eq!(
        std::fs::metadata(root.join("d")).unwrap().mode() & 0o7777,
        0o1777
    );
    top.mknod(OsStr::new("fifo"), libc::S_IFIFO, 0o666, 0)
        .unwrap();
    assert_eq!(
        std::fs::metadata(root.join("fifo")).unwrap().mode() & 0o777,
        0o666
    );
    std::fs::create_dir_all(root.join("d/a/b")).unwrap();
    std::fs::write(root.join("d/a/b/f"), "x").unwrap();
    symlink("/abs", root.join("d/a/l")).unwrap();
    r.remove_all(Path::new("d")).unwrap();
    assert!(!root.join("d").exists());
    assert!(!top.entries().unwrap().contains(&OsString::from("d")));
}

#[test]
fn the_top_itself_resolves() {
    let (_t, root, _host) = setup();
    let r = Root::open(&root).unwrap();
    for p in ["/", "", ".", "/.."] {
        assert_eq!(real(&r.resolve(Path::new(p)).unwrap()), root, "{p:?}");
        assert_eq!(
            real(&r.resolve_nofollow(Path::new(p)).unwrap()),
            root,
            "{p:?}"
        );
    }
    assert_eq!(real(&r.mkdir_all(Path::new("/"), 0o755).unwrap()), root);
}

#[test]
fn mkdir_all_makes_each_name_in_its_resolved_parent() {
    let (_t, root, host) = setup();
    let r = Root::open(&root).unwrap();
    // Through links out: lands inside; existing part with `..` is resolved in the tree.
    let made = r.mkdir_all(Path::new("/abs/a/b"), 0o755).unwrap();
    assert_eq!(
        real(&made),
        root.join(host.strip_prefix("/").unwrap()).join("a/b")
    );
    let made = r.mkdir_all(Path::new("up/../../c"), 0o700).unwrap();
    assert_eq!(real(&made), root.join("c"));
    assert!(!host.join("a").exists());
    // `..` in the part still to be made is refused, as libpathrs refuses it.
    let e = r.mkdir_all(Path::new("/n/../m"), 0o755).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    // An existing non-directory is ENOTDIR, on the way or at the end.
    std::fs::write(root.join("file"), "").unwrap();
    for p in ["/file", "/file/x"] {
        let e = r.mkdir_all(Path::new(p), 0o755).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR), "{p}: {e}");
    }
    // A dangling link out is not made on the host.
    symlink(host.join("new"), root.join("dangling")).unwrap();
    assert!(r.mkdir_all(Path::new("/dangling/x"), 0o755).is_err());
    assert!(!host.join("new").exists());
}

#[test]
fn ensure_follows_a_dangling_final_link_inside_the_tree() {
    let (_t, root, host) = setup();
    let r = Root::open(&root).unwrap();
    // Absolute, relative, a chain, and one pointing "out": all land inside.
    symlink("/run/stub/resolv.conf", root.join("etc/resolv.conf")).unwrap();
    symlink("../var/hosts", root.join("etc/hosts")).unwrap();
    symlink("hop2", root.join("etc/hop1")).unwrap();
    symlink("/srv/d", root.join("etc/hop2")).unwrap();
    symlink(host.join("made"), root.join("etc/out")).unwrap();
    for (p, kind, lands) in [
        ("/etc/resolv.conf", Kind::File, "run/stub/resolv.conf"),
        ("/etc/hosts", Kind::File, "var/hosts"),
        ("/etc/hop1", Kind::Dir, "srv/d"),
    ] {
        let fd = r.ensure(Path::new(p), kind).unwrap();
        assert_eq!(real(&fd), root.join(lands), "{p}");
    }
    let fd = r.ensure(Path::new("/etc/out"), Kind::File).unwrap();
    assert!(real(&fd).starts_with(&root), "{:?}", real(&fd));
    assert!(!host.join("made").exists());
    symlink("loop", root.join("etc/loop")).unwrap();
    let e = r.ensure(Path::new("/etc/loop"), Kind::File).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
}
