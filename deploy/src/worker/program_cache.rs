//! The worker's cache of application programs, `<work>/cache/<sha256>`: where an executor's
//! program comes from when the path in the application's description does not hold it.
//!
//! ```text
//!  the description's path has the digest ──► run it (one machine, shared disks)
//!  <work>/cache/<sha256> has the digest   ──► run it
//!  otherwise: fetch from the driver's file server into a partial file, hashing on the way;
//!             the right size and hash ──► rename into place, 0755 ──► run it
//!             anything else          ──► the partial file is removed; the launch FAILS
//! ```
//!
//! One download per program at a time: executors of one application launched together on
//! one worker wait for the first one's download and share its file. A cache entry whose
//! hash is wrong (corrupted on disk) is removed and fetched again.

use std::collections::HashMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use rpc_env::RpcEnv;

use crate::program::{digest_file, ProgramDigest};

/// How stale an entry's modification time may be before a use refreshes it. The work-dir
/// cleanup removes entries by it (`cleanup.rs`), and refreshing it also makes the next use
/// hash the file again (the digest memo is per modification time), so it is refreshed at
/// most this often, far within any cleanup TTL.
const USE_REFRESH: Duration = Duration::from_secs(3600);

/// The cache directory's name inside the work directory.
pub(crate) const CACHE_DIR: &str = "cache";

/// The programs one worker has fetched, and the downloads in progress.
#[derive(Debug)]
pub(crate) struct ProgramCache {
    dir: PathBuf,
    /// One lock per program being resolved, so one download serves every launch that
    /// waits for it.
    downloads: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Numbers the partial files of downloads, so two never share one.
    next_partial: AtomicU64,
}

impl ProgramCache {
    /// The cache under `work_dir`.
    pub(crate) fn new(work_dir: &Path) -> ProgramCache {
        ProgramCache {
            dir: work_dir.join(CACHE_DIR),
            downloads: Mutex::new(HashMap::new()),
            next_partial: AtomicU64::new(0),
        }
    }

    /// The program to run for `digest`: `local` if that file has the digest, else the
    /// cache's copy, fetched through `env` first if need be. Blocks for the download: call
    /// it on the executor's own thread. The error is the launch's FAILED message.
    pub(crate) fn program_for(
        &self,
        env: &RpcEnv,
        local: &str,
        digest: &ProgramDigest,
    ) -> Result<PathBuf, String> {
        if !digest.is_well_formed() {
            return Err(format!(
                "Refused the application's program: '{}' is not a SHA-256",
                digest.sha256.chars().take(80).collect::<String>()
            ));
        }
        let local = Path::new(local);
        if has_digest(local, digest) {
            return Ok(local.to_path_buf());
        }
        let lock = Arc::clone(
            self.downloads
                .lock()
                .entry(digest.sha256.clone())
                .or_default(),
        );
        let _one_at_a_time = lock.lock();
        let cached = self.dir.join(&digest.sha256);
        if cached.exists() {
            if has_digest(&cached, digest) {
                mark_used(&cached);
                return Ok(cached);
            }
            log::warn!(
                "{} does not have the digest its name says: fetching it again",
                cached.display()
            );
            let _ = std::fs::remove_file(&cached);
        }
        self.fetch(env, digest, &cached)?;
        Ok(cached)
    }

    /// Downloads the program into `target`, through a partial file that never stays
    /// behind.
    fn fetch(&self, env: &RpcEnv, digest: &ProgramDigest, target: &Path) -> Result<(), String> {
        let failed = |why: String| {
            format!(
                "Failed to fetch the application's program from {}: {why}",
                digest.uri
            )
        };
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", self.dir.display())))?;
        let partial = self.dir.join(format!(
            ".{}.partial-{}-{}",
            digest.sha256,
            std::process::id(),
            self.next_partial.fetch_add(1, Ordering::Relaxed)
        ));
        let outcome = download(env, digest, &partial).and_then(|()| {
            std::fs::rename(&partial, target)
                .map_err(|e| format!("cannot move it to {}: {e}", target.display()))
        });
        if outcome.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        outcome.map_err(failed)?;
        log::info!(
            "Fetched the application's program ({} bytes) from {} into {}",
            digest.size,
            digest.uri,
            target.display()
        );
        Ok(())
    }
}

/// Whether the file at `path` has `digest`'s size and hash.
fn has_digest(path: &Path, digest: &ProgramDigest) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == digest.size => {}
        _ => return false,
    }
    matches!(digest_file(path), Ok((size, sha)) if size == digest.size && sha == digest.sha256)
}

/// Streams the program into `partial` (created new, 0755 once complete), checking its size
/// and hash: the serving env's hash must be the description's, and the verified stream
/// checks that what arrives has it.
fn download(env: &RpcEnv, digest: &ProgramDigest, partial: &Path) -> Result<(), String> {
    let mut stream = env
        .open_verified_stream(&digest.uri)
        .map_err(|e| e.to_string())?;
    if stream.size() != digest.size {
        return Err(format!(
            "it is {} bytes, not the {} the application described",
            stream.size(),
            digest.size
        ));
    }
    let served = stream.sha256().unwrap_or_default();
    if served != digest.sha256 {
        return Err(format!(
            "what arrived has SHA-256 {served}, not {}: refused",
            digest.sha256
        ));
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    std::io::copy(&mut stream, &mut file).map_err(|e| e.to_string())?;
    file.sync_all()
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| format!("cannot finish {}: {e}", partial.display()))
}

/// Records a use of the cache entry at `path` in its modification time, which the
/// work-dir cleanup reads, when that is older than [`USE_REFRESH`].
fn mark_used(path: &Path) {
    let now = SystemTime::now();
    let stale = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > USE_REFRESH));
    if !stale {
        return;
    }
    // Read-only: a program some executor runs cannot be opened for writing (ETXTBSY), and
    // its owner may set its times through any descriptor.
    let touched = std::fs::File::open(path).and_then(|f| f.set_modified(now));
    if let Err(e) = touched {
        log::warn!("Cannot mark {} as used: {e}", path.display());
    }
}

#[cfg(test)]
#[path = "program_cache_tests.rs"]
mod tests;
