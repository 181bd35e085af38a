//! The application's program as it travels to the workers: its size, its SHA-256 and the
//! URI the driver serves it at ([`ProgramDigest`]), and the hashing both sides do.
//!
//! A driver puts the digest of its own binary in the application description; a worker
//! runs the program at the description's path if the file there has that digest (one
//! machine, shared disks), and otherwise fetches it from the driver into a
//! content-addressed cache (`worker/program_cache.rs`).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use parking_lot::Mutex;
use rpc_env::message;
use sha2::{Digest, Sha256};

message! {
    /// What a worker needs to fetch and check the application's program.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProgramDigest {
        /// Where the driver serves it (`ember://host:port/files/<name>`).
        pub uri: String,
        /// Its size in bytes.
        pub size: u64,
        /// Its SHA-256, 64 lowercase hex digits.
        pub sha256: String,
    }
}

impl ProgramDigest {
    /// Whether `sha256` is 64 lowercase hex digits: it names a file in the worker's cache,
    /// so nothing else may pass (no `/`, no `..`).
    pub fn is_well_formed(&self) -> bool {
        self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

/// A file's size and SHA-256 (lowercase hex), as a [`ProgramDigest`] carries them.
///
/// Remembered for the process by path, size and modification time, so that a driver and
/// the workers of one machine hash one binary once, not at every executor launch.
pub fn digest_file(path: &Path) -> std::io::Result<(u64, String)> {
    /// A file as it was hashed: its path, size and modification time.
    type FileVersion = (PathBuf, u64, SystemTime);
    static KNOWN: OnceLock<Mutex<HashMap<FileVersion, String>>> = OnceLock::new();
    let metadata = std::fs::metadata(path)?;
    let key = (
        path.to_path_buf(),
        metadata.len(),
        metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    );
    let known = KNOWN.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(sha) = known.lock().get(&key) {
        return Ok((key.1, sha.clone()));
    }
    let (size, sha) = hash_reader(std::fs::File::open(path)?)?;
    let mut known = known.lock();
    // A bound on what the memo holds: a long-lived worker sees a binary per build.
    if known.len() >= 256 {
        known.clear();
    }
    known.insert(key, sha.clone());
    Ok((size, sha))
}

/// The size and SHA-256 of everything `reader` yields, read in 64 KiB pieces.
pub(crate) fn hash_reader(mut reader: impl Read) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut size = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((size, hex(&hasher.finalize())))
}

/// Incremental hashing for a copy in progress: bytes go through it on their way to disk.
#[derive(Default)]
pub(crate) struct Hasher(Sha256);

impl Hasher {
    /// Hashes `bytes` after what came before.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The SHA-256 of everything, lowercase hex.
    pub(crate) fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_and_remembered_until_the_file_changes() {
        assert_eq!(
            hash_reader(&b"abc"[..]).unwrap(),
            (
                3,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string()
            )
        );
        let path = std::env::temp_dir().join(format!("ember-digest-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        let first = digest_file(&path).unwrap();
        assert_eq!(first, hash_reader(&b"abc"[..]).unwrap());
        std::fs::write(&path, b"abcd").unwrap();
        assert_eq!(
            digest_file(&path).unwrap().0,
            4,
            "a changed file is hashed again"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn only_hex_digests_name_cache_files() {
        let digest = |sha: &str| ProgramDigest {
            uri: String::new(),
            size: 0,
            sha256: sha.to_string(),
        };
        assert!(digest(&"ab".repeat(32)).is_well_formed());
        for bad in [
            "",
            "../../etc/passwd",
            &"AB".repeat(32),
            &"ab".repeat(33),
            &"g".repeat(64),
        ] {
            assert!(!digest(bad).is_well_formed(), "{bad}");
        }
    }
}
