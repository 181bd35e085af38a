//! The env's side of its connections: a new one is announced to every endpoint and given to
//! an IO thread; a closed one fails the asks that travelled on it and is announced too.

use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::TcpStream;

use crate::address::RpcAddress;
use crate::connection::{Connection, Direction, IoThread};
use crate::endpoint::NetworkEvent;
use crate::error::RpcError;
use crate::io_loop::IoHandle;

use super::EnvShared;

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
        ));
        self.dispatcher
            .broadcast(&NetworkEvent::Connected(announced));
        (conn, io)
    }

    /// `conn` has closed: fails the asks that travelled on it (and on the outbox that
    /// opened it), forgets that outbox, and tells every endpoint (unless the env is
    /// stopping), with `reason` as a network error first if there is one.
    pub(crate) fn connection_closed(&self, conn: &Arc<Connection>, reason: Option<RpcError>) {
        let closed = RpcError::ConnectionClosed {
            peer: conn.peer_name(),
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
        // socket address, and also by its listen address once a frame named it.
        let mut addresses = Vec::new();
        match (conn.direction, conn.remote_address()) {
            (Direction::Outbound { .. }, Some(listen)) => addresses.push((*listen).clone()),
            (_, learned) => {
                addresses.push(RpcAddress::of_socket(&conn.peer));
                if let Some(listen) = learned {
                    addresses.push((*listen).clone());
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
