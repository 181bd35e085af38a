//! Authentication and encryption of connections (issue 11).
//!
//! Sans-IO: nothing here touches a socket, so every rule is unit-tested with byte buffers.
//! [`Secret`] is the shared secret and where it is loaded from; [`Security`] is what an env
//! resolved from its [`RpcConf`](crate::RpcConf) at start: off, or authenticated (and then
//! encrypted or not). The Noise handshake and transport come in `handshake` / `transport`.

mod secret;
mod settings;

pub use secret::Secret;
pub use settings::{Security, DEFAULT_AUTH_TIMEOUT};
