//! [`EndpointRef`]: a typed handle to a local or remote endpoint.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};

use crate::address::{EndpointAddress, RpcAddress};
use crate::ask::{AskHandle, AskShared, RemotePending, Reply};
use crate::codec::{Decode, DecodeError, Encode, Reader};
use crate::conf::RpcTimeout;
use crate::connection::Connection;
use crate::endpoint::Protocol;
use crate::env::{Arrival, EnvShared};
use crate::error::{RpcError, TimeoutOrigin};
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
    /// A client-mode endpoint's ref that reached this env through a third one: no
    /// connection here leads to the endpoint, so messages to it fail
    /// ([`RpcError::ForwardedClientRef`]) rather than reach an endpoint of the same name.
    pub(crate) forwarded: bool,
}

/// How an endpoint ref is written: the first byte says which of three forms follows.
/// 0 and 1 are the `Option<RpcAddress>` flag of an [`EndpointAddress`] (client-mode and
/// addressed refs, as before); 2 is a client-mode ref passed on beyond the connection it
/// came on, followed by the name only (`WIRE.md`, "Endpoint refs").
const FORWARDED_CLIENT_REF: u8 = 2;

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
        Self::bind_as(env, address, conn, false)
    }

    /// [`bind`](Self::bind), saying whether the ref is a forwarded client-mode one.
    fn bind_as(
        env: Arc<EnvShared>,
        address: EndpointAddress,
        conn: Option<Arc<Connection>>,
        forwarded: bool,
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
                forwarded,
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
        let (after, key) = self.inner.env.ask_timeout.clone();
        self.ask_with(make, after, TimeoutOrigin::Setting(key))
    }

    /// Asks with a timeout of its own, `after`, for this one call. Its timeout error names
    /// the call and the ref (`... This timeout was given to EndpointRef::ask_with_timeout to
    /// ember://kv@host:7077`), not a setting, as no setting controls it.
    ///
    /// ```ignore
    /// let value = kv.ask_with_timeout(|reply| KvAsk::Get { key, reply }, Duration::from_secs(2));
    /// ```
    pub fn ask_with_timeout<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> P::Ask,
        after: Duration,
    ) -> AskHandle<T>
    where
        T: Encode + Decode + Send + 'static,
    {
        let call = format!("EndpointRef::ask_with_timeout to {}", self.inner.address);
        self.ask_with(make, after, TimeoutOrigin::Call(Arc::from(call)))
    }

    /// Asks with the timeout a setting gives (`timeout`), whose key the timeout error names.
    pub fn ask_with_rpc_timeout<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> P::Ask,
        timeout: &RpcTimeout,
    ) -> AskHandle<T>
    where
        T: Encode + Decode + Send + 'static,
    {
        let origin = TimeoutOrigin::Setting(Arc::from(timeout.key()));
        self.ask_with(make, timeout.duration(), origin)
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
        after: Duration,
        origin: TimeoutOrigin,
    ) -> AskHandle<T>
    where
        T: Encode + Decode + Send + 'static,
    {
        let env = &self.inner.env;
        let timeout = TimeoutInfo {
            to: Arc::clone(&self.inner.display_to),
            after,
            origin,
        };
        if self.is_local() {
            return env
                .ask_local::<P, T>(&self.inner.name, make, timeout)
                .spinning(env.spin_wait);
        }
        let shared = AskShared::new();
        let ask = make(Reply::detached());
        let pending = Box::new(RemotePending {
            shared: Arc::clone(&shared),
        });
        let ticket = env.ask_remote(&self.inner, pending, timeout, &|buf: &mut BytesMut| {
            ask.encode(buf)
        });
        AskHandle::new(shared, ticket).spinning(env.spin_wait)
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
        // A forwarded client-mode ref names an endpoint nobody here can reach: it is not
        // the local endpoint that happens to bear the same `ember-client://` name.
        self.inner.address == other.inner.address && self.inner.forwarded == other.inner.forwarded
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

impl RefInner {
    /// Whether this ref may be written as a plain client-mode ref into the frame being
    /// encoded now. Only a foreign client-mode ref is restricted: one with no address in an
    /// env that has one names an endpoint of the peer it came from, and the bare name means
    /// that endpoint only over that peer's connection. Anywhere else the receiver would
    /// take the name for one of its own endpoints (a client-mode env) or send it back to an
    /// endpoint of that name on the wrong process (a server).
    fn travels_plainly(&self) -> bool {
        if self.forwarded {
            return false;
        }
        if self.address.address().is_some() || self.env.address.is_none() {
            // An address reaches its env from anywhere; a client-mode env's own refs are
            // bound by each receiver to the connection they arrive on.
            return true;
        }
        self.conn
            .as_ref()
            .is_some_and(|conn| conn.id == crate::connection::encoding_for())
    }
}

impl<P> Encode for EndpointRef<P> {
    fn encode(&self, buf: &mut BytesMut) {
        if self.inner.travels_plainly() {
            self.inner.address.encode(buf);
        } else {
            buf.put_u8(FORWARDED_CLIENT_REF);
            self.inner.address.name().encode(buf);
        }
    }
}

impl<P: Protocol> Decode for EndpointRef<P> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let forwarded = r.peek_u8() == Some(FORWARDED_CLIENT_REF);
        let address = if forwarded {
            r.read_u8()?;
            EndpointAddress::new(None, r.read_str()?)
        } else {
            EndpointAddress::decode(r)?
        };
        let arrival = r
            .context_as::<Arrival>()
            .ok_or(DecodeError::MissingContext {
                what: "an endpoint ref",
            })?;
        // A server env owns no address-less endpoint, and neither does a peer that has a
        // listen address: a plain client-mode ref from such a peer (one that does not know
        // to mark it forwarded) names an endpoint of some third env, which no connection
        // here leads to.
        let from_server = arrival
            .conn
            .as_ref()
            .is_some_and(|c| c.remote_address().is_some());
        let forwarded =
            forwarded || (address.is_client() && arrival.env.address.is_some() && from_server);
        // The connection leads back to the peer that sent the ref, which is where the ref's
        // endpoint lives only for the peer's own refs: its client-mode ones, or those with
        // the address it speaks for. A ref to a third env must go to that env's address,
        // not back to the peer, whose endpoint of the same name it does not name.
        let conn = arrival.conn.as_ref().filter(|c| {
            !forwarded
                && match address.address() {
                    None => true,
                    Some(a) => c.remote_address().as_deref() == Some(a),
                }
        });
        let conn = conn.cloned();
        Ok(EndpointRef::bind_as(
            Arc::clone(&arrival.env),
            address,
            conn,
            forwarded,
        ))
    }
}
