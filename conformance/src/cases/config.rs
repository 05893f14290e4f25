//! config.md: root, mounts, process basics (terminal, cwd, env, args), hostname, domainname.

use super::{args, ensure, expect_eq, has_opt, mount_at, probe_args, push, set};
use crate::case::{Case, Outcome, Setup};
use serde_json::{json, Value};

const ROOT: &str = "config.md#root";
const MNT: &str = "config.md#mounts";
const PROC: &str = "config.md#process";
const HOST: &str = "config.md#hostname";
const DOM: &str = "config.md#domainname";

const EROFS: i64 = 30;

fn ok(_: &mut Value, _: &mut Setup) -> Result<(), String> {
    Ok(())
}

/// Make a host directory `name` in the bundle holding `file` with `text`.
fn host_dir(st: &Setup, name: &str, text: &str) -> Result<String, String> {
    let dir = st.bundle.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("file"), text).map_err(|e| e.to_string())?;
    Ok(dir.display().to_string())
}

fn file_is(o: &Outcome, path: &str, want: &str) -> Result<(), String> {
    let v = o.get(&format!(
        "/files/{}",
        path.replace('~', "~0").replace('/', "~1")
    ))?;
    expect_eq(&format!("content of {path}"), v.as_str(), Some(want))
}

fn read_arg(cfg: &mut Value, path: &str) {
    probe_args(cfg, &["--read", path]);
}

fn root_cases() -> Vec<Case> {
    vec![
        Case::probe("root.readonly.true", ROOT, ok, |o| {
            expect_eq(
                "creating a file in a readonly root (errno)",
                o.get("/root_writable")?.as_i64(),
                Some(EROFS),
            )
        }),
        Case::probe(
            "root.readonly.false",
            ROOT,
            |c, _| {
                set(c, "/root/readonly", json!(false));
                Ok(())
            },
            |o| {
                expect_eq(
                    "creating a file in a writable root (errno)",
                    o.get("/root_writable")?.as_i64(),
                    Some(0),
                )
            },
        ),
        Case::probe("root.path.relative", ROOT, ok, |o| {
            ensure(
                o.get("/args/0")?.as_str() == Some("/berth-probe"),
                "probe did not run from the relative root.path",
            )
        }),
        Case::probe(
            "root.path.absolute",
            ROOT,
            |c, st| {
                set(
                    c,
                    "/root/path",
                    json!(st.bundle.join("rootfs").display().to_string()),
                );
                Ok(())
            },
            |o| o.probe().map(|_| ()),
        ),
    ]
}

fn mount_cases() -> Vec<Case> {
    let mut v = bind_mount_cases();
    v.extend(bind_file_and_tmpfs_cases());
    v.extend(mount_option_and_order_cases());
    v.extend(mount_target_and_propagation_cases());
    v
}

fn bind_mount_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "mounts.bind",
            MNT,
            |c, st| {
                let src = host_dir(st, "bindsrc", "hello-bind")?;
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/bind", "type": "bind", "source": src, "options": ["bind"]}),
                );
                read_arg(c, "/mnt/bind/file");
                Ok(())
            },
            |o| file_is(o, "/mnt/bind/file", "hello-bind"),
        ),
        Case::probe(
            "mounts.bind.no-type",
            MNT,
            |c, st| {
                let src = host_dir(st, "bindsrc", "no-type")?;
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/nt", "source": src, "options": ["rbind"]}),
                );
                read_arg(c, "/mnt/nt/file");
                Ok(())
            },
            |o| file_is(o, "/mnt/nt/file", "no-type"),
        ),
        Case::probe(
            "mounts.bind.ro",
            MNT,
            |c, st| {
                let src = host_dir(st, "bindsrc", "ro")?;
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/ro", "type": "bind", "source": src, "options": ["bind", "ro"]}),
                );
                probe_args(c, &["--path", "/mnt/ro/file"]);
                Ok(())
            },
            |o| {
                let m = mount_at(o.probe()?, "/mnt/ro").ok_or("no mount at /mnt/ro")?;
                ensure(
                    has_opt(m, "ro"),
                    format!("bind mount not read-only: {}", m["options"]),
                )?;
                expect_eq(
                    "open for write errno",
                    o.get("/paths/~1mnt~1ro~1file/write_errno")?.as_i64(),
                    Some(EROFS),
                )
            },
        ),
    ]
}

