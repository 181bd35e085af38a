//! How a master is started ([`MasterConfig`]) and the `ember.*` settings it reads
//! ([`MasterSettings`], keys in [`keys`]), with Spark's defaults.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rpc_env::{ConfError, RpcConf, SizeUnit, TimeUnit};

/// The settings the master reads (Spark's `spark.*` keys as `ember.*`).
pub mod keys {
    /// Workers silent for longer than this are removed; they heartbeat every quarter of it.
    /// A bare number is in seconds. Default `60s`.
    pub const WORKER_TIMEOUT: &str = "ember.worker.timeout";
    /// A DEAD worker stays listed for `(this + 1) × ember.worker.timeout`. Default 15.
    pub const DEAD_WORKER_PERSISTENCE: &str = "ember.dead.worker.persistence";
    /// Spread each application's executors over as many workers as possible (`true`,
    /// default) or pack them onto as few as possible.
    pub const SPREAD_OUT_APPS: &str = "ember.deploy.spreadOutApps";
    /// The older name of [`SPREAD_OUT_APPS`], read when that is not set.
    pub const SPREAD_OUT: &str = "ember.deploy.spreadOut";
    /// Place drivers round-robin over shuffled workers (`true`, default) or first-fit over
    /// workers sorted by id.
    pub const SPREAD_OUT_DRIVERS: &str = "ember.deploy.spreadOutDrivers";
    /// The order executors try workers in: `CORES_FREE_DESC` (default), `CORES_FREE_ASC`,
    /// `MEMORY_FREE_ASC`, `MEMORY_FREE_DESC` or `WORKER_ID` (any case).
    pub const WORKER_SELECTION_POLICY: &str = "ember.deploy.workerSelectionPolicy";
    /// Cores for applications that do not set `ember.cores.max`; default unlimited, at
    /// least 1 when set.
    pub const DEFAULT_CORES: &str = "ember.deploy.defaultCores";
    /// The most drivers running at once; default unlimited.
    pub const MAX_DRIVERS: &str = "ember.deploy.maxDrivers";
    /// Executor failures in a row (with none running) after which an application is
    /// removed as FAILED; `-1` never removes it. Default 10.
    pub const MAX_EXECUTOR_RETRIES: &str = "ember.deploy.maxExecutorRetries";
    /// Finished applications remembered for tools. Default 200.
    pub const RETAINED_APPLICATIONS: &str = "ember.deploy.retainedApplications";
    /// Finished drivers remembered for tools. Default 200.
    pub const RETAINED_DRIVERS: &str = "ember.deploy.retainedDrivers";
    /// The web UI port; overrides `--webui-port` when set (Spark's `spark.master.ui.port`).
    pub const MASTER_UI_PORT: &str = "ember.master.ui.port";
    /// How the master survives a restart: `NONE` (default: it forgets everything) or
    /// `FILESYSTEM` (it keeps workers, applications and drivers in
    /// [`RECOVERY_DIRECTORY`], and masters sharing that directory elect a leader). Any
    /// other value is an error.
    pub const RECOVERY_MODE: &str = "ember.deploy.recoveryMode";
    /// The directory of `FILESYSTEM` recovery; required in that mode. Created `0700` if
    /// missing; refused at start if another user owns it or group or others may write it.
    pub const RECOVERY_DIRECTORY: &str = "ember.deploy.recoveryDirectory";
    /// How long a recovering master waits for stored workers and applications to answer
    /// before dropping the silent ones. A bare number is in seconds. Default: the worker
    /// timeout.
    pub const RECOVERY_TIMEOUT: &str = "ember.deploy.recoveryTimeout";
    /// How often a standby master checks whether it can take the lead. A bare number is in
    /// seconds. Default `1s`.
    pub const LEADER_POLL_INTERVAL: &str = "ember.deploy.leaderPollInterval";
    /// The most bytes of cluster-mode drivers' programs the master keeps for their workers
    /// to fetch (`ember-submit` uploads them); a bare number is in bytes. Default `2g`.
    pub const PROGRAM_STORE_MAX_BYTES: &str = "ember.deploy.programStore.maxBytes";
    /// Where the master keeps those programs. Default: `programs-store` inside the
    /// recovery directory under FILESYSTEM recovery, so a restarted master still serves
    /// them; otherwise a private directory in the system's temporary directory, removed
    /// when the master stops. Created `0700`; refused if group or others may write it.
    pub const PROGRAM_STORE_DIR: &str = "ember.deploy.programStore.dir";
    /// Every key above: what a properties file may set for the master.
    pub const ALL: &[&str] = &[
        WORKER_TIMEOUT,
        DEAD_WORKER_PERSISTENCE,
        SPREAD_OUT_APPS,
        SPREAD_OUT,
        SPREAD_OUT_DRIVERS,
        WORKER_SELECTION_POLICY,
        DEFAULT_CORES,
        MAX_DRIVERS,
        MAX_EXECUTOR_RETRIES,
        RETAINED_APPLICATIONS,
        RETAINED_DRIVERS,
        MASTER_UI_PORT,
        RECOVERY_MODE,
        RECOVERY_DIRECTORY,
        RECOVERY_TIMEOUT,
        LEADER_POLL_INTERVAL,
        PROGRAM_STORE_MAX_BYTES,
        PROGRAM_STORE_DIR,
    ];
}

