//! Authentication and encryption of connections (issue 11).
//!
//! Sans-IO: nothing here touches a socket, so every rule is unit-tested with byte buffers.
//! [`Secret`] is the shared secret and where it is loaded from; [`Security`] is what an env
//! resolved from its [`RpcConf`](crate::RpcConf) at start: off, or authenticated (and then
//! encrypted or not). `noise` is the `NNpsk0` handshake and the transport records; `channel` the trait a
//! connection's cipher sits behind (Noise, plain, later TLS).

// Built and unit-tested; the connection state machine does not use them yet (see the
// rpc-env issue 11 notes), so outside tests they are dead code for now.
#[cfg_attr(not(test), allow(dead_code))]
mod channel;
#[cfg_attr(not(test), allow(dead_code))]
mod noise;
mod secret;
mod settings;

pub use secret::Secret;
pub use settings::{Security, DEFAULT_AUTH_TIMEOUT};
