//! The errors of the RPC environment, sorted by what went wrong.
//!
//! One enum, [`RpcError`], is what every fallible call of the public API returns. Its
//! `Display` texts follow Spark's where a Spark user would recognise them (see
//! `rpc-env/SEMANTICS.md`), with Ember's key names.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::address::AddressError;
use crate::codec::DecodeError;
use crate::conf::{format_duration, ConfError};

/// Everything that can go wrong when sending, asking, looking up or running an env.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RpcError {
    /// The env has been shut down (`RpcEnv already stopped.`).
    EnvStopped,
    /// An endpoint was registered after shutdown (`RpcEnv has been stopped`).
    RegisterAfterStop,
    /// No endpoint of this name is registered in the env that received the message.
    EndpointNotFound {
        /// The endpoint name.
        name: String,
    },
    /// A lookup through the remote `endpoint-verifier` found nothing.
    LookupFailed {
        /// The URI that was looked up (`ember://name@host:port`).
        uri: String,
    },
    /// A lookup found the endpoint, speaking another protocol than the one it was looked
    /// up with (their fingerprints, name and version, differ).
    ProtocolMismatch {
        /// The URI that was looked up (`ember://name@host:port`).
        uri: String,
        /// The protocol the lookup expected: the ref's type's.
        expected: String,
        /// Its version.
        expected_version: u32,
        /// The protocol the endpoint speaks.
        actual: String,
        /// Its version.
        actual_version: u32,
    },
    /// An endpoint name was registered twice.
    DuplicateEndpoint {
        /// The endpoint name.
        name: String,
    },
    /// The registered endpoint speaks another protocol than the ref's type.
    WrongProtocol {
        /// The endpoint name.
        name: String,
        /// The protocol the endpoint speaks (its `protocol_name()`).
        speaks: String,
        /// The protocol of the ref that was used.
        used_as: String,
    },
    /// An ask got no reply in time.
    Timeout {
        /// The receiver, `host:port` (or the socket address for a client-mode receiver).
        to: String,
        /// How long the ask waited.
        after: Duration,
        /// What set the timeout: a setting (`ember.rpc.askTimeout`, ...) or the call.
        origin: TimeoutOrigin,
    },
    /// The asker aborted the ask.
    Aborted {
        /// The reason given to `abort`.
        reason: String,
    },
    /// The handler answered the ask with a failure, or panicked while handling it.
    Failure {
        /// The failure's message, as the handler gave it.
        message: String,
    },
    /// The endpoint dropped the reply port of an ask without answering.
    NoReply {
        /// The endpoint that dropped it.
        endpoint: String,
    },
    /// The connection carrying the message closed before the answer came.
    ConnectionClosed {
        /// The peer (`host:port`).
        peer: String,
    },
    /// A connection to the peer could not be made.
    ConnectFailed {
        /// The peer (`host:port`).
        peer: String,
        /// Why, from the operating system.
        reason: String,
    },
    /// The connection's handshake failed or timed out: the two sides do not share the
    /// secret (`ember.authenticate.secret`), one side does not authenticate, or the peer is
    /// not an Ember env.
    AuthenticationFailed {
        /// The peer (`host:port`).
        peer: String,
        /// What went wrong, as far as this side can tell.
        reason: String,
    },
    /// More than `ember.rpc.outbox.maxBytes` waited to be written to the peer (it does not
    /// read, or reads far slower than we send), so its connection was closed.
    OutboxFull {
        /// The peer (`host:port`).
        peer: String,
        /// The cap, in bytes.
        max_bytes: usize,
    },
    /// The peer's outbox was stopped (the env is shutting down).
    OutboxStopped,
    /// A message to a client-mode endpoint whose connection is unknown.
    NoListenAddress,
    /// A message to a client-mode endpoint through a ref that was passed on beyond the
    /// connection it came on: only that connection leads to the endpoint, so the ref can no
    /// longer reach it (and must not reach whatever else bears its name).
    ForwardedClientRef {
        /// The ref, `ember-client://name`.
        endpoint: String,
    },
    /// The encoded message is larger than `ember.rpc.message.maxSize`.
    MessageTooLarge {
        /// The encoded size in bytes.
        size: usize,
        /// The configured maximum in bytes.
        max: usize,
    },
    /// Bytes that do not decode as the expected message.
    Decode(DecodeError),
    /// A setting has a value that does not parse.
    Conf(ConfError),
    /// A malformed URL.
    Address(AddressError),
    /// The server socket could not be bound.
    Bind {
        /// What was tried (`host:port` range).
        address: String,
        /// The operating system's reason for the last attempt.
        reason: String,
    },
    /// An ask was waited for on an IO thread, which must never block.
    BlockingOnIoThread,
    /// Another IO error, with what was being done.
    Io {
        /// What was being done.
        context: String,
        /// The operating system's message.
        reason: String,
    },
}

