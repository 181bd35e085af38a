//! The application's program as it travels to the workers: its size, its SHA-256 and the
//! URI the driver serves it at ([`ProgramDigest`]), and the hashing both sides do.
//!
//! A driver puts the digest of its own binary in the application description; a worker
//! runs the program at the description's path if the file there has that digest (one
//! machine, shared disks), and otherwise fetches it from the driver into a
//! content-addressed cache (`worker/program_cache.rs`).

use rpc_env::message;

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
        is_sha256(&self.sha256)
    }
}

/// Whether `s` is 64 lowercase hex digits: the only names programs get in a worker's cache
/// and the master's store.
pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A file's size and SHA-256 (lowercase hex), as a [`ProgramDigest`] carries them: the
/// file server's own digest, so the driver, its file server and the workers of one
/// machine hash a binary once.
pub use rpc_env::file_digest as digest_file;

#[cfg(test)]
pub(crate) use rpc_env::digest_reader as hash_reader;

#[cfg(test)]
mod tests {
    use super::*;

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
