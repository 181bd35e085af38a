//! The scheduler's settings: `ember.*` keys with Spark's meanings and defaults, read once into
//! a plain struct.

use std::time::Duration;

use rpc_env::{ConfError, RpcConf, SizeUnit, TimeUnit};

/// The keys the scheduler reads.
pub mod keys {
    /// How long to wait for a more local slot before going down a level (3 s).
    pub const LOCALITY_WAIT: &str = "ember.locality.wait";
    /// The wait at PROCESS_LOCAL; falls back to `ember.locality.wait`.
    pub const LOCALITY_WAIT_PROCESS: &str = "ember.locality.wait.process";
    /// The wait at NODE_LOCAL; falls back to `ember.locality.wait`.
    pub const LOCALITY_WAIT_NODE: &str = "ember.locality.wait.node";
    /// The wait at RACK_LOCAL; falls back to `ember.locality.wait`.
    pub const LOCALITY_WAIT_RACK: &str = "ember.locality.wait.rack";
    /// Reset the locality timer on every launch (Spark before 3.2); off by default.
    pub const LOCALITY_LEGACY_RESET: &str = "ember.locality.wait.legacyResetOnTaskLaunch";
    /// Launch speculative copies of slow tasks (off).
    pub const SPECULATION: &str = "ember.speculation";
    /// How often to look for tasks to speculate (100 ms).
    pub const SPECULATION_INTERVAL: &str = "ember.speculation.interval";
    /// How many times slower than the median a task must be to be speculated (3.0).
    pub const SPECULATION_MULTIPLIER: &str = "ember.speculation.multiplier";
    /// The fraction of tasks that must finish before speculating (0.9).
    pub const SPECULATION_QUANTILE: &str = "ember.speculation.quantile";
    /// The least time a task runs before it may be speculated (100 ms).
    pub const SPECULATION_MIN_TASK_RUNTIME: &str = "ember.speculation.minTaskRuntime";
    /// Cores each task holds (1).
    pub const TASK_CPUS: &str = "ember.task.cpus";
    /// Failures of one task before its task set aborts (4; local modes 1).
    pub const TASK_MAX_FAILURES: &str = "ember.task.maxFailures";
    /// `FIFO` or `FAIR` (FIFO).
    pub const SCHEDULER_MODE: &str = "ember.scheduler.mode";
    /// A `fairscheduler.xml`-format file of pools.
    pub const ALLOCATION_FILE: &str = "ember.scheduler.allocation.file";
    /// The local property naming a job's FAIR pool.
    pub const POOL_PROPERTY: &str = "ember.scheduler.pool";
    /// How often the driver offers every executor's free cores again (1 s).
    pub const REVIVE_INTERVAL: &str = "ember.scheduler.revive.interval";
    /// The most result bytes a task set may bring back (1 GiB; 0 = unlimited).
    pub const MAX_RESULT_SIZE: &str = "ember.driver.maxResultSize";
    /// How often executors heartbeat (10 s).
    pub const HEARTBEAT_INTERVAL: &str = "ember.executor.heartbeatInterval";
    /// The most tasks per core an executor may hold queued beyond the ones running (32;
    /// 0 = one task per core, Spark's behaviour).
    pub const LAUNCH_AHEAD: &str = "ember.scheduler.launchAhead";
    /// How much work, judged by recent task times, an executor may hold queued per core
    /// (1 ms): short tasks are launched ahead, long ones are not.
    pub const LAUNCH_AHEAD_TIME: &str = "ember.scheduler.launchAheadTime";
    /// How long running jobs wait for an executor once the application has none left
    /// (30 s): then they fail, rather than hang.
    pub const EXECUTOR_LOSS_GRACE: &str = "ember.scheduler.executorLossGrace";
    /// Every key above: what an application may set for its scheduler.
    pub const ALL: &[&str] = &[
        LOCALITY_WAIT,
        LOCALITY_WAIT_PROCESS,
        LOCALITY_WAIT_NODE,
        LOCALITY_WAIT_RACK,
        LOCALITY_LEGACY_RESET,
        SPECULATION,
        SPECULATION_INTERVAL,
        SPECULATION_MULTIPLIER,
        SPECULATION_QUANTILE,
        SPECULATION_MIN_TASK_RUNTIME,
        TASK_CPUS,
        TASK_MAX_FAILURES,
        SCHEDULER_MODE,
        ALLOCATION_FILE,
        POOL_PROPERTY,
        REVIVE_INTERVAL,
        MAX_RESULT_SIZE,
        HEARTBEAT_INTERVAL,
        LAUNCH_AHEAD,
        LAUNCH_AHEAD_TIME,
        EXECUTOR_LOSS_GRACE,
    ];
}

