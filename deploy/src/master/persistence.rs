//! Where the master keeps what must outlive it (Spark's `PersistenceEngine`): the
//! registered workers, applications and drivers, under the keys `worker_<id>`,
//! `app_<id>` and `driver_<id>`, as opaque bytes (`stored.rs` encodes them).
//!
//! - [`BlackHolePersistence`] (recovery mode NONE) keeps nothing;
//! - [`FileSystemPersistence`] (FILESYSTEM) keeps one file per key in the recovery
//!   directory, replaced atomically, and reads back what is intact.
//!
//! The contract, as Spark's: an entity is persisted before its registration is
//! acknowledged, so after a crash every acknowledged one is stored; removed ones may
//! linger (a failed unpersist), which recovery tolerates by asking each stored entity
//! whether it is still there.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

/// The first bytes of every entry file, so a stray file is told apart from an entry.
const MAGIC: [u8; 4] = *b"EMBR";
/// Magic, payload length (`u32`, big-endian), CRC-32 of the payload (`u32`).
const HEADER_LEN: usize = 12;

/// Recovery mode FILESYSTEM: one file per key in a directory.
///
/// A write goes to a temporary file in the same directory (named with a leading `.`, so
/// never taken for an entry), is flushed to disk, then renamed over the entry, and the
/// directory is flushed too: after a crash the entry is either the old value or the new
/// one. Each file carries a length and a CRC-32 of its payload, so a torn or damaged
/// file is detected on read, reported and skipped. A key is turned into a file name by
/// keeping ASCII letters, digits, `_`, `-` and inner `.`, and writing every other byte as
/// `%XX`: ids come from the network and must not name a path (`../x`).
///
/// Unlike Spark's engine, persisting a key that is already stored replaces it instead of
/// failing (SPARK-46191): a worker that registers again after being lost is stored again.
#[derive(Debug)]
pub(crate) struct FileSystemPersistence {
    dir: PathBuf,
    /// Numbers temporary files, so two writes never share one.
    next_temp: u64,
}

impl FileSystemPersistence {
    /// An engine over `dir`, created with its parents if missing (a symbolic link to a
    /// directory is followed).
    ///
    /// # Errors
    ///
    /// The directory cannot be created.
    pub(crate) fn open(dir: &Path) -> io::Result<FileSystemPersistence> {
        fs::create_dir_all(dir)?;
        Ok(FileSystemPersistence {
            dir: dir.to_path_buf(),
            next_temp: 0,
        })
    }

    fn write_atomically(&mut self, name: &str, contents: &[u8]) -> io::Result<()> {
        let temp = self.dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            self.next_temp
        ));
        self.next_temp += 1;
        let written = write_synced(&temp, contents)
            .and_then(|()| fs::rename(&temp, self.dir.join(name)))
            .and_then(|()| sync_dir(&self.dir));
        if written.is_err() {
            // Best effort: a leftover temporary file is ignored by `read` anyway.
            let _ = fs::remove_file(&temp);
        }
        written
    }
}

impl PersistenceEngine for FileSystemPersistence {
    fn persist(&mut self, key: &str, value: &[u8]) -> io::Result<()> {
        let name = file_name(key)?;
        self.write_atomically(&name, &frame(value))
    }

    fn unpersist(&mut self, key: &str) -> io::Result<()> {
        let name = file_name(key)?;
        match fs::remove_file(self.dir.join(name)) {
            Ok(()) => sync_dir(&self.dir),
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
            let path = entry.path();
            let Some(key) = entry.file_name().to_str().and_then(key_of) else {
                // Temporary files, the leader lock, anything not written by us.
                continue;
            };
            if !key.starts_with(prefix) {
                continue;
            }
            match fs::read(&path).map_err(|e| e.to_string()).and_then(unframe) {
                Ok(value) => found.push((key, value)),
                Err(why) => log::warn!("Skipping recovery file {}: {why}", path.display()),
            }
        }
        found.sort();
        found
    }
}

/// `value` with its header: magic, length, checksum.
fn frame(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + value.len());
    out.extend_from_slice(&MAGIC);
    // A record never nears 4 GiB; saturating keeps the check below failing if one did.
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32(value).to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The payload of a framed file, or why the file is not one intact entry.
fn unframe(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let Some((header, payload)) = bytes.split_at_checked(HEADER_LEN) else {
        return Err(format!("{} bytes, shorter than a header", bytes.len()));
    };
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    if header[..4] != MAGIC {
        return Err("not an Ember recovery file".to_string());
    }
    let len = usize::try_from(word(4)).unwrap_or(usize::MAX);
    if len != payload.len() {
        return Err(format!(
            "torn: {} bytes of a {len}-byte entry",
            payload.len()
        ));
    }
    if word(8) != crc32(payload) {
        return Err("corrupt: checksum mismatch".to_string());
    }
    Ok(payload.to_vec())
}

/// CRC-32 (IEEE 802.3, as zlib), bit by bit: entries are small and written rarely.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
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