fn bind_file_and_tmpfs_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "mounts.bind.file",
            MNT,
            |c, st| {
                let src = host_dir(st, "bindsrc", "a-file")?;
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/etc/berth-file", "type": "bind", "source": format!("{src}/file"), "options": ["bind"]}),
                );
                read_arg(c, "/etc/berth-file");
                Ok(())
            },
            |o| file_is(o, "/etc/berth-file", "a-file"),
        ),
        Case::probe(
            "mounts.rbind.submounts",
            MNT,
            |c, st| {
                let src = host_dir(st, "rbindsrc", "top")?;
                let sub = format!("{src}/sub");
                std::fs::create_dir_all(&sub).map_err(|e| e.to_string())?;
                let ok = std::process::Command::new("mount")
                    .args(["-t", "tmpfs", "-o", "size=1m", "berth-sub", &sub])
                    .status();
                ensure(
                    ok.is_ok_and(|s| s.success()),
                    "cannot mount a tmpfs for the rbind test",
                )?;
                st.mounts.push(sub.clone().into());
                std::fs::write(format!("{sub}/inner"), "submount").map_err(|e| e.to_string())?;
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/rb", "type": "bind", "source": src, "options": ["rbind"]}),
                );
                read_arg(c, "/mnt/rb/sub/inner");
                Ok(())
            },
            |o| file_is(o, "/mnt/rb/sub/inner", "submount"),
        ),
        Case::probe(
            "mounts.tmpfs.size-mode",
            MNT,
            |c, _| {
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=700"]}),
                );
                probe_args(c, &["--path", "/mnt/t"]);
                Ok(())
            },
            |o| {
                let m = mount_at(o.probe()?, "/mnt/t").ok_or("no mount at /mnt/t")?;
                expect_eq("fstype", m["fstype"].as_str(), Some("tmpfs"))?;
                ensure(
                    has_opt(m, "size=1024k"),
                    format!("size option not applied: {}", m["superopts"]),
                )?;
                expect_eq("mode", o.get("/paths/~1mnt~1t/mode")?.as_u64(), Some(0o700))
            },
        ),
    ]
}

fn mount_option_and_order_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "mounts.options.nosuid-nodev-noexec",
            MNT,
            |c, _| {
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/f", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "noatime"]}),
                );
                Ok(())
            },
            |o| {
                let m = mount_at(o.probe()?, "/mnt/f").ok_or("no mount at /mnt/f")?;
                for opt in ["nosuid", "nodev", "noexec", "noatime"] {
                    ensure(
                        has_opt(m, opt),
                        format!("option {opt} missing: {}", m["options"]),
                    )?;
                }
                Ok(())
            },
        ),
        Case::probe(
            "mounts.order.nested",
            MNT,
            |c, st| {
                let src = host_dir(st, "bindsrc", "nested")?;
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs"}),
                );
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/a/b", "type": "bind", "source": src, "options": ["bind"]}),
                );
                read_arg(c, "/mnt/a/b/file");
                Ok(())
            },
            |o| file_is(o, "/mnt/a/b/file", "nested"),
        ),
        Case::probe(
            "mounts.order.later-wins",
            MNT,
            |c, st| {
                let a = host_dir(st, "first", "first")?;
                let b = host_dir(st, "second", "second")?;
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/same", "type": "bind", "source": a, "options": ["bind"]}),
                );
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/same", "type": "bind", "source": b, "options": ["bind"]}),
                );
                read_arg(c, "/mnt/same/file");
                Ok(())
            },
            |o| file_is(o, "/mnt/same/file", "second"),
        ),
    ]
}

fn mount_target_and_propagation_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "mounts.destination-created",
            MNT,
            |c, _| {
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/new/deep/dir", "type": "tmpfs", "source": "tmpfs"}),
                );
                Ok(())
            },
            |o| {
                mount_at(o.probe()?, "/new/deep/dir")
                    .map(|_| ())
                    .ok_or("no mount at /new/deep/dir".into())
            },
        ),
        Case::probe(
            "mounts.missing-source.error",
            MNT,
            |c, st| {
                let src = st.bundle.join("does-not-exist").display().to_string();
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/x", "type": "bind", "source": src, "options": ["bind"]}),
                );
                Ok(())
            },
            |o| {
                ensure(
                    o.create_refused() || o.start.as_ref().is_some_and(|s| !s.ok()),
                    "a bind mount of a missing source did not fail",
                )
            },
        ),
        Case::probe(
            "mounts.propagation.rshared",
            MNT,
            |c, _| {
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/sh", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]}),
                );
                Ok(())
            },
            |o| {
                let m = mount_at(o.probe()?, "/mnt/sh").ok_or("no mount at /mnt/sh")?;
                ensure(
                    m["propagation"].to_string().contains("shared:"),
                    format!("not shared: {}", m["propagation"]),
                )
            },
        ),
        Case::probe(
            "mounts.propagation.runbindable",
            MNT,
            |c, _| {
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt/ub", "type": "tmpfs", "source": "tmpfs", "options": ["runbindable"]}),
                );
                Ok(())
            },
            |o| {
                let m = mount_at(o.probe()?, "/mnt/ub").ok_or("no mount at /mnt/ub")?;
                ensure(
                    m["propagation"].to_string().contains("unbindable"),
                    format!("not unbindable: {}", m["propagation"]),
                )
            },
        ),
    ]
}

fn fs_case(
    name: &str,
    target: &'static str,
    fstype: &'static str,
    opts: &'static [&'static str],
) -> Case {
    Case::probe(name, MNT, ok, move |o| {
        let m = mount_at(o.probe()?, target).ok_or(format!("no mount at {target}"))?;
        expect_eq(
            &format!("fstype of {target}"),
            m["fstype"].as_str(),
            Some(fstype),
        )?;
        for opt in opts {
            ensure(
                has_opt(m, opt),
                format!(
                    "{target}: option {opt} missing ({} / {})",
                    m["options"], m["superopts"]
                ),
            )?;
        }
        Ok(())
    })
}

