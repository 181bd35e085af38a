//! The master's program store: cluster-mode drivers' binaries, uploaded by `ember-submit`
//! and kept by SHA-256 until the worker chosen for the driver fetches them (issue 14).
//!
//! ```text
//!  <store>/incoming-<pid>/<n>.partial   an upload in progress: 0600, hashed as it is
//!                                 written; one directory per master process, so masters
//!                                 sharing the store never clear each other's
//!  <store>/programs/<sha256>      a finished upload whose size and hash matched: served
//!                                 by the master's file server at /programs/<sha256>
//! ```
//!
//! Under FILESYSTEM recovery the store is `<recovery directory>/programs-store`, so a
//! restarted master serves what its recovered drivers need; otherwise it is a private
//! directory of this process, removed when the master stops. Its total size is capped
//! ([`keys::PROGRAM_STORE_MAX_BYTES`]): a program no known driver needs makes room for a
//! new one once it is older than [`UNPINNED_GRACE`]; past that, an upload is refused
//! before a byte of it is accepted. Only a master that leads and is ALIVE takes uploads (and
//! so removes programs): a standby sharing the directory does not know which programs the
//! leader's drivers need.
//!
//! [`keys::PROGRAM_STORE_MAX_BYTES`]: super::config::keys::PROGRAM_STORE_MAX_BYTES

mod endpoint;
mod upload;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rpc_env::RpcAddress;

use crate::messages::UploadStart;
use crate::program::{is_sha256, ProgramDigest};

use super::recovery_files::{my_uid, prepare_dir, sync_dir};
use upload::Upload;

pub(crate) use endpoint::ProgramStoreEndpoint;

/// The store's directory inside a FILESYSTEM recovery directory.
pub(crate) const STORE_IN_RECOVERY_DIR: &str = "programs-store";
/// Finished programs, named by SHA-256: what the file server serves.
const PROGRAMS: &str = "programs";
/// Uploads in progress start with this, then the process id: masters sharing a recovery
/// directory (a leader and its standbys) each have their own.
const INCOMING_PREFIX: &str = "incoming-";

/// How a master that does not lead refuses an upload: as its refusals of submissions
/// begin, so that `ember-submit` goes on to the next master.
pub(crate) const NOT_LEADING: &str =
    "Current state is not alive: only a master that leads and is ALIVE takes uploads";

/// The most bytes one chunk may carry: a bound on what one ask makes the master buffer.
pub(crate) const CHUNK_BYTES: u32 = 256 << 10;
/// Uploads in progress at once; one more is refused until one ends or goes idle.
pub(crate) const MAX_UPLOADS: usize = 4;
/// An upload with no chunk for this long is dropped, with its partial file.
pub(crate) const UPLOAD_IDLE: Duration = Duration::from_secs(60);
/// A program no driver needs is kept at least this long after it was stored, so that the
/// submission that uploaded it finds it when its `RequestSubmitDriver` arrives.
pub(crate) const UNPINNED_GRACE: Duration = Duration::from_secs(600);

/// A finished program in the store.
#[derive(Debug, Clone, Copy)]
struct Stored {
    size: u64,
    /// When it was stored (or found at start).
    since: Instant,
}

/// The store: what it holds, the uploads in progress, and which programs drivers need.
#[derive(Debug)]
pub(crate) struct ProgramStore {
    dir: PathBuf,
    max_bytes: u64,
    stored: HashMap<String, Stored>,
    uploads: HashMap<u64, Upload>,
    next_upload: u64,
    /// Per program, how many drivers the master knows need it.
    pins: HashMap<String, usize>,
    /// A directory of this process only, removed on drop.
    temporary: bool,
    /// Whether the master leads and is ALIVE: only then are uploads taken (and only then
    /// may it remove programs to make room, which a standby sharing the directory must not).
    accepting: bool,
    /// This process's directory for uploads in progress.
    incoming: PathBuf,
}