fn write_synced(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Flushes a directory's entries (a rename or removal) to disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::test_dir::TestDir;

    fn values(engine: &dyn PersistenceEngine, prefix: &str) -> Vec<(String, String)> {
        engine
            .read(prefix)
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    /// PersistenceEngineSuite's shared scenario, and 1 (FileSystemPersistenceEngine).
    #[test]
    fn persist_read_unpersist_round_trip() {
        let dir = TestDir::new("persist");
        let mut engine = FileSystemPersistence::open(dir.path()).expect("opens");
        engine.persist("test_1", b"test_1_value").expect("persists");
        assert_eq!(values(&engine, "test_"), [pair("test_1", "test_1_value")]);
        engine.persist("test_2", b"test_2_value").expect("persists");
        engine.persist("other_1", b"x").expect("persists");
        assert_eq!(
            values(&engine, "test_"),
            [
                pair("test_1", "test_1_value"),
                pair("test_2", "test_2_value")
            ]
        );
        engine.unpersist("test_1").expect("unpersists");
        assert_eq!(values(&engine, "test_"), [pair("test_2", "test_2_value")]);
        engine.unpersist("test_2").expect("unpersists");
        assert!(engine.read("test_").is_empty());
        assert_eq!(values(&engine, ""), [pair("other_1", "x")]);

        // A second engine on the same directory (a restarted master) reads the same.
        let again = FileSystemPersistence::open(dir.path()).expect("opens");
        assert_eq!(values(&again, "other_"), [pair("other_1", "x")]);
    }

    /// Where Spark fails (SPARK-46191), a second persist replaces the value atomically.
    #[test]
    fn persisting_again_replaces_the_value() {
        let dir = TestDir::new("replace");
        let mut engine = FileSystemPersistence::open(dir.path()).expect("opens");
        engine.persist("worker_1", b"old").expect("persists");
        engine.persist("worker_1", b"new").expect("replaces");
        assert_eq!(values(&engine, "worker_"), [pair("worker_1", "new")]);
        let files = fs::read_dir(dir.path()).expect("lists").count();
        assert_eq!(files, 1, "no temporary file is left behind");
    }

    #[test]
    fn unpersisting_a_missing_key_is_fine() {
        let dir = TestDir::new("missing");
        let mut engine = FileSystemPersistence::open(dir.path()).expect("opens");
        engine.unpersist("app_nothing").expect("not an error");
    }

    #[test]
    fn leftover_temporary_files_and_damaged_entries_are_skipped() {
        let dir = TestDir::new("damaged");
        let mut engine = FileSystemPersistence::open(dir.path()).expect("opens");
        engine.persist("app_good", b"good").expect("persists");
        engine
            .persist("app_torn", b"a longer value")
            .expect("persists");
        engine.persist("app_flipped", b"flip me").expect("persists");
        // A crash between writing and renaming leaves a temporary file.
        fs::write(dir.path().join(".app_new.tmp-1-0"), frame(b"half")).expect("write");
        // A torn write: the file ends early.
        let torn = dir.path().join("app_torn");
        let bytes = fs::read(&torn).expect("read");
        fs::write(&torn, &bytes[..bytes.len() - 3]).expect("truncate");
        // A flipped bit in the payload.
        let flipped = dir.path().join("app_flipped");
        let mut bytes = fs::read(&flipped).expect("read");
        if let Some(last) = bytes.last_mut() {
            *last ^= 0x10;
        }
        fs::write(&flipped, bytes).expect("corrupt");
        // Not ours at all, and too short to be.
        fs::write(dir.path().join("app_stray"), b"hello, world!").expect("write");
        fs::write(dir.path().join("app_tiny"), b"EM").expect("write");

        assert_eq!(values(&engine, "app_"), [pair("app_good", "good")]);
    }

    #[test]
    fn keys_cannot_escape_the_directory() {
        let dir = TestDir::new("escape");
        let inner = dir.path().join("inner");
        let mut engine = FileSystemPersistence::open(&inner).expect("opens");
        for key in [
            "worker_../../x",
            "worker_a/b",
            "../worker_x",
            ".hidden",
            "w\u{e9}%",
        ] {
            engine.persist(key, key.as_bytes()).expect("persists");
        }
        assert!(
            engine.persist("", b"x").is_err(),
            "an empty key has no file"
        );
        let names: Vec<String> = fs::read_dir(&inner)
            .expect("lists")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(names.len(), 5, "{names:?}");
        assert_eq!(fs::read_dir(dir.path()).expect("lists").count(), 1);
        let read = values(&engine, "");
        let keys: Vec<&str> = read.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "../worker_x",
                ".hidden",
                "worker_../../x",
                "worker_a/b",
                "w\u{e9}%"
            ]
        );
        assert!(read.iter().all(|(k, v)| k == v));
    }

    /// PersistenceEngineSuite 4 (SPARK-46215) and 5.
    #[cfg(unix)]
    #[test]
    fn missing_parents_are_created_and_links_followed() {
        let dir = TestDir::new("parents");
        let nested = dir.path().join("a").join("b").join("c").join("dir");
        let mut engine = FileSystemPersistence::open(&nested).expect("creates parents");
        engine.persist("k", b"v").expect("persists");
        assert!(nested.join("k").is_file());

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&nested, &link).expect("symlink");
        let through_link = FileSystemPersistence::open(&link).expect("follows the link");
        assert_eq!(values(&through_link, ""), [pair("k", "v")]);
    }

    #[test]
    fn the_black_hole_keeps_nothing() {
        let mut engine = BlackHolePersistence;
        engine.persist("app_1", b"x").expect("accepted");
        engine.unpersist("app_2").expect("accepted");
        assert!(engine.read("").is_empty());
    }

    #[test]
    fn crc32_is_the_zlib_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
