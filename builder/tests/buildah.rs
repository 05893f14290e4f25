//! buildah builds the same Dockerfile from the same base; both images have the same
//! file tree (paths, types, modes, owners, contents), apart from the mount points
//! buildah leaves behind (/etc/hostname, /run).

mod common;
use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

type Entry = (u32, u32, u32, String);

fn tree(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let md = e.path().symlink_metadata().unwrap();
        let content = if md.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(e.path()).unwrap().display())
        } else if md.is_file() {
            use sha2::Digest;
            format!(
                "{:x}",
                sha2::Sha256::digest(std::fs::read(e.path()).unwrap())
            )
        } else {
            String::new()
        };
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        out.insert(
            rel,
            (
                md.mode() & 0o170000,
                md.mode() & 0o7777,
                md.uid(),
                md.gid(),
                content,
            )
                .into_entry(),
        );
    }
    out
}

trait IntoEntry {
    fn into_entry(self) -> Entry;
}

impl IntoEntry for (u32, u32, u32, u32, String) {
    fn into_entry(self) -> Entry {
        (self.0 | self.1, self.2, self.3, self.4)
    }
}

const DF: &str = "FROM BASE\nWORKDIR /app\nCOPY a.txt ./\nCOPY --chown=1000:1000 dir /app/dir/\n\
RUN echo hi > /app/out && rm /bin/vi && mkdir -p /var/lib/x && ln -s /app/out /app/link\n\
RUN rm -rf /app/dir/sub && echo again >> /app/out\n";

#[test]
fn same_file_tree_as_buildah() {
    assert!(
        Command::new("buildah")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "buildah is required (apt-get install buildah)"
    );
    let e = Env::with_busybox();
    // buildah wants a lowercase path in `FROM oci:PATH:REF`: point one at the store.
    let link = std::path::PathBuf::from(format!("/tmp/berth-bh-store-{}", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(e.store(), &link).unwrap();
    let theirs_df = DF.replace("BASE", &format!("oci:{}:busybox:latest", link.display()));
    let files = [("a.txt", "a\n"), ("dir/f", "f\n"), ("dir/sub/g", "g\n")];
    let ours_df = DF.replace("BASE", "busybox");
    let mut ours_files = vec![("Dockerfile", ours_df.as_str())];
    let mut theirs_files = vec![("Dockerfile", theirs_df.as_str())];
    ours_files.extend(files);
    theirs_files.extend(files);
    let ours_ctx = e.context("ours", &ours_files);
    let theirs_ctx = e.context("theirs", &theirs_files);
    e.build(&ours_ctx, &["-t", "ours"]);
    let broot = e.path("buildah-root");
    let brun = e.path("buildah-run");
    let buildah = |args: &[&str]| {
        let o = Command::new("buildah")
            .arg("--root")
            .arg(&broot)
            .arg("--runroot")
            .arg(&brun)
            .args(["--storage-driver", "vfs"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    buildah(&[
        "bud",
        "--isolation",
        "chroot",
        "-t",
        "theirs",
        theirs_ctx.to_str().unwrap(),
    ]);
    let out = e.path("buildah-out");
    buildah(&["push", "theirs", &format!("oci:{}:theirs", out.display())]);
    buildah(&["rmi", "-a", "-f"]);
    let theirs = e.path("u-theirs");
    let st = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:theirs", out.display()))
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let ours = e.umoci_unpack("ours:latest", "u-ours");
    let mut a = tree(&ours);
    let mut b = tree(&theirs.join("rootfs"));
    for artefact in ["etc/hostname", "run"] {
        b.remove(artefact);
        a.remove(artefact);
    }
    let diff: Vec<_> = a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: ours {:?} buildah {:?}", a.get(k), b.get(k)))
        .collect();
    assert!(diff.is_empty(), "trees differ:\n{}", diff.join("\n"));
    assert!(
        a.contains_key("app/link") && !a.contains_key("bin/vi") && !a.contains_key("app/dir/sub")
    );
    let _ = std::fs::remove_dir_all(&broot);
    let _ = std::fs::remove_file(&link);
}
