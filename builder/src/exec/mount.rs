//! Overlay mounts that are always undone: a guard unmounts on drop, on every path.

use crate::error::{Error, IoContext, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Mounted {
    target: PathBuf,
    live: bool,
}

impl Mounted {
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Unmount now, reporting errors (drop does it silently with MNT_DETACH).
    pub fn unmount(mut self) -> Result<()> {
        self.live = false;
        umount2(&self.target, MntFlags::empty())
            .or_else(|_| umount2(&self.target, MntFlags::MNT_DETACH))
            .at(&self.target)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.live {
            let _ = umount2(&self.target, MntFlags::MNT_DETACH);
        }
    }
}

/// Mount an overlay at `target`. `lowers` are top-most first. With no upper, the
/// mount is read-only (a single lower is bind-mounted read-only instead, as overlay
/// needs two lowers without an upper). `empty` is used as lower when there is none.
pub fn overlay(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
    empty: &Path,
) -> Result<Mounted> {
    let mut lowers: Vec<PathBuf> = lowers.to_vec();
    if lowers.is_empty() {
        std::fs::create_dir_all(empty).at(empty)?;
        lowers.push(empty.to_path_buf());
    }
    if upper.is_none() && lowers.len() == 1 {
        mount(
            Some(&lowers[0]),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .at(target)?;
        let m = Mounted {
            target: target.to_path_buf(),
            live: true,
        };
        let fl = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, target, None::<&str>, fl, None::<&str>).at(target)?;
        return Ok(m);
    }
    let lower = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let mut opts = format!("lowerdir={lower}");
    if let Some((u, w)) = upper {
        opts.push_str(&format!(
            ",upperdir={},workdir={}",
            u.display(),
            w.display()
        ));
    }
    opts.push_str(",redirect_dir=off,index=off");
    if opts.len() >= 4000 {
        return Err(Error::invalid(
            target.display().to_string(),
            format!("{} layers are too many for one overlay mount", lowers.len()),
        ));
    }
    let flags = if upper.is_none() {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        flags,
        Some(opts.as_str()),
    )
    .at(target)?;
    Ok(Mounted {
        target: target.to_path_buf(),
        live: true,
    })
}

/// Move this process into a private mount namespace, so every mount it makes (and
/// the runtime it starts) disappears with it, even if it is killed. Call it while
/// the process is still single-threaded.
pub fn private_mount_namespace() -> Result<()> {
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWNS).at("unshare(CLONE_NEWNS)")?;
    let fl = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, fl, None::<&str>).at("/")
}
