//! The image store: layout, tags, prune, import, save/load — checked with skopeo,
//! umoci and the image-spec JSON schemas.

mod common;
use common::*;
use std::process::Command;

#[test]
fn import_makes_a_layout_skopeo_and_umoci_read() {
    let e = Env::with_busybox();
    let layout = std::fs::read_to_string(e.store().join("oci-layout")).unwrap();
    assert!(layout.contains("\"imageLayoutVersion\":\"1.0.0\""));
    let digest = manifest_digest(&e.index(), "busybox:latest");
    let sk = skopeo_inspect(&format!("oci:{}:busybox:latest", e.store().display()));
    assert_eq!(sk["Digest"], digest);
    assert_eq!(sk["Layers"].as_array().unwrap().len(), 1);
    let rootfs = e.umoci_unpack("busybox:latest", "bundle");
    assert!(rootfs.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/sh")).unwrap().to_str(),
        Some("/bin/busybox")
    );
    let o = Command::new("/usr/bin/python3")
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/validate_oci.py"),
            SCHEMAS,
        ])
        .arg(e.store())
        .arg(&digest)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "schema validation: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn import_from_tarball_and_change() {
    let e = Env::empty();
    let rootfs = e.path("rootfs");
    make_busybox_rootfs(&rootfs);
    let tarball = e.path("rootfs.tar.gz");
    assert!(Command::new("tar")
        .arg("czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&rootfs)
        .arg(".")
        .status()
        .unwrap()
        .success());
    e.ok(&[
        "import",
        "-c",
        "CMD [\"/bin/sh\"]",
        "-c",
        "ENV A=b",
        tarball.to_str().unwrap(),
        "bb:tar",
    ]);
    let i = e.inspect("bb:tar");
    assert_eq!(i["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(i["Config"]["Env"], serde_json::json!(["A=b"]));
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    let root = e.umoci_unpack("bb:tar", "b");
    assert!(root.join("bin/busybox").is_file());
    // Bad input: clear error, store untouched.
    let before = e.index();
    let err = e.fails(&["import", "/nonexistent/rootfs", "x"]);
    assert!(
        err.starts_with("berth-build: /nonexistent/rootfs:"),
        "{err}"
    );
    let err = e.fails(&["import", rootfs.to_str().unwrap(), "Bad:Name"]);
    assert!(err.contains("invalid reference"), "{err}");
    assert_eq!(before, e.index());
}

#[test]
fn images_tag_rmi_prune() {
    let e = Env::with_busybox();
    e.ok(&["tag", "busybox", "localhost:5000/tools/bb:v1"]);
    let out = e.ok(&["images"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert!(
        out.contains("localhost:5000/tools/bb") && out.contains("v1"),
        "{out}"
    );
    let id = e.inspect("busybox")["Id"].as_str().unwrap().to_string();
    assert!(out.contains(&id[7..19]));
    let f = e.ok(&["images", "busybox"]);
    assert_eq!(f.lines().count(), 2, "{f}");
    // Also resolvable by ID prefix.
    assert_eq!(e.inspect(&id[7..19])["Id"], id.as_str());
    let blobs = || {
        std::fs::read_dir(e.store().join("blobs/sha256"))
            .unwrap()
            .count()
    };
    let n = blobs();
    e.ok(&["rmi", "busybox"]);
    e.ok(&["prune"]);
    assert_eq!(blobs(), n, "still referenced by the other tag");
    e.ok(&["rmi", "localhost:5000/tools/bb:v1"]);
    assert!(e.fails(&["inspect", "busybox"]).contains("not found"));
    e.ok(&["prune"]);
    assert_eq!(blobs(), 0);
}

#[test]
fn save_load_oci_and_docker_archives() {
    let e = Env::with_busybox();
    let digest = manifest_digest(&e.index(), "busybox:latest");
    let oci = e.path("bb.oci.tar");
    let dock = e.path("bb.docker.tar");
    e.ok(&["save", "-o", oci.to_str().unwrap(), "busybox"]);
    e.ok(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        dock.to_str().unwrap(),
        "busybox",
    ]);
    let sk = skopeo_inspect(&format!("oci-archive:{}:busybox:latest", oci.display()));
    assert_eq!(sk["Digest"], digest);
    let sk = skopeo_inspect(&format!("docker-archive:{}", dock.display()));
    assert_eq!(sk["Layers"].as_array().unwrap().len(), 1);
    let other = Env::empty();
    let out = other.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert!(out.contains("busybox:latest"), "{out}");
    assert_eq!(manifest_digest(&other.index(), "busybox:latest"), digest);
    let third = Env::empty();
    third.ok(&["load", "-i", dock.to_str().unwrap()]);
    let a = e.inspect("busybox");
    let b = third.inspect("busybox");
    assert_eq!(a["Id"], b["Id"], "docker-archive keeps the config");
    assert_eq!(a["RootFS"], b["RootFS"]);
    let root = third.umoci_unpack("busybox:latest", "u");
    assert!(root.join("bin/busybox").is_file());
    let err = third.fails(&["load", "-i", e.store().join("oci-layout").to_str().unwrap()]);
    assert!(err.starts_with("berth-build: "), "{err}");
}

/// `images` SIZE and `inspect` Size mean what docker's do: the layers' uncompressed
/// content (file lengths, symlink targets), not the compressed blobs.
#[test]
fn image_size_is_uncompressed_content() {
    let e = Env::with_busybox();
    let bb: u64 = walkdir_sizes(&e.path("rootfs")).iter().sum();
    assert_eq!(e.inspect("busybox")["Size"], bb);
    // 3 MB of zeros: a ~3 kB gzip blob, 3 MB of content.
    let ctx = e.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nCOPY zeros /zeros\n")],
    );
    std::fs::write(ctx.join("zeros"), vec![0u8; 3_000_000]).unwrap();
    e.build(&ctx, &["-t", "big"]);
    let i = e.inspect("big");
    let total = bb + 3_000_000;
    assert_eq!(i["Size"], total);
    let blobs: u64 = i["Manifest"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert!(blobs < total / 2, "compressed {blobs} vs content {total}");
    assert!((1_000_000..10_000_000).contains(&total));
    let want = format!("{:.2}", total as f64 / 1e6);
    let want = format!("{}MB", want.trim_end_matches('0').trim_end_matches('.'));
    let out = e.ok(&["images", "big"]);
    let row = out.lines().nth(1).unwrap();
    assert_eq!(row.split_whitespace().last(), Some(want.as_str()), "{out}");
    // Sizes of layers we did not pack (or a lost record) are computed from the blob.
    std::fs::remove_dir_all(e.store().join("berth/sizes")).unwrap();
    assert_eq!(e.inspect("big")["Size"], total);
    assert!(e.store().join("berth/sizes").read_dir().unwrap().count() >= 2);
}

/// Lengths of the regular files and symlink targets under `dir`.
fn walkdir_sizes(dir: &std::path::Path) -> Vec<u64> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            out.extend(walkdir_sizes(&p));
        } else if md.file_type().is_symlink() {
            out.push(std::fs::read_link(&p).unwrap().as_os_str().len() as u64);
        } else if md.is_file() {
            out.push(md.len());
        }
    }
    out
}
