//! The outbox of one remote peer: lazy connect, then one connection for everything sent to
//! that peer, in FIFO order.
//!
//! ```text
//!  Connecting { queued frames } --connected--> Connected(conn) --conn closed--> (removed)
//!        \--connect failed: queued asks fail with the cause, no retry--> (removed)
//! ```
//! The next message to a removed peer creates a fresh outbox and a fresh connect attempt.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::address::RpcAddress;
use crate::connection::{Connection, Direction, IoThread};
use crate::endpoint::NetworkEvent;
use crate::env::EnvShared;
use crate::error::RpcError;
use crate::frame::LENGTH_FIELD;

enum OutboxState {
    /// Frames waiting for the connection, each with its ask's request id (0: one-way).
    Connecting {
        queued: Vec<(Bytes, u64)>,
    },
    Connected(Arc<Connection>),
    /// The connection could not be made; messages that still find this outbox fail with
    /// the cause (the next ones get a fresh outbox and a fresh attempt).
    Failed(RpcError),
    Stopped,
}

/// Messages on their way to one peer.
pub(crate) struct Outbox {
    /// Asks sent through this outbox carry this route id, so they fail with it.
    pub(crate) route: u64,
    pub(crate) address: RpcAddress,
    state: Mutex<OutboxState>,
}

impl Outbox {
    /// A new outbox; its connection is started by [`connect_in_background`].
    pub(crate) fn new(route: u64, address: RpcAddress) -> Outbox {
        Outbox {
            route,
            address,
            state: Mutex::new(OutboxState::Connecting { queued: Vec::new() }),
        }
    }

    /// Sends a frame encoded by `encode`: straight to the connection once there is one,
    /// queued in order until then.
    pub(crate) fn send(
        &self,
        max_frame: usize,
        request_id: u64,
        encode: &mut dyn FnMut(&mut BytesMut),
    ) -> Result<(), RpcError> {
        let mut state = self.state.lock();
        match &mut *state {
            OutboxState::Connected(conn) => {
                let conn = Arc::clone(conn);
                drop(state);
                conn.send_frame(encode)
            }
            OutboxState::Connecting { queued } => {
                let mut buf = BytesMut::new();
                encode(&mut buf);
                let frame_len = buf.len().saturating_sub(LENGTH_FIELD);
                if frame_len > max_frame {
                    return Err(RpcError::MessageTooLarge {
                        size: frame_len,
                        max: max_frame,
                    });
                }
                queued.push((buf.freeze(), request_id));
                Ok(())
            }
            OutboxState::Failed(error) => Err(error.clone()),
            OutboxState::Stopped => Err(RpcError::OutboxStopped),
        }
    }

    /// Drops whatever is queued and returns the request ids of the asks among it; later
    /// sends fail with `OutboxStopped`.
    pub(crate) fn stop(&self) -> Vec<u64> {
        let previous = std::mem::replace(&mut *self.state.lock(), OutboxState::Stopped);
        match previous {
            // The connection closes with the rest of the network at the end of shutdown,
            // after pending asks have failed as the env's stop, not as a lost connection.
            OutboxState::Connected(_) => Vec::new(),
            OutboxState::Connecting { queued } => queued
                .into_iter()
                .map(|(_, id)| id)
                .filter(|id| *id != 0)
                .collect(),
            OutboxState::Failed(_) | OutboxState::Stopped => Vec::new(),
        }
    }

    fn connected(&self, conn: Arc<Connection>) {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, OutboxState::Connected(Arc::clone(&conn))) {
            // Queued frames go first, under the lock, so later sends follow them.
            OutboxState::Connecting { queued } => {
                conn.send_encoded(queued.into_iter().map(|(frame, _)| frame).collect())
            }
            OutboxState::Stopped => {
                *state = OutboxState::Stopped;
                drop(state);
                conn.close(None);
            }
            OutboxState::Connected(_) | OutboxState::Failed(_) => {}
        }
    }

    fn failed(&self, error: &RpcError) {
        let mut state = self.state.lock();
        if !matches!(*state, OutboxState::Stopped) {
            *state = OutboxState::Failed(error.clone());
        }
    }
}

/// Connects `outbox` on a short-lived thread (resolving a name and connecting both block),
/// then hands the connection to an IO thread. A failure fails every ask queued for the peer
/// with the cause; nothing is retried.
pub(crate) fn connect_in_background(env: Arc<EnvShared>, outbox: Arc<Outbox>) {
    let name = format!("{}-rpc-connect", env.name);
    let for_thread = Arc::clone(&outbox);
    let env_for_thread = Arc::clone(&env);
    let spawned = std::thread::Builder::new()
        .name(name)
        .spawn(move || connect(&env_for_thread, &for_thread));
    if let Err(e) = spawned {
        let error = RpcError::ConnectFailed {
            peer: outbox.address.host_port(),
            reason: format!("cannot start a connect thread: {e}"),
        };
        fail_outbox(&env, &outbox, &error);
    }
}

fn connect(env: &Arc<EnvShared>, outbox: &Arc<Outbox>) {
    match open_stream(&outbox.address, env.connect_timeout) {
        Ok((stream, peer)) => {
            let stream = mio::net::TcpStream::from_std(stream);
            let io = env.io.pick();
            let conn = Arc::new(Connection::new(
                env.next_id(),
                stream,
                peer,
                Direction::Outbound {
                    outbox_route: outbox.route,
                },
                Some(Arc::new(outbox.address.clone())),
                Arc::clone(&io) as Arc<dyn IoThread>,
                env.max_frame,
            ));
            env.dispatcher
                .broadcast(&NetworkEvent::Connected(outbox.address.clone()));
            io.add(Arc::clone(&conn));
            outbox.connected(conn);
        }
        Err(error) => {
            log::warn!("{error}");
            fail_outbox(env, outbox, &error);
        }
    }
}

fn fail_outbox(env: &Arc<EnvShared>, outbox: &Arc<Outbox>, error: &RpcError) {
    outbox.failed(error);
    env.forget_outbox(outbox.route);
    env.registry.fail_route(outbox.route, error);
}

fn open_stream(
    address: &RpcAddress,
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), RpcError> {
    let failed = |reason: String| RpcError::ConnectFailed {
        peer: address.host_port(),
        reason,
    };
    let candidates: Vec<SocketAddr> = (address.socket_host(), address.port())
        .to_socket_addrs()
        .map_err(|e| failed(e.to_string()))?
        .collect();
    let mut last = failed("the host name resolved to no address".into());
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(stream) => {
                let configured = stream
                    .set_nodelay(true)
                    .and_then(|()| stream.set_nonblocking(true));
                match configured {
                    Ok(()) => return Ok((stream, candidate)),
                    Err(e) => last = failed(e.to_string()),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = failed(format!(
                    "Connecting to {} timed out ({} ms)",
                    address.host_port(),
                    timeout.as_millis()
                ));
            }
            Err(e) => last = failed(e.to_string()),
        }
    }
    Err(last)
}
