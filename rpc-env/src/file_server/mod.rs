//! The env's file server (Spark's `RpcEnvFileServer`): files and directories an env
//! serves to its peers, and the streams that read them.
//!
//! Streams are pulled in chunks by ordinary asks to the built-in `file-server` endpoint
//! over the connection to the serving env, so they are authenticated and encrypted as
//! everything else on it, interleave with other frames one chunk at a time, and cost
//! each side at most a window of chunks: the reader asks for the next chunk only as it
//! consumes one, and the server reads a chunk from disk only when asked (`WIRE.md`,
//! "File streams"; `SEMANTICS.md`, "File streams").

mod digest;
mod served;
mod stream;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::address::RpcAddress;
use crate::endpoint::{ConcurrentRpcEndpoint, EndpointContext, HandlerResult};
use crate::error::RpcError;
use crate::{protocol, Reply};

pub use digest::{digest_reader, file_digest};
use served::Served;
pub use stream::FileStream;

/// The name of the built-in endpoint that answers stream reads.
pub(crate) const FILE_SERVER_NAME: &str = "file-server";

/// The most a chunk may hold: a peer that asks for more gets this much. Bounds what one
/// read costs the server, and how long a chunk holds up the frames behind it.
pub(crate) const MAX_CHUNK: u32 = 128 << 10;

/// Handler threads of the file server: reads from disk run on them, not on the loops of
/// other endpoints.
const THREADS: usize = 2;

protocol! {
    /// The file server's protocol. Tags are wire format: new ones go at the end.
    pub(crate) protocol FileServerProtocol {
        /// What a reader asks.
        ask FileServerAsk {
            /// The size of the file served at `path`, when the stream opens.
            Size { path: String, reply: Reply<u64> },
            /// `len` bytes (at most [`MAX_CHUNK`]) of the file from `offset`; fewer only
            /// where the file ends.
            Read {
                path: String,
                offset: u64,
                len: u32,
                reply: Reply<Bytes>,
            },
            /// The file's SHA-256 (lowercase hex), for a reader that checks what it read.
            Sha256 { path: String, reply: Reply<String> },
        }
    }
}

/// The files an env serves: a handle to add them (from [`RpcEnv::file_server`]).
///
/// [`RpcEnv::file_server`]: crate::RpcEnv::file_server
#[derive(Clone)]
pub struct FileServer {
    address: RpcAddress,
    served: Arc<RwLock<Served>>,
}

impl FileServer {
    /// A server for the env at `address`, with nothing served yet, and its endpoint.
    pub(crate) fn new(address: RpcAddress) -> (FileServer, FileServerEndpoint) {
        let served = Arc::new(RwLock::new(Served::default()));
        let endpoint = FileServerEndpoint {
            served: Arc::clone(&served),
        };
        (FileServer { address, served }, endpoint)
    }

    /// Serves the regular file at `path` and returns its URI,
    /// `ember://host:port/files/<file name>` (Spark's `addFile`). Adding the same file
    /// again returns the same URI; another file of the same name is refused.
    pub fn add_file(&self, path: impl AsRef<Path>) -> Result<String, RpcError> {
        let served = self.served.write().add_file(path.as_ref());
        served
            .map(|p| self.uri(&p))
            .map_err(|e| RpcError::failure(e.to_string()))
    }

    /// Serves every regular file under the directory `path` at
    /// `ember://host:port/<base>/<relative path>` and returns `ember://host:port/<base>`
    /// (Spark's `addDirectory`). A symlink inside it is followed only while it stays
    /// inside; `base` is one plain name, not `files`.
    pub fn add_directory(&self, base: &str, path: impl AsRef<Path>) -> Result<String, RpcError> {
        let served = self.served.write().add_directory(base, path.as_ref());
        served
            .map(|p| self.uri(&p))
            .map_err(|e| RpcError::failure(e.to_string()))
    }

    fn uri(&self, path: &str) -> String {
        format!("{}/{path}", self.address.to_ember_url())
    }
}

