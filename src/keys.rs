//! The settings a driver program reads, besides the RPC environment's and the scheduler's.

/// The setting that names the master (`local[2]`, `ember://host:7077`, ...).
pub const MASTER: &str = "ember.master";
/// The setting that names the application.
pub const APP_NAME: &str = "ember.app.name";
/// The host the driver's RPC server binds and advertises: when unset, `$EMBER_LOCAL_IP`
/// (which a worker sets to its own host for the cluster-mode drivers it runs, so that
/// executors on other hosts reach them), else 127.0.0.1.
pub const DRIVER_HOST: &str = "ember.driver.host";
/// The port of the driver's RPC server (0: any free one).
pub const DRIVER_PORT: &str = "ember.driver.port";
/// How often the driver looks for executors whose heartbeats stopped (60 s).
pub const NETWORK_TIMEOUT_INTERVAL: &str = "ember.network.timeoutInterval";
/// The most cores an application takes across a standalone cluster (unlimited).
pub const CORES_MAX: &str = "ember.cores.max";
/// Cores per executor (all of a worker's free cores by default, as in Spark).
pub const EXECUTOR_CORES: &str = "ember.executor.cores";
/// Memory per executor (`1g`; a bare number is MiB).
pub const EXECUTOR_MEMORY: &str = "ember.executor.memory";
/// The program workers start as this application's executors (default: this program).
pub const EXECUTOR_PROGRAM: &str = "ember.executor.program";
/// Arguments put before the executor's own when a worker starts this application's
/// executors (whitespace-separated): for a program that needs to be told to act as an
/// executor, like a test binary (`executor_entry --exact --`) or `ember-bench __serve executor`.
pub const EXECUTOR_PROGRAM_ARGS: &str = "ember.executor.programArgs";
/// How long to wait for a master to answer a registration before trying again (20 s).
pub const REGISTRATION_TIMEOUT: &str = "ember.standalone.registrationTimeout";
/// Registration rounds before giving up (3).
pub const REGISTRATION_RETRIES: &str = "ember.standalone.registrationRetries";
/// Standalone mode: how long the driver waits without any executor before it warns
/// (Spark's "Initial job has not accepted any resources", `spark.starvation.timeout`), and how
/// often it warns again; the warning names the cause it knows. Default `15s`; `0` turns it
/// off.
pub const STARVATION_TIMEOUT: &str = "ember.scheduler.starvationTimeout";
/// Standalone mode: how long the driver waits for the master to say why an executor whose
/// connection dropped ended, before removing it as disassociated (5 s). It takes no new
/// tasks meanwhile.
pub const EXECUTOR_REMOVE_DELAY_ON_DISCONNECTION: &str =
    "ember.standalone.executorRemoveDelayOnDisconnection";
/// Show a console progress bar of running jobs on stderr, when it is a terminal (Spark's
/// `spark.ui.showConsoleProgress`). Default `false`; `examples/pi` turns it on.
pub const SHOW_CONSOLE_PROGRESS: &str = "ember.ui.showConsoleProgress";
/// Whether the driver writes an event log (false): JSON lines of what happened to the
/// application, for `ember-events` (Spark's `spark.eventLog.enabled`).
pub const EVENT_LOG_ENABLED: &str = "ember.eventLog.enabled";
/// Where the event log goes (`/tmp/ember-events`; Spark's `spark.eventLog.dir`): one file
/// per application, `<app-id>.inprogress` while it runs, `<app-id>` once it stopped.
pub const EVENT_LOG_DIR: &str = "ember.eventLog.dir";

/// Every key above (checked against this file by a test).
pub const ALL: &[&str] = &[
    MASTER,
    APP_NAME,
    DRIVER_HOST,
    DRIVER_PORT,
    NETWORK_TIMEOUT_INTERVAL,
    CORES_MAX,
    EXECUTOR_CORES,
    EXECUTOR_MEMORY,
    EXECUTOR_PROGRAM,
    EXECUTOR_PROGRAM_ARGS,
    REGISTRATION_TIMEOUT,
    REGISTRATION_RETRIES,
    STARVATION_TIMEOUT,
    EXECUTOR_REMOVE_DELAY_ON_DISCONNECTION,
    SHOW_CONSOLE_PROGRESS,
    EVENT_LOG_ENABLED,
    EVENT_LOG_DIR,
];

#[cfg(test)]
mod tests {
    /// ember-deploy warns about keys it does not know, and cannot depend on this crate or
    /// the scheduler: its list of theirs must be exactly theirs.
    #[test]
    fn deploy_knows_the_driver_sides_keys() {
        let theirs: Vec<&str> = ember_scheduler::keys::ALL
            .iter()
            .chain(super::ALL)
            .copied()
            .collect();
        assert_eq!(ember_deploy::DRIVER_SIDE_KEYS, theirs);
    }

    #[test]
    fn all_lists_every_key_declared_here() {
        assert_eq!(
            super::ALL,
            ember_test_support::declared_keys(include_str!("keys.rs"))
        );
    }
}
