//! The standalone cluster's messages (Spark's `DeployMessages`), the states they carry, and
//! the endpoint names. In Spark 4 registration is a one-way send answered by a send; the
//! asks are `ExecutorStateChanged` and the tools' requests.

use rpc_env::{NoMessage, Protocol};

/// The master endpoint's name.
pub const MASTER_ENDPOINT_NAME: &str = "Master";
/// The worker endpoint's name.
pub const WORKER_ENDPOINT_NAME: &str = "Worker";
/// The app client endpoint's name (in the driver).
pub const APP_CLIENT_ENDPOINT_NAME: &str = "AppClient";

/// The placeholders a worker fills in an executor's command.
pub mod placeholders {
    /// The executor's id.
    pub const EXECUTOR_ID: &str = "{{EXECUTOR_ID}}";
    /// The worker's host.
    pub const HOSTNAME: &str = "{{HOSTNAME}}";
    /// The executor's cores.
    pub const CORES: &str = "{{CORES}}";
    /// The application's id.
    pub const APP_ID: &str = "{{APP_ID}}";
    /// The worker endpoint's URI.
    pub const WORKER_URL: &str = "{{WORKER_URL}}";
}

mod app_client;
mod descriptions;
mod master;
mod program_store;
mod worker;

pub use app_client::*;
pub use descriptions::*;
pub use master::*;
pub use program_store::*;
pub use worker::*;

/// A protocol with nothing in it, for refs used only to watch a connection.
pub struct Opaque;

impl Protocol for Opaque {
    type Message = NoMessage;
    type Ask = NoMessage;
    type Control = NoMessage;
}
