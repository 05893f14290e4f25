//! A temporary directory removed on drop (declare mounts after it, so they go first).

use std::path::{Path, PathBuf};

pub struct TmpDir(pub PathBuf);

impl TmpDir {
    pub fn new(store: &crate::store::Store, prefix: &str) -> crate::Result<TmpDir> {
        use crate::error::IoContext;
        let p = store.tmp_path(prefix);
        std::fs::create_dir_all(&p).at(&p)?;
        Ok(TmpDir(p))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
