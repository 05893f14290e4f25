//! Image archives and layers are a stranger's input: `load`, `import`, `bundle` (snapshot
//! unpack), `build --output type=local|tar` and `ADD x.tar` must keep every entry inside the tree they unpack into, refuse
//! a layer that is not what the config says, and refuse archive paths that leave the
//! archive. A host directory beside the store must stay exactly as it was.

mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A host directory (f, sub/g) an attacker's layer points its symlinks at.
struct Victim {
    dir: PathBuf,
}

impl Victim {
    fn new(e: &Env, name: &str) -> Victim {
        let dir = e.path(name);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("f"), "orig\n").unwrap();
        std::fs::write(dir.join("sub/g"), "g\n").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(dir.join("f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        Victim { dir }
    }

    fn assert_untouched(&self) {
        let mut names: Vec<_> = walk(&self.dir);
        names.sort();
        assert_eq!(names, ["f", "sub", "sub/g"], "host dir changed");
        let f = self.dir.join("f");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "orig\n");
        let md = std::fs::symlink_metadata(&f).unwrap();
        assert!(md.is_file(), "host file replaced");
        assert_eq!(md.mode() & 0o7777, 0o600, "host file chmodded");
        assert_eq!(md.nlink(), 1, "host file hard-linked into a layer");
        assert_eq!((md.uid(), md.gid()), (0, 0), "host file chowned");
        assert_eq!(
            std::fs::read_to_string(self.dir.join("sub/g")).unwrap(),
            "g\n"
        );
        for (p, key) in [
            (&self.dir.join("sub"), "trusted.overlay.opaque"),
            (&f, "security.capability"),
        ] {
            assert!(xattr(p, key).is_none(), "{key} set on host {}", p.display());
        }
        let md = std::fs::metadata(&self.dir).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o700, "host dir chmodded");
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let n = e.file_name().to_string_lossy().to_string();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()).into_iter().map(|s| format!("{n}/{s}")));
        }
        out.push(n);
    }
    out
}

fn xattr(p: &Path, key: &str) -> Option<Vec<u8>> {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let k = std::ffi::CString::new(key).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: NUL-terminated strings and a buffer of the given length.
    let n = unsafe { libc::lgetxattr(c.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), 256) };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

/// A tar stream built entry by entry, with any path and link name an attacker likes.
pub struct Tar(tar::Builder<Vec<u8>>);

impl Default for Tar {
    fn default() -> Tar {
        Tar::new()
    }
}