/// What set an ask's timeout, which its timeout error names so the reader knows what to
/// change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeoutOrigin {
    /// A setting: `ember.rpc.askTimeout`, or the key of the [`RpcTimeout`](crate::RpcTimeout)
    /// given to `ask_with_rpc_timeout`.
    Setting(Arc<str>),
    /// The caller, for one call (`ask_with_timeout`): the call and its target, as in
    /// `EndpointRef::ask_with_timeout to ember://kv@host:7077`.
    Call(Arc<str>),
}

impl fmt::Display for TimeoutOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeoutOrigin::Setting(key) => write!(f, "This timeout is controlled by {key}"),
            TimeoutOrigin::Call(call) => write!(f, "This timeout was given to {call}"),
        }
    }
}

impl RpcError {
    /// A failure with this message, as a handler would report it to an asker.
    pub fn failure(message: impl Into<String>) -> RpcError {
        RpcError::Failure {
            message: message.into(),
        }
    }

    /// Whether this is an ask timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RpcError::Timeout { .. })
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::EnvStopped => f.write_str("RpcEnv already stopped."),
            RpcError::RegisterAfterStop => f.write_str("RpcEnv has been stopped"),
            RpcError::EndpointNotFound { name } => write!(f, "Could not find {name}."),
            RpcError::LookupFailed { uri } => write!(f, "Cannot find endpoint: {uri}"),
            RpcError::ProtocolMismatch {
                uri,
                expected,
                expected_version,
                actual,
                actual_version,
            } => write!(
                f,
                "Endpoint {uri} speaks {actual} (version {actual_version}), but it was looked \
                 up as {expected} (version {expected_version})"
            ),
            RpcError::DuplicateEndpoint { name } => {
                write!(f, "There is already an RpcEndpoint called {name}")
            }
            RpcError::WrongProtocol {
                name,
                speaks,
                used_as,
            } => write!(
                f,
                "Endpoint {name} speaks {speaks}, but it was used as {used_as}"
            ),
            RpcError::Timeout { to, after, origin } => write!(
                f,
                "Cannot receive any reply from {to} in {}. {origin}",
                format_duration(*after)
            ),
            RpcError::Aborted { reason } => write!(f, "Ask aborted: {reason}"),
            RpcError::Failure { message } => f.write_str(message),
            RpcError::NoReply { endpoint } => {
                write!(f, "{endpoint} dropped the ask without replying")
            }
            RpcError::ConnectionClosed { peer } => write!(f, "Connection from {peer} closed"),
            RpcError::ConnectFailed { peer, reason } => {
                write!(f, "Failed to connect to {peer}: {reason}")
            }
            RpcError::AuthenticationFailed { peer, reason } => {
                write!(f, "Authentication failed with {peer}: {reason}")
            }
            RpcError::OutboxFull { peer, max_bytes } => write!(
                f,
                "Closed the connection to {peer}: more than {max_bytes} bytes waited to be \
                 written to it (ember.rpc.outbox.maxBytes)"
            ),
            RpcError::OutboxStopped => f.write_str("Message is dropped because Outbox is stopped"),
            RpcError::NoListenAddress => {
                f.write_str("Cannot send message to client endpoint with no listen address.")
            }
            RpcError::ForwardedClientRef { endpoint } => write!(
                f,
                "Cannot reach {endpoint}: a client-mode endpoint can be reached only over the \
                 connection its ref came on, and this ref was passed on beyond it"
            ),
            RpcError::MessageTooLarge { size, max } => write!(
                f,
                "Message of {size} bytes exceeds max allowed: ember.rpc.message.maxSize ({max} bytes)"
            ),
            RpcError::Decode(e) => write!(f, "Malformed message: {e}"),
            RpcError::Conf(e) => e.fmt(f),
            RpcError::Address(e) => e.fmt(f),
            RpcError::Bind { address, reason } => {
                write!(f, "Could not bind the RPC server to {address}: {reason}")
            }
            RpcError::BlockingOnIoThread => f.write_str(
                "An ask was waited for on an RPC IO thread, which would stall its connections; \
                 handlers of Threading::Inline endpoints and ask callbacks must not block",
            ),
            RpcError::Io { context, reason } => write!(f, "{context}: {reason}"),
        }
    }
}

impl std::error::Error for RpcError {}

impl From<DecodeError> for RpcError {
    fn from(e: DecodeError) -> Self {
        RpcError::Decode(e)
    }
}

impl From<ConfError> for RpcError {
    fn from(e: ConfError) -> Self {
        RpcError::Conf(e)
    }
}

impl From<AddressError> for RpcError {
    fn from(e: AddressError) -> Self {
        RpcError::Address(e)
    }
}

/// What a handler returns when it fails: a message for `on_error` and the logs.
///
/// Any error type converts into it with `?`, so handlers can use their own errors.
pub struct EndpointError {
    message: String,
}

impl EndpointError {
    /// An error with this message.
    pub fn msg(message: impl Into<String>) -> EndpointError {
        EndpointError {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::error::Error> From<E> for EndpointError {
    fn from(e: E) -> Self {
        EndpointError {
            message: e.to_string(),
        }
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EndpointError({:?})", self.message)
    }
}
