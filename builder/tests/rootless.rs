//! Rootless builds (issue #10): ordinary users run `berth-build build` with no setuid
//! binary of ours. `berth-rl1` has /etc/subuid and /etc/subgid ranges (ids 1..65536 in
//! the build), `berth-rl2` has none (only its own id, as 0). The test runs as root,
//! makes the users, and runs berth-build as them with runuser.
//!
//! The runtime for RUN is berth (BERTH_BIN, else the berth next to berth-build);
//! BERTH_ROOTLESS_RUNTIME=runc uses runc instead, with its state in the user's
//! XDG_RUNTIME_DIR (runc does not pick that itself when uid 0 in a user namespace).

mod common;
use common::*;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

const EPOCH: &str = "1700000000";
const WITH_SUBIDS: &str = "berth-rl1";
const WITHOUT_SUBIDS: &str = "berth-rl2";
/// A user whose subordinate ranges are too small for images that use id 1000.
const SMALL_SUBIDS: &str = "berth-rl3";

const DOCKERFILE: &str = "FROM busybox
RUN mkdir /d && echo x > /d/f && chown 1000:1000 /d/f && rm /bin/vi
COPY --chown=1000:1000 file.txt /c/file.txt
COPY plain.txt /c/plain.txt
RUN rm -rf /d && mkdir /d && echo y > /d/g
";

/// A user made for the test; ids as the host sees them.
#[derive(Clone)]
struct User {
    name: &'static str,
    uid: u32,
    gid: u32,
    /// Host ids the user's files may have: its own and its subordinate ranges.
    ids: Vec<(u64, u64)>,
}

static USERS: Mutex<()> = Mutex::new(());

fn id_of(name: &str, flag: &str) -> u32 {
    let o = Command::new("id").arg(flag).arg(name).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

fn sub_lines(file: &str, name: &str) -> Vec<(u64, u64)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() == 3 && f[0] == name).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .collect()
}

/// Make `name` (useradd -m gives it subordinate ids on Debian) and give it or take
/// away its /etc/subuid and /etc/subgid lines.
fn user(name: &'static str, subids: bool) -> User {
    user_with_range(name, if subids { 65536 } else { 0 })
}

/// A test user with subordinate ranges of `count` ids (none for 0).
fn user_with_range(name: &'static str, count: u64) -> User {
    let _g = USERS.lock().unwrap_or_else(|p| p.into_inner());
    if !Command::new("id")
        .arg(name)
        .output()
        .unwrap()
        .status
        .success()
    {
        let st = Command::new("useradd").args(["-m", name]).status().unwrap();
        assert!(st.success(), "useradd {name}");
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let data = std::fs::read_to_string(file).unwrap_or_default();
        let mine = |l: &&str| l.split(':').next() == Some(name);
        let has = data.lines().any(|l| mine(&l));
        let right = data
            .lines()
            .any(|l| mine(&l) && l.split(':').nth(2) == Some(&count.to_string()));
        if has && !right {
            let kept: String = data
                .lines()
                .filter(|l| !mine(l))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(file, &kept).unwrap();
        }
        let data = std::fs::read_to_string(file).unwrap_or_default();
        let has = data.lines().any(|l| mine(&l));
        if count > 0 && !has {
            // After every range in use.
            let end = data
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    Some(f.get(1)?.parse::<u64>().ok()? + f.get(2)?.parse::<u64>().ok()?)
                })
                .max()
                .unwrap_or(100000)
                .max(100000);
            let mut d = data.clone();
            d.push_str(&format!("{name}:{end}:{count}\n"));
            std::fs::write(file, d).unwrap();
        }
    }
    let (uid, gid) = (id_of(name, "-u"), id_of(name, "-g"));
    let mut ids = vec![(uid as u64, 1), (gid as u64, 1)];
    ids.extend(sub_lines("/etc/subuid", name));
    ids.extend(sub_lines("/etc/subgid", name));
    User {
        name,
        uid,
        gid,
        ids,
    }
}

