//! Issue 15's runtime holes (untrusted config.json and rootfs must never reach the host or
//! run as someone else), each checked with real containers, also against runc (RUNTIME=).
mod common;
use common::*;
use serde_json::json;

/// One line of stderr, the run failed, and nothing of the container is left.
fn refused_leaving_nothing(b: &Bundle, code: i32, err: &str) {
    assert_ne!(code, 0, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(b.state().is_none(), "state left behind");
    assert!(cgroup_dirs(&b.id).is_empty(), "cgroups left behind");
}

/// 15.7: an id past 2147483647 (4294967295 is -1, "leave unchanged", to setresuid) must
/// never start the process as root: refused as runc refuses it ("uids and gids must be in
/// range 0-2147483647"); berth names the field and refuses before anything is made.
#[test]
fn out_of_range_user_ids_are_refused() {
    for (field, user) in [
        ("uid", json!({"uid": 4294967295u32, "gid": 0})),
        ("uid", json!({"uid": 2147483648u32, "gid": 0})),
        ("gid", json!({"uid": 0, "gid": 4294967295u32})),
        (
            "additionalGids[0]",
            json!({"uid": 0, "gid": 0, "additionalGids": [4294967295u32]}),
        ),
    ] {
        let mut b = bundle(&["id"]);
        b.config["process"]["user"] = user;
        let (code, out, err) = b.run();
        assert!(!out.contains("uid="), "{field}: the process ran: {out}");
        assert!(err.contains("0-2147483647"), "{field}: {err}");
        if is_berth() {
            assert!(err.contains(&format!("process.user.{field}")), "{err}");
        }
        refused_leaving_nothing(&b, code, &err);
    }
    let mut b = bundle(&["id", "-u"]);
    b.config["process"]["user"] = json!({"uid": 2147483647u32, "gid": 2147483647u32});
    assert_eq!(b.run_ok().trim(), "2147483647");
}

/// 15.7 through exec: --user, --additional-gids and a process.json with such ids.
#[test]
fn exec_with_out_of_range_ids_is_refused() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let mut p = b.config["process"].clone();
    p["args"] = json!(["id"]);
    p["user"] = json!({"uid": 4294967295u32, "gid": 0});
    let pj = b.path().join("process.json");
    std::fs::write(&pj, p.to_string()).unwrap();
    for args in [
        vec!["--user", "4294967295"],
        vec!["--user", "0:4294967295"],
        vec!["--additional-gids", "4294967295"],
        vec!["--process", pj.to_str().unwrap()],
    ] {
        let mut a = vec!["exec"];
        a.extend(&args);
        a.push(&b.id);
        if !args.contains(&"--process") {
            a.push("id");
        }
        let o = b.rt(&a);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(!o.status.success(), "{args:?}: {out}");
        assert!(!out.contains("uid="), "{args:?}: the process ran: {out}");
        assert!(err.contains("0-2147483647"), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    assert_eq!(b.status(), "running");
}
