//! Routing what an IO thread read: a pure function from one frame to what to do with it.
//!
//! Requests and one-way messages go to an endpoint's inbox, responses and failures to the
//! ask waiting for them. [`route`] decides which, with the env's endpoints and asks seen
//! through [`Destinations`] and the per-connection memory in [`ReadRoutes`]; it touches no
//! socket, thread or env, so every case is unit-tested below. The IO loop carries out the
//! decision (`deliver.rs`).

use std::sync::Arc;

use bytes::Bytes;

use crate::address::RpcAddress;
use crate::connection::Direction;
use crate::error::RpcError;
use crate::frame::{parse_failure, EndpointHeader, Frame, FrameKind};

/// The env's endpoints and waiting asks, as routing sees them.
pub(super) trait Destinations {
    /// An endpoint's inbox.
    type Inbox: Clone;
    /// An ask waiting for its answer.
    type Ask;
    /// The endpoint registration generation: a remembered lookup is valid while it stays.
    fn generation(&self) -> u64;
    /// The inbox of the endpoint `name`, if one is registered.
    fn endpoint(&self, name: &str) -> Option<Self::Inbox>;
    /// Takes out the ask `request_id` if it went out on one of `routes`.
    fn take_answered(&self, request_id: u64, routes: [u64; 2]) -> Option<Self::Ask>;
}

/// Who the peer of a connection is, as far as the senders its frames name go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PeerIdentity {
    /// We dialled it: its frames name the address it advertises, which may be another
    /// spelling of the one we dialled.
    Dialled,
    /// It dialled us and has not named itself yet: no handshake, no message frame.
    Unnamed,
    /// It dialled us and named itself, in the handshake or in its first message frame
    /// (`None`: a client-mode peer). Every later frame must name the same sender: one
    /// connection cannot speak for two processes.
    Named(Option<Arc<RpcAddress>>),
}

/// What routing remembers about one connection between frames.
pub(super) struct ReadRoutes<I> {
    /// The routes an answer on this connection may belong to: the connection itself (asks
    /// sent on a ref that arrived on it) and the outbox that opened it.
    answer_routes: [u64; 2],
    /// The socket address, the sender of a client-mode peer's messages.
    socket_address: Arc<RpcAddress>,
    /// Who the peer says it is, and so which sender its frames may name.
    identity: PeerIdentity,
    /// The last sender header seen and what it parsed to; one peer sends the same one.
    last_sender: Option<(Bytes, Option<Arc<RpcAddress>>)>,
    /// The last receiver looked up, valid while the registration generation is unchanged.
    last_receiver: Option<(Bytes, u64, I)>,
}

impl<I: Clone> ReadRoutes<I> {
    /// Routing memory for a new connection `id`.
    pub(super) fn new(id: u64, direction: Direction, socket_address: RpcAddress) -> Self {
        let (answer_routes, identity) = match direction {
            Direction::Outbound { outbox_route } => ([id, outbox_route], PeerIdentity::Dialled),
            Direction::Inbound => ([id, id], PeerIdentity::Unnamed),
        };
        ReadRoutes {
            answer_routes,
            socket_address: Arc::new(socket_address),
            identity,
            last_sender: None,
            last_receiver: None,
        }
    }

    /// The peer named itself in the handshake (`None`: client mode): its frames must name
    /// the same sender.
    pub(super) fn pin(&mut self, listen: Option<Arc<RpcAddress>>) {
        self.identity = PeerIdentity::Named(listen);
    }

    /// The sender of a message: the address in its header, or the socket address of a
    /// client-mode peer. Also says whether this is the first listen address seen on a
    /// connection the peer opened. A header naming another sender than the peer named
    /// before is an error: the connection closes.
    fn sender_of(
        &mut self,
        header: &EndpointHeader,
    ) -> Result<(Arc<RpcAddress>, Option<Arc<RpcAddress>>), RpcError> {
        let mut learned = None;
        let parsed = match &self.last_sender {
            Some((raw, parsed)) if raw[..] == *header.sender_raw() => parsed.clone(),
            _ => {
                // A header not seen just before: checked against who the peer is (the
                // cached one already was, so the common case costs a comparison).
                let parsed = header.sender()?.map(Arc::new);
                match &self.identity {
                    PeerIdentity::Dialled => {}
                    PeerIdentity::Unnamed => {
                        learned = parsed.clone();
                        self.identity = PeerIdentity::Named(parsed.clone());
                    }
                    PeerIdentity::Named(named) => {
                        if named.as_deref() != parsed.as_deref() {
                            let name = |a: Option<&RpcAddress>| {
                                a.map_or("no address (client mode)".to_string(), |a| a.host_port())
                            };
                            return Err(RpcError::Io {
                                context: "Forged sender".into(),
                                reason: format!(
                                    "a frame names {} as its sender, but the peer is {}",
                                    name(parsed.as_deref()),
                                    name(named.as_deref())
                                ),
                            });
                        }
                    }
                }
                let raw = Bytes::copy_from_slice(header.sender_raw());
                self.last_sender = Some((raw, parsed.clone()));
                parsed
            }
        };
        let sender = parsed.unwrap_or_else(|| Arc::clone(&self.socket_address));
        Ok((sender, learned))
    }