/// A temp dir the test users can enter, holding the binaries, a build context, a
/// root store with busybox (and its archive), and one writable dir per user.
struct Fixture {
    env: Env,
    bin: PathBuf,
}

fn runtime_kind() -> String {
    std::env::var("BERTH_ROOTLESS_RUNTIME").unwrap_or_else(|_| "berth".into())
}

fn berth_bin() -> String {
    common::berth_bin()
}

impl Fixture {
    fn new() -> Fixture {
        let env = Env::with_busybox();
        let top = env.dir.path();
        std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The workspace's target dir need not be reachable by other users: copy.
        let bindir = top.join("bin");
        std::fs::create_dir(&bindir).unwrap();
        std::fs::copy(bin(), bindir.join("berth-build")).unwrap();
        std::fs::copy(berth_bin(), bindir.join("berth")).unwrap();
        std::fs::write(
            bindir.join("runc-wrap"),
            format!("#!/bin/sh\nexec {RUNC} --root \"$XDG_RUNTIME_DIR/runc\" \"$@\"\n"),
        )
        .unwrap();
        for f in ["berth-build", "berth", "runc-wrap"] {
            let p = bindir.join(f);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        env.ok(&[
            "save",
            "-o",
            env.path("busybox.tar").to_str().unwrap(),
            "busybox",
        ]);
        let ctx = env.context(
            "ctx",
            &[
                ("Dockerfile", DOCKERFILE),
                ("file.txt", "owned\n"),
                ("plain.txt", "plain\n"),
            ],
        );
        chmod_tree(0o755, 0o644, &[ctx, env.path("busybox.tar")]);
        Fixture { env, bin: bindir }
    }

    fn runtime(&self) -> PathBuf {
        match runtime_kind().as_str() {
            "runc" => self.bin.join("runc-wrap"),
            _ => self.bin.join("berth"),
        }
    }

    /// A dir owned by `u` for its store, runtime state and HOME; the context copied
    /// in and owned by it (a user's own files are root's in its build).
    fn home(&self, u: &User) -> PathBuf {
        let h = self.env.path(u.name);
        std::fs::create_dir_all(h.join("run")).unwrap();
        copy_dir(&self.env.path("ctx"), &h.join("ctx"));
        chown_tree(&h, u);
        h
    }

    /// berth-build as `u`: XDG_DATA_HOME and XDG_RUNTIME_DIR in its dir.
    fn as_user(&self, u: &User, args: &[&str]) -> Output {
        self.as_user_env(u, &[], args)
    }

    fn as_user_env(&self, u: &User, env: &[&str], args: &[&str]) -> Output {
        let h = self.env.path(u.name);
        let mut c = Command::new("runuser");
        c.args(["-u", u.name, "--", "env", "-i"])
            .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .arg(format!("HOME={}", h.display()))
            .arg(format!("XDG_DATA_HOME={}", h.join("data").display()))
            .arg(format!("XDG_RUNTIME_DIR={}", h.join("run").display()))
            .arg(format!("BERTH_RUNTIME={}", self.runtime().display()))
            .arg(format!("SOURCE_DATE_EPOCH={EPOCH}"))
            .args(env)
            .arg(self.bin.join("berth-build"))
            .args(args);
        c.output().unwrap()
    }

    fn user_ok(&self, u: &User, args: &[&str]) -> String {
        let o = self.as_user(u, args);
        assert!(
            o.status.success(),
            "as {}: berth-build {args:?} failed:\n{}",
            u.name,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn user_fails(&self, u: &User, args: &[&str]) -> String {
        let o = self.as_user(u, args);
        assert!(!o.status.success(), "as {}: {args:?} succeeded", u.name);
        String::from_utf8_lossy(&o.stderr).to_string()
    }

    /// Load busybox into `u`'s default store.
    fn load(&self, u: &User) {
        let tar = self.env.path("busybox.tar");
        let out = self.user_ok(u, &["load", "-i", tar.to_str().unwrap()]);
        assert!(out.contains("busybox:latest"), "{out}");
    }

    /// The same build as root, in the root store (the context as root owns it).
    fn root_build(&self, ctx: &Path, tag: &str) -> String {
        let mut c = self.env.cmd(&["build", "--progress", "quiet", "-t", tag]);
        c.arg(ctx)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("BERTH_RUNTIME", RUNC);
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "root build: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Nothing of `u`'s (its id or subordinate ids) outside this fixture's dir.
    fn assert_nothing_left(&self, u: &User) {
        let mine = |id: u32| {
            u.ids
                .iter()
                .any(|&(s, n)| (id as u64) >= s && (id as u64) < s + n)
        };
        let top = self.env.dir.path();
        let mut left = vec![];
        for (root, depth) in [
            ("/run/berth", 3),
            ("/var/lib/berth", 2),
            ("/run/runc", 2),
            ("/tmp", 1),
        ] {
            for e in walkdir::WalkDir::new(root)
                .max_depth(depth)
                .into_iter()
                .flatten()
            {
                let Ok(md) = e.metadata() else { continue };
                if e.path().starts_with(top) {
                    continue;
                }
                if mine(md.uid()) || mine(md.gid()) {
                    left.push(e.path().to_path_buf());
                }
            }
        }
        assert!(
            left.is_empty(),
            "{} left files in root's paths: {left:?}",
            u.name
        );
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mi.contains(&top.display().to_string()),
            "mounts left behind"
        );
    }
}

fn chmod_tree(dirs: u32, files: u32, paths: &[PathBuf]) {
    for p in paths {
        for e in walkdir::WalkDir::new(p).into_iter().flatten() {
            let mode = if e.file_type().is_dir() { dirs } else { files };
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

fn chown_tree(p: &Path, u: &User) {
    for e in walkdir::WalkDir::new(p).into_iter().flatten() {
        std::os::unix::fs::lchown(e.path(), Some(u.uid), Some(u.gid)).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// (path, uid, gid) of every entry of every layer of `tag` in `store`.
fn layer_entries(store: &Path, tag: &str) -> Vec<Vec<(String, u64, u64)>> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("index.json")).unwrap()).unwrap();
    let m = manifest_digest(&index, tag);
    let blob = |d: &str| {
        store
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&m)).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let f = std::fs::File::open(blob(l["digest"].as_str().unwrap())).unwrap();
            let mut data = vec![];
            flate2::read::GzDecoder::new(f)
                .read_to_end(&mut data)
                .unwrap();
            let mut ar = tar::Archive::new(data.as_slice());
            ar.entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let h = e.header();
                    let p = e.path().unwrap().display().to_string();
                    (p, h.uid().unwrap(), h.gid().unwrap())
                })
                .collect()
        })
        .collect()
}