/// Sizes and waits the scheduler works with.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConf {
    /// `ember.locality.wait.process`.
    pub locality_wait_process: Duration,
    /// `ember.locality.wait.node`.
    pub locality_wait_node: Duration,
    /// `ember.locality.wait.rack`.
    pub locality_wait_rack: Duration,
    /// `ember.locality.wait.legacyResetOnTaskLaunch`.
    pub legacy_locality_reset: bool,
    /// `ember.speculation`.
    pub speculation: bool,
    /// `ember.speculation.interval`.
    pub speculation_interval: Duration,
    /// `ember.speculation.multiplier`.
    pub speculation_multiplier: f64,
    /// `ember.speculation.quantile`.
    pub speculation_quantile: f64,
    /// `ember.speculation.minTaskRuntime`.
    pub speculation_min_task_runtime: Duration,
    /// `ember.task.cpus`.
    pub task_cpus: u32,
    /// `ember.driver.maxResultSize` in bytes; 0 means no limit.
    pub max_result_size: u64,
    /// `ember.scheduler.revive.interval`.
    pub revive_interval: Duration,
    /// `ember.executor.heartbeatInterval`.
    pub heartbeat_interval: Duration,
    /// `ember.scheduler.launchAhead`.
    pub launch_ahead: u32,
    /// `ember.scheduler.launchAheadTime`.
    pub launch_ahead_time: Duration,
    /// `ember.scheduler.executorLossGrace`.
    pub executor_loss_grace: Duration,
}

impl Default for SchedulerConf {
    fn default() -> Self {
        SchedulerConf {
            locality_wait_process: Duration::from_secs(3),
            locality_wait_node: Duration::from_secs(3),
            locality_wait_rack: Duration::from_secs(3),
            legacy_locality_reset: false,
            speculation: false,
            speculation_interval: Duration::from_millis(100),
            speculation_multiplier: 3.0,
            speculation_quantile: 0.9,
            speculation_min_task_runtime: Duration::from_millis(100),
            task_cpus: 1,
            max_result_size: 1 << 30,
            revive_interval: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(10),
            launch_ahead: 32,
            launch_ahead_time: Duration::from_millis(1),
            // Long enough for a worker's death to be noticed and replacement executors to
            // start elsewhere, or for a restarted master to bring workers back; short
            // enough that a user is told rather than left waiting.
            executor_loss_grace: Duration::from_secs(30),
        }
    }
}

