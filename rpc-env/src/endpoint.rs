//! Endpoints: the [`RpcEndpoint`] trait, its [`Protocol`], and the context handlers get.
//!
//! An endpoint is a named, serial actor: the env calls `on_start` first, then one handler
//! at a time with `&mut self`, then `on_stop` last. Its messages are typed by its protocol:
//! one enum of one-way messages and one enum of asks, each ask variant carrying a
//! [`Reply<T>`](crate::Reply) whose `T` is the reply type, both of which may come from the
//! network; and one enum of control messages, which only this process can send (through a
//! [`ControlRef`](crate::ControlRef)), because it has no wire encoding at all.
//!
//! There are two endpoint traits with the same callbacks, on purpose. A serial endpoint
//! ([`RpcEndpoint`], nearly every endpoint: master, worker, driver) handles one message at a
//! time on `&mut self`, so its state needs no locks. A concurrent one
//! ([`ConcurrentRpcEndpoint`]) runs handlers on several threads at once on `&self` and keeps
//! its state behind its own locks. One trait would have to pick one receiver: `&self` would
//! push interior mutability on every serial endpoint, and `&mut self` cannot run twice at
//! once. Behind the inbox both are one `Handler` (`inbox/handler.rs`), and the dispatcher
//! registers both through one path.

use std::fmt;
use std::sync::Arc;

use crate::address::RpcAddress;
use crate::codec::{Decode, DecodeError, Encode, Reader};
use crate::control_ref::ControlRef;
use crate::endpoint_ref::EndpointRef;
use crate::env::RpcEnv;
use crate::error::{EndpointError, RpcError};

/// The message types of an endpoint; an [`EndpointRef`] is typed by its protocol.
///
/// Several endpoint types may share one protocol (a real endpoint and a test double, say).
///
/// A protocol has a fingerprint, its [name](Protocol::protocol_name) and
/// [version](Protocol::PROTOCOL_VERSION), which a lookup
/// ([`RpcEnv::setup_endpoint_ref`](crate::RpcEnv::setup_endpoint_ref)) compares with the
/// endpoint's, so a ref of the wrong type fails there, naming both, rather than at its first
/// message. Both have defaults: an `impl Protocol` needs neither. A protocol whose
/// `Message` and `Ask` are both [`NoMessage`] matches any endpoint, as its refs can carry
/// nothing.
pub trait Protocol: Send + Sync + 'static {
    /// The protocol's version, part of its fingerprint: raise it when a message changes in
    /// a way the other side's decoder would misread, so that old and new processes fail to
    /// look each other up instead of misreading each other.
    const PROTOCOL_VERSION: u32 = 1;

    /// The protocol's name, part of its fingerprint. The default is the implementing type's
    /// name without its module path (`KvProtocol`), so that two binaries declaring the same
    /// protocol in different modules still agree; override it when two protocols of one
    /// system share a type name.
    fn protocol_name() -> &'static str {
        short_type_name(std::any::type_name::<Self>())
    }

    /// One-way messages, handled by [`RpcEndpoint::receive`].
    type Message: Encode + Decode + Send + 'static;
    /// Asks, handled by [`RpcEndpoint::receive_and_reply`]; each carries its reply port.
    type Ask: Encode + Decode + Send + 'static;
    /// Control messages, handled by [`RpcEndpoint::receive_control`]: what only this
    /// process may say (submit a job, fire a timer). They are sent through a
    /// [`ControlRef`](crate::ControlRef), which only the env hands out and which cannot
    /// travel in a message, and they have no `Encode` / `Decode`: no peer can even write
    /// one, whatever bytes it sends. A variant may carry a [`Reply<T>`](crate::Reply), for
    /// [`ControlRef::ask`](crate::ControlRef::ask). [`NoMessage`] for a protocol without.
    type Control: Send + 'static;
}

