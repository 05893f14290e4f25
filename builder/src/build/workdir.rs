//! WORKDIR: besides the config change, a directory the image does not have yet is
//! created in a layer of its own (as docker and BuildKit do).

use super::fsutil::make_dirs;
use super::run::{apply_record, commit_dir};
use super::state::StageState;
use super::tmp::TmpDir;
use super::Ctx;
use crate::error::{IoContext, Result};
use crate::exec::mount;
use crate::plan::cache;
use berth_common::inroot::Root;
use std::fs;
use std::path::Path;

/// The owner BuildKit's mkdir gives for USER `user`: a number alone is uid and gid
/// (llb.WithUser), a name is looked up in the image's /etc/passwd, a group in /etc/group.
fn mkdir_owner(view: &Root, user: &str) -> Result<(u32, u32)> {
    match user.parse::<u32>() {
        Ok(n) => Ok((n, n)),
        Err(_) => super::run::resolve_user(view, user),
    }
}

/// Make sure `dir` (absolute) exists in the image; Ok(true) when the layer was cached.
pub fn ensure_dir(cx: &Ctx, st: &mut StageState, dir: &str, created_by: &str) -> Result<bool> {
    let rel = Path::new(dir.trim_start_matches('/'));
    if rel.as_os_str().is_empty() {
        st.history(created_by, true, None); // `WORKDIR /` is recorded, as BuildKit does
        return Ok(false);
    }
    let key = st.step_key(
        &format!("WORKDIR mkdir {dir} epoch={:?}", cx.opts.epoch),
        false,
        "",
    );
    if !cx.opts.no_cache {
        if let Some(rec) = cache::get(cx.store, &key) {
            apply_record(st, &rec, created_by);
            st.key = key;
            return Ok(true);
        }
    }
    let tmp = TmpDir::new(cx.store, "workdir")?;
    let (view, staging) = (tmp.path().join("view"), tmp.path().join("layer"));
    for d in [&view, &staging] {
        fs::create_dir_all(d).at(d)?;
    }
    let m = mount::overlay(
        &st.snapshots(cx.store)?,
        None,
        &view,
        &tmp.path().join("empty"),
    )?;
    let view_root = Root::open(&view)?;
    let rel = super::resolve::resolve_dest(&view_root, rel, true);
    let exists = view_root.lstat(&rel)?.is_some_and(|s| s.is_dir());
    if !exists {
        // BuildKit makes it (and missing parents) as the current USER; an existing one is
        // left as it is.
        let user = st.config.config.user.clone().unwrap_or_default();
        let owner = mkdir_owner(&view_root, &user)?;
        make_dirs(&Root::open(&staging)?, Some(&view_root), &rel, Some(owner))?;
    }
    drop(view_root);
    m.unmount()?;
    if exists {
        st.history(created_by, true, None);
        return Ok(false);
    }
    let rec = commit_dir(cx, st, &staging, &key, false, &Default::default())?;
    apply_record(st, &rec, created_by);
    st.key = key;
    Ok(false)
}
