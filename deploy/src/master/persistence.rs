//! Where the master keeps what must outlive it (Spark's `PersistenceEngine`): the
//! registered workers, applications and drivers, under the keys `worker_<id>`,
//! `app_<id>` and `driver_<id>`, as opaque bytes (`stored.rs` encodes them).
//!
//! - [`BlackHolePersistence`] (recovery mode NONE) keeps nothing;
//! - [`FileSystemPersistence`] (FILESYSTEM) keeps one file per key in the recovery
//!   directory, private to the master's user, replaced atomically, and reads back what is
//!   intact and (with a secret) authentic; `record` is a file's format, `recovery_files`
//!   how files there are created and read without trusting what is found.
//!
//! The contract, as Spark's: an entity is persisted before its registration is
//! acknowledged, so after a crash every acknowledged one is stored; removed ones may
//! linger (a failed unpersist), which recovery tolerates by asking each stored entity
//! whether it is still there.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rpc_env::Secret;

use super::record::{self, RecordKey, MAX_RECORD_BYTES};
use super::recovery_files;

/// A key-value store for the master's durable records.
pub(crate) trait PersistenceEngine: Send {
    /// Stores `value` under `key`, replacing what was there. When this returns `Ok`, the
    /// value survives a crash of this process or machine.
    fn persist(&mut self, key: &str, value: &[u8]) -> io::Result<()>;

    /// Forgets `key`; a key that is not stored is not an error.
    fn unpersist(&mut self, key: &str) -> io::Result<()>;

    /// Every intact entry whose key starts with `prefix`, sorted by key. Entries that
    /// cannot be read or are damaged are logged (with their name) and skipped: a bad
    /// entry must not stop a master from recovering the others.
    fn read(&self, prefix: &str) -> Vec<(String, Vec<u8>)>;

    /// Whether a write may block for a while (a disk flush, a remote service): the master
    /// then handles messages on a thread of its own instead of on the IO threads.
    fn blocks(&self) -> bool {
        true
    }
}

/// Recovery mode NONE: keeps nothing, reads nothing.
#[derive(Debug, Default)]
pub(crate) struct BlackHolePersistence;

impl PersistenceEngine for BlackHolePersistence {
    fn persist(&mut self, _key: &str, _value: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn unpersist(&mut self, _key: &str) -> io::Result<()> {
        Ok(())
    }

    fn read(&self, _prefix: &str) -> Vec<(String, Vec<u8>)> {
        Vec::new()
    }

    fn blocks(&self) -> bool {
        false
    }
}

/// Recovery mode FILESYSTEM: one file per key in a directory.
///
/// The directory is the master's alone (`0700`, see [`recovery_files`]): one that another
/// user owns or may write is refused when the engine opens. A write goes to a temporary file
/// in the same directory (created `0600`, named with a leading `.`, so never taken for an
/// entry), is flushed to disk, then renamed over the entry, and the directory is flushed too:
/// after a crash the entry is either the old value or the new one. Each file is a [`record`]:
/// a versioned header with a CRC-32, so a torn or damaged file is detected on read, reported
/// and skipped, and a MAC when the cluster has a secret, so a forged one is refused. Only
/// regular files of at most [`MAX_RECORD_BYTES`] are read. A key is turned into a file name
/// by keeping ASCII letters, digits, `_`, `-` and inner `.`, and writing every other byte as
/// `%XX`: ids come from the network and must not name a path (`../x`).
///
/// Unlike Spark's engine, persisting a key that is already stored replaces it instead of
/// failing (SPARK-46191): a worker that registers again after being lost is stored again.
#[derive(Debug)]
pub(crate) struct FileSystemPersistence {
    dir: PathBuf,
    /// The MAC key of records, when the cluster has a secret.
    key: Option<RecordKey>,
    /// Numbers temporary files, so two writes never share one.
    next_temp: u64,
}

/// How many temporary names a write tries before giving up: a name is taken only by a
/// leftover of a crashed master whose pid this one reuses.
const TEMP_ATTEMPTS: u32 = 8;

impl FileSystemPersistence {
    /// An engine over `dir`, created (mode `0700`) with its parents if missing; a symbolic
    /// link to a directory is followed. Records carry a MAC keyed from `secret` when there
    /// is one; without, a warning says the directory's permissions are their only
    /// protection.
    ///
    /// # Errors
    ///
    /// Why the directory cannot be used: it cannot be created or inspected, is not a
    /// directory, is owned by another user, or is writable by group or others.
    pub(crate) fn open(
        dir: &Path,
        secret: Option<&Secret>,
    ) -> Result<FileSystemPersistence, String> {
        if let Some(warning) = recovery_files::prepare_dir(dir)? {
            log::warn!("{warning}");
        }
        if secret.is_none() {
            log::warn!(
                "No secret is configured ({}): the records in recovery directory {} carry no \
                 MAC, so its permissions are their only protection",
                rpc_env::keys::AUTHENTICATE_SECRET_FILE,
                dir.display()
            );
        }
        Ok(FileSystemPersistence {
            dir: dir.to_path_buf(),
            key: secret.map(RecordKey::from_secret),
            next_temp: 0,
        })
    }