fn has(layer: &[(String, u64, u64)], path: &str, uid: u64) -> bool {
    layer
        .iter()
        .any(|(p, u, g)| p == path && *u == uid && *g == uid)
}

#[test]
fn subuid_user_builds_the_same_image_as_root() {
    let fx = Fixture::new();
    let u = user(WITH_SUBIDS, true);
    let home = fx.home(&u);
    fx.load(&u);
    let ctx = home.join("ctx");
    let id = fx.user_ok(
        &u,
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "rl",
            ctx.to_str().unwrap(),
        ],
    );
    // The default store of an ordinary user: $XDG_DATA_HOME/berth.
    let store = home.join("data/berth");
    assert!(store.join("index.json").is_file());
    let layers = layer_entries(&store, "rl:latest");
    assert_eq!(layers.len(), 5, "base + RUN + 2 COPY + RUN");
    assert!(has(&layers[1], "d/f", 1000), "{:?}", layers[1]);
    assert!(has(&layers[1], "bin/.wh.vi", 0), "{:?}", layers[1]);
    assert!(has(&layers[2], "c/file.txt", 1000), "{:?}", layers[2]);
    assert!(has(&layers[3], "c/plain.txt", 0), "{:?}", layers[3]);
    assert!(has(&layers[4], "d/.wh..wh..opq", 0), "{:?}", layers[4]);
    let root_id = fx.root_build(&fx.env.path("ctx"), "rl");
    assert_eq!(id, root_id, "rootless and root builds differ");
    let user_idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        manifest_digest(&user_idx, "rl:latest"),
        manifest_digest(&fx.env.index(), "rl:latest")
    );
    // Cached the second time, same image.
    let again = fx.user_ok(
        &u,
        &[
            "build",
            "--progress",
            "quiet",
            "-t",
            "rl",
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(again, id);
    fx.assert_nothing_left(&u);
}

#[test]
fn user_without_subids_builds_with_its_own_id_only() {
    let fx = Fixture::new();
    let u = user(WITHOUT_SUBIDS, false);
    let home = fx.home(&u);
    fx.load(&u);
    // Another id, in RUN: the step fails, and the error says how to map more ids.
    let ctx = home.join("ctx");
    let err = fx.user_fails(&u, &["build", "--progress", "plain", ctx.to_str().unwrap()]);
    let last = err
        .lines()
        .find(|l| l.starts_with("berth-build:"))
        .unwrap_or_default();
    assert!(
        last.contains("/etc/subuid") && last.contains("uidmap"),
        "{err}"
    );
    // Another id, in COPY --chown: the same advice.
    let c2 = home.join("ctx2");
    std::fs::create_dir_all(&c2).unwrap();
    std::fs::write(
        c2.join("Dockerfile"),
        "FROM busybox\nCOPY --chown=1000:1000 f /f\n",
    )
    .unwrap();
    std::fs::write(c2.join("f"), "f\n").unwrap();
    chown_tree(&c2, &u);
    let err = fx.user_fails(&u, &["build", "--progress", "quiet", c2.to_str().unwrap()]);
    assert!(
        err.contains("COPY --chown=1000:1000 f /f: id 1000 is not mapped"),
        "{err}"
    );
    assert!(
        err.contains("/etc/subgid") && err.contains("uidmap"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Only root's id: fine, and the same image as root's.
    let c3 = fx.env.context(
        "ctx3",
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN rm /bin/vi && mkdir /d && echo x > /d/f\nCOPY f /f\n",
            ),
            ("f", "f\n"),
        ],
    );
    let mine = home.join("ctx3");
    copy_dir(&c3, &mine);
    chown_tree(&mine, &u);
    let id = fx.user_ok(
        &u,
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "one",
            mine.to_str().unwrap(),
        ],
    );
    assert_eq!(id, fx.root_build(&c3, "one"));
    fx.assert_nothing_left(&u);
}