impl Tar {
    pub fn new() -> Tar {
        Tar(tar::Builder::new(vec![]))
    }
    fn put(&mut self, kind: tar::EntryType, path: &str, mode: u32, data: &[u8], link: &str) {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        // Raw bytes: the tar crate's setters refuse `..` and absolute paths.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        let ln = &mut h.as_old_mut().linkname;
        ln[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.0.append(&h, data).unwrap();
    }
    pub fn file(&mut self, path: &str, data: &str) -> &mut Tar {
        self.put(tar::EntryType::Regular, path, 0o644, data.as_bytes(), "");
        self
    }
    pub fn dir(&mut self, path: &str) -> &mut Tar {
        self.put(tar::EntryType::Directory, path, 0o755, b"", "");
        self
    }
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Tar {
        self.put(tar::EntryType::Symlink, path, 0o777, b"", target);
        self
    }
    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Tar {
        self.put(tar::EntryType::Link, path, 0o644, b"", target);
        self
    }
    pub fn special(&mut self, kind: tar::EntryType, path: &str, mode: u32) -> &mut Tar {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_path(path).unwrap();
        h.set_cksum();
        self.0.append(&h, &b""[..]).unwrap();
        self
    }
    /// A pax header giving the next entry an xattr.
    pub fn xattr(&mut self, key: &str, value: &[u8]) -> &mut Tar {
        let rec = |n: usize| format!("{n} SCHILY.xattr.{key}=").len() + value.len() + 1;
        let mut n = rec(0);
        while rec(n) != n {
            n = rec(n);
        }
        let mut data = format!("{n} SCHILY.xattr.{key}=").into_bytes();
        data.extend_from_slice(value);
        data.push(b'\n');
        self.put(tar::EntryType::XHeader, "PaxHeader", 0o644, &data, "");
        self
    }
    pub fn bytes(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.0, tar::Builder::new(vec![]));
        b.into_inner().unwrap()
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// A layer that points `evil` at the victim and then makes every kind of entry under it.
/// With `inside`, the layer first makes the link's target inside the tree (so the
/// entries have a place to land); without, the links dangle inside the tree, and the
/// resolver refuses to make directories through them (as libpathrs does).
fn evil_layer(v: &Victim, inside: bool) -> Vec<u8> {
    let host = v.dir.to_str().unwrap();
    let sub = format!("{host}/sub");
    let mut t = Tar::new();
    if inside {
        t.dir(&sub[1..]);
    }
    t.symlink("evil", host)
        .symlink("evil2", &sub)
        .file("keep", "keep\n")
        .xattr(
            "security.capability",
            &[
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        )
        .file("evil/f", "pwned\n")
        .put(tar::EntryType::Regular, "evil/suid", 0o4755, b"x", "");
    t.dir("evil/newdir")
        .file("evil/newfile", "new\n")
        .special(tar::EntryType::Char, "evil/dev", 0o666)
        .special(tar::EntryType::Fifo, "evil/fifo", 0o666)
        .hardlink("evil/hl", "keep")
        .hardlink("leak", "evil/f")
        .file("evil/.wh.f", "")
        .file("evil/sub/.wh..wh..opq", "")
        .file("evil2/.wh.g", "");
    t.bytes()
}

/// A docker-archive of one image (`tag`) with these layers; `extra` adds members.
pub fn docker_archive(layers: &[Vec<u8>], tag: &str, extra: impl FnOnce(&mut Tar)) -> Vec<u8> {
    let diff_ids: Vec<_> = layers.iter().map(|l| sha256(l)).collect();
    docker_archive_with(layers, &diff_ids, tag, extra)
}

pub fn docker_archive_with(
    layers: &[Vec<u8>],
    diff_ids: &[String],
    tag: &str,
    extra: impl FnOnce(&mut Tar),
) -> Vec<u8> {
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let cname = format!("{}.json", &sha256(&config)[7..]);
    let mut t = Tar::new();
    extra(&mut t);
    t.put(tar::EntryType::Regular, &cname, 0o644, &config, "");
    let mut names = vec![];
    for (i, l) in layers.iter().enumerate() {
        let n = format!("l{i}/layer.tar");
        t.put(tar::EntryType::Regular, &n, 0o644, l, "");
        names.push(n);
    }
    let m = serde_json::json!([{"Config": cname, "RepoTags": [tag], "Layers": names}]);
    t.file("manifest.json", &m.to_string());
    t.bytes()
}

/// Makes a bundle of `image` (unpacking its snapshots), checks `rel` made it into the
/// rootfs (inside it, where the layer's link pointed), and removes the bundle.
fn bundle_has(e: &Env, image: &str, rel: &Path) {
    let dir = e.path("bundle");
    e.ok(&["bundle", image, dir.to_str().unwrap(), "/bin/true"]);
    let inside = dir.join("rootfs").join(rel.strip_prefix("/").unwrap());
    let found = inside.exists();
    e.ok(&["bundle", "--rm", dir.to_str().unwrap()]);
    assert!(found, "{} missing in the rootfs", inside.display());
}

/// `load` of a docker-archive whose layer writes through `evil -> <host dir>`, then a
/// bundle of it (the snapshot unpack): the host dir is untouched; the entries land in
/// the rootfs at the link's target resolved inside it. The archive itself holds the same
/// trick (`x -> <host dir>`, `x/f`) for load's own extraction.
#[test]
fn load_and_bundle_never_write_through_a_layer_symlink() {
    let e = Env::empty();
    let v = Victim::new(&e, "bstore-victim");
    let host = v.dir.to_str().unwrap().to_string();
    let p = e.path("evil.tar");
    let ar = docker_archive(&[evil_layer(&v, true)], "evil:latest", |t| {
        t.symlink("x", &host).file("x/f", "pwned\n");
    });
    std::fs::write(&p, ar).unwrap();
    let _ = e.run(&["load", "-i", p.to_str().unwrap()]);
    v.assert_untouched();
    for (inside, tag) in [(false, "dangling"), (true, "evil")] {
        let ar = docker_archive(&[evil_layer(&v, inside)], tag, |_| {});
        std::fs::write(&p, ar).unwrap();
        e.ok(&["load", "-i", p.to_str().unwrap()]);
        v.assert_untouched();
    }
    let b0 = e.path("b0");
    let _ = e.run(&["bundle", "dangling", b0.to_str().unwrap(), "/bin/true"]);
    let _ = e.run(&["bundle", "--rm", b0.to_str().unwrap()]);
    v.assert_untouched();
    bundle_has(&e, "evil", &v.dir.join("newfile"));
    v.assert_untouched();
}

/// `import` of a rootfs tarball with the same layer.
#[test]
fn import_never_writes_through_a_layer_symlink() {
    let e = Env::empty();
    let v = Victim::new(&e, "bstore-victim");
    let p = e.path("evil.tar");
    std::fs::write(&p, evil_layer(&v, false)).unwrap();
    let _ = e.run(&["import", p.to_str().unwrap(), "dangling"]);
    v.assert_untouched();
    std::fs::write(&p, evil_layer(&v, true)).unwrap();
    e.ok(&["import", p.to_str().unwrap(), "evilimp"]);
    v.assert_untouched();
    bundle_has(&e, "evilimp", &v.dir.join("newfile"));
    v.assert_untouched();
}

/// `build --output type=local|tar` of an image whose layer writes through
/// `evil -> <host dir>` (issue 23): the host dir is untouched, the link is written as a link
/// inside DEST and the entries under it land inside DEST, where the link points there.
#[test]
fn local_and_tar_outputs_never_write_through_a_layer_symlink() {
    let e = Env::empty();
    let v = Victim::new(&e, "bstore-victim");
    let p = e.path("evil.tar");
    std::fs::write(
        &p,
        docker_archive(&[evil_layer(&v, true)], "evil:latest", |_| {}),
    )
    .unwrap();
    e.ok(&["load", "-i", p.to_str().unwrap()]);
    let ctx = e.context("ctx", &[("Dockerfile", "FROM evil\nLABEL x=y\n")]);
    let (out, tar) = (e.path("out"), e.path("fs.tar"));
    let tar_spec = format!("type=tar,dest={}", tar.display());
    let c = ctx.to_str().unwrap();
    e.ok(&[
        "build",
        "-o",
        out.to_str().unwrap(),
        "--output",
        &tar_spec,
        c,
    ]);
    v.assert_untouched();
    let link = out.join("evil");
    assert!(link.symlink_metadata().unwrap().is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), v.dir);
    let inside = out.join(v.dir.strip_prefix("/").unwrap());
    assert!(inside.join("newfile").is_file(), "{}", inside.display());
    let o = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout)
        .lines()
        .any(|l| l == "evil"));
}