    fn write_atomically(&mut self, name: &str, contents: &[u8]) -> io::Result<()> {
        let (temp, mut file) = self.create_temp(name)?;
        let written = file
            .write_all(contents)
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&temp, self.dir.join(name)))
            .and_then(|()| recovery_files::sync_dir(&self.dir));
        if written.is_err() {
            // Best effort: a leftover temporary file is ignored by `read` anyway.
            let _ = fs::remove_file(&temp);
        }
        written
    }

    /// A new temporary file for the entry `name`, mode `0600`, never an existing one.
    fn create_temp(&mut self, name: &str) -> io::Result<(PathBuf, File)> {
        let mut last = None;
        for _ in 0..TEMP_ATTEMPTS {
            let temp = self.dir.join(format!(
                ".{name}.tmp-{}-{}",
                std::process::id(),
                self.next_temp
            ));
            self.next_temp += 1;
            match recovery_files::create_private(&temp) {
                Ok(file) => return Ok((temp, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no temporary name")))
    }

    /// The payload of the entry file `name`, or why it is skipped.
    fn read_entry(&self, name: &str) -> Result<Vec<u8>, String> {
        let path = self.dir.join(name);
        let bytes = recovery_files::read_regular_capped(&path, MAX_RECORD_BYTES)?;
        let opened = record::unseal(self.key.as_ref(), name, &bytes)?;
        if opened.legacy {
            log::info!(
                "Recovery file {name:?} is in the old format; it is rewritten when its entity \
                 next changes"
            );
        }
        Ok(opened.payload)
    }
}

impl PersistenceEngine for FileSystemPersistence {
    fn persist(&mut self, key: &str, value: &[u8]) -> io::Result<()> {
        let name = file_name(key)?;
        let sealed = record::seal(self.key.as_ref(), &name, value);
        self.write_atomically(&name, &sealed)
    }

    fn unpersist(&mut self, key: &str) -> io::Result<()> {
        let name = file_name(key)?;
        match fs::remove_file(self.dir.join(name)) {
            Ok(()) => recovery_files::sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn read(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => {
                log::warn!("Cannot list recovery directory {}: {e}", self.dir.display());
                return Vec::new();
            }
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    log::warn!("Cannot list {}: {e}", self.dir.display());
                    continue;
                }
            };
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(key) = key_of(&name) else {
                // Temporary files, the leader lock, anything not written by us.
                continue;
            };
            if !key.starts_with(prefix) {
                continue;
            }
            // `{name:?}`: a name is someone's bytes; escaped, it cannot forge log lines.
            match self.read_entry(&name) {
                Ok(value) => found.push((key, value)),
                Err(why) => log::warn!(
                    "Skipping recovery file {name:?} in {}: {why}",
                    self.dir.display()
                ),
            }
        }
        found.sort();
        found
    }
}

/// The file name of `key`: see [`FileSystemPersistence`].
fn file_name(key: &str) -> io::Result<String> {
    if key.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty persistence key",
        ));
    }
    let mut name = String::with_capacity(key.len());
    for (i, byte) in key.bytes().enumerate() {
        let plain =
            byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || (byte == b'.' && i > 0);
        if plain {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(name)
}

/// The key a file name stands for; `None` for names [`file_name`] never makes.
fn key_of(name: &str) -> Option<String> {
    if name.is_empty() || name.starts_with('.') {
        return None;
    }
    let mut bytes = Vec::with_capacity(name.len());
    let mut rest = name.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail.get(..2)?;
            let hex = std::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}