    fn receiver_of<D: Destinations<Inbox = I>>(
        &mut self,
        header: &EndpointHeader,
        destinations: &D,
    ) -> Option<I> {
        let generation = destinations.generation();
        if let Some((name, seen, inbox)) = &self.last_receiver {
            if *seen == generation && name[..] == *header.receiver() {
                return Some(inbox.clone());
            }
        }
        let inbox = destinations.endpoint(header.receiver_name())?;
        let name = Bytes::copy_from_slice(header.receiver());
        self.last_receiver = Some((name, generation, inbox.clone()));
        Some(inbox)
    }
}

/// What the IO thread does with one frame.
#[derive(Debug)]
pub(super) struct Routed<I, A> {
    /// The peer's listen address, first learned from this frame: every endpoint hears that
    /// it connected (as in Spark, the address, not the socket, is what endpoints know).
    pub(super) learned: Option<Arc<RpcAddress>>,
    /// Where the frame goes.
    pub(super) action: Action<I, A>,
}

/// Where one frame goes.
#[derive(Debug)]
pub(super) enum Action<I, A> {
    /// To this inbox, which decodes the body as a message of its endpoint.
    Deliver {
        inbox: I,
        kind: FrameKind,
        request_id: u64,
        sender: Arc<RpcAddress>,
        body: Bytes,
    },
    /// A request for an endpoint that is not here: answer it with this failure.
    Refuse { request_id: u64, error: RpcError },
    /// A one-way message for an endpoint that is not here: dropped, and logged.
    Drop { error: RpcError },
    /// The answer to a waiting ask.
    Complete { ask: A, body: Bytes },
    /// The failure of a waiting ask.
    Fail { ask: A, error: RpcError },
    /// An answer no ask here waits for (late, aborted, or meant for another connection).
    Ignore {
        request_id: u64,
        /// What came: a response's size or a failure's error, for the log.
        what: Ignored,
    },
}

/// An answer that was ignored, for the log.
#[derive(Debug)]
pub(super) enum Ignored {
    Response { bytes: usize },
    Failure(RpcError),
}

/// Decides where `frame` goes. An error means the bytes are malformed and the connection
/// must close.
// Inlined into the IO loop's per-frame loop: returned out of line, the decision is moved
// through memory for every frame, and one-way sends measured 4-6% slower.
#[inline]
pub(super) fn route<D: Destinations>(
    frame: Frame,
    routes: &mut ReadRoutes<D::Inbox>,
    destinations: &D,
) -> Result<Routed<D::Inbox, D::Ask>, RpcError> {
    let request_id = frame.request_id;
    match frame.kind {
        FrameKind::Request | FrameKind::OneWay => {
            let header = EndpointHeader::parse(frame.payload)?;
            let (sender, learned) = routes.sender_of(&header)?;
            let action = match routes.receiver_of(&header, destinations) {
                Some(inbox) => Action::Deliver {
                    inbox,
                    kind: frame.kind,
                    request_id,
                    sender,
                    body: header.into_body(),
                },
                None => {
                    let error = RpcError::EndpointNotFound {
                        name: header.receiver_name().to_string(),
                    };
                    if frame.kind == FrameKind::Request {
                        Action::Refuse { request_id, error }
                    } else {
                        Action::Drop { error }
                    }
                }
            };
            Ok(Routed { learned, action })
        }
        FrameKind::Response => {
            let action = match destinations.take_answered(request_id, routes.answer_routes) {
                Some(ask) => Action::Complete {
                    ask,
                    body: frame.payload,
                },
                None => Action::Ignore {
                    request_id,
                    what: Ignored::Response {
                        bytes: frame.payload.len(),
                    },
                },
            };
            Ok(Routed {
                learned: None,
                action,
            })
        }
        FrameKind::Failure => {
            let error = parse_failure(frame.payload)?;
            let action = match destinations.take_answered(request_id, routes.answer_routes) {
                Some(ask) => Action::Fail { ask, error },
                None => Action::Ignore {
                    request_id,
                    what: Ignored::Failure(error),
                },
            };
            Ok(Routed {
                learned: None,
                action,
            })
        }
    }
}

#[cfg(test)]
mod tests;
