//! LSMs: process.apparmorProfile, process.selinuxLabel, linux.mountLabel and exec's
//! --apparmor / --process-label. Differential: RUNTIME=runc must pass the same tests.
//! Where the host has no AppArmor (or SELinux) the tests check runc's behaviour there
//! (create/exec fail); where it has AppArmor and apparmor_parser (the VM suite,
//! scripts/vm/checks/apparmor.sh) a profile is loaded and must confine init and exec'd processes.
mod common;
use common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn apparmor_host() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.first() == Some(&b'Y'))
}

fn selinux_host() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A container that sleeps, created and started.
fn running() -> Bundle {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    b
}

// ---- hosts without the LSM (runc's behaviour there) ------------------------------------

/// runc writes the profile and fails when the kernel refuses it; berth names the field.
#[test]
fn apparmor_profile_without_apparmor_fails_create() {
    if apparmor_host() {
        return eprintln!("skipped: AppArmor is enabled here (see the profile tests)");
    }
    let mut b = bundle(&["true"]);
    b.config["process"]["apparmorProfile"] = json!("berth-lsm-absent");
    let o = b.create();
    assert!(
        !o.status.success(),
        "create ignored process.apparmorProfile"
    );
    if is_berth() {
        let e = stderr(&o);
        assert!(e.contains("process.apparmorProfile"), "{e}");
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    }
    assert_eq!(b.status(), "gone", "a failed create left the container");
}

/// runc's validator refuses a SELinux label before anything is made.
#[test]
fn selinux_label_without_selinux_is_refused() {
    if selinux_host() {
        return eprintln!("skipped: SELinux is enabled here");
    }
    let mut b = bundle(&["true"]);
    b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0:c1,c2");
    let o = b.create();
    assert!(!o.status.success(), "create ignored process.selinuxLabel");
    if is_berth() {
        let e = stderr(&o);
        assert!(e.contains("process.selinuxLabel"), "{e}");
        assert!(e.contains("SELinux"), "{e}");
    }
    assert_eq!(b.status(), "gone");
}

/// mountLabel goes into the data of the tmpfs/devpts mounts as `context="…"` whatever the
/// host (runc's FormatMountLabel), so without SELinux the kernel refuses those mounts.
#[test]
fn mount_label_reaches_tmpfs_mounts() {
    if selinux_host() {
        return eprintln!("skipped: SELinux is enabled here");
    }
    let label = "system_u:object_r:container_file_t:s0:c1,c2";
    let mut b = bundle(&["true"]);
    b.config["linux"]["mountLabel"] = json!(label);
    let (code, _, err) = b.run();
    assert_ne!(code, 0, "the /dev tmpfs was mounted without its context");
    if is_berth() {
        assert!(err.contains("context=") || err.contains("/dev"), "{err}");
    }
    // Masked directories are covered with a labelled tmpfs too (runc's maskDir).
    let mut b = bundle(&["true"]);
    b.config["linux"]["mountLabel"] = json!(label);
    b.config["mounts"] = json!([{"destination": "/proc", "type": "proc", "source": "proc"}]);
    b.config["linux"]["maskedPaths"] = json!(["/root"]);
    let (code, _, err) = b.run();
    assert_ne!(
        code, 0,
        "the masking tmpfs was mounted without its context: {err}"
    );
}

/// proc and bind mounts take no label: a container with only those runs.
#[test]
fn mount_label_leaves_proc_and_bind_mounts_alone() {
    if selinux_host() {
        return eprintln!("skipped: SELinux is enabled here");
    }
    let mut b = bundle(&["sh", "-c", "echo ok"]);
    b.config["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    let etc = b.rootfs().join("etc");
    b.config["mounts"] = json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/mnt", "type": "bind", "source": etc, "options": ["rbind", "ro"]}
    ]);
    assert_eq!(b.run_ok().trim(), "ok");
}

/// `exec --apparmor P` puts P in the exec'd process's config: the write is attempted (and,
/// with no AppArmor, refused), as runc's.
#[test]
fn exec_apparmor_flag_reaches_the_process() {
    if apparmor_host() {
        return eprintln!("skipped: AppArmor is enabled here (see the profile tests)");
    }
    let b = running();
    let o = b.rt(&["exec", "--apparmor", "berth-lsm-absent", &b.id, "true"]);
    assert!(!o.status.success(), "exec ignored --apparmor");
    if is_berth() {
        assert!(
            stderr(&o).contains("process.apparmorProfile"),
            "{}",
            stderr(&o)
        );
    }
    // Without the flag the same exec runs: the container's process has no profile.
    b.ok(&["exec", &b.id, "true"]);
    // A process.json's apparmorProfile is applied the same way.
    let p = b.path().join("p.json");
    let proc = json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "apparmorProfile": "berth-lsm-absent"});
    std::fs::write(&p, proc.to_string()).unwrap();
    let o = b.rt(&["exec", "--process", p.to_str().unwrap(), &b.id]);
    assert!(
        !o.status.success(),
        "exec ignored process.json's apparmorProfile"
    );
}

