//! `ember-submit`: runs an application binary against a master (Spark's `spark-submit` for
//! a standalone cluster, with `deploy.Client`'s driver submission over RPC).
//!
//! - Client deploy mode (the default) runs the application here: the binary becomes the
//!   driver, with `EMBER_MASTER` set to the master URL and `EMBER_CONF` holding the settings.
//! - Cluster deploy mode asks the master to run the binary as a driver on a worker
//!   (`RequestSubmitDriver`), then follows its state (`RequestDriverStatus`) until it ends.
//!   The binary must be at the same absolute path on every worker's machine: nothing is
//!   copied.
//! - `--kill <driver-id>` and `--status <driver-id>` ask the master about such a driver.
//!
//! Settings come from `--conf KEY=VALUE` flags, over the properties file (`--properties-file`,
//! else `$EMBER_CONF_DIR/ember-defaults.conf` when it exists), as in Spark; only `ember.*`
//! keys count. They reach the application as [`CONF_ENV`], in the properties format.

mod args;
mod master_client;

pub use args::{
    parse_submit_args, DeployMode, SubmitArgs, SubmitCommand, SubmitError, SUBMIT_USAGE,
};
pub use master_client::MasterClient;

/// The environment variable that gives the application its master URL (the root crate's
/// `ember::MASTER_ENV`).
pub const MASTER_ENV: &str = "EMBER_MASTER";

/// The environment variable that gives the application its settings: Spark's properties
/// format, one `key=value` per line (what `spark-submit` passes as system properties).
pub const CONF_ENV: &str = "EMBER_CONF";