impl std::fmt::Debug for FileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileServer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The `file-server` endpoint: answers sizes, chunks and hashes of what is served.
pub(crate) struct FileServerEndpoint {
    served: Arc<RwLock<Served>>,
}

impl FileServerEndpoint {
    /// Up to `len` bytes of the file served at `path`, from `offset`.
    fn read(&self, path: &str, offset: u64, len: u32) -> Result<Bytes, String> {
        use std::os::unix::fs::FileExt;
        let file_path = self
            .served
            .read()
            .resolve(path)
            .map_err(|e| e.to_string())?;
        let file =
            std::fs::File::open(&file_path).map_err(|e| format!("Cannot open /{path}: {e}"))?;
        let mut chunk = vec![0u8; len.min(MAX_CHUNK) as usize];
        let mut filled = 0;
        while filled < chunk.len() {
            match file.read_at(&mut chunk[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("Cannot read /{path}: {e}")),
            }
        }
        chunk.truncate(filled);
        Ok(Bytes::from(chunk))
    }

    /// The SHA-256 of the file served at `path`, lowercase hex.
    fn sha256(&self, path: &str) -> Result<String, String> {
        let file_path = self
            .served
            .read()
            .resolve(path)
            .map_err(|e| e.to_string())?;
        file_digest(&file_path)
            .map(|(_, sha)| sha)
            .map_err(|e| format!("Cannot read /{path}: {e}"))
    }

    /// The size of the file served at `path`.
    fn size(&self, path: &str) -> Result<u64, String> {
        let file_path = self
            .served
            .read()
            .resolve(path)
            .map_err(|e| e.to_string())?;
        std::fs::metadata(&file_path)
            .map(|m| m.len())
            .map_err(|e| format!("Cannot read /{path}: {e}"))
    }
}

impl ConcurrentRpcEndpoint for FileServerEndpoint {
    type Protocol = FileServerProtocol;

    fn threads(&self) -> usize {
        THREADS
    }

    fn receive_and_reply(
        &self,
        _ctx: &EndpointContext<'_, FileServerProtocol>,
        ask: FileServerAsk,
    ) -> HandlerResult {
        match ask {
            FileServerAsk::Size { path, reply } => match self.size(&path) {
                Ok(size) => reply.send(size),
                Err(reason) => reply.fail(reason),
            },
            FileServerAsk::Read {
                path,
                offset,
                len,
                reply,
            } => match self.read(&path, offset, len) {
                Ok(chunk) => reply.send(chunk),
                Err(reason) => reply.fail(reason),
            },
            FileServerAsk::Sha256 { path, reply } => match self.sha256(&path) {
                Ok(sha) => reply.send(sha),
                Err(reason) => reply.fail(reason),
            },
        }
        Ok(())
    }
}

/// Splits a file URI, `ember://host:port/<path>`, into the serving env and the path.
pub(crate) fn parse_uri(uri: &str) -> Result<(RpcAddress, String), RpcError> {
    let bad = || RpcError::failure(format!("Not a file URI (ember://host:port/path): {uri}"));
    let rest = uri.strip_prefix("ember://").ok_or_else(bad)?;
    let (host_port, path) = rest.split_once('/').ok_or_else(bad)?;
    if path.is_empty() {
        return Err(bad());
    }
    let address = RpcAddress::from_ember_url(&format!("ember://{host_port}")).map_err(|_| bad())?;
    Ok((address, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_split_into_the_env_and_the_path() {
        let (address, path) = parse_uri("ember://10.0.0.1:7078/files/app").unwrap();
        assert_eq!((address.host(), address.port()), ("10.0.0.1", 7078));
        assert_eq!(path, "files/app");
        let (_, path) = parse_uri("ember://[::1]:7/lib/a/b.so").unwrap();
        assert_eq!(path, "lib/a/b.so");
        for bad in [
            "http://h:1/files/a",
            "ember://h:1",
            "ember://h:1/",
            "ember://h/files/a",
            "ember://h:99999/files/a",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad}");
        }
    }
}
