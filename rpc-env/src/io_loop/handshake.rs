//! The read side of a connection's security: the handshake that comes before any frame, and
//! the records that carry frames after it on an encrypted connection.
//!
//! Bytes read from the socket go through [`ReadPhase`]: as they are (no authentication, or
//! authenticated without encryption), into the handshake, or opened as records. Until the
//! handshake is done nothing is routed: no frame reaches an endpoint and no endpoint hears
//! of the peer; what is buffered meanwhile is one partial handshake message (at most a
//! KiB). The initiator (the side that connected) sends its first message when the IO thread
//! takes the connection ([`start`]).

use std::sync::Arc;

use bytes::BytesMut;

use crate::address::RpcAddress;
use crate::conf::keys;
use crate::connection::{Connection, Direction};
use crate::endpoint::NetworkEvent;
use crate::env::EnvShared;
use crate::error::RpcError;
use crate::security::noise::{Handshake, NoiseError, NoiseOpener, Progress};
use crate::security::Security;

/// How the bytes read from one connection become frames. One enum: a connection is in
/// exactly one of these.
pub(super) enum ReadPhase {
    /// The bytes are frames: no authentication, or authenticated without encryption.
    Frames,
    /// The handshake is not done; `wire` holds a partial handshake message.
    Handshaking {
        handshake: Box<Handshake>,
        wire: BytesMut,
    },
    /// The bytes are records to open; `wire` holds a partial one.
    Decrypting { opener: NoiseOpener, wire: BytesMut },
    /// The handshake failed; the connection is closing and its bytes are ignored.
    Failed,
}

/// What came of the bytes just read.
pub(super) enum Absorbed {
    /// Frames may be routed from the connection's buffer.
    Frames,
    /// Nothing to route yet (the handshake goes on).
    Nothing,
}

/// The read phase a new connection starts in, sending the initiator's first message on an
/// outbound connection. An error closes the connection.
pub(super) fn start(env: &EnvShared, conn: &Connection) -> Result<ReadPhase, RpcError> {
    let Security::Authenticated { secret, .. } = &env.security else {
        return Ok(ReadPhase::Frames);
    };
    let failed = |e: NoiseError| auth_failed(conn, &e.to_string());
    let handshake = match conn.direction {
        Direction::Outbound { .. } => {
            let mut out = Vec::new();
            let listen = env.address.as_ref().map(RpcAddress::host_port);
            let handshake = Handshake::initiator(secret, listen, &mut out).map_err(failed)?;
            conn.write_handshake(&out).map_err(|e| RpcError::Io {
                context: format!("Sending the handshake to {}", conn.peer_name()),
                reason: e.to_string(),
            })?;
            handshake
        }
        Direction::Inbound => Handshake::responder(secret).map_err(failed)?,
    };
    Ok(ReadPhase::Handshaking {
        handshake: Box::new(handshake),
        wire: BytesMut::new(),
    })
}

/// Moves `bytes` (just read) through the phase into `buf`, the frames to route. Finishes
/// the handshake when its last message is in: the peer is announced to every endpoint and
/// what was queued for it leaves. An error closes the connection.
pub(super) fn absorb(
    env: &EnvShared,
    conn: &Arc<Connection>,
    phase: &mut ReadPhase,
    pin: &mut dyn FnMut(Option<Arc<RpcAddress>>),
    bytes: &[u8],
    buf: &mut BytesMut,
) -> Result<Absorbed, RpcError> {
    match phase {
        ReadPhase::Frames => {
            buf.extend_from_slice(bytes);
            Ok(Absorbed::Frames)
        }
        ReadPhase::Decrypting { opener, wire } => {
            wire.extend_from_slice(bytes);
            opener.open(wire, buf).map_err(|e| RpcError::Io {
                context: format!("Connection from {}", conn.peer_name()),
                reason: e.to_string(),
            })?;
            Ok(Absorbed::Frames)
        }
        ReadPhase::Failed => Ok(Absorbed::Nothing),
        ReadPhase::Handshaking { handshake, wire } => {
            wire.extend_from_slice(bytes);
            let mut out = Vec::new();
            let progress = handshake.feed(wire, &mut out);
            let progress = match progress {
                Ok(p) => p,
                Err(e) => {
                    *phase = ReadPhase::Failed;
                    return Err(auth_failed(conn, &e.to_string()));
                }
            };
            let initiator = matches!(conn.direction, Direction::Outbound { .. });
            if !initiator && !out.is_empty() {
                // The responder's message 2; the initiator's `out` is its sealed address
                // record, which goes through the write queue, before the frames.
                conn.write_handshake(&out).map_err(|e| RpcError::Io {
                    context: format!("Answering the handshake of {}", conn.peer_name()),
                    reason: e.to_string(),
                })?;
                out.clear();
            }
            let Progress::Done {
                transport,
                peer_listen,
            } = progress
            else {
                return Ok(Absorbed::Nothing);
            };
            let leftover = std::mem::take(wire);
            let encrypt = matches!(env.security, Security::Authenticated { encrypt: true, .. });
            let (sealer, mut next) = if encrypt {
                (
                    Some(transport.sending),
                    ReadPhase::Decrypting {
                        opener: transport.receiving,
                        wire: BytesMut::new(),
                    },
                )
            } else {
                (None, ReadPhase::Frames)
            };
            let listen = match (&conn.direction, peer_listen) {
                (Direction::Inbound, Some(listen)) => Some(parse_listen(conn, &listen)?),
                _ => None,
            };
            if conn.direction == Direction::Inbound {
                pin(listen.clone());
            }
            conn.handshake_done(sealer, out);
            announce(env, conn, listen);
            match &mut next {
                ReadPhase::Decrypting { opener, wire } => {
                    *wire = leftover;
                    opener.open(wire, buf).map_err(|e| RpcError::Io {
                        context: format!("Connection from {}", conn.peer_name()),
                        reason: e.to_string(),
                    })?;
                }
                _ => buf.extend_from_slice(&leftover),
            }
            *phase = next;
            Ok(Absorbed::Frames)
        }
    }
}

/// The initiator's listen address from its address record.
fn parse_listen(conn: &Connection, listen: &str) -> Result<Arc<RpcAddress>, RpcError> {
    RpcAddress::from_ember_url(&format!("ember://{listen}"))
        .map(Arc::new)
        .map_err(|_| auth_failed(conn, "the peer sent a malformed listen address"))
}

/// The peer is authenticated: every endpoint hears that it connected, by the address it is
/// known by (as an unauthenticated connection is announced when it opens).
fn announce(env: &EnvShared, conn: &Connection, listen: Option<Arc<RpcAddress>>) {
    match conn.direction {
        Direction::Outbound { .. } => {
            if let Some(address) = conn.remote_address() {
                env.dispatcher
                    .broadcast(&NetworkEvent::Connected((*address).clone()));
            }
        }
        Direction::Inbound => {
            env.dispatcher
                .broadcast(&NetworkEvent::Connected(RpcAddress::of_socket(&conn.peer)));
            if let Some(address) = listen {
                env.learn_listen_address(conn, &address);
            }
        }
    }
}

/// The error a failed handshake closes its connection with, and fails its asks with.
pub(super) fn auth_failed(conn: &Connection, what: &str) -> RpcError {
    RpcError::AuthenticationFailed {
        peer: conn.peer_name(),
        reason: format!(
            "{what}; wrong or missing {} on one side?",
            keys::AUTHENTICATE_SECRET
        ),
    }
}
