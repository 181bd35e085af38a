//! Carrying out what routing decided: the read state of a connection, the env seen as
//! routing's [`Destinations`], and the one place frames reach inboxes and asks.

use std::sync::Arc;

use bytes::BytesMut;

use crate::address::RpcAddress;
use crate::ask::{CallSlot, RemoteCall};
use crate::connection::Connection;
use crate::env::{Arrival, EnvShared};
use crate::error::RpcError;
use crate::frame::{put_failure_frame, FrameDecoder, FrameKind};
use crate::inbox::InboxEntry;
use crate::pending_asks::PendingAsk;

use super::handshake::ReadPhase;
use super::routing::{route, Action, Destinations, Ignored, ReadRoutes, Routed};

/// Per-connection read state, owned by the IO thread.
pub(super) struct ConnState {
    pub(super) conn: Arc<Connection>,
    /// Bytes read and not yet split into frames.
    pub(super) buf: BytesMut,
    decoder: FrameDecoder,
    pub(super) routes: ReadRoutes<Arc<dyn InboxEntry>>,
    /// How read bytes become frames: the handshake first, on an authenticated env.
    pub(super) phase: ReadPhase,
}

impl ConnState {
    /// Read state for a connection just handed to this IO thread, in `phase`.
    pub(super) fn new(conn: Arc<Connection>, max_frame: usize, phase: ReadPhase) -> ConnState {
        ConnState {
            routes: ReadRoutes::new(conn.id, conn.direction, RpcAddress::of_socket(&conn.peer)),
            conn,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(max_frame),
            phase,
        }
    }

    /// Whether the handshake is still going on.
    pub(super) fn is_handshaking(&self) -> bool {
        matches!(self.phase, ReadPhase::Handshaking { .. })
    }
}

/// The env's endpoints (its dispatcher) and asks (its registry).
struct EnvDestinations<'a>(&'a EnvShared);

impl Destinations for EnvDestinations<'_> {
    type Inbox = Arc<dyn InboxEntry>;
    type Ask = Box<dyn PendingAsk>;

    fn generation(&self) -> u64 {
        self.0.dispatcher.generation()
    }

    fn endpoint(&self, name: &str) -> Option<Self::Inbox> {
        self.0.dispatcher.lookup(name).ok()
    }

    fn take_answered(&self, request_id: u64, routes: [u64; 2]) -> Option<Self::Ask> {
        self.0.registry.take_answered_on(request_id, routes)
    }
}

/// Routes and delivers every whole frame in the connection's buffer; an error closes the
/// connection.
pub(super) fn route_frames(env: &Arc<EnvShared>, state: &mut ConnState) -> Result<(), RpcError> {
    // Counted once per chunk, not per frame: the counter is shared by every IO thread.
    let mut frames = 0;
    let counted = |frames| crate::stats::add(&env.counters.frames_read, frames);
    loop {
        let frame = match state.decoder.decode(&mut state.buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                counted(frames);
                return Ok(());
            }
            Err(e) => {
                return Err(RpcError::Io {
                    context: "Malformed frame".into(),
                    reason: e.to_string(),
                })
            }
        };
        frames += 1;
        let routed = route(frame, &mut state.routes, &EnvDestinations(env))?;
        deliver(env, &state.conn, routed)?;
    }
}

/// Does what routing decided for one frame.
// Inlined for the same reason as `route`: it runs once per frame read.
#[inline]
fn deliver(
    env: &Arc<EnvShared>,
    conn: &Arc<Connection>,
    routed: Routed<Arc<dyn InboxEntry>, Box<dyn PendingAsk>>,
) -> Result<(), RpcError> {
    if let Some(address) = routed.learned {
        env.learn_listen_address(conn, &address);
    }
    let arrival = |call: Option<Arc<RemoteCall>>| Arrival {
        env: Arc::clone(env),
        conn: Some(Arc::clone(conn)),
        call,
    };
    match routed.action {
        Action::Deliver {
            inbox,
            kind,
            request_id,
            sender,
            body,
        } => {
            let call = (kind == FrameKind::Request).then(|| {
                Arc::new(RemoteCall::new(
                    Arc::clone(conn),
                    request_id,
                    Arc::clone(inbox.name()),
                ))
            });
            let arrival = arrival(call.clone());
            if let Err(e) = inbox.post_remote(kind, Some(sender), body, &arrival) {
                let error = RpcError::Decode(e);
                if let Some(call) = call {
                    call.fail(error.clone());
                }
                return Err(error);
            }
        }
        Action::Refuse { request_id, error } => {
            crate::stats::bump(&env.counters.unroutable_messages);
            let _ = conn.send_answer(&mut |buf| {
                put_failure_frame(buf, request_id, &error);
            });
        }
        Action::Drop { error } => {
            if env.is_stopped() {
                log::debug!("{error} (the env is stopping)");
            } else {
                crate::stats::bump(&env.counters.unroutable_messages);
                // Any peer can send these at will: a few lines and a count, not a flood.
                crate::limited_log!(log::Level::Error, "{error}");
            }
        }
        Action::Complete { ask, body } => {
            ask.complete(body, &arrival(None))
                .map_err(RpcError::Decode)?;
        }
        Action::Fail { ask, error } => ask.fail(error),
        Action::Ignore { request_id, what } => match what {
            Ignored::Response { bytes } => log::debug!(
                "Ignoring response for RPC {request_id} from {} ({bytes} bytes) since it is not \
                 outstanding",
                conn.peer_name()
            ),
            Ignored::Failure(error) => log::debug!(
                "Ignoring failure of RPC {request_id} from {} since it is not outstanding: \
                 {error}",
                conn.peer_name()
            ),
        },
    }
    Ok(())
}