impl ProgramStore {
    /// Opens the store in `dir` (created `0700` if missing, and refused if another user
    /// owns it or group or others may write it); programs already there are kept, and
    /// uploads a previous process left unfinished are removed. `temporary`: the directory
    /// is this process's alone and goes when the store is dropped.
    pub(crate) fn open(dir: &Path, max_bytes: u64, temporary: bool) -> Result<Self, String> {
        if let Some(warning) = prepare_dir(dir)? {
            log::warn!("{warning}");
        }
        remove_dead_incoming(dir);
        let incoming = dir.join(format!("{INCOMING_PREFIX}{}", std::process::id()));
        match fs::remove_dir_all(&incoming) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{} cannot be cleared: {e}", incoming.display())),
        }
        prepare_dir(&dir.join(PROGRAMS))?;
        prepare_dir(&incoming)?;
        let mut store = ProgramStore {
            dir: dir.to_path_buf(),
            max_bytes,
            stored: HashMap::new(),
            uploads: HashMap::new(),
            next_upload: 0,
            pins: HashMap::new(),
            temporary,
            accepting: false,
            incoming,
        };
        store.scan()?;
        Ok(store)
    }

    /// A private store in the system's temporary directory, for a master without a
    /// recovery directory.
    pub(crate) fn open_temporary(max_bytes: u64) -> Result<Self, String> {
        // Several masters may run in one process (tests, local clusters): each has its own.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ember-master-{}-{}-programs",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // Left by an earlier process with this pid: nothing in it is anyone's now.
        let _ = fs::remove_dir_all(&dir);
        remove_stores_of_dead_masters(&std::env::temp_dir());
        ProgramStore::open(&dir, max_bytes, true)
    }

    /// Learns the programs already stored: regular files named by a SHA-256; anything else
    /// is reported and left alone.
    fn scan(&mut self) -> Result<(), String> {
        let programs = self.dir.join(PROGRAMS);
        let entries = fs::read_dir(&programs)
            .map_err(|e| format!("{} cannot be listed: {e}", programs.display()))?;
        let now = Instant::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let meta = entry.metadata();
            match (name.to_str(), meta) {
                (Some(sha), Ok(meta)) if is_sha256(sha) && meta.file_type().is_file() => {
                    let stored = Stored {
                        size: meta.len(),
                        since: now,
                    };
                    self.stored.insert(sha.to_string(), stored);
                }
                _ => log::warn!(
                    "Skipping {name:?} in the program store {}: not a stored program",
                    programs.display()
                ),
            }
        }
        log::info!(
            "Program store {}: {} programs, {} bytes",
            self.dir.display(),
            self.stored.len(),
            self.used_bytes()
        );
        Ok(())
    }

    /// The master leads and is ALIVE: uploads are taken from now on. What the directory
    /// holds is read again, since a leader before this one may have stored more.
    pub(crate) fn start_accepting(&mut self) -> Result<(), String> {
        self.accepting = true;
        self.stored.clear();
        self.scan()
    }

    /// The directory the file server serves as `/programs/`.
    pub(crate) fn programs_dir(&self) -> PathBuf {
        self.dir.join(PROGRAMS)
    }

    /// Whether the store holds the program `digest` names, of that size.
    pub(crate) fn holds(&self, digest: &ProgramDigest) -> bool {
        self.stored
            .get(&digest.sha256)
            .is_some_and(|s| s.size == digest.size)
    }

    /// A driver needs `sha256`: it is not removed to make room while pinned.
    pub(crate) fn pin(&mut self, sha256: &str) {
        *self.pins.entry(sha256.to_string()).or_default() += 1;
    }

    /// A driver that needed `sha256` is gone.
    pub(crate) fn unpin(&mut self, sha256: &str) {
        if let Some(count) = self.pins.get_mut(sha256) {
            *count -= 1;
            if *count == 0 {
                self.pins.remove(sha256);
            }
        }
    }

    /// Bytes held by stored programs and reserved by uploads in progress.
    fn used_bytes(&self) -> u64 {
        let stored: u64 = self.stored.values().map(|s| s.size).sum();
        let reserved: u64 = self.uploads.values().map(Upload::size).sum();
        stored + reserved
    }

    /// `BeginUpload` from `owner`: the program is stored already, or an upload starts with
    /// its size reserved.
    pub(crate) fn begin(
        &mut self,
        owner: &RpcAddress,
        size: u64,
        sha256: &str,
        now: Instant,
    ) -> Result<UploadStart, String> {
        if !is_sha256(sha256) {
            return Err(format!(
                "Refused the upload: '{}' is not a SHA-256",
                sha256.chars().take(80).collect::<String>()
            ));
        }
        if !self.accepting {
            return Err(NOT_LEADING.to_string());
        }
        if self.stored.get(sha256).is_some_and(|s| s.size == size) {
            return Ok(UploadStart::AlreadyStored);
        }
        self.drop_idle_uploads(now);
        if self.uploads.len() >= MAX_UPLOADS {
            return Err(format!(
                "Refused the upload: {MAX_UPLOADS} uploads are already in progress"
            ));
        }
        self.make_room(size, now)?;
        let id = self.next_upload;
        self.next_upload += 1;
        let partial = self.incoming.join(format!("{id}.partial"));
        let upload = Upload::create(owner.clone(), sha256.to_string(), size, partial, now)
            .map_err(|e| format!("Cannot store the upload: {e}"))?;
        self.uploads.insert(id, upload);
        log::info!("Receiving program {sha256} ({size} bytes) from {owner}");
        Ok(UploadStart::Accepted {
            upload_id: id,
            chunk_bytes: CHUNK_BYTES,
        })
    }

    /// Room for `size` more bytes under the cap: removes programs no driver needs that are
    /// past their grace, oldest first, as far as needed.
    fn make_room(&mut self, size: u64, now: Instant) -> Result<(), String> {
        let full = |store: &ProgramStore| store.used_bytes().saturating_add(size) > store.max_bytes;
        if size > self.max_bytes {
            return Err(self.full_error(size));
        }
        if !full(self) {
            return Ok(());
        }
        let mut removable: Vec<(Instant, String)> = self
            .stored
            .iter()
            .filter(|(sha, s)| {
                !self.pins.contains_key(*sha) && now.duration_since(s.since) >= UNPINNED_GRACE
            })
            .map(|(sha, s)| (s.since, sha.clone()))
            .collect();
        removable.sort();
        for (_, sha) in removable {
            if !full(self) {
                break;
            }
            self.remove(&sha);
        }
        if full(self) {
            return Err(self.full_error(size));
        }
        Ok(())
    }

    fn full_error(&self, size: u64) -> String {
        format!(
            "Refused the upload of {size} bytes: the program store holds {} of its {} bytes \
             (ember.deploy.programStore.maxBytes), and what it holds is needed by drivers or \
             was stored less than {}s ago",
            self.used_bytes(),
            self.max_bytes,
            UNPINNED_GRACE.as_secs()
        )
    }

    fn remove(&mut self, sha256: &str) {
        self.stored.remove(sha256);
        let path = self.dir.join(PROGRAMS).join(sha256);
        match fs::remove_file(&path) {
            Ok(()) => log::info!("Removed program {sha256} from the store to make room"),
            Err(e) => log::warn!("Cannot remove {}: {e}", path.display()),
        }
    }

    /// Drops the uploads idle for longer than [`UPLOAD_IDLE`], removing their files.
    fn drop_idle_uploads(&mut self, now: Instant) {
        let idle: Vec<u64> = self
            .uploads
            .iter()
            .filter(|(_, u)| now.duration_since(u.last_activity()) > UPLOAD_IDLE)
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            if let Some(upload) = self.uploads.remove(&id) {
                log::warn!("Dropping the idle upload of program {}", upload.sha256());
                upload.discard();
            }
        }
    }

    /// The upload `id` as `owner` may touch it; an upload of another connection is
    /// refused as if it did not exist.
    fn upload_of(&mut self, owner: &RpcAddress, id: u64) -> Result<&mut Upload, String> {
        match self.uploads.get_mut(&id) {
            Some(upload) if upload.owner() == owner => Ok(upload),
            _ => Err(no_upload(id)),
        }
    }

    /// `UploadChunk`: writes `bytes` at `offset`; the bytes written so far. Any error ends
    /// the upload, with its partial file.
    pub(crate) fn chunk(
        &mut self,
        owner: &RpcAddress,
        id: u64,
        offset: u64,
        bytes: &[u8],
        now: Instant,
    ) -> Result<u64, String> {
        let written = self.upload_of(owner, id)?.write(offset, bytes, now);
        if written.is_err() {
            if let Some(upload) = self.uploads.remove(&id) {
                upload.discard();
            }
        }
        written
    }

    /// `FinishUpload`: the program is stored if its size and hash are what was announced;
    /// the upload ends either way.
    pub(crate) fn finish(
        &mut self,
        owner: &RpcAddress,
        id: u64,
        now: Instant,
    ) -> Result<(), String> {
        self.upload_of(owner, id)?;
        let upload = self.uploads.remove(&id).ok_or_else(|| no_upload(id))?;
        let sha256 = upload.sha256().to_string();
        let size = upload.size();
        let target = self.dir.join(PROGRAMS).join(&sha256);
        upload.complete(&target)?;
        if let Err(e) = sync_dir(&self.dir.join(PROGRAMS)) {
            log::warn!("Cannot flush the program store's directory: {e}");
        }
        self.stored
            .insert(sha256.clone(), Stored { size, since: now });
        log::info!("Stored program {sha256} ({size} bytes)");
        Ok(())
    }
}

