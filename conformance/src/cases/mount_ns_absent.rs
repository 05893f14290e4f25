//! config-linux.md#namespaces: a config without a mount namespace. The container then
//! shares the runtime's mount namespace, and its root can only be entered with chroot.
//!
//! A runtime may mount in the namespace it shares (runc 1.1.5 does: the rootfs bound onto
//! itself, `/` made rslave, every `mounts` entry, all left behind), so the lifecycle runs
//! in a throwaway mount namespace (`unshare -m --propagation private`): the runtime's own
//! mount table there is read before and after, and the host's is never touched.

use super::{ensure, expect_eq, remove_ns, set};
use crate::bundle::Bundle;
use crate::case::{Case, Verdict};
use crate::exec::Driver;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const NS: &str = "config-linux.md#namespaces";

/// create, read the init's mount namespace from the runtime's side, start, wait, delete;
/// the mount table before and after; all in one private mount namespace.
const SCRIPT: &str = r#"
RT="$1"; ROOT="$2"; B="$3"; ID="$4"
cat /proc/self/mountinfo > "$B/mounts.before"
readlink /proc/self/ns/mnt > "$B/ns.runtime"
"$RT" --root "$ROOT" create --bundle "$B" "$ID" > "$B/stdout" 2> "$B/stderr" < /dev/null || exit 10
pid=$("$RT" --root "$ROOT" state "$ID" | tr -d ' \n' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
readlink "/proc/$pid/ns/mnt" > "$B/ns.container"
"$RT" --root "$ROOT" start "$ID" || exit 11
i=0
until "$RT" --root "$ROOT" state "$ID" | tr -d ' \n' | grep -q '"status":"stopped"'; do
  i=$((i+1)); [ $i -gt 200 ] && exit 12; sleep 0.05
done
"$RT" --root "$ROOT" delete "$ID" || exit 13
cat /proc/self/mountinfo > "$B/mounts.after"
"#;

/// The baseline without a mount namespace and without the fields that need mounts.
fn no_mount_ns(c: &mut Value) {
    remove_ns(c, "mount");
    set(c, "/mounts", json!([]));
    set(c, "/root/readonly", json!(false));
    for k in ["maskedPaths", "readonlyPaths"] {
        set(c, &format!("/linux/{k}"), json!([]));
    }
    set(
        c,
        "/process/args",
        json!(["/berth-probe", "report", "--path", "/berth-probe"]),
    );
}

fn read(b: &Bundle, name: &str) -> String {
    std::fs::read_to_string(b.dir.join(name)).unwrap_or_default()
}

fn run(d: &Driver, b: &Bundle, id: &str) -> Result<(), String> {
    let st = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", SCRIPT, "sh"])
        .arg(&d.runtime.path)
        .arg(&d.runtime.root)
        .arg(&b.dir)
        .arg(id)
        .status()
        .map_err(|e| format!("unshare: {e}"))?;
    let step = match st.code() {
        Some(0) => return Ok(()),
        Some(10) => "create",
        Some(11) => "start",
        Some(12) => "wait for stopped",
        Some(13) => "delete",
        _ => "the lifecycle script",
    };
    let err = read(b, "stderr");
    Err(format!("{step} failed ({st}); container stderr: {err:?}"))
}

fn check(b: &Bundle) -> Result<(), String> {
    let (rt, ct) = (read(b, "ns.runtime"), read(b, "ns.container"));
    expect_eq("container's mount namespace", ct.trim(), rt.trim())?;
    let (before, after) = (read(b, "mounts.before"), read(b, "mounts.after"));
    let added: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
    let gone: Vec<&str> = before.lines().filter(|l| !after.contains(l)).collect();
    ensure(
        added.is_empty() && gone.is_empty(),
        format!("the runtime's mount table changed: added {added:?}, changed/removed {gone:?}"),
    )?;
    let out = read(b, "stdout");
    let probe: Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("no probe output; stderr {:?}", read(b, "stderr")))?;
    // The probe found itself at / : the root is the bundle's rootfs.
    let at_root = &probe["paths"]["/berth-probe"]["exists"];
    expect_eq(
        "/berth-probe exists in the container's root",
        at_root,
        &json!(true),
    )?;
    expect_eq("cwd", probe["cwd"].as_str(), Some("/"))?;
    expect_eq("pid (new pid namespace)", probe["pid"].as_i64(), Some(1))
}

pub fn cases() -> Vec<Case> {
    vec![Case::custom("ns.mount.inherit", NS, |d| {
        let (bundle, id, mut cfg) = match d.bundle() {
            Ok(x) => x,
            Err(e) => return Verdict::Fail(format!("test setup: {e}")),
        };
        no_mount_ns(&mut cfg);
        let r = bundle
            .write_config(&cfg)
            .map_err(|e| e.to_string())
            .and_then(|()| run(d, &bundle, &id))
            .and_then(|()| check(&bundle));
        d.cleanup(&id, &bundle);
        r.into()
    })
    .requires(|_| {
        (!Path::new("/usr/bin/unshare").exists() && !Path::new("/bin/unshare").exists())
            .then(|| "unshare(1) is not installed".into())
    })]
}
