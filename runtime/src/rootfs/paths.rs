//! The runtime's names for the one in-root resolver, `berth_common::inroot` (libpathrs:
//! openat2 `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, a checked O_PATH walk on older
//! kernels). Every lookup inside a container's rootfs goes through it, so `..` and symlinks
//! (absolute or relative) in an image resolve as if the rootfs were `/` and never lead
//! outside it. Mounts then target the resolved `/proc/self/fd/N`, never a path string that
//! could be swapped in between. Its errors become `Error::Io` (error.rs), naming the path.

pub use berth_common::inroot::{fd_path, fstat, Dir, Kind, Root, Stat};

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;
    use std::os::unix::fs::symlink;
    use std::path::{Path, PathBuf};

    fn real(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd)).unwrap()
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        let r = Root::open(&root).unwrap();
        assert_eq!(
            real(&r.resolve(Path::new("/abs")).unwrap()),
            root.join("etc")
        );
        assert_eq!(real(&r.resolve(Path::new("up")).unwrap()), root);
        let made = r.mkdir_all(Path::new("/up/y/z"), 0o755).unwrap();
        assert_eq!(real(&made), root.join("y/z"));
        // `..` in the part still to be made is refused (libpathrs), never followed out.
        assert!(r.mkdir_all(Path::new("/up/x/../../w"), 0o755).is_err());
        assert!(!t.path().join("x").exists() && !t.path().join("w").exists());
    }

    #[test]
    fn ensure_file_creates_in_root_and_refuses_dangling_link_escape() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        symlink(t.path().join("outside"), root.join("evil")).unwrap();
        let r = Root::open(&root).unwrap();
        let f = r.ensure(Path::new("/a/b/file"), Kind::File).unwrap();
        assert_eq!(real(&f), root.join("a/b/file"));
        // A dangling link to a host path must not create the host file.
        let _ = r.ensure(Path::new("/evil"), Kind::File);
        assert!(!t.path().join("outside").exists());
    }
}
