//! The endpoint behind an inbox, with its type erased: a serial endpoint (`&mut self`,
//! behind a mutex the inbox never lets two threads contend for) or a concurrent one
//! (`&self`, several loop threads at once).

use parking_lot::Mutex;

use crate::endpoint::{
    ConcurrentRpcEndpoint, EndpointContext, HandlerResult, NetworkEvent, Protocol, RpcEndpoint,
};
use crate::env::RpcEnv;
use crate::error::EndpointError;

/// The handlers, behind the inbox's one-at-a-time rule. The endpoint sits in a mutex only
/// to be shareable between loop threads; the inbox guarantees it is never contended.
pub(crate) struct Serial<E>(pub(crate) Mutex<E>);

/// An endpoint's callbacks, with the endpoint type erased.
pub(crate) trait Handler<P: Protocol>: Send + Sync {
    fn on_start(&self, ctx: &EndpointContext<'_, P>) -> HandlerResult;
    fn receive(&self, ctx: &EndpointContext<'_, P>, msg: P::Message) -> HandlerResult;
    fn receive_and_reply(&self, ctx: &EndpointContext<'_, P>, ask: P::Ask) -> HandlerResult;
    fn receive_control(&self, ctx: &EndpointContext<'_, P>, msg: P::Control) -> HandlerResult;
    fn on_error(&self, ctx: &EndpointContext<'_, P>, error: EndpointError);
    fn on_event(&self, ctx: &EndpointContext<'_, P>, event: &NetworkEvent);
    fn on_stop(&self, env: &RpcEnv) -> HandlerResult;
}

impl<E: RpcEndpoint> Handler<E::Protocol> for Serial<E> {
    fn on_start(&self, ctx: &EndpointContext<'_, E::Protocol>) -> HandlerResult {
        self.0.lock().on_start(ctx)
    }
    fn receive(
        &self,
        ctx: &EndpointContext<'_, E::Protocol>,
        msg: <E::Protocol as Protocol>::Message,
    ) -> HandlerResult {
        self.0.lock().receive(ctx, msg)
    }
    fn receive_and_reply(
        &self,
        ctx: &EndpointContext<'_, E::Protocol>,
        ask: <E::Protocol as Protocol>::Ask,
    ) -> HandlerResult {
        self.0.lock().receive_and_reply(ctx, ask)
    }
    fn receive_control(
        &self,
        ctx: &EndpointContext<'_, E::Protocol>,
        msg: <E::Protocol as Protocol>::Control,
    ) -> HandlerResult {
        self.0.lock().receive_control(ctx, msg)
    }
    fn on_error(&self, ctx: &EndpointContext<'_, E::Protocol>, error: EndpointError) {
        self.0.lock().on_error(ctx, error)
    }
    fn on_event(&self, ctx: &EndpointContext<'_, E::Protocol>, event: &NetworkEvent) {
        let mut endpoint = self.0.lock();
        match event {
            NetworkEvent::Connected(a) => endpoint.on_connected(ctx, a),
            NetworkEvent::Disconnected(a) => endpoint.on_disconnected(ctx, a),
            NetworkEvent::Error(e, a) => endpoint.on_network_error(ctx, e, a),
        }
    }
    fn on_stop(&self, env: &RpcEnv) -> HandlerResult {
        self.0.lock().on_stop(env)
    }
}

/// A concurrent endpoint: handlers run on several threads at once.
pub(crate) struct Concurrent<E>(pub(crate) E);

impl<E: ConcurrentRpcEndpoint> Handler<E::Protocol> for Concurrent<E> {
    fn on_start(&self, ctx: &EndpointContext<'_, E::Protocol>) -> HandlerResult {
        self.0.on_start(ctx)
    }
    fn receive(
        &self,
        ctx: &EndpointContext<'_, E::Protocol>,
        msg: <E::Protocol as Protocol>::Message,
    ) -> HandlerResult {
        self.0.receive(ctx, msg)
    }
    fn receive_and_reply(
        &self,
        ctx: &EndpointContext<'_, E::Protocol>,
        ask: <E::Protocol as Protocol>::Ask,
    ) -> HandlerResult {
        self.0.receive_and_reply(ctx, ask)
    }
    fn receive_control(
        &self,
        ctx: &EndpointContext<'_, E::Protocol>,
        msg: <E::Protocol as Protocol>::Control,
    ) -> HandlerResult {
        self.0.receive_control(ctx, msg)
    }
    fn on_error(&self, ctx: &EndpointContext<'_, E::Protocol>, error: EndpointError) {
        self.0.on_error(ctx, error)
    }
    fn on_event(&self, ctx: &EndpointContext<'_, E::Protocol>, event: &NetworkEvent) {
        match event {
            NetworkEvent::Connected(a) => self.0.on_connected(ctx, a),
            NetworkEvent::Disconnected(a) => self.0.on_disconnected(ctx, a),
            NetworkEvent::Error(e, a) => self.0.on_network_error(ctx, e, a),
        }
    }
    fn on_stop(&self, env: &RpcEnv) -> HandlerResult {
        self.0.on_stop(env)
    }
}
