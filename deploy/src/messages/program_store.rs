//! The master's program store protocol: how `ember-submit` uploads a cluster-mode driver's
//! binary to the master, which keeps it by SHA-256 for the worker that will run it.
//!
//! ```text
//! BeginUpload{size, sha256} ──► AlreadyStored            (nothing to send)
//!                           └─► Accepted{upload_id, chunk_bytes}
//! UploadChunk{upload_id, offset, bytes} ... in order, each answered with the bytes written
//! FinishUpload{upload_id}   ──► stored under its SHA-256 (or failed: size or hash differ)
//! ```
//!
//! An upload belongs to the connection that began it; chunks must come in order and may
//! not pass the announced size; an upload left idle is dropped with its partial file.
//! The stored program is served by the master's file server at
//! `ember://<master>/programs/<sha256>`.

use bytes::Bytes;
use rpc_env::{message, protocol, Reply};

/// The program store endpoint's name, on the master's env.
pub const PROGRAM_STORE_ENDPOINT_NAME: &str = "ProgramStore";

/// The base of the URIs the master serves stored programs under.
pub const PROGRAM_STORE_FILE_BASE: &str = "programs";

protocol! {
    /// The program store's protocol. Tags are wire format: new ones go at the end.
    pub protocol ProgramStoreProtocol version 1 {
        /// What an uploader asks.
        ask ProgramStoreAsk {
            /// Announces a program of `size` bytes with this SHA-256 (64 lowercase hex
            /// digits).
            BeginUpload {
                /// Its size in bytes.
                size: u64,
                /// Its SHA-256.
                sha256: String,
                /// Whether to send it.
                reply: Reply<UploadStart>,
            },
            /// The next `bytes` of upload `upload_id`, which start at `offset`; answered
            /// with how many bytes the store now holds.
            UploadChunk {
                /// The upload.
                upload_id: u64,
                /// Where `bytes` start: exactly what was written before.
                offset: u64,
                /// At most the `chunk_bytes` the store accepted.
                bytes: Bytes,
                /// The bytes written so far.
                reply: Reply<u64>,
            },
            /// Every byte was sent: check the size and hash and keep the program.
            FinishUpload {
                /// The upload.
                upload_id: u64,
                /// Done.
                reply: Reply<()>,
            },
        }
    }
}

message! {
    /// The store's answer to `BeginUpload`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum UploadStart {
        /// The store already holds this program: nothing needs sending.
        AlreadyStored,
        /// Send it in chunks of at most `chunk_bytes`.
        Accepted {
            /// The upload's id, for its chunks.
            upload_id: u64,
            /// The most one chunk may hold.
            chunk_bytes: u32,
        },
    }
}
