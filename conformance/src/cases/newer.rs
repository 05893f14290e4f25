//! Settings from runtime-spec 1.2/1.3 that the older cases do not cover: linux.memoryPolicy
//! (config-linux.md#memory-policy) and idmapped mounts (config.md#posix-platform-mounts).
//! runc 1.1 implements none of them (see known.rs).

use super::{expect_eq, has_opt, mount_at, probe_args, push, set};
use crate::case::Case;
use serde_json::json;

const MPOL: &str = "config-linux.md#memory-policy";
const MNT: &str = "config.md#posix-platform-mounts";

fn mempolicy(name: &str, policy: serde_json::Value, mode: i64, nodes: u64) -> Case {
    Case::probe(
        name,
        MPOL,
        move |c, _| {
            set(c, "/linux/memoryPolicy", policy.clone());
            Ok(())
        },
        move |o| {
            let m = o.get("/mempolicy")?;
            expect_eq(
                "get_mempolicy mode/nodes",
                (m["mode"].as_i64(), m["nodes"].as_u64()),
                (Some(mode), Some(nodes)),
            )
        },
    )
}

fn idmap_case() -> Case {
    Case::probe(
        "mounts.idmap",
        MNT,
        |c, st| {
            let src = st.bundle.join("idmapsrc");
            std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
            std::fs::write(src.join("file"), "idmapped").map_err(|e| e.to_string())?;
            push(
                c,
                "/mounts",
                json!({"destination": "/mnt/idm", "type": "bind", "source": src,
                       "options": ["bind", "idmap"],
                       "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                       "gidMappings": [{"containerID": 0, "hostID": 1001, "size": 1}]}),
            );
            probe_args(c, &["--path", "/mnt/idm/file"]);
            Ok(())
        },
        |o| {
            let m = mount_at(o.probe()?, "/mnt/idm").ok_or("no mount at /mnt/idm")?;
            if !has_opt(m, "idmapped") {
                return Err(format!("mount not idmapped: {}", m["options"]));
            }
            // Owned by root on disk: seen through the mapping as 1000:1001.
            let p = o.get("/paths/~1mnt~1idm~1file")?;
            expect_eq(
                "uid/gid",
                (p["uid"].as_u64(), p["gid"].as_u64()),
                (Some(1000), Some(1001)),
            )
        },
    )
}

pub fn cases() -> Vec<Case> {
    vec![
        mempolicy(
            "memoryPolicy.MPOL_BIND",
            json!({"mode": "MPOL_BIND", "nodes": "0"}),
            2,
            1,
        ),
        mempolicy(
            "memoryPolicy.MPOL_INTERLEAVE.static",
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            3 | 1 << 15,
            1,
        ),
        mempolicy(
            "memoryPolicy.MPOL_LOCAL",
            json!({"mode": "MPOL_LOCAL"}),
            4,
            0,
        ),
        idmap_case(),
    ]
}