/// The master's port when none is given (Spark's 7077).
pub const DEFAULT_MASTER_PORT: u16 = 7077;
/// The master's web UI port when none is given (Spark's 8080).
pub const DEFAULT_MASTER_WEBUI_PORT: u16 = 8080;
/// The host a master binds to when none is given: loopback, so that a master started
/// without thought is not reachable from the network.
pub const DEFAULT_MASTER_HOST: &str = "127.0.0.1";

/// How to start a master: where it listens and its `ember.*` settings.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// The host to bind to and advertise (default loopback).
    pub host: String,
    /// The RPC port; 0 picks a free one (default 7077).
    pub port: u16,
    /// The status UI's port (default 8080; 0 picks a free one).
    pub webui_port: u16,
    /// All `ember.*` settings: the master's ([`keys`]) and the RPC environment's.
    pub conf: RpcConf,
    /// Start as a STANDBY master that never takes the lead, whatever the recovery mode:
    /// it turns workers and applications away for ever. For tests and tools. (Without
    /// it a master leads as soon as its leader election lets it: at once in recovery mode
    /// NONE, once it holds the recovery directory's lock in FILESYSTEM mode.)
    pub standby: bool,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            host: DEFAULT_MASTER_HOST.to_string(),
            port: DEFAULT_MASTER_PORT,
            webui_port: DEFAULT_MASTER_WEBUI_PORT,
            conf: RpcConf::new(),
            standby: false,
        }
    }
}

impl MasterConfig {
    /// A master on `host:port` with default settings.
    pub fn new(host: impl Into<String>, port: u16) -> MasterConfig {
        MasterConfig {
            host: host.into(),
            port,
            ..MasterConfig::default()
        }
    }

    /// A master on loopback with a free port and a free UI port, as tests and local
    /// clusters want.
    pub fn local() -> MasterConfig {
        MasterConfig {
            webui_port: 0,
            ..MasterConfig::new(DEFAULT_MASTER_HOST, 0)
        }
    }

    /// These settings instead of the defaults.
    pub fn with_conf(mut self, conf: RpcConf) -> MasterConfig {
        self.conf = conf;
        self
    }

    /// Sets one `ember.*` setting.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> MasterConfig {
        self.conf.set(key, value);
        self
    }

    /// The master's settings, read and checked.
    ///
    /// # Errors
    ///
    /// A setting of [`keys`] with a value that does not parse or is out of range.
    pub fn settings(&self) -> Result<MasterSettings, ConfError> {
        MasterSettings::from_conf(&self.conf)
    }
}

/// The order in which executors try workers (`ember.deploy.workerSelectionPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkerSelectionPolicy {
    /// Fewest free cores first.
    CoresFreeAsc,
    /// Most free cores first (the default).
    #[default]
    CoresFreeDesc,
    /// Least free memory first.
    MemoryFreeAsc,
    /// Most free memory first.
    MemoryFreeDesc,
    /// Smallest worker id first.
    WorkerId,
}

