//! The driver's side of a standalone cluster: the [`AppClient`] endpoint that registers the
//! application with the masters, and the [`StandaloneBackend`] that turns what the masters
//! say about executors into the driver endpoint's bookkeeping.

mod app_client;
mod standalone_backend;

pub use app_client::{AppClient, AppClientConfig, AppClientListener, GIVING_UP};
pub use standalone_backend::{executor_loss_reason, AppStatus, StandaloneBackend};
