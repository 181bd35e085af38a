//! # ember-deploy: Ember's standalone cluster
//!
//! The master and worker daemons, the app client a driver uses to get executors from a
//! master, and `local-cluster[N,C,M]`, which runs a master and N workers in the driver's
//! process. [`messages`] is the protocol between them.

pub mod client;
mod ids;
pub mod messages;

// The public interface.
pub use ids::{AppId, DriverId, WorkerId};
