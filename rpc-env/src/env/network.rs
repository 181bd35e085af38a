//! The env's side of its connections: a new one is announced to every endpoint and given to
//! an IO thread; a closed one fails the asks that travelled on it and is announced too. On
//! an authenticated env, a connection is announced only once its handshake is done
//! (`io_loop/handshake.rs`), and one that never finished it is never announced.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use mio::net::TcpStream;

use crate::address::RpcAddress;
use crate::connection::{Connection, Direction, IoThread};
use crate::endpoint::NetworkEvent;
use crate::error::RpcError;
use crate::io_loop::IoHandle;
use crate::security::Security;

use super::EnvShared;

/// Inbound connections that may be in their handshake at once. A legitimate handshake takes
/// one round trip, so a few dozen slots serve any burst of real peers; when they are full,
/// the oldest waiter is closed, so idle or slow sockets cannot hold them against newcomers.
const MAX_INBOUND_HANDSHAKES: usize = 64;

impl EnvShared {
    /// A connection over `stream`, watched by the IO thread whose turn it is, and announced
    /// to every endpoint as connected (by the peer's listen address when we know it, else by
    /// its socket address). The caller hands it to the IO thread returned.
    pub(crate) fn new_connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        direction: Direction,
        remote_address: Option<Arc<RpcAddress>>,
    ) -> (Arc<Connection>, Arc<IoHandle>) {
        let io = self.io.pick();
        let authenticating = matches!(self.security, Security::Authenticated { .. });
        let announced = remote_address
            .as_deref()
            .cloned()
            .unwrap_or_else(|| RpcAddress::of_socket(&peer));
        let conn = Arc::new(Connection::new(
            self.next_id(),
            stream,
            peer,
            direction,
            remote_address,
            Arc::clone(&io) as Arc<dyn IoThread>,
            self.max_frame,
            self.limits.outbox_max_bytes,
            authenticating,
            Arc::clone(&self.counters.written),
        ));
        self.open_connections.fetch_add(1, Ordering::AcqRel);
        if !authenticating {
            self.dispatcher
                .broadcast(&NetworkEvent::Connected(announced));
        } else if direction == Direction::Inbound {
            self.hold_handshake_slot(&conn);
        }
        (conn, io)
    }

    /// How many inbound connections may be in their handshake at once: at most half the
    /// connection cap, so unauthenticated sockets can never take every slot.
    fn handshake_slots(&self) -> usize {
        MAX_INBOUND_HANDSHAKES.min((self.limits.max_connections / 2).max(1))
    }

    /// Whether a connection just accepted may stay: yes under the connection cap; at the
    /// cap, only if one still in its handshake can be closed to make room (an
    /// unauthenticated socket never keeps out a peer that may authenticate).
    pub(crate) fn admit_inbound(&self) -> bool {
        if self.open_connections.load(Ordering::Acquire) < self.limits.max_connections {
            return true;
        }
        matches!(self.security, Security::Authenticated { .. })
            && self.evict_oldest_handshake(
                &mut self.handshaking.lock(),
                &format!(
                    "all {} connections ({})",
                    self.limits.max_connections,
                    crate::conf::keys::MAX_CONNECTIONS
                ),
            )
    }

    /// Gives `conn` one of the inbound handshake slots, closing the oldest connection still
    /// in its handshake when they are all taken.
    fn hold_handshake_slot(&self, conn: &Arc<Connection>) {
        let slots = self.handshake_slots();
        let mut waiting = self.handshaking.lock();
        if waiting.len() >= slots {
            // Those done or gone hold no slot.
            waiting.retain(|w| {
                w.upgrade()
                    .is_some_and(|c| c.is_authenticating() && !c.is_closed())
            });
        }
        while waiting.len() >= slots {
            let room_for = format!("all {slots} handshake slots");
            if !self.evict_oldest_handshake(&mut waiting, &room_for) {
                break;
            }
        }
        waiting.push_back(Arc::downgrade(conn));
    }

    /// Closes the oldest inbound connection still in its handshake; `false` if there is
    /// none. `room_for` says what was full, for the error.
    fn evict_oldest_handshake(
        &self,
        waiting: &mut VecDeque<Weak<Connection>>,
        room_for: &str,
    ) -> bool {
        while let Some(oldest) = waiting.pop_front() {
            let Some(oldest) = oldest.upgrade() else {
                continue;
            };
            if !oldest.is_authenticating() || oldest.is_closed() {
                continue;
            }
            oldest.close(Some(RpcError::AuthenticationFailed {
                peer: oldest.peer_name(),
                reason: format!("closed unauthenticated to make room: {room_for} were taken"),
            }));
            return true;
        }
        false
    }

    /// The inbound `conn` named `address` as its listen address: it learns it, and, if no
    /// other live connection speaks for that address, becomes its owner and every endpoint
    /// hears that `address` connected. A second connection naming the same address (a
    /// process that dialled us under two spellings of our address, or one claiming another's)
    /// is known by that address in logs, but its network events stay under its socket address.
    pub(crate) fn learn_listen_address(&self, conn: &Connection, address: &Arc<RpcAddress>) {
        if !conn.learn_remote_address(address) {
            return;
        }
        {
            let mut owners = self.listen_owners.lock();
            if owners.contains_key(&**address) {
                return;
            }
            owners.insert((**address).clone(), conn.id);
        }
        self.dispatcher
            .broadcast(&NetworkEvent::Connected((**address).clone()));
    }

    /// Whether `conn` owned its listen address `address`; if so it no longer does.
    fn release_listen_address(&self, conn: &Connection, address: &RpcAddress) -> bool {
        let mut owners = self.listen_owners.lock();
        if owners.get(address) == Some(&conn.id) {
            owners.remove(address);
            return true;
        }
        false
    }

    /// `conn` has closed: fails the asks that travelled on it (and on the outbox that
    /// opened it), forgets that outbox, and tells every endpoint (unless the env is
    /// stopping), with `reason` as a network error first if there is one.
    pub(crate) fn connection_closed(&self, conn: &Arc<Connection>, reason: Option<RpcError>) {
        self.open_connections.fetch_sub(1, Ordering::AcqRel);
        if conn.is_authenticating() {
            self.handshake_never_finished(conn, reason);
            return;
        }
        let closed = match &reason {
            // The asks waiting on a connection closed for its backlog say so, naming the
            // setting, rather than a bare "closed".
            Some(full @ RpcError::OutboxFull { .. }) => {
                crate::stats::bump(&self.counters.outbox_overflows);
                crate::limited_log!(log::Level::Warn, "{full}");
                full.clone()
            }
            _ => RpcError::ConnectionClosed {
                peer: conn.peer_name(),
            },
        };
        self.registry.fail_route(conn.id, &closed);
        if let Direction::Outbound { outbox_route } = conn.direction {
            self.registry.fail_route(outbox_route, &closed);
            self.forget_outbox(outbox_route);
        }
        if self.is_stopped() {
            return;
        }
        // The endpoints know an outbound peer by its listen address; an inbound one by its
        // socket address, and also by its listen address once a frame named it, if this
        // connection was the one speaking for that address.
        let mut addresses = Vec::new();
        match (conn.direction, conn.remote_address()) {
            (Direction::Outbound { .. }, Some(listen)) => addresses.push((*listen).clone()),
            (_, learned) => {
                addresses.push(RpcAddress::of_socket(&conn.peer));
                if let Some(listen) = learned {
                    if self.release_listen_address(conn, &listen) {
                        addresses.push((*listen).clone());
                    }
                }
            }
        }
        for address in addresses {
            if let Some(error) = &reason {
                self.dispatcher
                    .broadcast(&NetworkEvent::Error(error.clone(), address.clone()));
            }
            self.dispatcher
                .broadcast(&NetworkEvent::Disconnected(address));
        }
    }
}

impl EnvShared {
    /// `conn` closed before its handshake was done: the asks queued for it fail with an
    /// authentication error (the likeliest cause when a peer hangs up mid-handshake), and,
    /// as no endpoint heard of it, none hears it go.
    fn handshake_never_finished(&self, conn: &Arc<Connection>, reason: Option<RpcError>) {
        let error = match reason {
            Some(e @ RpcError::AuthenticationFailed { .. }) => e,
            other => RpcError::AuthenticationFailed {
                peer: conn.peer_name(),
                reason: format!(
                    "the connection closed during the handshake ({}); wrong or missing {} \
                     on one side, or the peer does not authenticate?",
                    other.map_or("by the peer".to_string(), |e| e.to_string()),
                    crate::conf::keys::AUTHENTICATE_SECRET
                ),
            },
        };
        if !self.is_stopped() {
            crate::stats::bump(&self.counters.auth_failures);
            crate::limited_log!(log::Level::Warn, "{error}");
        }
        self.registry.fail_route(conn.id, &error);
        if let Direction::Outbound { outbox_route } = conn.direction {
            self.registry.fail_route(outbox_route, &error);
            self.forget_outbox(outbox_route);
        }
    }
}
