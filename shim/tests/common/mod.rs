//! A real containerd per test: its own config, root, state and socket under a temp dir, the
//! shim (and berth next to it) on its PATH, and a busybox image built by berth-build and
//! imported with `ctr image import`. Everything is torn down on drop.
//!
//! containerd 1.6 always puts shim sockets in /run/containerd/s and FIFOs in
//! /run/containerd/fifo; the socket names hash our own containerd address, so runs never
//! collide with another containerd.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const NS: &str = "berth-test";
pub const IMAGE: &str = "berth-test/busybox:latest";
pub const RUNTIME: &str = "io.containerd.berth.v2";

pub fn shim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-berth-v2"))
}

/// A workspace binary: `$ENV`, else next to the shim binary (the same target dir).
pub fn sibling(name: &str, env: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let p = shim_bin().parent().unwrap().join(name);
    assert!(
        p.is_file(),
        "{} not found: build the workspace (`cargo build --release --workspace --bins`) or set {env}",
        p.display()
    );
    p
}

pub struct Containerd {
    pub dir: PathBuf,
    pub sock: PathBuf,
    child: Child,
    cgroup2: bool,
}

/// containerd with the config in `dir`, logging to `dir`/containerd.log (appended: a restart
/// keeps the first run's lines).
fn spawn_containerd(dir: &Path, berth: &Path, cgroup2: bool) -> Child {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("containerd.log"))
        .unwrap();
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let mut cmd = if cgroup2 {
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c"]).arg(
            "umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec containerd \"$@\"",
        );
        c.arg("containerd");
        c
    } else {
        Command::new("containerd")
    };
    cmd.arg("--config")
        .arg(dir.join("config.toml"))
        .env("PATH", path)
        .env("BERTH_RUNTIME", berth)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("containerd is installed (apt-get install containerd)")
}

fn image_archive(dir: &Path) -> PathBuf {
    image_tar(dir, IMAGE, "CMD [\"sh\"]")
}

/// A busybox image named `name` with the Dockerfile-style `change` (berth-build import -c),
/// built by berth-build and saved as an archive `ctr image import` reads.
pub fn image_tar(dir: &Path, name: &str, change: &str) -> PathBuf {
    let rootfs = dir.join("image-rootfs");
    if !rootfs.join("bin/busybox").exists() {
        fs::create_dir_all(rootfs.join("bin")).unwrap();
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static is installed");
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
    }
    let build = sibling("berth-build", "BERTH_BUILD");
    let store = dir.join("store");
    let tar = dir.join(format!("{}.tar", name.replace(['/', ':'], "_")));
    let import = Command::new(&build)
        .arg("--store")
        .arg(&store)
        .arg("import")
        .arg(&rootfs)
        .args([name, "-c", change])
        .output()
        .unwrap();
    assert!(import.status.success(), "berth-build import: {import:?}");
    let save = Command::new(&build)
        .arg("--store")
        .arg(&store)
        .args(["save", "-o"])
        .arg(&tar)
        .arg(name)
        .output()
        .unwrap();
    assert!(save.status.success(), "berth-build save: {save:?}");
    tar
}

impl Containerd {
    pub fn start(name: &str) -> Containerd {
        Containerd::start_in(name, false)
    }

    /// With `cgroup2`, containerd (and so the shims and berth) runs in a private mount
    /// namespace whose /sys/fs/cgroup is the cgroup2 tree only: what a v2-only host shows.
    pub fn start_in(name: &str, cgroup2: bool) -> Containerd {
        Containerd::launch(name, cgroup2, None)
    }

    /// With containerd's CRI plugin on, configured by `cri` (TOML appended to the config;
    /// `$DIR` is replaced by the test's directory).
    pub fn start_cri(name: &str, cri: &str) -> Containerd {
        Containerd::launch(name, false, Some(cri))
    }