/// `exec --process-label L` is checked like config.json's selinuxLabel.
#[test]
fn exec_process_label_flag_reaches_the_process() {
    if selinux_host() {
        return eprintln!("skipped: SELinux is enabled here");
    }
    let b = running();
    let o = b.rt(&[
        "exec",
        "--process-label",
        "system_u:system_r:container_t:s0",
        &b.id,
        "true",
    ]);
    assert!(!o.status.success(), "exec ignored --process-label");
    if is_berth() {
        assert!(
            stderr(&o).contains("process.selinuxLabel"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(b.status(), "running");
}

/// features: AppArmor and SELinux support is built in (runc reports `true` too); the
/// annotations say whether this host has them.
#[test]
fn features_report_lsm_support_and_the_host() {
    if !is_berth() {
        return;
    }
    let o = Command::new(runtime()).arg("features").output().unwrap();
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(f["linux"]["apparmor"]["enabled"], json!(true));
    assert_eq!(f["linux"]["selinux"]["enabled"], json!(true));
    let a = &f["annotations"];
    assert_eq!(
        a["io.github.berth.linux.apparmor.hostEnabled"],
        json!(apparmor_host().to_string())
    );
    assert_eq!(
        a["io.github.berth.linux.selinux.hostEnabled"],
        json!(selinux_host().to_string())
    );
}

// ---- hosts with AppArmor: a loaded profile confines init and exec ----------------------

/// A loaded AppArmor profile that denies reading /lsm-secret; removed on drop.
struct Profile {
    name: String,
    file: tempfile::NamedTempFile,
}

impl Profile {
    /// None (test skipped) without AppArmor or apparmor_parser.
    fn load(tag: &str) -> Option<Profile> {
        if !apparmor_host() || Command::new("apparmor_parser").arg("-V").output().is_err() {
            eprintln!(
                "skipped: needs AppArmor and apparmor_parser (scripts/vm/checks/apparmor.sh)"
            );
            return None;
        }
        let name = format!("berth-lsm-{tag}-{}", std::process::id());
        let text = format!(
            "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  \
             capability,\n  network,\n  signal,\n  unix,\n  ptrace,\n  mount,\n  umount,\n  \
             pivot_root,\n  deny /lsm-secret rwklx,\n}}\n"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        let o = Command::new("apparmor_parser")
            .arg("-r")
            .arg(file.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "apparmor_parser: {}", stderr(&o));
        Some(Profile { name, file })
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = Command::new("apparmor_parser")
            .arg("-R")
            .arg(self.file.path())
            .output();
    }
}

const PROBE: &str =
    "cat /proc/self/attr/current; echo; cat /lsm-secret && echo READ || echo DENIED";

fn with_secret(args: &[&str]) -> Bundle {
    let b = bundle(args);
    std::fs::write(b.rootfs().join("lsm-secret"), "s3cret\n").unwrap();
    b
}

#[test]
fn apparmor_profile_confines_init() {
    let Some(p) = Profile::load("init") else {
        return;
    };
    let mut b = with_secret(&["sh", "-c", PROBE]);
    b.config["process"]["apparmorProfile"] = json!(p.name);
    let out = b.run_ok();
    assert!(out.contains(&format!("{} (enforce)", p.name)), "{out}");
    assert!(out.contains("DENIED") && !out.contains("s3cret"), "{out}");
    // The same container without the profile reads the file: the profile did the denying.
    let b = with_secret(&["sh", "-c", PROBE]);
    let out = b.run_ok();
    assert!(out.contains("READ"), "{out}");
}

#[test]
fn apparmor_profile_confines_exec_by_default_and_with_the_flag() {
    let Some(p) = Profile::load("exec") else {
        return;
    };
    // exec inherits config.json's profile (runc's exec starts from that process).
    let mut b = with_secret(&["sleep", "100"]);
    b.config["process"]["apparmorProfile"] = json!(p.name);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let out = b.ok(&["exec", &b.id, "sh", "-c", PROBE]);
    assert!(out.contains(&format!("{} (enforce)", p.name)), "{out}");
    assert!(out.contains("DENIED"), "{out}");
    // An unconfined container: `exec --apparmor` confines only that process.
    let b = with_secret(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let out = b.ok(&["exec", "--apparmor", &p.name, &b.id, "sh", "-c", PROBE]);
    assert!(out.contains(&format!("{} (enforce)", p.name)), "{out}");
    assert!(out.contains("DENIED"), "{out}");
    let out = b.ok(&["exec", &b.id, "sh", "-c", PROBE]);
    assert!(out.contains("unconfined") && out.contains("READ"), "{out}");
}

/// A profile that is not loaded fails create (the kernel's ENOENT), as runc.
#[test]
fn apparmor_profile_not_loaded_fails_create() {
    if !apparmor_host() {
        return eprintln!("skipped: AppArmor is not enabled here");
    }
    let mut b = bundle(&["true"]);
    b.config["process"]["apparmorProfile"] = json!("berth-lsm-never-loaded");
    let o = b.create();
    assert!(
        !o.status.success(),
        "create with an unloaded profile succeeded"
    );
    if is_berth() {
        assert!(
            stderr(&o).contains("process.apparmorProfile"),
            "{}",
            stderr(&o)
        );
    }
}
