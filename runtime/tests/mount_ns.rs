//! A config without a mount namespace (the container shares the runtime's): the rootfs is
//! entered with chroot, as runc enters it, and berth makes no mount in a namespace it does
//! not own, refusing with one line what would need one. Every run happens in a throwaway
//! mount namespace (`unshare -m --propagation private`), so a runtime that does mount there
//! (runc 1.1.5: the rootfs bind, `/` rslave, every config mount) never touches the host's,
//! and the mount table seen there is compared before and after.

mod common;
use common::*;
use serde_json::json;
use std::process::Command;

/// Runs `script` (sh, with $RT, $ROOT, $B, $ID set) in a private mount namespace whose
/// mount table is saved to $B/mounts.before and $B/mounts.after around it.
fn in_private_mntns(b: &Bundle, script: &str) -> (i32, String) {
    b.write();
    let full = format!(
        "cat /proc/self/mountinfo > \"$B/mounts.before\"\n(\n{script}\n)\nrc=$?\ncat /proc/self/mountinfo > \"$B/mounts.after\"\nexit $rc"
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &full])
        .env("RT", runtime())
        .env("ROOT", &b.root)
        .env("B", b.path())
        .env("ID", &b.id)
        .current_dir(b.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    (o.status.code().unwrap_or(-1), text)
}

fn mount_table_unchanged(b: &Bundle) {
    let rd = |n: &str| std::fs::read_to_string(b.path().join(n)).unwrap();
    let (before, after) = (rd("mounts.before"), rd("mounts.after"));
    let added: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
    let gone: Vec<&str> = before.lines().filter(|l| !after.contains(l)).collect();
    assert!(
        added.is_empty() && gone.is_empty(),
        "the runtime's mount table changed: added {added:?}, changed {gone:?}"
    );
}

/// The default config minus the mount namespace and every field that needs a mount.
fn no_mount_ns(args: &[&str]) -> Bundle {
    let mut b = bundle(args);
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "mount");
    b.config["mounts"] = json!([]);
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    std::fs::write(b.rootfs().join("marker-rtfix"), "in the rootfs\n").unwrap();
    b
}

#[test]
fn runs_in_the_callers_mount_namespace_chrooted_into_the_rootfs() {
    let b = no_mount_ns(&[
        "sh",
        "-c",
        "cat /marker-rtfix; pwd; echo pid=$$; ls /dev/null",
    ]);
    let (rc, out) = in_private_mntns(
        &b,
        r#"readlink /proc/self/ns/mnt > "$B/ns.runtime"
"$RT" --root "$ROOT" run --bundle "$B" "$ID""#,
    );
    if !is_berth() {
        // runc 1.1.5 needs a /proc in the root it chroots into ("error closing exec fds:
        // open /proc/self/fd"), which only a mount could give it (measured).
        return;
    }
    assert_eq!(rc, 0, "{out}");
    // The process saw the rootfs as / (chroot), from /, in its own pid namespace, with the
    // default /dev nodes made (runc makes them too).
    assert!(out.contains("in the rootfs\n/\npid=1\n/dev/null"), "{out}");
    mount_table_unchanged(&b);
}

#[test]
fn exec_enters_the_containers_root() {
    let b = no_mount_ns(&["sleep", "30"]);
    let (rc, out) = in_private_mntns(
        &b,
        r#""$RT" --root "$ROOT" run -d --bundle "$B" "$ID" > /dev/null 2>&1 < /dev/null || exit 20
pid=$("$RT" --root "$ROOT" state "$ID" | tr -d ' \n' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
[ "$(readlink /proc/$pid/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] || exit 21
"$RT" --root "$ROOT" exec "$ID" sh -c 'cat /marker-rtfix; pwd'
rc=$?
"$RT" --root "$ROOT" delete --force "$ID"
exit $rc"#,
    );
    if !is_berth() {
        // runc 1.1.5 runs the exec'd process in the host's root (measured: `ls /` lists the
        // host's /): no marker there.
        return;
    }
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("in the rootfs\n/\n"), "{out}");
    mount_table_unchanged(&b);
}

#[test]
fn fields_that_need_a_mount_are_refused_in_one_line() {
    if !is_berth() {
        // runc runs these, mounting in the namespace it shares.
        return;
    }
    for (what, field) in [
        ("mounts", "mounts[0] (/proc)"),
        ("readonly", "root.readonly"),
        ("propagation", "linux.rootfsPropagation"),
    ] {
        let mut b = no_mount_ns(&["true"]);
        match what {
            "mounts" => {
                b.config["mounts"] =
                    json!([{"destination": "/proc", "type": "proc", "source": "proc"}])
            }
            "readonly" => b.config["root"]["readonly"] = json!(true),
            _ => b.config["linux"]["rootfsPropagation"] = json!("rslave"),
        }
        let (rc, out) = in_private_mntns(&b, r#""$RT" --root "$ROOT" run --bundle "$B" "$ID""#);
        assert_ne!(rc, 0, "{what}: {out}");
        assert_eq!(out.trim().lines().count(), 1, "{what}: {out}");
        assert!(
            out.contains(field) && out.contains("mount namespace"),
            "{what}: {out}"
        );
        assert!(b.state().is_none(), "{what}: state left behind");
        mount_table_unchanged(&b);
    }
}

#[test]
fn masked_paths_are_refused_as_runc_refuses_them() {
    let mut b = no_mount_ns(&["true"]);
    b.config["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    let (rc, out) = in_private_mntns(&b, r#""$RT" --root "$ROOT" run --bundle "$B" "$ID""#);
    // runc: "unable to restrict sys entries without a private MNT namespace".
    assert_ne!(rc, 0, "{out}");
    assert!(
        out.contains("MNT namespace") || out.contains("maskedPaths"),
        "{out}"
    );
    mount_table_unchanged(&b);
}