/// `ADD x.tar /` extracts through the resolver too: nothing reaches the host dir.
#[test]
fn add_of_a_tar_never_writes_through_its_symlinks() {
    let e = Env::with_busybox();
    let v = Victim::new(&e, "bstore-victim");
    let ctx = e.context("ctx", &[("Dockerfile", "FROM busybox\nADD x.tar /\n")]);
    std::fs::write(ctx.join("x.tar"), evil_layer(&v, false)).unwrap();
    let _ = e.run(&["build", "-t", "addevil", ctx.to_str().unwrap()]);
    v.assert_untouched();
    let mut t = Tar::new();
    t.dir(&v.dir.to_str().unwrap()[1..])
        .symlink("evil", v.dir.to_str().unwrap())
        .file("evil/f", "pwned\n")
        .special(tar::EntryType::Char, "evil/dev", 0o666)
        .dir("evil/newdir");
    std::fs::write(ctx.join("x.tar"), t.bytes()).unwrap();
    e.build(&ctx, &["-t", "addevil2"]);
    v.assert_untouched();
    let root = e.umoci_unpack("addevil2:latest", "u");
    let inside = root.join(v.dir.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read_to_string(inside.join("f")).unwrap(),
        "pwned\n"
    );
}

/// One file, as a layer.
fn one_file_layer(path: &str, data: &str) -> Vec<u8> {
    let mut t = Tar::new();
    t.file(path, data);
    t.bytes()
}

