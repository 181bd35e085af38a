//! [`FileStream`]: a file served by another env, read in chunks as it is consumed.

use std::collections::VecDeque;
use std::io::{self, Read};

use bytes::{Buf, Bytes};
use sha2::{Digest, Sha256};

use super::digest::hex;
use super::{FileServerAsk, FileServerProtocol, MAX_CHUNK};
use crate::ask::AskHandle;
use crate::endpoint_ref::EndpointRef;
use crate::error::RpcError;

/// Chunks asked for ahead of the reader: two, so the next one travels while the reader
/// consumes the last, and no more, so a stream holds up the other frames on its
/// connection by at most this many chunks.
const WINDOW: usize = 2;

/// A file served by another env's [`FileServer`](crate::FileServer), from
/// [`RpcEnv::open_stream`](crate::RpcEnv::open_stream). Reading it asks for chunks (at
/// most two ahead of the reader) over the connection to that env; it ends after exactly
/// the size the file had when the stream opened.
///
/// A read fails, and so does every later one, if the serving env refuses a chunk, goes
/// away, or the file has shrunk; what was read before stays valid, and no byte is ever
/// delivered twice or out of order.
pub struct FileStream {
    server: EndpointRef<FileServerProtocol>,
    path: String,
    size: u64,
    /// Where the next chunk to ask for starts.
    asked: u64,
    /// How many bytes have been handed to the reader or sit in `current`.
    received: u64,
    /// Chunks asked for, oldest first, each with the length it must have.
    in_flight: VecDeque<(u32, AskHandle<Bytes>)>,
    /// What is left of the chunk being read.
    current: Bytes,
    /// Why the stream failed, once it has: every later read fails the same way.
    failed: Option<String>,
    /// For a verified stream: the SHA-256 the server gave, and the hash of what was read.
    check: Option<(String, Sha256)>,
}

impl FileStream {
    /// Opens the file at `path` of the file server `server`: asks its size.
    pub(crate) fn open(
        server: EndpointRef<FileServerProtocol>,
        path: String,
        verified: bool,
    ) -> Result<FileStream, RpcError> {
        let check = match verified {
            true => {
                let sha = server.ask_sync(|reply| FileServerAsk::Sha256 {
                    path: path.clone(),
                    reply,
                })?;
                Some((sha, Sha256::new()))
            }
            false => None,
        };
        let size = server.ask_sync(|reply| FileServerAsk::Size {
            path: path.clone(),
            reply,
        })?;
        let mut stream = FileStream {
            server,
            path,
            size,
            asked: 0,
            received: 0,
            in_flight: VecDeque::with_capacity(WINDOW),
            current: Bytes::new(),
            failed: None,
            check,
        };
        stream.fill_window();
        Ok(stream)
    }

    /// The file's size when the stream opened: how many bytes it yields.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// For a stream from [`RpcEnv::open_verified_stream`](crate::RpcEnv::open_verified_stream):
    /// the SHA-256 (lowercase hex) the serving env gave, which what is read must have.
    pub fn sha256(&self) -> Option<&str> {
        self.check.as_ref().map(|(sha, _)| sha.as_str())
    }

    /// Asks for chunks until [`WINDOW`] are on their way or the file is all asked for.
    fn fill_window(&mut self) {
        while self.in_flight.len() < WINDOW && self.asked < self.size {
            let len = (self.size - self.asked).min(u64::from(MAX_CHUNK)) as u32;
            let offset = self.asked;
            let path = self.path.clone();
            let handle = self.server.ask(|reply| FileServerAsk::Read {
                path,
                offset,
                len,
                reply,
            });
            self.in_flight.push_back((len, handle));
            self.asked += u64::from(len);
        }
    }

    /// Waits for the oldest chunk asked for and makes it the current one.
    fn next_chunk(&mut self) -> Result<(), String> {
        let Some((len, handle)) = self.in_flight.pop_front() else {
            return Err("no chunk is on its way".to_string());
        };
        let chunk = handle
            .wait()
            .map_err(|e| format!("Reading {} failed: {e}", self.uri()))?;
        if chunk.len() != len as usize {
            return Err(format!(
                "Reading {} failed: the file changed while it was read ({} bytes where {len} \
                 were due at offset {})",
                self.uri(),
                chunk.len(),
                self.received
            ));
        }
        self.received += u64::from(len);
        let mut mismatch = None;
        if let Some((expected, hasher)) = &mut self.check {
            hasher.update(&chunk);
            if self.received == self.size {
                let got = hex(&std::mem::take(hasher).finalize());
                if got != *expected {
                    mismatch = Some(format!(
                        "what arrived has SHA-256 {got}, not the {expected} the server gave"
                    ));
                }
            }
        }
        if let Some(why) = mismatch {
            return Err(format!("Reading {} failed: {why}", self.uri()));
        }
        self.current = chunk;
        self.fill_window();
        Ok(())
    }

    fn uri(&self) -> String {
        let host = self
            .server
            .address()
            .address()
            .map_or_else(String::new, |a| a.to_ember_url());
        format!("{host}/{}", self.path)
    }
}

impl FileStream {
    /// An empty verified file has no chunk to check on: its hash is checked here.
    fn check_empty(&mut self) -> io::Result<()> {
        if let Some((expected, _)) = self.check.take() {
            let got = hex(&Sha256::new().finalize());
            if got != expected {
                let reason = format!(
                    "Reading {} failed: an empty file, where the server gave SHA-256 {expected}",
                    self.uri()
                );
                self.failed = Some(reason.clone());
                return Err(io::Error::other(reason));
            }
        }
        Ok(())
    }
}

impl Read for FileStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(reason) = &self.failed {
            return Err(io::Error::other(reason.clone()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            if self.received == self.size {
                if self.size == 0 {
                    self.check_empty()?;
                }
                return Ok(0);
            }
            if let Err(reason) = self.next_chunk() {
                // The chunks still on their way are dropped with the stream's state.
                self.in_flight.clear();
                self.failed = Some(reason.clone());
                return Err(io::Error::other(reason));
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

impl std::fmt::Debug for FileStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStream")
            .field("uri", &self.uri())
            .field("size", &self.size)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}
