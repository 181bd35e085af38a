//! # ember-deploy: Ember's standalone cluster
//!
//! The master and worker daemons, the app client a driver uses to get executors from a
//! master, and `local-cluster[N,C,M]`, which runs a master and N workers in the driver's
//! process. [`messages`] is the protocol between them; [`submit`] is `ember-submit`.

pub mod client;
mod command_line;
mod fd_limit;
mod ids;
mod local_cluster;
mod master;
pub mod messages;
pub mod program;
mod properties;
mod stop_signals;
pub mod submit;
pub mod ui;
mod worker;

// The public interface.
pub use fd_limit::raise_open_file_limit;

/// The environment variable that names the address a process on a host binds (Spark's
/// `SPARK_LOCAL_IP`): a worker's default host, and the host a worker gives the
/// cluster-mode drivers it runs, so that their executors on other hosts reach them.
pub const LOCAL_IP_ENV: &str = "EMBER_LOCAL_IP";
pub use ids::{AppId, DriverId, WorkerId};
pub use local_cluster::{LocalCluster, LocalClusterError};
pub use master::{
    keys as master_keys, parse_master_args, start_master, MasterCliError, MasterCommand,
    MasterConfig, MasterHandle, MasterSettings, RecoveryMode, WorkerSelectionPolicy,
    DEFAULT_MASTER_HOST, DEFAULT_MASTER_PORT, DEFAULT_MASTER_WEBUI_PORT, MASTER_USAGE,
};
pub use properties::{known_keys, unknown_key_warnings, DRIVER_SIDE_KEYS};
pub use stop_signals::StopSignals;
pub use worker::{
    keys as worker_keys, parse_master_urls, parse_memory_mib, parse_worker_args, start_worker,
    worker_usage, WorkerArgsError, WorkerConfig, WorkerError, WorkerExit, WorkerHandle,
};