/// `a::b::Name` -> `Name`. A generic type keeps its full name: its parameters are part of
/// what it is, and their paths cannot be stripped without allocating.
fn short_type_name(full: &'static str) -> &'static str {
    if full.contains('<') {
        return full;
    }
    full.rsplit("::").next().unwrap_or(full)
}

/// A protocol's fingerprint as a lookup compares it: its name and version.
pub(crate) fn fingerprint<P: Protocol>() -> (&'static str, u32) {
    (P::protocol_name(), P::PROTOCOL_VERSION)
}

/// Whether refs of `P` can carry nothing to the endpoint (no one-way messages, no asks).
pub(crate) fn carries_nothing<P: Protocol>() -> bool {
    use std::any::TypeId;
    TypeId::of::<P::Message>() == TypeId::of::<NoMessage>()
        && TypeId::of::<P::Ask>() == TypeId::of::<NoMessage>()
}

/// A message type with no values, for a protocol without one-way messages, asks or control
/// messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMessage {}

impl Encode for NoMessage {
    fn encode(&self, _buf: &mut bytes::BytesMut) {
        match *self {}
    }
}

impl Decode for NoMessage {
    fn decode(_r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Err(DecodeError::InvalidValue {
            what: "this endpoint takes no messages of this kind",
        })
    }
}

/// Where an endpoint's handlers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Threading {
    /// On the env's shared loop (`ember.rpc.dispatcher.numThreads` threads), one handler of
    /// this endpoint at a time.
    #[default]
    Shared,
    /// On a loop of its own (Spark's `IsolatedRpcEndpoint`), so a slow endpoint cannot
    /// starve the shared loop nor be starved by it. A serial endpoint uses one thread.
    Dedicated,
    /// On the shared loop, except that a message for an idle endpoint is handled right on
    /// the thread that delivers it: the IO thread that read it from the network, or the
    /// thread that sent it locally. That saves a thread hand-off per message (and the
    /// answers to a batch of remote messages leave in one write). For endpoints whose
    /// handlers are short and never block: on an IO thread, waiting for an ask fails at
    /// once rather than stall the connections that thread serves.
    Inline,
}

/// A named endpoint: lifecycle callbacks and message handlers, all on `&mut self`.
///
/// Handlers must not block: a handler that needs an answer from elsewhere asks without
/// waiting and has the answer sent back to itself as a message. A handler that returns an
/// error, or panics, has [`on_error`](Self::on_error) called; the endpoint keeps running,
/// and an ask being handled is failed with the panic's message.
pub trait RpcEndpoint: Send + 'static {
    /// The messages this endpoint takes.
    type Protocol: Protocol;

    /// Where the handlers run; asked once, at registration.
    fn threading(&self) -> Threading {
        Threading::Shared
    }

    /// Runs before any message is handled.
    fn on_start(&mut self, _ctx: &EndpointContext<'_, Self::Protocol>) -> HandlerResult {
        Ok(())
    }

    /// Handles a one-way message.
    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, Self::Protocol>,
        _msg: <Self::Protocol as Protocol>::Message,
    ) -> HandlerResult {
        Err(EndpointError::msg(format!(
            "{} does not implement 'receive'",
            ctx.name()
        )))
    }

    /// Handles an ask. Answer through the reply port inside `ask`, now or later from any
    /// thread; a port dropped without an answer fails the ask at once.
    fn receive_and_reply(
        &mut self,
        _ctx: &EndpointContext<'_, Self::Protocol>,
        _ask: <Self::Protocol as Protocol>::Ask,
    ) -> HandlerResult {
        Ok(())
    }

    /// Handles a control message from this process (see [`Protocol::Control`]). An ask
    /// among them is answered through the reply port it carries, as in
    /// [`receive_and_reply`](Self::receive_and_reply). The context has no sender.
    fn receive_control(
        &mut self,
        ctx: &EndpointContext<'_, Self::Protocol>,
        _msg: <Self::Protocol as Protocol>::Control,
    ) -> HandlerResult {
        Err(EndpointError::msg(format!(
            "{} does not implement 'receive_control'",
            ctx.name()
        )))
    }

    /// Called with the error of any handler (including `on_start` and `on_stop`) or the
    /// message of a panic. The default logs it and carries on.
    fn on_error(&mut self, ctx: &EndpointContext<'_, Self::Protocol>, error: EndpointError) {
        // Handler errors often come from what a peer sent: rate-limited.
        crate::limited_log!(
            log::Level::Warn,
            "Ignoring error in endpoint {}: {error}",
            ctx.name()
        );
    }

    /// A connection to `remote` was made (either direction).
    fn on_connected(&mut self, _ctx: &EndpointContext<'_, Self::Protocol>, _remote: &RpcAddress) {}

    /// The connection to `remote` closed.
    fn on_disconnected(
        &mut self,
        _ctx: &EndpointContext<'_, Self::Protocol>,
        _remote: &RpcAddress,
    ) {
    }

    /// The connection to `remote` failed with `error`.
    fn on_network_error(
        &mut self,
        _ctx: &EndpointContext<'_, Self::Protocol>,
        _error: &RpcError,
        _remote: &RpcAddress,
    ) {
    }

    /// Runs last, after every message queued before the stop. The endpoint's own ref is no
    /// longer registered here.
    fn on_stop(&mut self, _env: &RpcEnv) -> HandlerResult {
        Ok(())
    }
}