impl WorkerSelectionPolicy {
    /// Reads a policy name in any case.
    pub fn parse(name: &str) -> Option<WorkerSelectionPolicy> {
        let policy = match name.trim().to_ascii_uppercase().as_str() {
            "CORES_FREE_ASC" => WorkerSelectionPolicy::CoresFreeAsc,
            "CORES_FREE_DESC" => WorkerSelectionPolicy::CoresFreeDesc,
            "MEMORY_FREE_ASC" => WorkerSelectionPolicy::MemoryFreeAsc,
            "MEMORY_FREE_DESC" => WorkerSelectionPolicy::MemoryFreeDesc,
            "WORKER_ID" => WorkerSelectionPolicy::WorkerId,
            _ => return None,
        };
        Some(policy)
    }
}

impl fmt::Display for WorkerSelectionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkerSelectionPolicy::CoresFreeAsc => "CORES_FREE_ASC",
            WorkerSelectionPolicy::CoresFreeDesc => "CORES_FREE_DESC",
            WorkerSelectionPolicy::MemoryFreeAsc => "MEMORY_FREE_ASC",
            WorkerSelectionPolicy::MemoryFreeDesc => "MEMORY_FREE_DESC",
            WorkerSelectionPolicy::WorkerId => "WORKER_ID",
        })
    }
}

/// How the master survives a restart ([`keys::RECOVERY_MODE`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// `NONE`: nothing is kept; the master is the only one and leads at once.
    #[default]
    None,
    /// `FILESYSTEM`: workers, applications and drivers are kept in `directory`, and the
    /// master holding the lock file there leads.
    FileSystem {
        /// [`keys::RECOVERY_DIRECTORY`].
        directory: PathBuf,
    },
}

impl RecoveryMode {
    /// Reads [`keys::RECOVERY_MODE`] and, for `FILESYSTEM`, [`keys::RECOVERY_DIRECTORY`].
    ///
    /// # Errors
    ///
    /// A mode other than `NONE` or `FILESYSTEM` (any case), or `FILESYSTEM` without a
    /// directory. Spark treats an unknown mode as NONE; a typo here would silently lose
    /// the cluster's state at the next restart, so it is refused.
    pub fn from_conf(conf: &RpcConf) -> Result<RecoveryMode, ConfError> {
        let Some(mode) = conf.get(keys::RECOVERY_MODE) else {
            return Ok(RecoveryMode::None);
        };
        match mode.trim().to_ascii_uppercase().as_str() {
            "NONE" => Ok(RecoveryMode::None),
            "FILESYSTEM" => match conf.get(keys::RECOVERY_DIRECTORY).map(str::trim) {
                Some(dir) if !dir.is_empty() => Ok(RecoveryMode::FileSystem {
                    directory: PathBuf::from(dir),
                }),
                _ => Err(ConfError::new(
                    keys::RECOVERY_DIRECTORY,
                    conf.get(keys::RECOVERY_DIRECTORY).unwrap_or(""),
                    "required when ember.deploy.recoveryMode is FILESYSTEM",
                )),
            },
            _ => Err(ConfError::new(
                keys::RECOVERY_MODE,
                mode,
                "expected NONE or FILESYSTEM (ZOOKEEPER, ROCKSDB and CUSTOM are not supported)",
            )),
        }
    }
}

