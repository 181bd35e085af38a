//! Cluster deploy mode's upload: `ember-submit` sends the driver's binary to the master's
//! program store in chunks, two in flight, so the worker chosen for the driver can fetch
//! it from the master (`messages/program_store.rs` has the protocol).

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use bytes::Bytes;
use rpc_env::{AskHandle, EndpointRef, RpcError};

use crate::messages::{ProgramStoreAsk, ProgramStoreProtocol, UploadStart};
use crate::program::ProgramDigest;

/// Chunks sent ahead of their answers: one travels while the store writes the other.
const WINDOW: usize = 2;

/// Why an upload did not happen.
#[derive(Debug)]
pub(crate) enum UploadError {
    /// The store refused it (full, too many uploads, a mismatch): another master's store
    /// would not do better, so the submission ends with this.
    Refused(String),
    /// The master could not be reached, or went away mid-upload: another may do.
    Unreachable(RpcError),
    /// The master does not lead (a standby, or recovering): the leader may take it. The
    /// reason begins as a standby's refusal of a submission does.
    NotLeading(String),
    /// The program cannot be read here.
    Local(String),
}

impl From<RpcError> for UploadError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Failure { message } if message.starts_with(super::NOT_ALIVE) => {
                UploadError::NotLeading(message)
            }
            RpcError::Failure { message } => UploadError::Refused(message),
            other => UploadError::Unreachable(other),
        }
    }
}

/// Makes sure the store behind `store` holds the program at `path` with `digest`'s size and
/// SHA-256 (the URI is the master's to give): sends it unless the store already has it.
pub(crate) fn upload_program(
    store: &EndpointRef<ProgramStoreProtocol>,
    path: &Path,
    digest: &ProgramDigest,
) -> Result<(), UploadError> {
    let start = store.ask_sync(|reply| ProgramStoreAsk::BeginUpload {
        size: digest.size,
        sha256: digest.sha256.clone(),
        reply,
    })?;
    let (upload_id, chunk_bytes) = match start {
        UploadStart::AlreadyStored => {
            log::info!("The master already holds {}", digest.sha256);
            return Ok(());
        }
        UploadStart::Accepted {
            upload_id,
            chunk_bytes,
        } => (upload_id, chunk_bytes.clamp(1, 4 << 20) as usize),
    };
    let cannot_read =
        |e: std::io::Error| UploadError::Local(format!("Cannot read {}: {e}", path.display()));
    let mut file = File::open(path).map_err(cannot_read)?;
    let mut in_flight: VecDeque<AskHandle<u64>> = VecDeque::with_capacity(WINDOW);
    let mut offset = 0u64;
    while offset < digest.size {
        let len = (digest.size - offset).min(chunk_bytes as u64) as usize;
        let mut chunk = vec![0u8; len];
        file.read_exact(&mut chunk).map_err(cannot_read)?;
        if in_flight.len() == WINDOW {
            in_flight.pop_front().map(AskHandle::wait).transpose()?;
        }
        let bytes = Bytes::from(chunk);
        in_flight.push_back(store.ask(|reply| ProgramStoreAsk::UploadChunk {
            upload_id,
            offset,
            bytes,
            reply,
        }));
        offset += len as u64;
    }
    for handle in in_flight {
        handle.wait()?;
    }
    store.ask_sync(|reply| ProgramStoreAsk::FinishUpload { upload_id, reply })?;
    log::info!("Uploaded {} ({} bytes)", path.display(), digest.size);
    Ok(())
}
