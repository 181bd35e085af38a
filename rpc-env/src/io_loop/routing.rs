//! Routing what an IO thread read: frames split off a connection's buffer go to inboxes
//! (requests and one-way messages) or to the asks waiting in the registry (responses and
//! failures).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::address::RpcAddress;
use crate::ask::{CallSlot, RemoteCall};
use crate::connection::{Connection, Direction};
use crate::endpoint::NetworkEvent;
use crate::env::{Arrival, EnvShared};
use crate::error::RpcError;
use crate::frame::{
    parse_failure, put_failure_frame, EndpointHeader, Frame, FrameDecoder, FrameKind,
};
use crate::inbox::InboxEntry;

use super::socket_rpc_address;

/// Per-connection read state, owned by the IO thread.
pub(super) struct ConnState {
    pub(super) conn: Arc<Connection>,
    /// Bytes read and not yet split into frames.
    pub(super) buf: BytesMut,
    decoder: FrameDecoder,
    /// The socket address as an `RpcAddress`, the sender of client-mode peers' messages.
    socket_address: Arc<RpcAddress>,
    /// The last sender header seen and what it parsed to; one peer sends the same one.
    last_sender: Option<(Bytes, Option<Arc<RpcAddress>>)>,
    /// The last receiver looked up, valid while the dispatcher generation is unchanged.
    last_receiver: Option<(Bytes, u64, Arc<dyn InboxEntry>)>,
}

impl ConnState {
    /// Read state for a connection just handed to this IO thread.
    pub(super) fn new(conn: Arc<Connection>, max_frame: usize) -> ConnState {
        ConnState {
            socket_address: Arc::new(socket_rpc_address(&conn.peer)),
            conn,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(max_frame),
            last_sender: None,
            last_receiver: None,
        }
    }
}

/// Routes every whole frame in the connection's buffer; an error closes the connection.
pub(super) fn route_frames(env: &Arc<EnvShared>, state: &mut ConnState) -> Result<(), RpcError> {
    loop {
        let frame = match state.decoder.decode(&mut state.buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(e) => {
                return Err(RpcError::Io {
                    context: "Malformed frame".into(),
                    reason: e.to_string(),
                })
            }
        };
        route_frame(env, state, frame)?;
    }
}

fn route_frame(env: &Arc<EnvShared>, state: &mut ConnState, frame: Frame) -> Result<(), RpcError> {
    let conn = Arc::clone(&state.conn);
    let ctx = |call: Option<Arc<RemoteCall>>| Arrival {
        env: Arc::clone(env),
        conn: Some(Arc::clone(&conn)),
        call,
    };
    match frame.kind {
        FrameKind::Request | FrameKind::OneWay => {
            let header = EndpointHeader::parse(frame.payload)?;
            let sender = sender_of(env, state, &header)?;
            let Some(inbox) = receiver_of(env, state, &header) else {
                let error = RpcError::EndpointNotFound {
                    name: header.receiver_name().to_string(),
                };
                if frame.kind == FrameKind::Request {
                    let id = frame.request_id;
                    let _ = state.conn.send_frame(&mut |buf| {
                        put_failure_frame(buf, id, &error);
                    });
                } else if env.is_stopped() {
                    log::debug!("{error} (the env is stopping)");
                } else {
                    log::error!("{error}");
                }
                return Ok(());
            };
            let call = (frame.kind == FrameKind::Request).then(|| {
                Arc::new(RemoteCall::new(
                    Arc::clone(&state.conn),
                    frame.request_id,
                    Arc::clone(inbox.name()),
                ))
            });
            let ctx = ctx(call.clone());
            if let Err(e) = inbox.post_remote(frame.kind, sender, header.into_body(), &ctx) {
                let error = RpcError::Decode(e);
                if let Some(call) = call {
                    call.fail(error.clone());
                }
                return Err(error);
            }
        }
        FrameKind::Response => match env
            .registry
            .take_answered_on(frame.request_id, routes_of(&conn))
        {
            Some(pending) => {
                pending
                    .complete(frame.payload, &ctx(None))
                    .map_err(RpcError::Decode)?;
            }
            None => log::debug!(
                "Ignoring response for RPC {} from {} ({} bytes) since it is not outstanding",
                frame.request_id,
                state.conn.peer_name(),
                frame.payload.len()
            ),
        },
        FrameKind::Failure => {
            let error = parse_failure(frame.payload)?;
            match env
                .registry
                .take_answered_on(frame.request_id, routes_of(&conn))
            {
                Some(pending) => pending.fail(error),
                None => log::debug!(
                    "Ignoring failure of RPC {} from {} since it is not outstanding: {error}",
                    frame.request_id,
                    state.conn.peer_name()
                ),
            }
        }
    }
    Ok(())
}

/// The routes an answer on `conn` may belong to: the connection itself (asks sent on a ref
/// that arrived on it) and the outbox that opened it.
fn routes_of(conn: &Connection) -> [u64; 2] {
    match conn.direction {
        Direction::Outbound { outbox_route } => [conn.id, outbox_route],
        Direction::Inbound => [conn.id, conn.id],
    }
}

/// The sender of a message: the address in its header, or the socket address of a
/// client-mode peer. The first header address seen on an inbound connection is announced to
/// every endpoint as connected, as Spark does.
fn sender_of(
    env: &Arc<EnvShared>,
    state: &mut ConnState,
    header: &EndpointHeader,
) -> Result<Option<Arc<RpcAddress>>, RpcError> {
    let parsed = match &state.last_sender {
        Some((raw, parsed)) if raw[..] == *header.sender_raw() => parsed.clone(),
        _ => {
            let parsed = header.sender()?.map(Arc::new);
            if let Some(address) = &parsed {
                if state.conn.direction == Direction::Inbound
                    && state.conn.learn_remote_address(address)
                {
                    env.dispatcher
                        .broadcast(&NetworkEvent::Connected((**address).clone()));
                }
            }
            state.last_sender = Some((Bytes::copy_from_slice(header.sender_raw()), parsed.clone()));
            parsed
        }
    };
    Ok(Some(
        parsed.unwrap_or_else(|| Arc::clone(&state.socket_address)),
    ))
}

fn receiver_of(
    env: &Arc<EnvShared>,
    state: &mut ConnState,
    header: &EndpointHeader,
) -> Option<Arc<dyn InboxEntry>> {
    let generation = env.dispatcher.generation();
    if let Some((name, seen, inbox)) = &state.last_receiver {
        if *seen == generation && name[..] == *header.receiver() {
            return Some(Arc::clone(inbox));
        }
    }
    let inbox = env.dispatcher.lookup(header.receiver_name()).ok()?;
    state.last_receiver = Some((
        Bytes::copy_from_slice(header.receiver()),
        generation,
        Arc::clone(&inbox),
    ));
    Some(inbox)
}