/// The master's settings, read from an [`RpcConf`] with Spark's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterSettings {
    /// [`keys::WORKER_TIMEOUT`]: 60 s; never zero.
    pub worker_timeout: Duration,
    /// [`keys::DEAD_WORKER_PERSISTENCE`]: 15.
    pub dead_worker_persistence: u32,
    /// [`keys::SPREAD_OUT_APPS`] (or [`keys::SPREAD_OUT`]): true.
    pub spread_out_apps: bool,
    /// [`keys::SPREAD_OUT_DRIVERS`]: true.
    pub spread_out_drivers: bool,
    /// [`keys::WORKER_SELECTION_POLICY`]: `CORES_FREE_DESC`.
    pub worker_selection_policy: WorkerSelectionPolicy,
    /// [`keys::DEFAULT_CORES`]: `None` = unlimited.
    pub default_cores: Option<u32>,
    /// [`keys::MAX_DRIVERS`]: `None` = unlimited.
    pub max_drivers: Option<u32>,
    /// [`keys::MAX_EXECUTOR_RETRIES`]: `Some(10)`; `None` (set as `-1`, or any negative
    /// number) never removes an application for failing executors.
    pub max_executor_retries: Option<u32>,
    /// [`keys::RETAINED_APPLICATIONS`]: 200.
    pub retained_applications: usize,
    /// [`keys::RETAINED_DRIVERS`]: 200.
    pub retained_drivers: usize,
    /// [`keys::RECOVERY_MODE`] with [`keys::RECOVERY_DIRECTORY`]: NONE.
    pub recovery_mode: RecoveryMode,
    /// [`keys::RECOVERY_TIMEOUT`]: the worker timeout; never zero.
    pub recovery_timeout: Duration,
    /// [`keys::LEADER_POLL_INTERVAL`]: 1 s; never zero.
    pub leader_poll_interval: Duration,
    /// [`keys::PROGRAM_STORE_MAX_BYTES`]: 2 GiB.
    pub program_store_max_bytes: u64,
    /// [`keys::PROGRAM_STORE_DIR`]: `None` = the default place.
    pub program_store_dir: Option<PathBuf>,
}

impl Default for MasterSettings {
    fn default() -> Self {
        MasterSettings {
            worker_timeout: Duration::from_secs(60),
            dead_worker_persistence: 15,
            spread_out_apps: true,
            spread_out_drivers: true,
            worker_selection_policy: WorkerSelectionPolicy::CoresFreeDesc,
            default_cores: None,
            max_drivers: None,
            max_executor_retries: Some(10),
            retained_applications: 200,
            retained_drivers: 200,
            recovery_mode: RecoveryMode::None,
            recovery_timeout: Duration::from_secs(60),
            leader_poll_interval: Duration::from_secs(1),
            program_store_max_bytes: 2 << 30,
            program_store_dir: None,
        }
    }
}