fn default_fs_cases() -> Vec<Case> {
    vec![
        fs_case("mounts.proc", "/proc", "proc", &[]),
        fs_case(
            "mounts.sysfs.ro",
            "/sys",
            "sysfs",
            &["ro", "nosuid", "nodev", "noexec"],
        ),
        fs_case("mounts.dev.tmpfs", "/dev", "tmpfs", &["nosuid", "mode=755"]),
        fs_case(
            "mounts.devpts.options",
            "/dev/pts",
            "devpts",
            &["nosuid", "noexec", "ptmxmode=666", "mode=620", "gid=5"],
        ),
        fs_case(
            "mounts.shm",
            "/dev/shm",
            "tmpfs",
            &["nosuid", "nodev", "noexec"],
        ),
        fs_case(
            "mounts.mqueue",
            "/dev/mqueue",
            "mqueue",
            &["nosuid", "nodev", "noexec"],
        ),
        Case::probe("mounts.cgroup.ro", MNT, ok, |o| {
            let mounts = o.get("/mounts")?.as_array().cloned().unwrap_or_default();
            let cg: Vec<&Value> = mounts
                .iter()
                .filter(|m| {
                    m["target"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("/sys/fs/cgroup"))
                })
                .collect();
            ensure(
                cg.iter()
                    .any(|m| m["fstype"] == "cgroup" || m["fstype"] == "cgroup2"),
                "no cgroup filesystem under /sys/fs/cgroup",
            )?;
            let rw: Vec<&Value> = cg
                .iter()
                .filter(|m| m["fstype"] != "tmpfs" && !has_opt(m, "ro"))
                .map(|m| &m["target"])
                .collect();
            ensure(
                rw.is_empty(),
                format!("cgroup mounts not read-only: {rw:?}"),
            )
        }),
    ]
}

fn process_cases() -> Vec<Case> {
    vec![
        Case::probe("process.terminal.false", PROC, ok, |o| {
            expect_eq(
                "isatty(0,1,2)",
                o.get("/isatty")?,
                &json!([false, false, false]),
            )
        }),
        Case::probe(
            "process.cwd",
            PROC,
            |c, _| {
                set(c, "/process/cwd", json!("/tmp"));
                Ok(())
            },
            |o| expect_eq("cwd", o.get("/cwd")?.as_str(), Some("/tmp")),
        ),
        Case::probe(
            "process.env",
            PROC,
            |c, _| {
                push(c, "/process/env", json!("BERTH_A=1"));
                push(c, "/process/env", json!("BERTH_B=with space=and equals"));
                Ok(())
            },
            |o| {
                let env = o.get("/env")?.as_array().cloned().unwrap_or_default();
                for want in o.config["process"]["env"].as_array().into_iter().flatten() {
                    ensure(env.contains(want), format!("env lacks {want}"))?;
                }
                Ok(())
            },
        ),
        Case::probe(
            "process.args",
            PROC,
            |c, _| {
                probe_args(c, &["--read", "/etc/group"]);
                Ok(())
            },
            |o| expect_eq("argv", o.get("/args")?, &o.config["process"]["args"]),
        ),
        Case::probe(
            "process.args.path-lookup",
            PROC,
            |c, _| {
                let mut a = c["process"]["args"].clone();
                a[0] = json!("berth-probe");
                set(c, "/process/args", a);
                c["process"]["env"][0] = json!("PATH=/bin:/");
                Ok(())
            },
            |o| o.probe().map(|_| ()),
        ),
        Case::probe(
            "process.args.missing-binary.error",
            PROC,
            |c, _| {
                args(c, &["/no/such/binary"]);
                Ok(())
            },
            |o| {
                let failed = o.create_refused() || o.start.as_ref().is_some_and(|s| !s.ok());
                ensure(
                    failed,
                    "create and start both succeeded for a missing executable",
                )
            },
        ),
    ]
}

fn uts_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "hostname",
            HOST,
            |c, _| {
                set(c, "/hostname", json!("berth-test-host"));
                Ok(())
            },
            |o| {
                expect_eq(
                    "hostname",
                    o.get("/hostname")?.as_str(),
                    Some("berth-test-host"),
                )
            },
        ),
        Case::probe(
            "domainname",
            DOM,
            |c, _| {
                set(c, "/domainname", json!("berth.example"));
                Ok(())
            },
            |o| {
                expect_eq(
                    "domainname",
                    o.get("/domainname")?.as_str(),
                    Some("berth.example"),
                )
            },
        ),
    ]
}

pub fn cases() -> Vec<Case> {
    let mut v = root_cases();
    v.extend(mount_cases());
    v.extend(default_fs_cases());
    v.extend(process_cases());
    v.extend(uts_cases());
    v
}
