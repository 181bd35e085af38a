//! Authentication and encryption of connections.
//!
//! Sans-IO: nothing here touches a socket, so every rule is unit-tested with byte buffers.
//! [`Secret`] is the shared secret and where it is loaded from; [`Security`] is what an env
//! resolved from its [`RpcConf`](crate::RpcConf) at start: off, or authenticated (and then
//! encrypted or not). `noise` is the `NNpsk0` handshake and the per-direction ciphers the
//! connection code (`connection/`, `io_loop/`) drives.

pub(crate) mod noise;
mod secret;
mod settings;

pub use secret::Secret;
pub use settings::{Security, CHILD_ENV_KEYS, DEFAULT_AUTH_TIMEOUT};
