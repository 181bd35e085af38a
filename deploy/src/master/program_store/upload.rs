//! One upload in progress: a partial file, written in order and hashed as it grows.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rpc_env::RpcAddress;
use sha2::{Digest, Sha256};

use crate::master::recovery_files::create_private;

/// A program being received.
#[derive(Debug)]
pub(super) struct Upload {
    owner: RpcAddress,
    sha256: String,
    size: u64,
    written: u64,
    file: File,
    partial: PathBuf,
    hasher: Sha256,
    last_activity: Instant,
}

impl Upload {
    /// An upload from `owner` of `size` bytes that must hash to `sha256`, into a new
    /// `0600` file at `partial`.
    pub(super) fn create(
        owner: RpcAddress,
        sha256: String,
        size: u64,
        partial: PathBuf,
        now: Instant,
    ) -> std::io::Result<Upload> {
        let file = create_private(&partial)?;
        Ok(Upload {
            owner,
            sha256,
            size,
            written: 0,
            file,
            partial,
            hasher: Sha256::new(),
            last_activity: now,
        })
    }

    pub(super) fn owner(&self) -> &RpcAddress {
        &self.owner
    }

    pub(super) fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The announced size: what the upload reserves in the store.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    pub(super) fn last_activity(&self) -> Instant {
        self.last_activity
    }

    /// Appends `bytes`, which must start where the last chunk ended and stay within the
    /// announced size and the chunk cap; the bytes written so far.
    pub(super) fn write(&mut self, offset: u64, bytes: &[u8], now: Instant) -> Result<u64, String> {
        if offset != self.written {
            return Err(format!(
                "Refused a chunk at offset {offset}: the upload has {} bytes, so the next \
                 chunk starts there",
                self.written
            ));
        }
        if bytes.len() > super::CHUNK_BYTES as usize {
            return Err(format!(
                "Refused a chunk of {} bytes: at most {} at a time",
                bytes.len(),
                super::CHUNK_BYTES
            ));
        }
        let end = self.written + bytes.len() as u64;
        if end > self.size {
            return Err(format!(
                "Refused a chunk ending at {end}: the program was announced as {} bytes",
                self.size
            ));
        }
        self.file
            .write_all(bytes)
            .map_err(|e| format!("Cannot store the upload: {e}"))?;
        self.hasher.update(bytes);
        self.written = end;
        self.last_activity = now;
        Ok(end)
    }

    /// Checks the size and hash and moves the file to `target`; on any mismatch or error
    /// the partial file is removed.
    pub(super) fn complete(self, target: &Path) -> Result<(), String> {
        if self.written != self.size {
            let why = format!(
                "Refused the upload: {} of its {} bytes arrived",
                self.written, self.size
            );
            self.discard();
            return Err(why);
        }
        let sha = format!("{:x}", self.hasher.clone().finalize());
        if sha != self.sha256 {
            let why = format!(
                "Refused the upload: what arrived has SHA-256 {sha}, not {}",
                self.sha256
            );
            self.discard();
            return Err(why);
        }
        let moved = self
            .file
            .sync_all()
            .and_then(|()| fs::rename(&self.partial, target));
        if let Err(e) = moved {
            let why = format!("Cannot store the upload: {e}");
            self.discard();
            return Err(why);
        }
        Ok(())
    }

    /// Ends the upload without keeping anything.
    pub(super) fn discard(self) {
        if let Err(e) = fs::remove_file(&self.partial) {
            log::warn!("Cannot remove {}: {e}", self.partial.display());
        }
    }
}
