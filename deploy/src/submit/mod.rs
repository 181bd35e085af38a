//! `ember-submit`: runs an application binary against a master (Spark's `spark-submit` for
//! a standalone cluster, with `deploy.Client`'s driver submission over RPC).
//!
//! - Client deploy mode (the default) runs the application here: the binary becomes the
//!   driver, with `EMBER_MASTER` set to the master URL and `EMBER_CONF` holding the settings.
//! - Cluster deploy mode asks the master to run the binary as a driver on a worker
//!   (`RequestSubmitDriver`), then follows its state (`RequestDriverStatus`) until it ends.
//!   The binary is uploaded to the master first (`upload.rs`; nothing is sent when the
//!   master's program store holds it already), and the worker chosen for the driver
//!   fetches it from the master unless the same file is at the same path on its machine.
//! - `--kill <driver-id>` and `--status <driver-id>` ask the master about such a driver.
//!
//! Settings come from `--conf KEY=VALUE` flags, over the properties file (`--properties-file`,
//! else `$EMBER_CONF_DIR/ember-defaults.conf` when it exists), as in Spark; only `ember.*`
//! keys count. They reach the application as [`CONF_ENV`], in the properties format.

mod args;
mod master_client;
mod upload;

pub use args::{
    parse_submit_args, DeployMode, SubmitArgs, SubmitCommand, SubmitError, SUBMIT_USAGE,
};
pub use master_client::MasterClient;
use master_client::NOT_ALIVE;

/// The `ember.*` settings `ember-submit` reads itself (Spark's `spark.submit.*` and
/// `spark.driver.*`); the rest go to the application.
pub mod keys {
    /// `client` or `cluster`, what `--deploy-mode` sets.
    pub const DEPLOY_MODE: &str = "ember.submit.deployMode";
    /// Cluster mode: the driver's memory, what `--driver-memory` sets (`1g`).
    pub const DRIVER_MEMORY: &str = "ember.driver.memory";
    /// Cluster mode: the driver's cores, what `--driver-cores` sets (1).
    pub const DRIVER_CORES: &str = "ember.driver.cores";
    /// Cluster mode: restart the driver when it fails, what `--supervise` sets (`false`).
    pub const DRIVER_SUPERVISE: &str = "ember.driver.supervise";
    /// Every key above.
    pub const ALL: &[&str] = &[DEPLOY_MODE, DRIVER_MEMORY, DRIVER_CORES, DRIVER_SUPERVISE];

    #[cfg(test)]
    mod tests {
        #[test]
        fn all_lists_every_key_declared_here() {
            let source = include_str!("mod.rs");
            let declared = ember_test_support::declared_keys(source);
            assert_eq!(super::ALL, declared);
        }
    }
}

/// The environment variable that gives the application its master URL (the root crate's
/// `ember::MASTER_ENV`).
pub const MASTER_ENV: &str = "EMBER_MASTER";

/// The environment variable that gives the application its settings: Spark's properties
/// format, one `key=value` per line (what `spark-submit` passes as system properties).
pub const CONF_ENV: &str = "EMBER_CONF";