/// Where overlay is refused (forced here with BERTH_BUILD_OVERLAY=copy), layers are
/// copied and diffed instead: the same image again.
#[test]
fn copy_fallback_builds_the_same_image_as_root() {
    let fx = Fixture::new();
    let u = user(WITH_SUBIDS, true);
    let home = fx.home(&u);
    fx.load(&u);
    let ctx = home.join("ctx");
    let args = [
        "build",
        "--progress",
        "plain",
        "-t",
        "rl",
        ctx.to_str().unwrap(),
    ];
    let o = fx.as_user_env(&u, &["BERTH_BUILD_OVERLAY=copy"], &args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let layers = layer_entries(&home.join("data/berth"), "rl:latest");
    assert!(has(&layers[1], "d/f", 1000), "{:?}", layers[1]);
    assert!(has(&layers[1], "bin/.wh.vi", 0), "{:?}", layers[1]);
    assert!(has(&layers[4], "d/.wh..wh..opq", 0), "{:?}", layers[4]);
    assert_eq!(id, fx.root_build(&fx.env.path("ctx"), "rl"));
    fx.assert_nothing_left(&u);
}

/// Without HOME's XDG_DATA_HOME, ~/.local/share/berth; and the root-only commands and
/// missing newuidmap give one clear line.
#[test]
fn default_store_and_clear_errors() {
    let fx = Fixture::new();
    let u = user(WITH_SUBIDS, true);
    let home = fx.home(&u);
    let o = Command::new("runuser")
        .args(["-u", u.name, "--", "env", "-i"])
        .arg(format!("HOME={}", home.display()))
        .arg(fx.bin.join("berth-build"))
        .arg("images")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(home.join(".local/share/berth/index.json").is_file());
    // bundle needs root; --publish says why a bridge is out of reach.
    let err = fx.user_fails(&u, &["bundle", "busybox", home.join("b").to_str().unwrap()]);
    assert!(err.contains("need root"), "{err}");
    let b = home.join("b");
    let err = fx.user_fails(
        &u,
        &[
            "bundle",
            "--publish",
            "8080:80",
            "busybox",
            b.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("need a bridge") && err.contains("--network host or none"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!b.exists());
    // Subordinate ids but no newuidmap (hidden in a mount namespace of our own).
    let script = format!(
        "for b in newuidmap newgidmap; do for d in /usr/bin /usr/sbin /bin /sbin; do \
         [ -f $d/$b ] && mount --bind /dev/null $d/$b; done; done; \
         exec runuser -u {} -- env -i HOME={} {} images",
        u.name,
        home.display(),
        fx.bin.join("berth-build").display()
    );
    let o = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("install the uidmap package"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    fx.assert_nothing_left(&u);
}

/// Subordinate ranges too small for the image's ids: COPY --chown and a RUN chown to
/// 1000 fail with one line that says how many ids the build maps and how to widen it.
#[test]
fn small_subordinate_range_names_the_id_and_the_range() {
    let fx = Fixture::new();
    let u = user_with_range(SMALL_SUBIDS, 500);
    let home = fx.home(&u);
    fx.load(&u);
    for (name, dockerfile) in [
        ("copy", "FROM busybox\nCOPY --chown=1000:1000 f /f\n"),
        ("run", "FROM busybox\nRUN touch /f && chown 1000 /f\n"),
    ] {
        let ctx = home.join(name);
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(ctx.join("f"), "f\n").unwrap();
        chown_tree(&ctx, &u);
        let err = fx.user_fails(
            &u,
            &[
                "build",
                "--progress",
                "plain",
                "-t",
                name,
                ctx.to_str().unwrap(),
            ],
        );
        // The COPY error is one line; the RUN error goes on with the step's output.
        let first = err
            .lines()
            .find(|l| l.contains("Dockerfile:2"))
            .unwrap_or_default();
        assert!(
            first.contains("ids 0-500") && first.contains("/etc/subuid"),
            "{err}"
        );
        if name == "copy" {
            assert!(first.contains("id 1000 is not mapped"), "{err}");
        }
    }
    fx.assert_nothing_left(&u);
}

/// A seccomp filter making unshare(2) fail with EPERM, as it does where user
/// namespaces are disabled (kernel.unprivileged_userns_clone=0, an LSM's policy).
fn refuse_unshare() -> std::io::Result<()> {
    const LD_NR: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS, offset 0: the syscall number
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    let f = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let prog = [
        f(LD_NR, 0, 0, 0),
        f(JEQ, 0, 1, libc::SYS_unshare as u32),
        f(RET, 0, 0, 0x0005_0000 | libc::EPERM as u32), // SECCOMP_RET_ERRNO
        f(RET, 0, 0, 0x7fff_0000),                      // SECCOMP_RET_ALLOW
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut _,
    };
    // SAFETY: a valid filter program that outlives the call.
    let r = unsafe { libc::prctl(libc::PR_SET_SECCOMP, 2, &fprog as *const libc::sock_fprog) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[test]
fn refused_user_namespace_gives_one_clear_line() {
    use std::os::unix::process::CommandExt;
    let fx = Fixture::new();
    let u = user(WITH_SUBIDS, true);
    let home = fx.home(&u);
    let mut c = Command::new("runuser");
    c.args(["-u", u.name, "--", "env", "-i"])
        .arg(format!("HOME={}", home.display()))
        .arg(fx.bin.join("berth-build"))
        .arg("images");
    // SAFETY: prctl only, in the child before exec.
    unsafe { c.pre_exec(refuse_unshare) };
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("cannot create a user namespace") && err.contains("max_user_namespaces"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    fx.assert_nothing_left(&u);
}

/// A rootless build FROM an image holding device nodes skips them with a note (as podman
/// does: a user namespace cannot make devices); FIFOs are still made.
#[test]
fn rootless_from_an_image_with_device_nodes_skips_them() {
    let fx = Fixture::new();
    let u = user(WITH_SUBIDS, true);
    let home = fx.home(&u);
    let mut b = tar::Builder::new(vec![]);
    for (kind, name) in [
        (tar::EntryType::Char, "null2"),
        (tar::EntryType::Fifo, "fifo"),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(0o666);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_path(name).unwrap();
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
    }
    let devs = fx.env.path("devs.tar");
    std::fs::write(&devs, b.into_inner().unwrap()).unwrap();
    fx.env.ok(&["import", devs.to_str().unwrap(), "devs"]);
    let saved = fx.env.path("devs-saved.tar");
    fx.env.ok(&["save", "-o", saved.to_str().unwrap(), "devs"]);
    chmod_tree(0o755, 0o644, std::slice::from_ref(&saved));
    fx.user_ok(&u, &["load", "-i", saved.to_str().unwrap()]);
    let ctx = home.join("ctxdev");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM devs\nCOPY f /f\n").unwrap();
    std::fs::write(ctx.join("f"), "f\n").unwrap();
    chown_tree(&ctx, &u);
    let o = fx.as_user(&u, &["build", "--progress", "plain", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("skipped 1 device node"), "{err}");
}

/// `--output type=local` and `type=tar` as an ordinary user (issue 23): the directory's
/// files are the user's own (as BuildKit's local exporter writes them), the layers are
/// applied (whiteouts honoured), and the tar keeps the image's owners.
#[test]
fn rootless_local_and_tar_outputs() {
    let fx = Fixture::new();
    let u = user(WITH_SUBIDS, true);
    let home = fx.home(&u);
    fx.load(&u);
    let (ctx, out, tar) = (home.join("ctx"), home.join("out"), home.join("fs.tar"));
    let tar_spec = format!("type=tar,dest={}", tar.display());
    let args = ["build", "--progress", "quiet", "-o", out.to_str().unwrap()];
    let mut args = args.to_vec();
    args.extend(["--output", &tar_spec, ctx.to_str().unwrap()]);
    fx.user_ok(&u, &args);
    for e in walkdir::WalkDir::new(&out).into_iter().flatten() {
        let md = e.path().symlink_metadata().unwrap();
        assert_eq!(
            (md.uid(), md.gid()),
            (u.uid, u.gid),
            "{}",
            e.path().display()
        );
    }
    assert_eq!(std::fs::read_to_string(out.join("d/g")).unwrap(), "y\n");
    assert!(!out.join("d/f").exists() && !out.join("bin/vi").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("c/file.txt")).unwrap(),
        "owned\n"
    );
    let o = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(&tar)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    let line = list
        .lines()
        .find(|l| l.ends_with(" c/file.txt"))
        .expect(&list);
    assert!(line.contains(" 1000/1000 "), "{line}");
    fx.assert_nothing_left(&u);
}