    fn launch(name: &str, cgroup2: bool, cri: Option<&str>) -> Containerd {
        let dir = std::env::temp_dir().join(format!("berth-shim-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        std::os::unix::fs::symlink(shim_bin(), dir.join("bin/containerd-shim-berth-v2")).unwrap();
        let berth = sibling("berth", "BERTH_RUNTIME");
        let sock = dir.join("containerd.sock");
        let disabled = match cri {
            Some(_) => "",
            None => "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
        };
        let mut config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n{disabled}\
             [grpc]\n  address = \"{s}\"\n[debug]\n  level = \"debug\"\n",
            d = dir.display(),
            s = sock.display()
        );
        if let Some(cri) = cri {
            config += &cri.replace("$DIR", &dir.display().to_string());
        }
        fs::write(dir.join("config.toml"), config).unwrap();
        let child = spawn_containerd(&dir, &berth, cgroup2);
        let c = Containerd {
            dir,
            sock,
            child,
            cgroup2,
        };
        c.wait_up();
        let tar = image_archive(&c.dir);
        c.ok(&["image", "import", tar.to_str().unwrap()]);
        c
    }

    /// Stops containerd (SIGTERM; its shims and their tasks live on) and starts it again
    /// with the same config, as a node's containerd upgrade or crash-restart does.
    pub fn restart(&mut self) {
        // SAFETY: plain kill(2) of our containerd child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        self.child = spawn_containerd(&self.dir, &sibling("berth", "BERTH_RUNTIME"), self.cgroup2);
        self.wait_up();
    }

    fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.ctr(&["version"]).status.code() != Some(0) {
            assert!(
                Instant::now() < deadline,
                "containerd did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.sock)
            .args(["-n", NS])
            .args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs ctr with a 60 s limit (a hang fails the test instead of stalling the suite).
    pub fn ctr(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("timeout");
        cmd.args(["60", "ctr", "--address"])
            .arg(&self.sock)
            .args(["-n", NS])
            .args(args)
            .stdin(Stdio::null());
        cmd.output().unwrap()
    }

    /// Runs ctr and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ctr run -d` with the berth runtime.
    pub fn run_detached(&self, id: &str, extra: &[&str], cmd: &[&str]) {
        let mut args = vec!["run", "-d", "--runtime", RUNTIME];
        args.extend(extra);
        args.extend([IMAGE, id]);
        args.extend(cmd);
        self.ok(&args);
    }

    /// The STATUS column of `ctr task ls` for `id`.
    pub fn status(&self, id: &str) -> String {
        let out = self.ok(&["task", "ls"]);
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("")
            .to_string()
    }

    pub fn pid(&self, id: &str) -> u32 {
        let out = self.ok(&["task", "ls"]);
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }

    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.status(id) != want {
            assert!(
                Instant::now() < deadline,
                "{id} never became {want}: {}",
                self.status(id)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kill -9, delete task and container (end of a test's container).
    pub fn remove(&self, id: &str) {
        let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
        let _ = self.ctr(&["task", "rm", "-f", id]);
        let _ = self.ctr(&["container", "rm", id]);
    }

    /// What a hung test needs to be understood: processes, and the logs of containerd, the
    /// shim and berth.
    pub fn diagnose(&self) -> String {
        let ps = Command::new("ps")
            .args(["-eo", "pid,ppid,stat,wchan:24,args", "--forest"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let ps: Vec<&str> = ps
            .lines()
            .filter(|l| l.contains("containerd") || l.contains("berth") || l.contains("ctr"))
            .collect();
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(80).collect();
        let mut berth_logs = String::new();
        let root = self
            .dir
            .join("state/io.containerd.runtime.v2.task")
            .join(NS);
        for e in fs::read_dir(root).into_iter().flatten().flatten() {
            let text = fs::read_to_string(e.path().join("log.json")).unwrap_or_default();
            berth_logs += &format!("{}:\n{text}\n", e.path().display());
        }
        format!(
            "processes:\n{}\ncontainerd log (last 80 lines):\n{}\nberth logs:\n{berth_logs}",
            ps.join("\n"),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// Pids of the shims this containerd started (their -address names our socket).
    pub fn shim_pids(&self) -> Vec<i32> {
        let sock = self.sock.to_string_lossy().into_owned();
        let mut pids = vec![];
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_shim = args.first().is_some_and(|a| a.contains("containerd-shim"));
            if is_shim && args.contains(&sock) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let tasks = self.ctr(&["task", "ls", "-q"]);
        for id in String::from_utf8_lossy(&tasks.stdout).lines() {
            self.remove(id.trim());
        }
        let cs = self.ctr(&["container", "ls", "-q"]);
        for id in String::from_utf8_lossy(&cs.stdout).lines() {
            let _ = self.ctr(&["container", "rm", id.trim()]);
        }
        for pid in self.shim_pids() {
            // A killed shim leaves its socket in /run/containerd/s behind.
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            let socket = args
                .windows(2)
                .find(|w| w[0] == b"-socket")
                .map(|w| w[1].to_vec());
            // SAFETY: plain kill(2) of a shim our containerd started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            if let Some(path) = socket.as_deref().and_then(|s| s.strip_prefix(b"unix://")) {
                let _ = fs::remove_file(String::from_utf8_lossy(path).as_ref());
            }
        }
        // SAFETY: plain kill(2) of our containerd child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(self.dir.to_str().unwrap()))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        if std::env::var_os("KEEP_TEST_DIR").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `cmd` under a pseudo-terminal (ctr -t needs one): `script -qec`.
pub fn in_pty(c: &Containerd, ctr_args: &str) -> Output {
    let line = format!(
        "stty cols 100 rows 30; timeout --foreground 60 ctr --address {} -n {NS} {ctr_args}",
        c.sock.display()
    );
    // --foreground: plain timeout moves ctr into a background process group, where ctr -t
    // setting the terminal raw gets SIGTTOU and stops (a 60 s hang with no output).
    // stdin stays an open pipe until ctr is done: on EOF script(1) would type ^D into the
    // pty at a moment that depends on scheduling, one more thing for a test to race with.
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (bsdutils) is installed");
    let stdin = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    if out.status.code() == Some(124) {
        panic!("ctr {ctr_args} hung for 60 s\n{}", c.diagnose());
    }
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `ctr events` into a file, known to be subscribed before the test goes on.
pub struct EventStream {
    child: Child,
    file: PathBuf,
}

impl EventStream {
    pub fn start(c: &Containerd) -> EventStream {
        let file = c.dir.join("events.txt");
        let out = fs::File::create(&file).unwrap();
        let child = c.ctr_cmd(&["events"]).stdout(out).spawn().unwrap();
        let s = EventStream { child, file };
        // the subscription is live once an event we cause shows up
        for i in 0.. {
            assert!(i < 100, "ctr events never showed an event");
            let id = format!("events-probe-{i}");
            c.ok(&["container", "create", IMAGE, &id]);
            c.ok(&["container", "rm", &id]);
            std::thread::sleep(Duration::from_millis(100));
            if s.text().contains(&id) {
                break;
            }
        }
        s
    }

    pub fn text(&self) -> String {
        fs::read_to_string(&self.file).unwrap_or_default()
    }

    /// Waits (up to 30 s, for loaded CI machines) until every topic in `topics` has been seen; returns the stream.
    pub fn wait_for(&self, topics: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            let all = topics.iter().all(|t| text.contains(&format!(" {t} ")));
            if all || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
