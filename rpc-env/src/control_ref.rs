//! [`ControlRef`]: the handle through which this process, and only this process, sends an
//! endpoint its control messages.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::ask::{AskHandle, Reply};
use crate::conf::RpcTimeout;
use crate::endpoint::Protocol;
use crate::env::EnvShared;
use crate::error::{RpcError, TimeoutOrigin};
use crate::pending_asks::TimeoutInfo;

/// A handle to an endpoint of this env for its [control messages](Protocol::Control).
///
/// Only the env gives one out ([`RpcEnv::control_ref`](crate::RpcEnv::control_ref),
/// [`EndpointContext::control_ref`](crate::EndpointContext::control_ref)), and it has no
/// wire encoding, so it never travels in a message: a peer can neither hold one nor write
/// the messages it carries. That is the point. A message meant only for the local process
/// (submit a job, fire a timer) is a control message, and is refused from the network by
/// the type system rather than by a check at run time.
///
/// Control messages go into the endpoint's inbox like local sends and asks: in order with
/// what else this thread sent the endpoint, handled one at a time by a serial endpoint,
/// never encoded.
///
/// ```compile_fail
/// // No encoding: a control handle cannot be put in a message.
/// fn encodable<T: rpc_env::Encode>() {}
/// encodable::<rpc_env::ControlRef<()>>();
/// ```
pub struct ControlRef<P> {
    env: Arc<EnvShared>,
    name: Arc<str>,
    _protocol: PhantomData<fn() -> P>,
}

impl<P: Protocol> ControlRef<P> {
    pub(crate) fn bind(env: Arc<EnvShared>, name: Arc<str>) -> ControlRef<P> {
        ControlRef {
            env,
            name,
            _protocol: PhantomData,
        }
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a control message. Errors when the endpoint is not registered (or has another
    /// protocol) or the env is stopped.
    pub fn send(&self, msg: P::Control) -> Result<(), RpcError> {
        self.env.send_control::<P>(&self.name, msg)
    }

    /// Asks with the env's default timeout (`ember.rpc.askTimeout`): `make` builds the
    /// control message around the reply port, whose type is the answer's.
    pub fn ask<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> P::Control,
    ) -> AskHandle<T> {
        let (after, key) = self.env.ask_timeout.clone();
        self.ask_with(make, after, TimeoutOrigin::Setting(key))
    }

    /// Asks with a timeout of its own, `after`, for this one call; its timeout error names
    /// the call and the endpoint (`... This timeout was given to ControlRef::ask_with_timeout
    /// to <name>`), not a setting.
    pub fn ask_with_timeout<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> P::Control,
        after: std::time::Duration,
    ) -> AskHandle<T> {
        let call = format!("ControlRef::ask_with_timeout to {}", self.name);
        self.ask_with(make, after, TimeoutOrigin::Call(Arc::from(call)))
    }

    /// Asks with the timeout a setting gives (`timeout`), whose key the timeout error names.
    pub fn ask_with_rpc_timeout<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> P::Control,
        timeout: &RpcTimeout,
    ) -> AskHandle<T> {
        let origin = TimeoutOrigin::Setting(Arc::from(timeout.key()));
        self.ask_with(make, timeout.duration(), origin)
    }

    /// Asks and waits for the answer. Never call it inside a handler.
    pub fn ask_sync<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> P::Control,
    ) -> Result<T, RpcError> {
        self.ask(make).wait()
    }

    fn ask_with<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> P::Control,
        after: std::time::Duration,
        origin: TimeoutOrigin,
    ) -> AskHandle<T> {
        let timeout = TimeoutInfo {
            to: Arc::clone(&self.name),
            after,
            origin,
        };
        self.env.ask_control::<P, T>(&self.name, make, timeout)
    }
}

impl<P> Clone for ControlRef<P> {
    fn clone(&self) -> Self {
        ControlRef {
            env: Arc::clone(&self.env),
            name: Arc::clone(&self.name),
            _protocol: PhantomData,
        }
    }
}

impl<P> fmt::Debug for ControlRef<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ControlRef({}@{})", self.name, self.env.name)
    }
}