/// An endpoint whose handlers may run on several threads at once (Spark's
/// `IsolatedRpcEndpoint` with `threadCount() > 1`): handlers take `&self`, so the endpoint
/// keeps its own state behind whatever locks it needs. It runs on a loop of its own with
/// [`threads`](Self::threads) threads. `on_start` still runs first and alone, and `on_stop`
/// last, after every handler has returned.
pub trait ConcurrentRpcEndpoint: Send + Sync + 'static {
    /// The messages this endpoint takes.
    type Protocol: Protocol;

    /// How many threads its loop has (at least 1).
    fn threads(&self) -> usize;

    /// Runs before any message is handled.
    fn on_start(&self, _ctx: &EndpointContext<'_, Self::Protocol>) -> HandlerResult {
        Ok(())
    }

    /// Handles a one-way message.
    fn receive(
        &self,
        ctx: &EndpointContext<'_, Self::Protocol>,
        _msg: <Self::Protocol as Protocol>::Message,
    ) -> HandlerResult {
        Err(EndpointError::msg(format!(
            "{} does not implement 'receive'",
            ctx.name()
        )))
    }

    /// Handles an ask (see [`RpcEndpoint::receive_and_reply`]).
    fn receive_and_reply(
        &self,
        _ctx: &EndpointContext<'_, Self::Protocol>,
        _ask: <Self::Protocol as Protocol>::Ask,
    ) -> HandlerResult {
        Ok(())
    }

    /// Handles a control message (see [`RpcEndpoint::receive_control`]).
    fn receive_control(
        &self,
        ctx: &EndpointContext<'_, Self::Protocol>,
        _msg: <Self::Protocol as Protocol>::Control,
    ) -> HandlerResult {
        Err(EndpointError::msg(format!(
            "{} does not implement 'receive_control'",
            ctx.name()
        )))
    }

    /// Called with the error of any handler or the message of a panic.
    fn on_error(&self, ctx: &EndpointContext<'_, Self::Protocol>, error: EndpointError) {
        // Handler errors often come from what a peer sent: rate-limited.
        crate::limited_log!(
            log::Level::Warn,
            "Ignoring error in endpoint {}: {error}",
            ctx.name()
        );
    }

    /// A connection to `remote` was made.
    fn on_connected(&self, _ctx: &EndpointContext<'_, Self::Protocol>, _remote: &RpcAddress) {}

    /// The connection to `remote` closed.
    fn on_disconnected(&self, _ctx: &EndpointContext<'_, Self::Protocol>, _remote: &RpcAddress) {}

    /// The connection to `remote` failed.
    fn on_network_error(
        &self,
        _ctx: &EndpointContext<'_, Self::Protocol>,
        _error: &RpcError,
        _remote: &RpcAddress,
    ) {
    }

    /// Runs last, after every handler has returned.
    fn on_stop(&self, _env: &RpcEnv) -> HandlerResult {
        Ok(())
    }
}

/// What handlers return.
pub type HandlerResult = Result<(), EndpointError>;

/// What a handler can see besides its message: the env, its own ref, the sender.
pub struct EndpointContext<'a, P: Protocol> {
    pub(crate) env: &'a RpcEnv,
    pub(crate) self_ref: &'a EndpointRef<P>,
    pub(crate) sender: Option<&'a RpcAddress>,
}

impl<'a, P: Protocol> EndpointContext<'a, P> {
    /// The env this endpoint runs in.
    pub fn env(&self) -> &'a RpcEnv {
        self.env
    }

    /// This endpoint's own ref (Spark's `self`).
    pub fn self_ref(&self) -> &'a EndpointRef<P> {
        self.self_ref
    }

    /// A control handle to this endpoint, for its own timers and callbacks.
    pub fn control_ref(&self) -> ControlRef<P> {
        ControlRef::bind(
            Arc::clone(&self.env.shared),
            Arc::clone(&self.self_ref.inner.name),
        )
    }

    /// This endpoint's name.
    pub fn name(&self) -> &'a str {
        self.self_ref.name()
    }

    /// The address of the env that sent the message being handled: its advertised address,
    /// or the socket address of a client-mode env. A message from the network always has
    /// one, checked against the connection it came on. `None` outside message handlers and
    /// for control messages, and for local messages in a client-mode env.
    pub fn sender(&self) -> Option<&'a RpcAddress> {
        self.sender
    }

    /// Stops this endpoint: messages already queued are handled, then `on_stop` runs.
    pub fn stop(&self) {
        self.env.stop(self.self_ref);
    }
}

impl<P: Protocol> fmt::Debug for EndpointContext<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointContext")
            .field("endpoint", &self.self_ref.address())
            .field("sender", &self.sender)
            .finish()
    }
}

/// A network event, delivered to every endpoint of an env.
#[derive(Debug, Clone)]
pub(crate) enum NetworkEvent {
    Connected(RpcAddress),
    Disconnected(RpcAddress),
    Error(RpcError, RpcAddress),
}