impl SchedulerConf {
    /// Reads the settings from `conf`; a malformed value is an error naming its key.
    pub fn from_conf(conf: &RpcConf) -> Result<SchedulerConf, ConfError> {
        let d = SchedulerConf::default();
        let wait = conf.get_duration(
            keys::LOCALITY_WAIT,
            d.locality_wait_process,
            TimeUnit::Milliseconds,
        )?;
        let level = |key: &str| conf.get_duration(key, wait, TimeUnit::Milliseconds);
        let task_cpus = conf.get_u32(keys::TASK_CPUS, d.task_cpus)?;
        if task_cpus == 0 {
            return Err(ConfError::new(keys::TASK_CPUS, "0", "must be at least 1"));
        }
        let quantile = conf.get_f64(keys::SPECULATION_QUANTILE, d.speculation_quantile)?;
        if !(0.0..1.0).contains(&quantile) {
            return Err(ConfError::new(
                keys::SPECULATION_QUANTILE,
                quantile.to_string(),
                "must be in [0, 1)",
            ));
        }
        Ok(SchedulerConf {
            locality_wait_process: level(keys::LOCALITY_WAIT_PROCESS)?,
            locality_wait_node: level(keys::LOCALITY_WAIT_NODE)?,
            locality_wait_rack: level(keys::LOCALITY_WAIT_RACK)?,
            legacy_locality_reset: conf.get_bool(keys::LOCALITY_LEGACY_RESET, false)?,
            speculation: conf.get_bool(keys::SPECULATION, d.speculation)?,
            speculation_interval: conf.get_duration(
                keys::SPECULATION_INTERVAL,
                d.speculation_interval,
                TimeUnit::Milliseconds,
            )?,
            speculation_multiplier: conf
                .get_f64(keys::SPECULATION_MULTIPLIER, d.speculation_multiplier)?,
            speculation_quantile: quantile,
            speculation_min_task_runtime: conf.get_duration(
                keys::SPECULATION_MIN_TASK_RUNTIME,
                d.speculation_min_task_runtime,
                TimeUnit::Milliseconds,
            )?,
            task_cpus,
            max_result_size: conf.get_size_bytes(
                keys::MAX_RESULT_SIZE,
                d.max_result_size,
                SizeUnit::Bytes,
            )?,
            revive_interval: conf.get_duration(
                keys::REVIVE_INTERVAL,
                d.revive_interval,
                TimeUnit::Milliseconds,
            )?,
            heartbeat_interval: conf.get_duration(
                keys::HEARTBEAT_INTERVAL,
                d.heartbeat_interval,
                TimeUnit::Milliseconds,
            )?,
            launch_ahead: conf.get_u32(keys::LAUNCH_AHEAD, d.launch_ahead)?,
            launch_ahead_time: conf.get_duration(
                keys::LAUNCH_AHEAD_TIME,
                d.launch_ahead_time,
                TimeUnit::Milliseconds,
            )?,
            executor_loss_grace: conf.get_duration(
                keys::EXECUTOR_LOSS_GRACE,
                d.executor_loss_grace,
                TimeUnit::Milliseconds,
            )?,
        })
    }

    /// The locality wait at `level` (0 for NO_PREF and ANY).
    pub fn locality_wait(&self, level: crate::TaskLocality) -> Duration {
        match level {
            crate::TaskLocality::ProcessLocal => self.locality_wait_process,
            crate::TaskLocality::NodeLocal => self.locality_wait_node,
            crate::TaskLocality::RackLocal => self.locality_wait_rack,
            crate::TaskLocality::NoPref | crate::TaskLocality::Any => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_keys_lists_every_key_declared_here() {
        assert_eq!(
            keys::ALL,
            ember_test_support::declared_keys(include_str!("conf.rs"))
        );
    }

    #[test]
    fn defaults_are_sparks() {
        let conf = SchedulerConf::from_conf(&RpcConf::new()).expect("defaults parse");
        assert_eq!(conf, SchedulerConf::default());
        assert_eq!(
            conf.locality_wait(crate::TaskLocality::NodeLocal),
            Duration::from_secs(3)
        );
        assert_eq!(conf.locality_wait(crate::TaskLocality::Any), Duration::ZERO);
    }

    #[test]
    fn level_waits_fall_back_to_the_general_wait() {
        let conf = RpcConf::new()
            .with(keys::LOCALITY_WAIT, "500ms")
            .with(keys::LOCALITY_WAIT_NODE, "2s");
        let conf = SchedulerConf::from_conf(&conf).expect("parses");
        assert_eq!(conf.locality_wait_process, Duration::from_millis(500));
        assert_eq!(conf.locality_wait_node, Duration::from_secs(2));
        assert_eq!(conf.locality_wait_rack, Duration::from_millis(500));
    }

    #[test]
    fn bad_values_name_their_key() {
        let error = SchedulerConf::from_conf(&RpcConf::new().with(keys::TASK_CPUS, "two"))
            .expect_err("malformed");
        assert!(error.to_string().contains(keys::TASK_CPUS), "{error}");
        let error =
            SchedulerConf::from_conf(&RpcConf::new().with(keys::SPECULATION_QUANTILE, "1.5"))
                .expect_err("out of range");
        assert!(
            error.to_string().contains(keys::SPECULATION_QUANTILE),
            "{error}"
        );
    }
}