/// The snapshot dirs in the store.
fn snapshots(e: &Env) -> Vec<String> {
    let d = e.store().join("berth/snapshots");
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect()
}

/// Snapshots are keyed by the config's diff_ids: an image whose layer does not hash to
/// its diff_id is refused by `load`, and a layer blob changed in the store after load is
/// refused when its snapshot is made (nothing is published under the chain id).
#[test]
fn a_layer_must_hash_to_its_diff_id() {
    let e = Env::empty();
    let good = one_file_layer("bin/sh", "good\n");
    let evil = one_file_layer("bin/sh", "evil\n");
    let ar = docker_archive_with(
        std::slice::from_ref(&evil),
        &[sha256(&good)],
        "evil:latest",
        |_| {},
    );
    let p = e.path("evil.tar");
    std::fs::write(&p, ar).unwrap();
    let err = e.fails(&["load", "-i", p.to_str().unwrap()]);
    assert!(err.contains("diff_id"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(e.ok(&["images"]).lines().all(|l| !l.contains("evil")));
    // A store blob swapped after load: the snapshot unpack refuses it.
    let ar = docker_archive(std::slice::from_ref(&good), "good:latest", |_| {});
    std::fs::write(&p, ar).unwrap();
    e.ok(&["load", "-i", p.to_str().unwrap()]);
    let blob = e.store().join("blobs/sha256").join(&sha256(&good)[7..]);
    std::fs::write(&blob, &evil).unwrap();
    let dir = e.path("bundle");
    let err = e.fails(&["bundle", "good", dir.to_str().unwrap()]);
    assert!(err.contains("diff_id"), "{err}");
    assert!(
        snapshots(&e).is_empty(),
        "snapshot published: {:?}",
        snapshots(&e)
    );
}

/// A host file holding exactly what an archive member should (a valid config, a blob
/// with the right digest): reading it would import host data into the store.
fn host_file(e: &Env, name: &str, data: &[u8]) -> PathBuf {
    let p = e.path(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn load_fails(e: &Env, ar: Vec<u8>, want: &str) {
    let p = e.path("bad.tar");
    std::fs::write(&p, ar).unwrap();
    let err = e.fails(&["load", "-i", p.to_str().unwrap()]);
    assert!(err.contains(want), "want {want:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// docker-archive `Config`/`Layers` paths leaving the archive, and members that are
/// symlinks to host files, are refused; a relative link between two members (docker < 25
/// writes repeated layers that way) is followed inside the archive.
#[test]
fn docker_archive_paths_stay_inside_the_archive() {
    let e = Env::empty();
    let layer = one_file_layer("a", "a\n");
    let m = |cfg: &str, layers: &[&str]| {
        serde_json::json!([{"Config": cfg, "RepoTags": ["x:1"], "Layers": layers}]).to_string()
    };
    for (cfg, layers) in [
        ("/etc/shadow", vec!["l0/layer.tar"]),
        ("../../etc/passwd", vec![]),
        ("c.json", vec!["/etc/shadow"]),
        ("c.json", vec!["l0/../../../x"]),
    ] {
        let mut t = Tar::new();
        t.file("c.json", "{}")
            .file("l0/layer.tar", "")
            .file("manifest.json", &m(cfg, &layers));
        load_fails(&e, t.bytes(), "not a member path inside the archive");
    }
    // Config: a symlink member to a host file holding a valid config.
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}});
    let host = host_file(&e, "bstore-secret.json", config.to_string().as_bytes());
    let mut t = Tar::new();
    t.symlink("c.json", host.to_str().unwrap()).put(
        tar::EntryType::Regular,
        "l0/layer.tar",
        0o644,
        &layer,
        "",
    );
    t.file("manifest.json", &m("c.json", &["l0/layer.tar"]));
    load_fails(&e, t.bytes(), "c.json");
    let cd = sha256(config.to_string().as_bytes());
    assert!(
        !e.store().join("blobs/sha256").join(&cd[7..]).exists(),
        "host file imported"
    );
    // The same layer twice, the second a relative link to the first: loads.
    let ar = docker_archive(&[layer.clone(), layer.clone()], "twice:latest", |_| {});
    let mut t = Tar::new();
    let mut a = tar::Archive::new(&ar[..]);
    for en in a.entries().unwrap() {
        let mut en = en.unwrap();
        let name = en.path().unwrap().to_string_lossy().to_string();
        let mut data = vec![];
        std::io::Read::read_to_end(&mut en, &mut data).unwrap();
        if name == "l1/layer.tar" {
            t.symlink("l1/layer.tar", "../l0/layer.tar");
        } else {
            t.put(tar::EntryType::Regular, &name, 0o644, &data, "");
        }
    }
    let p = e.path("twice.tar");
    std::fs::write(&p, t.bytes()).unwrap();
    e.ok(&["load", "-i", p.to_str().unwrap()]);
    assert!(e.ok(&["images"]).contains("twice"));
}

/// oci-archive: a digest like `sha256:../..` never forms a path, and a blob member that
/// is a symlink to a host file with the right content is not read.
#[test]
fn oci_archive_digests_are_checked_and_blobs_read_inside() {
    let e = Env::empty();
    let layer = one_file_layer("a", "a\n");
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}})
    .to_string();
    let desc = |mt: &str, d: &[u8]| serde_json::json!({"mediaType": mt, "digest": sha256(d), "size": d.len()});
    let manifest = serde_json::json!({"schemaVersion": 2,
        "config": desc("application/vnd.oci.image.config.v1+json", config.as_bytes()),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)]})
    .to_string();
    let index = |digest: &str| {
        serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "o:1"}}]}).to_string()
    };
    let blob = |t: &mut Tar, d: &[u8]| {
        t.put(
            tar::EntryType::Regular,
            &format!("blobs/sha256/{}", &sha256(d)[7..]),
            0o644,
            d,
            "",
        );
    };
    let mut t = Tar::new();
    t.file("oci-layout", "{}")
        .file("index.json", &index("sha256:../../../../etc/shadow"));
    load_fails(&e, t.bytes(), "not a sha256 digest");
    // The layer blob: a symlink to a host file that holds exactly the layer.
    let host = host_file(&e, "bstore-layer", &layer);
    let mut t = Tar::new();
    t.file("oci-layout", "{}")
        .file("index.json", &index(&sha256(manifest.as_bytes())));
    blob(&mut t, manifest.as_bytes());
    blob(&mut t, config.as_bytes());
    t.symlink(
        &format!("blobs/sha256/{}", &sha256(&layer)[7..]),
        host.to_str().unwrap(),
    );
    load_fails(&e, t.bytes(), "blobs/sha256");
    assert!(!e
        .store()
        .join("blobs/sha256")
        .join(&sha256(&layer)[7..])
        .exists());
    // The same archive with the layer inside loads.
    let mut t = Tar::new();
    t.file("oci-layout", "{}")
        .file("index.json", &index(&sha256(manifest.as_bytes())));
    for d in [manifest.as_bytes(), config.as_bytes(), &layer] {
        blob(&mut t, d);
    }
    let p = e.path("ok.tar");
    std::fs::write(&p, t.bytes()).unwrap();
    e.ok(&["load", "-i", p.to_str().unwrap()]);
}

