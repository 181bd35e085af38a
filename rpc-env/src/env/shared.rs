//! The state an env's handle, its refs and its threads share, and how a message to a remote
//! endpoint finds its way: the connection a ref came on, or the outbox of its address.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::address::RpcAddress;
use crate::ask::{
    AskHandle, AskShared, CallSlot, LocalCall, LocalPending, RemoteCall, Reply, Ticket,
};
use crate::ask_registry::AskRegistry;
use crate::codec::DecodeContext;
use crate::conf::{Limits, RpcConf, RpcTimeout};
use crate::connection::Connection;
use crate::dispatcher::Dispatcher;
use crate::endpoint::Protocol;
use crate::endpoint_ref::RefInner;
use crate::error::RpcError;
use crate::fast_hash::FastMap;
use crate::frame::{put_message_frame, FrameKind};
use crate::inbox::InboxMessage;
use crate::io_loop::IoThreads;
use crate::outbox::Outbox;
use crate::pending_asks::{PendingAsk, TimeoutInfo, NO_ROUTE};
use crate::security::Security;
use crate::stats::NetworkCounters;

use super::dial::connect_in_background;

/// Where a message arrived: what a decoder inside an env needs to rebuild the refs and the
/// reply port in it.
pub(crate) struct Arrival {
    pub(crate) env: Arc<EnvShared>,
    /// The connection the bytes came on.
    pub(crate) conn: Option<Arc<Connection>>,
    /// The call a request's reply port answers.
    pub(crate) call: Option<Arc<RemoteCall>>,
}

impl DecodeContext for Arrival {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The state shared by an env's handle, its refs and its threads.
pub(crate) struct EnvShared {
    pub(crate) name: String,
    pub(super) conf: RpcConf,
    pub(crate) address: Option<RpcAddress>,
    /// How connections are secured: off, or a handshake keyed by the shared secret.
    pub(crate) security: Security,
    /// Inbound connections still in their handshake, oldest first, for the cap on them
    /// (`network.rs`). Weak: a closed connection's socket is not held open by this list.
    pub(crate) handshaking: Mutex<VecDeque<Weak<Connection>>>,
    /// This env's address as senders put it in inbox messages.
    pub(super) sender_address: Option<Arc<RpcAddress>>,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) registry: Arc<AskRegistry>,
    pub(super) io: IoThreads,
    /// Keyed by peers this env dials; hashed cheaply, as it is looked up on every send.
    pub(super) outboxes: RwLock<FastMap<RpcAddress, Arc<Outbox>>>,
    /// Which inbound connection speaks for each listen address peers named: the first live
    /// one to name it (`network.rs`). Network events under a listen address come only from
    /// its owner, so a connection that names another process's address and hangs up cannot
    /// make the endpoints believe that process went away.
    pub(super) listen_owners: Mutex<FastMap<RpcAddress, u64>>,
    pub(crate) ask_timeout: (Duration, Arc<str>),
    /// `ember.rpc.io.spinWait`: how long askers and IO threads poll before parking.
    pub(crate) spin_wait: Duration,
    /// The file server, once [`RpcEnv::file_server`](crate::RpcEnv::file_server) made it.
    pub(crate) file_server: Mutex<Option<crate::file_server::FileServer>>,
    pub(super) lookup_timeout: RpcTimeout,
    pub(super) connect_timeout: Duration,
    /// The largest frame length field accepted or sent: `ember.rpc.message.maxSize`.
    pub(crate) max_frame: usize,
    /// What the network did: refusals, bad traffic, caps reached.
    pub(crate) counters: NetworkCounters,
    /// The caps on queued bytes and open connections.
    pub(crate) limits: Limits,
    /// Connections open now (made by `new_connection`, not yet reported closed).
    pub(crate) open_connections: AtomicUsize,
    pub(super) next_id: AtomicU64,
    pub(super) stopped: AtomicBool,
    pub(super) terminated: Mutex<bool>,
    pub(super) terminated_signal: Condvar,
}

