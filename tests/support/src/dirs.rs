//! Scratch directories.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh, empty directory under the system's temp dir, removed (with everything in it) when
/// dropped. Its name holds the test's `name`, the process id and a counter, so tests running at
/// the same time, in one process or several, never share one.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `ember-<name>-<pid>-<n>` under the temp dir; panics if it cannot (a test
    /// without its directory cannot run).
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ember-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // A leftover of an earlier run whose pid was recycled.
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create the scratch directory {}: {e}", dir.display());
        }
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_is_new_and_empty_and_gone_after_drop() {
        let a = TempDir::new("support-dirs");
        let b = TempDir::new("support-dirs");
        assert_ne!(a.path(), b.path());
        assert_eq!(std::fs::read_dir(a.path()).expect("exists").count(), 0);
        std::fs::write(a.path().join("file"), b"x").expect("writable");
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
    }
}
