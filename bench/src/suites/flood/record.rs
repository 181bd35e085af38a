//! Frames from real traffic: a one-connection TCP relay between a real client-mode `RpcEnv`
//! and the master records what the env writes, so the floods replay well-formed frames
//! without this crate encoding an endpoint header by hand.
//!
//! Frame layout (rpc-env/src/frame.rs): `u32` length (of what follows), `u8` kind, `u64`
//! request id, endpoint header, body. Only the length and kind are read here.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rpc_env::{EndpointRef, Protocol, RpcAddress, RpcConf, RpcEnv, RpcEnvConfig};

use crate::error::BenchError;
use crate::suites::flood::master::poll_until;

/// The kind byte of a request (an ask) frame.
pub(crate) const KIND_REQUEST: u8 = 1;
/// The kind byte of a one-way frame.
pub(crate) const KIND_ONE_WAY: u8 = 4;
/// How long recording one frame may take.
const RECORD_DEADLINE: Duration = Duration::from_secs(10);

/// What the recorded env does through the relay.
pub(crate) enum Traffic<'a, P: Protocol> {
    /// `send(message)` to the endpoint `name`.
    Send {
        /// The endpoint's name (need not exist).
        name: &'a str,
        /// Makes the message.
        message: fn() -> P::Message,
    },
    /// An ask of the endpoint `name`, waited for.
    Ask {
        /// The endpoint's name.
        name: &'a str,
        /// Sends the ask on the ref and waits for its answer.
        ask: fn(&EndpointRef<P>) -> Result<(), String>,
    },
}

/// Records the first frame a fresh client-mode env (settings `conf`) writes to `master`
/// when it does `traffic`, and checks it is of the kind that traffic makes.
pub(crate) fn record_frame<P: Protocol>(
    master: SocketAddr,
    conf: RpcConf,
    traffic: Traffic<'_, P>,
) -> Result<Vec<u8>, BenchError> {
    let relay = Relay::start(master)?;
    let env = RpcEnv::create(RpcEnvConfig::client("flood-recorder").with_conf(conf))
        .map_err(|e| BenchError::new(format!("starting the recording env: {e}")))?;
    let at = RpcAddress::new("127.0.0.1", relay.addr.port());
    let result = (|| {
        let kind = match traffic {
            Traffic::Send { name, message } => {
                let target: EndpointRef<P> = env.endpoint_ref_at(&at, name);
                target
                    .send(message())
                    .map_err(|e| BenchError::new(format!("recording a send: {e}")))?;
                KIND_ONE_WAY
            }
            Traffic::Ask { name, ask } => {
                let target: EndpointRef<P> = env.endpoint_ref_at(&at, name);
                ask(&target).map_err(|e| BenchError::new(format!("recording an ask: {e}")))?;
                KIND_REQUEST
            }
        };
        // A send has no answer to wait for: wait for its bytes instead.
        poll_until(RECORD_DEADLINE, "a whole frame through the relay", || {
            Ok(first_frame(&relay.recorded()).is_some())
        })?;
        let bytes = relay.recorded();
        let frame = first_frame(&bytes).unwrap_or_default().to_vec();
        if frame.get(4) != Some(&kind) {
            return Err(BenchError::new(format!(
                "recorded a frame of kind {:?}, expected {kind}",
                frame.get(4)
            )));
        }
        if bytes.len() > frame.len() {
            log::debug!(
                "the env wrote {} bytes after the frame",
                bytes.len() - frame.len()
            );
        }
        Ok(frame)
    })();
    env.shutdown();
    relay.finish();
    result
}

/// The first whole frame at the start of `bytes`, if it is all there.
fn first_frame(bytes: &[u8]) -> Option<&[u8]> {
    let length: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let end = 4 + u32::from_be_bytes(length) as usize;
    bytes.get(..end)
}

/// A relay for one connection, recording the client's side.
struct Relay {
    /// Where clients connect.
    addr: SocketAddr,
    /// What the client wrote so far.
    recorded: Arc<Mutex<Vec<u8>>>,
    /// Accepts one connection and relays it until either side closes.
    thread: JoinHandle<()>,
}

impl Relay {
    fn start(master: SocketAddr) -> Result<Relay, BenchError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| BenchError::io("binding the recording relay", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| BenchError::io("reading the relay's address", e))?;
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&recorded);
        let thread = thread::Builder::new()
            .name("flood-relay".into())
            .spawn(move || {
                if let Err(e) = relay_one(&listener, master, &sink) {
                    log::warn!("recording relay: {e}");
                }
            })
            .map_err(|e| BenchError::io("starting the relay thread", e))?;
        Ok(Relay {
            addr,
            recorded,
            thread,
        })
    }

    fn recorded(&self) -> Vec<u8> {
        self.recorded.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Waits for the relay to end. If no client ever connected, a connection of our own
    /// (closed at once) unblocks its `accept`.
    fn finish(self) {
        if !self.thread.is_finished() && self.recorded().is_empty() {
            let _ = TcpStream::connect(self.addr);
        }
        let _ = self.thread.join();
    }
}

fn relay_one(
    listener: &TcpListener,
    master: SocketAddr,
    sink: &Arc<Mutex<Vec<u8>>>,
) -> std::io::Result<()> {
    let (client, _) = listener.accept()?;
    let upstream = TcpStream::connect(master)?;
    let (client_in, upstream_out) = (client.try_clone()?, upstream.try_clone()?);
    let sink = Arc::clone(sink);
    // Client to master, recorded; master to client on this thread.
    let up = thread::Builder::new()
        .name("flood-relay-up".into())
        .spawn(move || copy(client_in, upstream_out, Some(&sink)))?;
    copy(upstream, client, None);
    let _ = up.join();
    Ok(())
}

/// Copies `from` to `to` until either ends, appending what passes to `record`; then shuts
/// both down so the other direction ends too.
fn copy(mut from: TcpStream, mut to: TcpStream, record: Option<&Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(record) = record {
            if let Ok(mut bytes) = record.lock() {
                bytes.extend_from_slice(&buf[..n]);
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_whole_frame() {
        assert_eq!(first_frame(&[0, 0, 0]), None);
        assert_eq!(first_frame(&[0, 0, 0, 2, 4]), None);
        assert_eq!(
            first_frame(&[0, 0, 0, 2, 4, 9, 7]),
            Some(&[0, 0, 0, 2, 4, 9][..])
        );
    }
}