impl MasterSettings {
    /// Reads the settings of [`keys`] from `conf`; unset keys get Spark's defaults.
    ///
    /// # Errors
    ///
    /// A value that does not parse, a zero worker timeout, recovery timeout or leader poll
    /// interval, a zero `defaultCores`, an unknown worker selection policy, or a recovery
    /// mode other than NONE and FILESYSTEM (or FILESYSTEM without a directory).
    pub fn from_conf(conf: &RpcConf) -> Result<MasterSettings, ConfError> {
        let d = MasterSettings::default();
        let worker_timeout =
            conf.get_duration(keys::WORKER_TIMEOUT, d.worker_timeout, TimeUnit::Seconds)?;
        if worker_timeout.is_zero() {
            return Err(invalid(conf, keys::WORKER_TIMEOUT, "must be more than 0"));
        }
        let spread_out_apps = match conf.get(keys::SPREAD_OUT_APPS) {
            Some(_) => conf.get_bool(keys::SPREAD_OUT_APPS, true)?,
            None => conf.get_bool(keys::SPREAD_OUT, true)?,
        };
        let worker_selection_policy = match conf.get(keys::WORKER_SELECTION_POLICY) {
            None => d.worker_selection_policy,
            Some(name) => WorkerSelectionPolicy::parse(name).ok_or_else(|| {
                ConfError::new(
                    keys::WORKER_SELECTION_POLICY,
                    name,
                    "expected one of CORES_FREE_ASC, CORES_FREE_DESC, MEMORY_FREE_ASC, \
                     MEMORY_FREE_DESC, WORKER_ID",
                )
            })?,
        };
        let default_cores = optional_u32(conf, keys::DEFAULT_CORES)?;
        if default_cores == Some(0) {
            return Err(invalid(conf, keys::DEFAULT_CORES, "must be positive"));
        }
        let max_executor_retries =
            match conf.get(keys::MAX_EXECUTOR_RETRIES) {
                None => d.max_executor_retries,
                Some(raw) => match raw.trim().parse::<i64>() {
                    Ok(n) if n < 0 => None,
                    Ok(n) => Some(u32::try_from(n).map_err(|_| {
                        ConfError::new(keys::MAX_EXECUTOR_RETRIES, raw, "too large")
                    })?),
                    Err(_) => {
                        return Err(ConfError::new(
                            keys::MAX_EXECUTOR_RETRIES,
                            raw,
                            "expected an integer",
                        ))
                    }
                },
            };
        let recovery_timeout =
            conf.get_duration(keys::RECOVERY_TIMEOUT, worker_timeout, TimeUnit::Seconds)?;
        if recovery_timeout.is_zero() {
            return Err(invalid(conf, keys::RECOVERY_TIMEOUT, "must be more than 0"));
        }
        let leader_poll_interval = conf.get_duration(
            keys::LEADER_POLL_INTERVAL,
            d.leader_poll_interval,
            TimeUnit::Seconds,
        )?;
        if leader_poll_interval.is_zero() {
            return Err(invalid(
                conf,
                keys::LEADER_POLL_INTERVAL,
                "must be more than 0",
            ));
        }
        Ok(MasterSettings {
            worker_timeout,
            dead_worker_persistence: conf
                .get_u32(keys::DEAD_WORKER_PERSISTENCE, d.dead_worker_persistence)?,
            spread_out_apps,
            spread_out_drivers: conf.get_bool(keys::SPREAD_OUT_DRIVERS, d.spread_out_drivers)?,
            worker_selection_policy,
            default_cores,
            max_drivers: optional_u32(conf, keys::MAX_DRIVERS)?,
            max_executor_retries,
            retained_applications: conf
                .get_usize(keys::RETAINED_APPLICATIONS, d.retained_applications)?,
            retained_drivers: conf.get_usize(keys::RETAINED_DRIVERS, d.retained_drivers)?,
            recovery_mode: RecoveryMode::from_conf(conf)?,
            recovery_timeout,
            leader_poll_interval,
            program_store_max_bytes: conf.get_size_bytes(
                keys::PROGRAM_STORE_MAX_BYTES,
                d.program_store_max_bytes,
                SizeUnit::Bytes,
            )?,
            program_store_dir: conf
                .get(keys::PROGRAM_STORE_DIR)
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
        })
    }
}

fn optional_u32(conf: &RpcConf, key: &str) -> Result<Option<u32>, ConfError> {
    match conf.get(key) {
        None => Ok(None),
        Some(_) => conf.get_u32(key, 0).map(Some),
    }
}