/// Where a remote message goes.
enum Route {
    Conn(Arc<Connection>),
    Outbox(Arc<Outbox>),
}

impl Route {
    fn id(&self) -> u64 {
        match self {
            Route::Conn(c) => c.id,
            Route::Outbox(o) => o.route,
        }
    }
}

impl EnvShared {
    /// A fresh id for a connection or outbox (never 0, which means "no route").
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Whether a ref points into this env: the same address, or, in a client-mode env, no
    /// address.
    pub(crate) fn is_local(&self, target: &RefInner) -> bool {
        if target.forwarded {
            // It names an endpoint of some other client-mode env, whatever its name.
            return false;
        }
        match (&self.address, target.address.address()) {
            (Some(mine), Some(theirs)) => mine == theirs,
            // As in Spark, a client-mode env sees every address-less ref as its own: one that
            // comes back over a connection can only name an endpoint of this env.
            (None, None) => true,
            _ => false,
        }
    }

    fn route(self: &Arc<Self>, target: &RefInner) -> Result<Route, RpcError> {
        if target.forwarded {
            return Err(RpcError::ForwardedClientRef {
                endpoint: target.address.to_string(),
            });
        }
        if let Some(conn) = &target.conn {
            if !conn.is_closed() {
                return Ok(Route::Conn(Arc::clone(conn)));
            }
            if target.address.address().is_none() {
                return Err(RpcError::ConnectionClosed {
                    peer: conn.peer.to_string(),
                });
            }
        }
        let address = target.address.address().ok_or(RpcError::NoListenAddress)?;
        self.outbox(address)
    }

    fn outbox(self: &Arc<Self>, address: &RpcAddress) -> Result<Route, RpcError> {
        if let Some(outbox) = self.outboxes.read().get(address) {
            return Ok(Route::Outbox(Arc::clone(outbox)));
        }
        let mut outboxes = self.outboxes.write();
        if self.is_stopped() {
            return Err(RpcError::EnvStopped);
        }
        if let Some(outbox) = outboxes.get(address) {
            return Ok(Route::Outbox(Arc::clone(outbox)));
        }
        let outbox = Arc::new(Outbox::new(self.next_id(), address.clone()));
        outboxes.insert(address.clone(), Arc::clone(&outbox));
        drop(outboxes);
        connect_in_background(Arc::clone(self), Arc::clone(&outbox));
        Ok(Route::Outbox(outbox))
    }

    /// Removes the outbox with this route id, if it is still the current one for its peer.
    pub(crate) fn forget_outbox(&self, route: u64) {
        self.outboxes.write().retain(|_, o| o.route != route);
    }

    fn send_on(
        &self,
        route: &Route,
        kind: FrameKind,
        request_id: u64,
        receiver: &str,
        body: &dyn Fn(&mut BytesMut),
    ) -> Result<(), RpcError> {
        let sender = self.address.as_ref();
        let mut frame = |buf: &mut BytesMut| {
            put_message_frame(buf, kind, request_id, sender, receiver, body);
        };
        match route {
            Route::Conn(conn) => conn.send_frame(&mut frame),
            Route::Outbox(outbox) => outbox.send(self.max_frame, request_id, &mut frame),
        }
    }

    /// Puts a one-way message in the inbox of this env's endpoint `name`: never encoded.
    pub(crate) fn send_local<P: Protocol>(
        &self,
        name: &str,
        msg: P::Message,
    ) -> Result<(), RpcError> {
        let inbox = self.dispatcher.lookup_typed::<P>(name)?;
        inbox.post(InboxMessage::OneWay {
            sender: self.sender_address.clone(),
            msg,
        });
        Ok(())
    }