/// Adds an image to the store's index by hand whose config blob is broken (as an older
/// berth-build, a crash or a disk error may leave one).
fn plant_broken_image(e: &Env, name: &str) {
    let store = e.store();
    let put = |data: &[u8]| {
        let d = sha256(data);
        std::fs::write(store.join("blobs/sha256").join(&d[7..]), data).unwrap();
        d
    };
    let cfg = br#"{"architecture": 7, "rootfs": "nope"}"#;
    let cd = put(cfg);
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cfg.len()},
        "layers": []})
    .to_string();
    let md = put(m.as_bytes());
    let ip = store.join("index.json");
    let mut idx: serde_json::Value = serde_json::from_slice(&std::fs::read(&ip).unwrap()).unwrap();
    idx["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": m.len(),
        "annotations": {"org.opencontainers.image.ref.name": name}}));
    std::fs::write(&ip, idx.to_string()).unwrap();
}

/// `load` refuses a wrong-typed config, a non-tar layer and a truncated one (each with a
/// matching diff_id, so only the content check can catch it); one broken image already in
/// the store never breaks `images`, `inspect`, `rmi` or `prune` for the others.
#[test]
fn bad_images_are_refused_and_never_break_the_store() {
    let e = Env::with_busybox();
    let layer = one_file_layer("big", &"x".repeat(4000));
    let cut = layer[..2048].to_vec();
    for (l, want) in [
        (b"not a tar at all".to_vec(), "not a tar"),
        (cut, "not a tar"),
    ] {
        load_fails(&e, docker_archive(&[l], "bad:1", |_| {}), want);
    }
    let mut t = Tar::new();
    t.file("c.json", r#"{"architecture": "amd64", "os": "linux", "config": {"Env": "A=1"}, "rootfs": {"type": "layers", "diff_ids": []}}"#);
    t.file(
        "manifest.json",
        r#"[{"Config": "c.json", "RepoTags": ["bad:2"], "Layers": []}]"#,
    );
    load_fails(&e, t.bytes(), "c.json");
    plant_broken_image(&e, "broken:latest");
    let o = e.run(&["images"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("busybox"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("broken"));
    e.ok(&["inspect", "busybox"]);
    e.ok(&["tag", "busybox", "other:1"]);
    e.ok(&["rmi", "other:1"]);
    e.ok(&["prune"]);
    e.ok(&["inspect", "busybox"]);
    e.ok(&["rmi", "broken"]);
    e.ok(&["images"]);
}

/// Device nodes and FIFOs keep their exact mode (mknod is not subject to the umask).
#[test]
fn mknod_keeps_the_entry_mode() {
    let e = Env::empty();
    let mut t = Tar::new();
    t.special(tar::EntryType::Fifo, "fifo", 0o666)
        .special(tar::EntryType::Char, "null", 0o666);
    let p = e.path("dev.tar");
    std::fs::write(&p, t.bytes()).unwrap();
    e.ok(&["import", p.to_str().unwrap(), "devs"]);
    let dir = e.path("bundle");
    e.ok(&["bundle", "devs", dir.to_str().unwrap(), "/bin/true"]);
    let modes: Vec<u32> = ["fifo", "null"]
        .iter()
        .map(|n| {
            std::fs::symlink_metadata(dir.join("rootfs").join(n))
                .unwrap()
                .mode()
                & 0o7777
        })
        .collect();
    e.ok(&["bundle", "--rm", dir.to_str().unwrap()]);
    assert_eq!(modes, [0o666, 0o666]);
}