fn invalid(conf: &RpcConf, key: &str, reason: &str) -> ConfError {
    ConfError::new(key, conf.get(key).unwrap_or(""), reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_keys_lists_every_key_declared_here() {
        assert_eq!(
            keys::ALL,
            ember_test_support::declared_keys(include_str!("config.rs"))
        );
    }

    #[test]
    fn defaults_are_sparks() {
        let s = MasterSettings::from_conf(&RpcConf::new()).expect("defaults parse");
        assert_eq!(s, MasterSettings::default());
        assert_eq!(s.worker_timeout, Duration::from_secs(60));
        assert_eq!(s.max_executor_retries, Some(10));
        assert_eq!(s.retained_applications, 200);
        assert!(s.spread_out_apps && s.spread_out_drivers);
    }

    #[test]
    fn reads_every_key() {
        let conf = RpcConf::new()
            .with(keys::WORKER_TIMEOUT, "200ms")
            .with(keys::DEAD_WORKER_PERSISTENCE, "3")
            .with(keys::SPREAD_OUT, "false")
            .with(keys::SPREAD_OUT_DRIVERS, "false")
            .with(keys::WORKER_SELECTION_POLICY, "worker_id")
            .with(keys::DEFAULT_CORES, "4")
            .with(keys::MAX_DRIVERS, "2")
            .with(keys::MAX_EXECUTOR_RETRIES, "-1")
            .with(keys::RETAINED_APPLICATIONS, "5")
            .with(keys::RETAINED_DRIVERS, "6")
            .with(keys::RECOVERY_MODE, "filesystem")
            .with(keys::RECOVERY_DIRECTORY, "/var/lib/ember/recovery")
            .with(keys::RECOVERY_TIMEOUT, "5")
            .with(keys::LEADER_POLL_INTERVAL, "50ms")
            .with(keys::PROGRAM_STORE_MAX_BYTES, "64m")
            .with(keys::PROGRAM_STORE_DIR, "/var/lib/ember/programs");
        let s = MasterSettings::from_conf(&conf).expect("parses");
        assert_eq!(
            s,
            MasterSettings {
                worker_timeout: Duration::from_millis(200),
                dead_worker_persistence: 3,
                spread_out_apps: false,
                spread_out_drivers: false,
                worker_selection_policy: WorkerSelectionPolicy::WorkerId,
                default_cores: Some(4),
                max_drivers: Some(2),
                max_executor_retries: None,
                retained_applications: 5,
                retained_drivers: 6,
                recovery_mode: RecoveryMode::FileSystem {
                    directory: PathBuf::from("/var/lib/ember/recovery"),
                },
                recovery_timeout: Duration::from_secs(5),
                leader_poll_interval: Duration::from_millis(50),
                program_store_max_bytes: 64 << 20,
                program_store_dir: Some(PathBuf::from("/var/lib/ember/programs")),
            }
        );
    }

    #[test]
    fn the_recovery_timeout_defaults_to_the_worker_timeout() {
        let conf = RpcConf::new().with(keys::WORKER_TIMEOUT, "7s");
        let s = MasterSettings::from_conf(&conf).expect("parses");
        assert_eq!(s.recovery_timeout, Duration::from_secs(7));
        assert_eq!(s.recovery_mode, RecoveryMode::None);
        let none = RpcConf::new().with(keys::RECOVERY_MODE, " none ");
        assert_eq!(
            MasterSettings::from_conf(&none)
                .expect("parses")
                .recovery_mode,
            RecoveryMode::None
        );
    }

    #[test]
    fn filesystem_recovery_needs_a_directory() {
        for dir in [None, Some(""), Some("  ")] {
            let mut conf = RpcConf::new().with(keys::RECOVERY_MODE, "FILESYSTEM");
            if let Some(dir) = dir {
                conf.set(keys::RECOVERY_DIRECTORY, dir);
            }
            let err = MasterSettings::from_conf(&conf).expect_err("no directory");
            assert_eq!(err.key(), keys::RECOVERY_DIRECTORY, "{err}");
        }
    }

    #[test]
    fn the_new_spread_out_key_wins_over_the_old_one() {
        let conf = RpcConf::new()
            .with(keys::SPREAD_OUT, "false")
            .with(keys::SPREAD_OUT_APPS, "true");
        assert!(
            MasterSettings::from_conf(&conf)
                .expect("parses")
                .spread_out_apps
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            (keys::WORKER_TIMEOUT, "soon"),
            (keys::WORKER_TIMEOUT, "0"),
            (keys::DEFAULT_CORES, "0"),
            (keys::WORKER_SELECTION_POLICY, "RANDOM"),
            (keys::MAX_EXECUTOR_RETRIES, "ten"),
            (keys::SPREAD_OUT, "maybe"),
            (keys::RECOVERY_MODE, "ZOOKEEPER"),
            (keys::RECOVERY_MODE, "FILE_SYSTEM"),
            (keys::RECOVERY_TIMEOUT, "0"),
            (keys::RECOVERY_TIMEOUT, "later"),
            (keys::LEADER_POLL_INTERVAL, "0ms"),
        ] {
            let conf = RpcConf::new().with(key, value);
            let err = MasterSettings::from_conf(&conf).expect_err(value);
            assert_eq!(err.key(), key, "{err}");
        }
    }
}
