//! The driver's side of a standalone cluster: the [`AppClient`] endpoint that registers the
//! application with the masters and tells an [`AppClientListener`] what they say about it and
//! its executors. The listener is the seam: the root crate's standalone scheduler backend
//! implements it and turns those events into the driver endpoint's bookkeeping, so this crate
//! needs nothing of the scheduler.

mod app_client;
mod senders;

pub use app_client::{AppClient, AppClientConfig, AppClientListener, GIVING_UP, STARVING};
