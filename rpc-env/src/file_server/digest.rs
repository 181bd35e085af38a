//! SHA-256 digests of files, as a file server gives them ([`file_digest`]) and as a
//! verified stream checks them: one hashing, remembered per file version, for the file
//! server and for whoever else in the process describes a file it serves.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// A file as it was hashed: its path, size and modification time.
type FileVersion = (PathBuf, u64, SystemTime);

/// The most digests remembered: past it the memo starts again.
const MAX_REMEMBERED: usize = 1024;

/// The size and SHA-256 (64 lowercase hex digits) of the file at `path`, what a
/// [`FileServer`](crate::FileServer) answers for it and a verified stream checks.
///
/// Remembered for the process by path, size and modification time, so that one binary is
/// hashed once however many describe or serve it.
pub fn file_digest(path: &Path) -> io::Result<(u64, String)> {
    static KNOWN: OnceLock<Mutex<HashMap<FileVersion, String>>> = OnceLock::new();
    let metadata = std::fs::metadata(path)?;
    let version = (
        path.to_path_buf(),
        metadata.len(),
        metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    );
    let known = KNOWN.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(sha) = known.lock().get(&version) {
        return Ok((version.1, sha.clone()));
    }
    let (size, sha) = digest_reader(std::fs::File::open(path)?)?;
    let mut known = known.lock();
    if known.len() >= MAX_REMEMBERED {
        known.clear();
    }
    known.insert(version, sha.clone());
    Ok((size, sha))
}

/// The size and SHA-256 (lowercase hex) of everything `reader` yields.
pub fn digest_reader(mut reader: impl Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut size = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok((size, hex(&hasher.finalize()))),
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_and_remembered_until_the_file_changes() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(digest_reader(&b"abc"[..]).unwrap(), (3, abc.to_string()));
        let path = std::env::temp_dir().join(format!("ember-digest-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(file_digest(&path).unwrap(), (3, abc.to_string()));
        std::fs::write(&path, b"abcd").unwrap();
        assert_eq!(
            file_digest(&path).unwrap().0,
            4,
            "a changed file is hashed again"
        );
        let _ = std::fs::remove_file(&path);
    }
}
