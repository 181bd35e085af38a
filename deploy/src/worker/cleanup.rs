//! The periodic work-dir cleanup (Spark's `WorkDirCleanup`, `ember.worker.cleanup.*`, on
//! by default as in Spark 4): deletes each top-level directory of the work dir that no running executor
//! or driver uses and that holds nothing modified within the TTL, and, in the program
//! cache (`cache/`), each program not used within the TTL. Failures are logged, never
//! fatal. It runs on a thread of its own, since deleting trees may take a while.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::program_cache::CACHE_DIR;

/// Deletes the directories of `work_dir` whose names are not in `in_use` (app and driver
/// ids) and that contain no file or directory modified after `now - ttl`. Returns the
/// deleted ones.
pub(crate) fn clean_work_dir(
    work_dir: &Path,
    in_use: &HashSet<String>,
    ttl: Duration,
    now: SystemTime,
) -> Vec<PathBuf> {
    let cutoff = now.checked_sub(ttl).unwrap_or(SystemTime::UNIX_EPOCH);
    let entries = match std::fs::read_dir(work_dir) {
        Ok(entries) => entries,
        Err(e) => {
            log::warn!("Cannot list work dir {}: {e}", work_dir.display());
            return Vec::new();
        }
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        // Only real directories: a symlink would lead the deletion elsewhere.
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_dir || in_use.contains(&name) {
            continue;
        }
        if name == CACHE_DIR {
            removed.extend(clean_cache(&path, cutoff));
            continue;
        }
        match contains_newer_than(&path, cutoff) {
            Ok(true) => {}
            Ok(false) => {
                log::info!("Removing directory: {}", path.display());
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) => log::warn!("Cannot remove {}: {e}", path.display()),
                }
            }
            Err(e) => log::warn!("Cannot inspect {}: {e}", path.display()),
        }
    }
    removed
}

/// Deletes the programs in the cache directory `dir` last used before `cutoff` (a use
/// refreshes an entry's modification time: `ProgramCache`), one by one: the cache as a
/// whole stays, and so do the programs in use.
fn clean_cache(dir: &Path, cutoff: SystemTime) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            log::warn!("Cannot list {}: {e}", dir.display());
            return Vec::new();
        }
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let old = std::fs::symlink_metadata(&path)
            .and_then(|meta| Ok(meta.file_type().is_file() && meta.modified()? <= cutoff));
        match old {
            Ok(true) => {
                log::info!("Removing cached program: {}", path.display());
                match std::fs::remove_file(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) => log::warn!("Cannot remove {}: {e}", path.display()),
                }
            }
            Ok(false) => {}
            Err(e) => log::warn!("Cannot inspect {}: {e}", path.display()),
        }
    }
    removed
}

/// Whether anything under `dir` (files and directories, recursively) was modified after
/// `cutoff` (Spark's `doesDirectoryContainAnyNewFiles`).
fn contains_newer_than(dir: &Path, cutoff: SystemTime) -> io::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = std::fs::symlink_metadata(entry.path())?;
        if meta.modified()? > cutoff {
            return Ok(true);
        }
        if meta.is_dir() && contains_newer_than(&entry.path(), cutoff)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs [`clean_work_dir`] on a thread of its own, at most one at a time (`running`).
pub(crate) fn clean_in_background(
    work_dir: PathBuf,
    in_use: HashSet<String>,
    ttl: Duration,
    running: Arc<AtomicBool>,
) {
    if running.swap(true, Ordering::SeqCst) {
        log::debug!("A work dir cleanup is still running; skipping this one");
        return;
    }
    let flag = Arc::clone(&running);
    let spawned = std::thread::Builder::new()
        .name("worker-cleanup".to_string())
        .spawn(move || {
            clean_work_dir(&work_dir, &in_use, ttl, SystemTime::now());
            flag.store(false, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        log::warn!("Could not start the work dir cleanup: {e}");
        running.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::test_util::TempDir;
    use std::fs::File;

    /// Makes `path` (a file) and its directory look `age` old.
    fn age(path: &Path, age: Duration) {
        let when = SystemTime::now() - age;
        File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(when))
            .expect("sets mtime");
    }

    fn file(path: &Path) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        File::create(path).expect("file");
    }

    /// WorkerSuite 15: "WorkDirCleanup cleans only app dirs": an old app dir with no
    /// running executor goes; in-use and recent ones stay.
    #[test]
    fn old_unused_app_dirs_are_removed() {
        let work = TempDir::new("cleanup");
        let ttl = Duration::from_secs(60);
        let old_file = work.path().join("app1/exec1/stdout");
        file(&old_file);
        age(&old_file, Duration::from_secs(120));
        let busy_file = work.path().join("app2/exec1/stdout");
        file(&busy_file);
        age(&busy_file, Duration::from_secs(120));
        let recent = work.path().join("app3/exec1/stdout");
        file(&recent);
        let stray = work.path().join("not-a-dir");
        file(&stray);
        age(&stray, Duration::from_secs(120));
        // The executor directories themselves were just created: age them too.
        for d in ["app1/exec1", "app2/exec1"] {
            let dir = File::open(work.path().join(d)).expect("dir");
            dir.set_modified(SystemTime::now() - Duration::from_secs(120))
                .expect("dir mtime");
        }
        let in_use = HashSet::from(["app2".to_string()]);
        let removed = clean_work_dir(work.path(), &in_use, ttl, SystemTime::now());
        assert_eq!(removed, [work.path().join("app1")]);
        assert!(!work.path().join("app1").exists());
        assert!(work.path().join("app2").exists(), "in use");
        assert!(work.path().join("app3").exists(), "recent");
        assert!(stray.exists(), "files at the top are not touched");
    }

    /// The program cache is cleaned entry by entry: a program unused for the TTL goes, a
    /// recently used one and the directory itself stay, even when all else in it is old.
    #[test]
    fn cached_programs_go_one_by_one_when_unused_for_the_ttl() {
        let work = TempDir::new("cleanup-cache");
        let ttl = Duration::from_secs(60);
        let unused = work.path().join(CACHE_DIR).join("a".repeat(64));
        let used = work.path().join(CACHE_DIR).join("b".repeat(64));
        file(&unused);
        file(&used);
        age(&unused, Duration::from_secs(120));
        let cache = File::open(work.path().join(CACHE_DIR)).expect("dir");
        cache
            .set_modified(SystemTime::now() - Duration::from_secs(120))
            .expect("dir mtime");
        let removed = clean_work_dir(work.path(), &HashSet::new(), ttl, SystemTime::now());
        assert_eq!(removed, std::slice::from_ref(&unused));
        assert!(!unused.exists());
        assert!(used.exists(), "used within the TTL");
        age(&used, Duration::from_secs(120));
        let removed = clean_work_dir(work.path(), &HashSet::new(), ttl, SystemTime::now());
        assert_eq!(removed, [used]);
        assert!(work.path().join(CACHE_DIR).is_dir(), "the cache stays");
    }

    #[test]
    fn a_missing_work_dir_is_not_fatal() {
        let work = TempDir::new("cleanup-missing");
        let gone = work.path().join("nothing-here");
        let removed = clean_work_dir(&gone, &HashSet::new(), Duration::ZERO, SystemTime::now());
        assert!(removed.is_empty());
    }
}