impl Drop for ProgramStore {
    fn drop(&mut self) {
        for (_, upload) in self.uploads.drain() {
            upload.discard();
        }
        if self.temporary {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                log::warn!(
                    "Cannot remove the program store {}: {e}",
                    self.dir.display()
                );
            }
        }
    }
}

/// The refusal of a chunk or finish for an upload this connection did not begin.
fn no_upload(id: u64) -> String {
    format!("No upload {id} is in progress for this connection")
}

/// Whether process `pid` runs; `None` when this system cannot tell (no /proc).
fn process_alive(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    Some(Path::new(&format!("/proc/{pid}")).exists())
}

/// Removes the upload directories in `store` of master processes that no longer run (their
/// uploads can never finish).
fn remove_dead_incoming(store: &Path) {
    let Ok(entries) = fs::read_dir(store) else {
        return;
    };
    for entry in entries.flatten() {
        let pid = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix(INCOMING_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if process_alive(pid) == Some(false) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Removes the temporary stores in `tmp` of master processes that no longer run: a master
/// killed, or one whose process exited without dropping its store, leaves its directory.
fn remove_stores_of_dead_masters(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("ember-master-"))
            .and_then(|n| n.strip_suffix("-programs"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<u32>().ok()))
        else {
            continue;
        };
        let mine = entry.metadata().is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.is_dir() && m.uid() == my_uid()
        });
        // Without /proc every process would look gone: then nothing is removed.
        if mine && process_alive(pid) == Some(false) {
            log::info!("Removing the program store of a master that is gone: {name:?}");
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
