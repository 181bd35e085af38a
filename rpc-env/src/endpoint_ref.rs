//! [`EndpointRef`]: a typed handle to a local or remote endpoint.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::BytesMut;

use crate::address::{EndpointAddress, RpcAddress};
use crate::ask::{AskHandle, AskShared, RemotePending, Reply};
use crate::codec::{Decode, DecodeError, Encode, Reader};
use crate::conf::RpcTimeout;
use crate::connection::Connection;
use crate::endpoint::Protocol;
use crate::env::{Arrival, EnvShared};
use crate::error::RpcError;
use crate::frame::FrameKind;
use crate::pending_asks::TimeoutInfo;

/// The untyped part of a ref.
pub(crate) struct RefInner {
    pub(crate) env: Arc<EnvShared>,
    pub(crate) address: EndpointAddress,
    pub(crate) name: Arc<str>,
    /// The connection this ref arrived on, if it came inside a message: messages to it go
    /// back on that connection (the only way to reach a client-mode endpoint).
    pub(crate) conn: Option<Arc<Connection>>,
    /// Who a timeout names: `host:port`, or the socket address of a client-mode peer.
    pub(crate) display_to: Arc<str>,
}

/// A handle to an endpoint speaking protocol `P`, here or in another env.
///
/// Refs are cheap to clone and can travel inside messages: a decoded ref is bound to the
/// receiving env and to the connection it came on, so answering an endpoint that sent its
/// own ref works even when that endpoint lives in a client-mode env with no listener.
///
/// Messages to an endpoint of this env never get encoded: the value goes straight into the
/// endpoint's inbox. Remote ones travel in FIFO order per peer.
pub struct EndpointRef<P> {
    pub(crate) inner: Arc<RefInner>,
    _protocol: PhantomData<fn() -> P>,
}

impl<P: Protocol> EndpointRef<P> {
    pub(crate) fn bind(
        env: Arc<EnvShared>,
        address: EndpointAddress,
        conn: Option<Arc<Connection>>,
    ) -> EndpointRef<P> {
        let display_to: Arc<str> = match (address.address(), &conn) {
            (Some(a), _) => Arc::from(a.host_port()),
            (None, Some(c)) => Arc::from(c.peer.to_string()),
            (None, None) => Arc::from(address.to_string()),
        };
        EndpointRef {
            inner: Arc::new(RefInner {
                env,
                name: Arc::from(address.name()),
                address,
                conn,
                display_to,
            }),
            _protocol: PhantomData,
        }
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The endpoint's full address (`ember://name@host:port` or `ember-client://name`).
    pub fn address(&self) -> &EndpointAddress {
        &self.inner.address
    }

    /// The address of the env the endpoint lives in; `None` for a client-mode env.
    pub fn rpc_address(&self) -> Option<&RpcAddress> {
        self.inner.address.address()
    }

    fn is_local(&self) -> bool {
        self.inner.env.is_local(&self.inner)
    }

    /// Sends a one-way message. Errors only when the message cannot even leave (the env is
    /// stopped, a local endpoint does not exist, the message is too large); delivery to a
    /// remote endpoint is not confirmed.
    pub fn send(&self, msg: P::Message) -> Result<(), RpcError> {
        let env = &self.inner.env;
        if self.is_local() {
            return env.send_local::<P>(&self.inner.name, msg);
        }
        env.send_remote(&self.inner, FrameKind::OneWay, &|buf: &mut BytesMut| {
            msg.encode(buf)
        })
    }

    /// Asks with the env's default timeout (`ember.rpc.askTimeout`). `make` builds the ask
    /// around the reply port whose type is the answer's.
    ///
    /// ```ignore
    /// let count: u64 = counter.ask(|reply| CounterAsk::Get { reply }).wait()?;
    /// ```
    pub fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> P::Ask) -> AskHandle<T>
    where
        T: Encode + Decode + Send + 'static,
    {
        let timeout = self.inner.env.ask_timeout.clone();
        self.ask_with(make, timeout)
    }

    /// Asks with `timeout`, whose key is named in the timeout error.
    pub fn ask_with_timeout<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> P::Ask,
        timeout: &RpcTimeout,
    ) -> AskHandle<T>
    where
        T: Encode + Decode + Send + 'static,
    {
        let timeout = (timeout.duration(), Arc::<str>::from(timeout.key()));
        self.ask_with(make, timeout)
    }

    /// Asks and waits for the answer (Spark's `askSync`). Never call it inside a handler:
    /// the answer may need the very thread that waits.
    pub fn ask_sync<T>(&self, make: impl FnOnce(Reply<T>) -> P::Ask) -> Result<T, RpcError>
    where
        T: Encode + Decode + Send + 'static,
    {
        self.ask(make).wait()
    }

    fn ask_with<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> P::Ask,
        (after, setting): (std::time::Duration, Arc<str>),
    ) -> AskHandle<T>
    where
        T: Encode + Decode + Send + 'static,
    {
        let env = &self.inner.env;
        let timeout = TimeoutInfo {
            to: Arc::clone(&self.inner.display_to),
            after,
            setting,
        };
        if self.is_local() {
            return env.ask_local::<P, T>(&self.inner.name, make, timeout);
        }
        let shared = AskShared::new();
        let ask = make(Reply::detached());
        let pending = Box::new(RemotePending {
            shared: Arc::clone(&shared),
        });
        let ticket = env.ask_remote(&self.inner, pending, timeout, &|buf: &mut BytesMut| {
            ask.encode(buf)
        });
        AskHandle::new(shared, ticket)
    }
}

impl<P> Clone for EndpointRef<P> {
    fn clone(&self) -> Self {
        EndpointRef {
            inner: Arc::clone(&self.inner),
            _protocol: PhantomData,
        }
    }
}

impl<P> PartialEq for EndpointRef<P> {
    fn eq(&self, other: &Self) -> bool {
        self.inner.address == other.inner.address
    }
}

impl<P> Eq for EndpointRef<P> {}

impl<P> Hash for EndpointRef<P> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.address.hash(state);
    }
}

impl<P> fmt::Debug for EndpointRef<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EndpointRef({})", self.inner.address)
    }
}

impl<P> fmt::Display for EndpointRef<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.address.fmt(f)
    }
}

impl<P> Encode for EndpointRef<P> {
    fn encode(&self, buf: &mut BytesMut) {
        self.inner.address.encode(buf);
    }
}

impl<P: Protocol> Decode for EndpointRef<P> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let address = EndpointAddress::decode(r)?;
        let arrival = r
            .context_as::<Arrival>()
            .ok_or(DecodeError::MissingContext {
                what: "an endpoint ref",
            })?;
        Ok(EndpointRef::bind(
            Arc::clone(&arrival.env),
            address,
            arrival.conn.clone(),
        ))
    }
}
