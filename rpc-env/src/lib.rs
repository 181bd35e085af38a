//! # rpc-env: a NettyRpcEnv-style RPC environment over mio
//!
//! An [`RpcEnv`] hosts named endpoints. An endpoint ([`RpcEndpoint`]) is a serial actor with
//! a lifecycle (`on_start`, handlers, `on_stop`) and network events. An [`EndpointRef`]
//! reaches an endpoint in this env or another one: [`send`](EndpointRef::send) a one-way
//! message, or [`ask`](EndpointRef::ask) and get an [`AskHandle`] that ends with the answer,
//! a failure or a timeout naming the setting that controls it.
//!
//! Messages are typed per endpoint: its [`Protocol`] names an enum of one-way messages and
//! an enum of asks, each ask carrying a [`Reply<T>`] that fixes the answer's type. They are
//! encoded with this crate's own [`Encode`] / [`Decode`] (the [`message!`] macro writes them;
//! [`protocol!`] declares a protocol and its enums in one place) into length-prefixed frames
//! (`WIRE.md`). Messages between endpoints of one env are never
//! encoded. A third enum, of control messages, has no encoding at all: only this process
//! sends them, through a [`ControlRef`] that the env hands out and that cannot travel.
//! [`semantics`] is the contract (ordering, delivery, timeouts, disconnects) and
//! [`wire_format`] the bytes on the wire; both are the crate's `SEMANTICS.md` and `WIRE.md`.
//!
//! ```
//! use rpc_env::{protocol, EndpointContext, HandlerResult, Reply, RpcEndpoint, RpcEnv,
//!               RpcEnvConfig};
//!
//! protocol! {
//!     /// An echo endpoint's protocol: asks only (no one-way messages, no control).
//!     pub protocol EchoProtocol {
//!         /// What an echo endpoint is asked.
//!         ask EchoAsk {
//!             /// Answers with `text`.
//!             Echo { text: String, reply: Reply<String> },
//!         }
//!     }
//! }
//!
//! struct Echo;
//! impl RpcEndpoint for Echo {
//!     type Protocol = EchoProtocol;
//!     fn receive_and_reply(&mut self, _: &EndpointContext<'_, EchoProtocol>, ask: EchoAsk)
//!         -> HandlerResult {
//!         let EchoAsk::Echo { text, reply } = ask;
//!         reply.send(text);
//!         Ok(())
//!     }
//! }
//!
//! let server = RpcEnv::create(RpcEnvConfig::server("server", "127.0.0.1", 0)).unwrap();
//! server.setup_endpoint("echo", Echo).unwrap();
//! let address = server.address().unwrap().clone();
//!
//! let client = RpcEnv::create(RpcEnvConfig::client("client")).unwrap();
//! let echo = client.setup_endpoint_ref::<EchoProtocol>(&address, "echo").unwrap();
//! let answer = echo.ask_sync(|reply| EchoAsk::Echo { text: "hi".into(), reply }).unwrap();
//! assert_eq!(answer, "hi");
//!
//! client.shutdown();
//! server.shutdown();
//! ```

/// The runtime contract, `SEMANTICS.md`: ordering, delivery, timeouts, disconnects,
/// client mode, refs in messages, security.
#[doc = include_str!("../SEMANTICS.md")]
pub mod semantics {}

/// The wire format, `WIRE.md`: frames, the handshake, the message codec.
#[doc = include_str!("../WIRE.md")]
pub mod wire_format {}

/// Hooks for the fuzz targets in `fuzz/`; not part of the API.
#[doc(hidden)]
#[path = "fuzz_hooks.rs"]
pub mod __fuzz;

/// The crate README's quickstart, compiled and run as a doctest so that it cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeQuickstart;

mod address;
mod ask;
mod ask_registry;
mod codec;
mod conf;
mod connection;
mod control_ref;
mod dispatcher;
mod endpoint;
mod endpoint_ref;
mod env;
mod error;
mod fast_hash;
mod file_server;
mod frame;
mod inbox;
mod io_loop;
pub mod log_limit;
mod message_loop;
mod outbox;
mod pending_asks;
#[cfg(test)]
mod proptests;
mod protocol_macro;
mod refusals;
mod security;
mod spin;
mod stats;
mod thread_role;
mod ticker;
mod verifier;

// The public interface.
pub use address::{AddressError, EndpointAddress, RpcAddress};
pub use ask::{AskHandle, Reply};
pub use codec::{decode_from, encode_to_bytes, Decode, DecodeError, Encode, Reader};
pub use conf::{format_duration, keys, ConfError, RpcConf, RpcTimeout, SizeUnit, TimeUnit};
pub use control_ref::ControlRef;
pub use endpoint::{
    ConcurrentRpcEndpoint, EndpointContext, HandlerResult, NoMessage, Protocol, RpcEndpoint,
    Threading,
};
pub use endpoint_ref::EndpointRef;
pub use env::{RpcEnv, RpcEnvConfig};
pub use error::{EndpointError, RpcError, TimeoutOrigin};
pub use fast_hash::{FastHasher, FastMap, FastSet};
pub use file_server::{digest_reader, file_digest, FileServer, FileStream};
pub use refusals::Refusals;
pub use security::{Secret, Security, CHILD_ENV_KEYS, DEFAULT_AUTH_TIMEOUT};
pub use stats::NetworkStats;
pub use ticker::Ticker;

/// Re-exports for the [`message!`] macro; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use bytes::BytesMut;
}
