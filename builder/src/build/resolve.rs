//! Paths inside a tree (the build context, a stage's or the image's view) resolved with the
//! in-root resolver: symlinks and `..` are followed with the tree's top as `/`, so nothing a
//! tree holds leads out of it.

use berth_common::inroot::{self, Root};
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};

/// The host path an open descriptor refers to (procfs' view of it).
fn fd_target(fd: &impl AsRawFd) -> io::Result<PathBuf> {
    std::fs::read_link(inroot::fd_path(fd))
}

/// Where `p` leads inside `root` (symlinks followed inside the tree; the last one too when
/// `follow`), as a path from the tree's top in which no component is a symlink.
pub fn real_path(root: &Root, p: &Path, follow: bool) -> io::Result<PathBuf> {
    if inroot::relative(p).as_os_str().is_empty() {
        return Ok(PathBuf::new());
    }
    let fd = if follow {
        root.resolve(p)?
    } else {
        root.resolve_nofollow(p)?
    };
    let top = fd_target(&root.as_fd())?;
    let here = fd_target(&fd)?;
    here.strip_prefix(&top)
        .map(Path::to_path_buf)
        .map_err(|_| io::Error::other(format!("{} resolved outside its tree", p.display())))
}

fn parts(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// A destination as the image resolves it: `p`'s existing part resolved inside `root`
/// (`/var/run/x` → `run/x`), a dangling symlink on the way followed as the kernel would,
/// the missing rest appended. `follow_last`: a symlink at the end is followed too.
pub fn resolve_dest(root: &Root, p: &Path, follow_last: bool) -> PathBuf {
    let mut path = parts(p);
    for _hop in 0..40 {
        let n = path.len();
        let mut k = n;
        let base = loop {
            let prefix: PathBuf = path[..k].iter().collect();
            match real_path(root, &prefix, k < n || follow_last) {
                Ok(r) => break r,
                Err(_) if k > 0 => k -= 1,
                Err(_) => break PathBuf::new(),
            }
        };
        if k == n {
            return base;
        }
        let name = &path[k];
        let link = (k + 1 < n || follow_last)
            .then(|| root.dir(&base).ok()?.read_link(name).ok())
            .flatten();
        match link {
            Some(t) => {
                // A dangling (or looping) link: go on from its target.
                let mut next = if t.is_absolute() {
                    vec![]
                } else {
                    parts(&base)
                };
                next.extend(parts(&t));
                next.extend(path[k + 1..].iter().cloned());
                path = next;
            }
            None => return lexical(base, &path[k..]),
        }
    }
    lexical(PathBuf::new(), &path)
}

/// `base` (a real path) joined with names that do not exist: `..` goes back up.
fn lexical(mut base: PathBuf, rest: &[OsString]) -> PathBuf {
    for c in rest {
        if c == ".." {
            base.pop();
        } else {
            base.push(c);
        }
    }
    base
}

/// Reads the regular file `p` of the tree (links followed inside it), at most `limit`
/// bytes; None when it is missing or not a regular file (a FIFO is never waited on).
pub fn read_file(root: &Root, p: &Path, limit: u64) -> Option<Vec<u8>> {
    let fd = root
        .open_in(p, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY)
        .ok()?;
    if !inroot::fstat(&fd).ok()?.is_file() {
        return None;
    }
    let mut out = vec![];
    std::fs::File::from(fd)
        .take(limit)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn destinations_resolve_inside_the_tree() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("run/x")).unwrap();
        std::fs::create_dir_all(r.join("var")).unwrap();
        symlink("/run", r.join("var/run")).unwrap();
        symlink("../../../../etc", r.join("var/esc")).unwrap();
        symlink("x", r.join("run/y")).unwrap();
        symlink("/nowhere/deep", r.join("dangling")).unwrap();
        let root = Root::open(r).unwrap();
        let res = |p: &str, f: bool| resolve_dest(&root, Path::new(p), f);
        assert_eq!(res("var/run/a", false), Path::new("run/a"));
        assert_eq!(res("var/esc/passwd", false), Path::new("etc/passwd"));
        assert_eq!(res("var/run/y", true), Path::new("run/x"));
        assert_eq!(res("var/run/y", false), Path::new("run/y"));
        assert_eq!(res("dangling/f", false), Path::new("nowhere/deep/f"));
        assert_eq!(res("dangling", false), Path::new("dangling"));
        assert_eq!(res("/", true), Path::new(""));
        assert_eq!(res("new/../run", true), Path::new("run"));
        assert_eq!(
            real_path(&root, Path::new("var/run/y"), true).unwrap(),
            Path::new("run/x")
        );
        assert!(real_path(&root, Path::new("var/esc/passwd"), true).is_err());
    }

    #[test]
    fn reads_only_regular_files_of_the_tree() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        symlink("/etc/passwd", r.join("link")).unwrap();
        nix::unistd::mkfifo(&r.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let root = Root::open(r).unwrap();
        let rd = |p: &str| read_file(&root, Path::new(p), 8);
        assert_eq!(rd("link").unwrap(), b"root:x:0");
        assert_eq!(rd("fifo"), None);
        assert_eq!(rd("etc"), None);
        assert_eq!(rd("missing"), None);
    }
}