    /// Puts an ask in the inbox of this env's endpoint `name`: the handler's reply goes
    /// straight to the handle, and the registry holds the ask only for its timeout.
    pub(crate) fn ask_local<P: Protocol, T: Send + 'static>(
        &self,
        name: &Arc<str>,
        make: impl FnOnce(Reply<T>) -> P::Ask,
        timeout: TimeoutInfo,
    ) -> AskHandle<T> {
        let sender = self.sender_address.clone();
        self.post_ask::<P, T>(name, timeout, |reply, call| InboxMessage::Ask {
            sender,
            ask: make(reply),
            call,
        })
    }

    /// Puts a control message in the inbox of this env's endpoint `name`: never encoded,
    /// and with no sender, as it comes from this process.
    pub(crate) fn send_control<P: Protocol>(
        &self,
        name: &str,
        msg: P::Control,
    ) -> Result<(), RpcError> {
        let inbox = self.dispatcher.lookup_typed::<P>(name)?;
        inbox.post(InboxMessage::Control { msg, call: None });
        Ok(())
    }

    /// Puts a control message carrying a reply port in the inbox of this env's endpoint
    /// `name`, as [`ask_local`](Self::ask_local) does an ask.
    pub(crate) fn ask_control<P: Protocol, T: Send + 'static>(
        &self,
        name: &Arc<str>,
        make: impl FnOnce(Reply<T>) -> P::Control,
        timeout: TimeoutInfo,
    ) -> AskHandle<T> {
        self.post_ask::<P, T>(name, timeout, |reply, call| InboxMessage::Control {
            msg: make(reply),
            call: Some(call),
        })
    }

    /// The one path of a local ask: registers its timeout, builds the inbox message around
    /// a local reply port with `wrap`, and posts it.
    fn post_ask<P: Protocol, T: Send + 'static>(
        &self,
        name: &Arc<str>,
        timeout: TimeoutInfo,
        wrap: impl FnOnce(Reply<T>, Arc<dyn CallSlot>) -> InboxMessage<P>,
    ) -> AskHandle<T> {
        let inbox = match self.dispatcher.lookup_typed::<P>(name) {
            Ok(inbox) => inbox,
            Err(e) => return AskHandle::failed(e),
        };
        let shared = AskShared::new();
        let pending = Box::new(LocalPending {
            shared: Arc::clone(&shared),
        });
        let Some(id) = self.registry.insert(pending, NO_ROUTE, timeout) else {
            return AskHandle::new(shared, None);
        };
        let ticket = Ticket {
            registry: Arc::clone(&self.registry),
            id,
        };
        let call = Arc::new(LocalCall::new(
            Arc::clone(&shared),
            Some(ticket.clone()),
            Arc::clone(name),
        ));
        let reply = Reply::local(Arc::clone(&call));
        inbox.post(wrap(reply, call));
        AskHandle::new(shared, Some(ticket))
    }

    /// Sends a one-way message to a remote endpoint.
    pub(crate) fn send_remote(
        self: &Arc<Self>,
        target: &RefInner,
        kind: FrameKind,
        body: &dyn Fn(&mut BytesMut),
    ) -> Result<(), RpcError> {
        if self.is_stopped() {
            return Err(RpcError::EnvStopped);
        }
        let route = self.route(target)?;
        self.send_on(&route, kind, 0, &target.name, body)
    }

    /// Sends an ask to a remote endpoint; `pending` is completed by the response, failed by
    /// anything else. Returns the ticket to abort it with.
    pub(crate) fn ask_remote(
        self: &Arc<Self>,
        target: &RefInner,
        pending: Box<dyn PendingAsk>,
        timeout: TimeoutInfo,
        body: &dyn Fn(&mut BytesMut),
    ) -> Option<Ticket> {
        if self.is_stopped() {
            pending.fail(RpcError::EnvStopped);
            return None;
        }
        let route = match self.route(target) {
            Ok(route) => route,
            Err(e) => {
                pending.fail(e);
                return None;
            }
        };
        let id = self.registry.insert(pending, route.id(), timeout)?;
        if let Err(e) = self.send_on(&route, FrameKind::Request, id, &target.name, body) {
            self.registry.fail(id, e);
        }
        Some(Ticket {
            registry: Arc::clone(&self.registry),
            id,
        })
    }
}
