//! The worker's configuration: what its command line gives ([`WorkerConfig`]), the
//! `ember.worker.*` keys ([`keys`]) with Spark's defaults, and the value syntaxes (master
//! URL lists, memory strings).

use std::path::PathBuf;
use std::time::Duration;

use rpc_env::{ConfError, RpcAddress, RpcConf, RpcTimeout, TimeUnit};

use super::registration::RetrySchedule;

/// The `ember.worker.*` settings the worker reads (Spark's `spark.worker.*`).
pub mod keys {
    /// Heartbeats go out every timeout / 4; the master drops a worker silent this long.
    /// Default `60s` (a bare number is seconds).
    pub const TIMEOUT: &str = "ember.worker.timeout";
    /// Base of the quick registration retry interval, fuzzed ×[0.5, 1.5) per worker.
    /// Default `10s` (so 5–15 s).
    pub const REGISTRATION_RETRY_INTERVAL: &str = "ember.worker.registrationRetryInterval";
    /// Base of the slow registration retry interval. Default `60s` (so 30–90 s).
    pub const PROLONGED_REGISTRATION_RETRY_INTERVAL: &str =
        "ember.worker.prolongedRegistrationRetryInterval";
    /// Retries at the quick interval. Default 6.
    pub const INITIAL_REGISTRATION_RETRIES: &str = "ember.worker.initialRegistrationRetries";
    /// Retries in all before giving up. Default 16.
    pub const MAX_REGISTRATION_RETRIES: &str = "ember.worker.maxRegistrationRetries";
    /// Tries of an executor state report to the master before the worker exits. Default 5.
    pub const EXECUTOR_STATE_SYNC_MAX_ATTEMPTS: &str = "ember.worker.executorStateSync.maxAttempts";
    /// Grace between SIGTERM and SIGKILL for an executor. Default `10s` (Spark hard-codes it).
    pub const EXECUTOR_TERMINATE_TIMEOUT: &str = "ember.worker.executorTerminateTimeout";
    /// Grace between SIGTERM and SIGKILL for a driver. Default `10s`.
    pub const DRIVER_TERMINATE_TIMEOUT: &str = "ember.worker.driverTerminateTimeout";
    /// Periodic cleanup of finished applications' work dirs. Default `true`, as in Spark 4
    /// (SPARK-46997): work dirs of finished applications used to fill workers' disks.
    pub const CLEANUP_ENABLED: &str = "ember.worker.cleanup.enabled";
    /// How often the cleanup runs. Default `1800s`.
    pub const CLEANUP_INTERVAL: &str = "ember.worker.cleanup.interval";
    /// A directory with a file newer than this is kept. Default `604800s` (7 days).
    pub const CLEANUP_APP_DATA_TTL: &str = "ember.worker.cleanup.appDataTtl";
    /// Finished executors remembered for the worker's state. Default 1000.
    pub const RETAINED_EXECUTORS: &str = "ember.worker.ui.retainedExecutors";
    /// Finished drivers remembered. Default 1000.
    pub const RETAINED_DRIVERS: &str = "ember.worker.ui.retainedDrivers";
    /// The web UI port; overrides `--webui-port` when set in the properties file.
    pub const UI_PORT: &str = "ember.worker.ui.port";
    /// Every key above: what a properties file may set for the worker.
    pub const ALL: &[&str] = &[
        TIMEOUT,
        REGISTRATION_RETRY_INTERVAL,
        PROLONGED_REGISTRATION_RETRY_INTERVAL,
        INITIAL_REGISTRATION_RETRIES,
        MAX_REGISTRATION_RETRIES,
        EXECUTOR_STATE_SYNC_MAX_ATTEMPTS,
        EXECUTOR_TERMINATE_TIMEOUT,
        DRIVER_TERMINATE_TIMEOUT,
        CLEANUP_ENABLED,
        CLEANUP_INTERVAL,
        CLEANUP_APP_DATA_TTL,
        RETAINED_EXECUTORS,
        RETAINED_DRIVERS,
        UI_PORT,
    ];
}

/// The default web UI port.
pub(crate) const DEFAULT_WEBUI_PORT: u16 = 8081;
/// The memory left to the operating system by default, and the least a worker offers.
const RESERVED_MEMORY_MIB: u64 = 1024;
/// What `--memory` and `EMBER_WORKER_MEMORY` say when a value has no usable size.
pub(crate) const MEMORY_TOO_SMALL: &str =
    "Memory is below 1MB, or missing a M/G at the end of the memory specification?";

/// How to start a worker: the command line's options, with Spark's defaults.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The masters to register with (`ember://h1:p1,h2:p2`).
    pub masters: Vec<RpcAddress>,
    /// The host to bind and advertise; `127.0.0.1` by default.
    pub host: String,
    /// The RPC port; 0 picks a free one.
    pub port: u16,
    /// Cores offered to applications; all of the machine's by default.
    pub cores: u32,
    /// Memory offered, in MiB; the machine's minus 1 GiB (at least 1 GiB) by default.
    pub memory_mib: u32,
    /// Where executors and drivers run and keep their logs; `work` by default.
    pub work_dir: PathBuf,
    /// The status UI's port (default 8081; 0 picks a free one).
    pub webui_port: u16,
    /// `ember.*` settings (RPC and `ember.worker.*`).
    pub conf: RpcConf,
    /// A command prefix every executor and driver is started through: the program and its
    /// arguments follow it. Empty (the default) starts them directly. `ember-worker` blocks
    /// its stop signals to handle them on a thread of its own, and children would inherit
    /// that mask, so it starts them through itself in a mode that clears the mask and execs
    /// the real program.
    pub launcher: Vec<String>,
}

impl WorkerConfig {
    /// A worker for `masters` with every other option at its default.
    pub fn new(masters: Vec<RpcAddress>) -> WorkerConfig {
        WorkerConfig {
            masters,
            host: "127.0.0.1".to_string(),
            port: 0,
            cores: default_cores(),
            memory_mib: default_memory_mib(),
            work_dir: PathBuf::from("work"),
            webui_port: DEFAULT_WEBUI_PORT,
            conf: RpcConf::new(),
            launcher: Vec::new(),
        }
    }
}

/// Parses `ember://host:port[,host:port...]` into the masters' addresses (Spark's
/// `parseStandaloneMasterUrls`: one leading scheme, then a comma-separated list).
pub fn parse_master_urls(url: &str) -> Result<Vec<RpcAddress>, String> {
    let bad = || format!("Master must be a URL of the form ember://hostname:port, not '{url}'");
    let list = url.strip_prefix("ember://").ok_or_else(bad)?;
    list.split(',')
        .map(|part| {
            let part = part.trim();
            // Each entry may repeat the scheme (`ember://a:1,ember://b:2`).
            let part = part.strip_prefix("ember://").unwrap_or(part);
            RpcAddress::from_ember_url(&format!("ember://{part}")).map_err(|_| bad())
        })
        .collect()
}

/// Parses a memory string as Spark's `memoryStringToMb` does: `512m`, `2g`, `1t`, `4096k`
/// (any case, an optional trailing `b`); a bare number is bytes. Fails with Spark's
/// message when the result is below 1 MiB.
pub fn parse_memory_mib(text: &str) -> Result<u32, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, suffix) = lower.split_at(digits_end);
    let invalid = || format!("Invalid memory size '{text}': expected a number with k, m, g or t");
    let n: u64 = digits.parse().map_err(|_| invalid())?;
    let mib = match suffix {
        "" | "b" => n / (1024 * 1024),
        "k" | "kb" => n / 1024,
        "m" | "mb" => n,
        "g" | "gb" => n.saturating_mul(1024),
        "t" | "tb" => n.saturating_mul(1024 * 1024),
        _ => return Err(invalid()),
    };
    match u32::try_from(mib) {
        Ok(0) => Err(MEMORY_TOO_SMALL.to_string()),
        Ok(mib) => Ok(mib),
        Err(_) => Err(format!("Memory size '{text}' is too large")),
    }
}

/// All of the machine's cores.
pub(crate) fn default_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// The machine's memory minus 1 GiB, at least 1 GiB (Spark's `inferDefaultMemory`).
pub(crate) fn default_memory_mib() -> u32 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total_mib(&text))
        .unwrap_or(2 * RESERVED_MEMORY_MIB);
    let offered = total
        .saturating_sub(RESERVED_MEMORY_MIB)
        .max(RESERVED_MEMORY_MIB);
    u32::try_from(offered).unwrap_or(u32::MAX)
}

/// `MemTotal` of `/proc/meminfo`, in MiB.
fn mem_total_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// The worker's settings read from its `ember.*` configuration.
#[derive(Debug, Clone)]
pub(crate) struct WorkerSettings {
    /// How often heartbeats go out: `ember.worker.timeout` / 4.
    pub(crate) heartbeat_interval: Duration,
    /// The registration retry schedule, fuzzed for this worker.
    pub(crate) schedule: RetrySchedule,
    /// Tries of one executor state report.
    pub(crate) state_sync_max_attempts: u32,
    /// The timeout of a state report ask, and the wait before retrying a failed one.
    pub(crate) ask_timeout: RpcTimeout,
    /// SIGTERM-to-SIGKILL grace for executors.
    pub(crate) executor_kill_grace: Duration,
    /// SIGTERM-to-SIGKILL grace for drivers.
    pub(crate) driver_kill_grace: Duration,
    /// The periodic cleanup, when enabled.
    pub(crate) cleanup: Option<CleanupSettings>,
    /// Finished executors kept for the worker's state.
    pub(crate) retained_executors: usize,
    /// Finished drivers kept.
    pub(crate) retained_drivers: usize,
}

/// When and what the periodic work-dir cleanup deletes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CleanupSettings {
    /// How often it runs.
    pub(crate) interval: Duration,
    /// A directory with anything newer than this is kept.
    pub(crate) app_data_ttl: Duration,
}

impl WorkerSettings {
    /// Reads the settings; `fuzz` scales the registration intervals (drawn once per worker).
    pub(crate) fn from_conf(conf: &RpcConf, fuzz: f64) -> Result<WorkerSettings, ConfError> {
        let secs = |key: &str, default: u64| {
            conf.get_duration(key, Duration::from_secs(default), TimeUnit::Seconds)
        };
        let timeout = secs(keys::TIMEOUT, 60)?;
        if timeout.is_zero() {
            return Err(ConfError::new(
                keys::TIMEOUT,
                conf.get(keys::TIMEOUT).unwrap_or_default(),
                "must be positive",
            ));
        }
        let schedule = RetrySchedule::new(
            positive(
                conf,
                keys::REGISTRATION_RETRY_INTERVAL,
                secs(keys::REGISTRATION_RETRY_INTERVAL, 10)?,
            )?,
            positive(
                conf,
                keys::PROLONGED_REGISTRATION_RETRY_INTERVAL,
                secs(keys::PROLONGED_REGISTRATION_RETRY_INTERVAL, 60)?,
            )?,
            conf.get_u32(keys::INITIAL_REGISTRATION_RETRIES, 6)?,
            conf.get_u32(keys::MAX_REGISTRATION_RETRIES, 16)?,
            fuzz,
        );
        let cleanup = if conf.get_bool(keys::CLEANUP_ENABLED, true)? {
            Some(CleanupSettings {
                interval: positive(
                    conf,
                    keys::CLEANUP_INTERVAL,
                    secs(keys::CLEANUP_INTERVAL, 1800)?,
                )?,
                app_data_ttl: secs(keys::CLEANUP_APP_DATA_TTL, 7 * 24 * 3600)?,
            })
        } else {
            None
        };
        Ok(WorkerSettings {
            heartbeat_interval: timeout / 4,
            schedule,
            state_sync_max_attempts: conf
                .get_u32(keys::EXECUTOR_STATE_SYNC_MAX_ATTEMPTS, 5)?
                .max(1),
            ask_timeout: conf.ask_timeout()?,
            executor_kill_grace: secs(keys::EXECUTOR_TERMINATE_TIMEOUT, 10)?,
            driver_kill_grace: secs(keys::DRIVER_TERMINATE_TIMEOUT, 10)?,
            cleanup,
            retained_executors: conf.get_usize(keys::RETAINED_EXECUTORS, 1000)?,
            retained_drivers: conf.get_usize(keys::RETAINED_DRIVERS, 1000)?,
        })
    }
}

/// A timer interval must be positive: a zero one would spin.
fn positive(conf: &RpcConf, key: &str, d: Duration) -> Result<Duration, ConfError> {
    if d.is_zero() {
        Err(ConfError::new(
            key,
            conf.get(key).unwrap_or_default(),
            "must be positive",
        ))
    } else {
        Ok(d)
    }
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
    fn memory_strings_as_spark_reads_them() {
        assert_eq!(parse_memory_mib("512m"), Ok(512));
        assert_eq!(parse_memory_mib("512M"), Ok(512));
        assert_eq!(parse_memory_mib("2g"), Ok(2048));
        assert_eq!(parse_memory_mib("5G"), Ok(5120));
        assert_eq!(parse_memory_mib("1t"), Ok(1024 * 1024));
        assert_eq!(parse_memory_mib("4096k"), Ok(4));
        assert_eq!(parse_memory_mib("2gb"), Ok(2048));
        assert_eq!(parse_memory_mib("10000M"), Ok(10000));
        // A bare number is bytes.
        assert_eq!(parse_memory_mib("2097152"), Ok(2));
        assert_eq!(parse_memory_mib("10000"), Err(MEMORY_TOO_SMALL.to_string()));
        assert_eq!(parse_memory_mib("0g"), Err(MEMORY_TOO_SMALL.to_string()));
        assert!(parse_memory_mib("lots").is_err());
        assert!(parse_memory_mib("12q").is_err());
        assert!(parse_memory_mib("-1g").is_err());
        assert!(parse_memory_mib("99999999999t").is_err());
    }

    #[test]
    fn master_url_lists() {
        assert_eq!(
            parse_master_urls("ember://a:1,b:2"),
            Ok(vec![RpcAddress::new("a", 1), RpcAddress::new("b", 2)])
        );
        assert_eq!(
            parse_master_urls("ember://a:1,ember://b:2"),
            Ok(vec![RpcAddress::new("a", 1), RpcAddress::new("b", 2)])
        );
        assert!(parse_master_urls("spark://a:1").is_err());
        assert!(parse_master_urls("ember://a").is_err());
        assert!(parse_master_urls("ember://a:1,").is_err());
        assert!(parse_master_urls("a:1").is_err());
    }

    #[test]
    fn meminfo_total() {
        let text = "MemTotal:       16384000 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total_mib(text), Some(16000));
        assert_eq!(mem_total_mib("nothing"), None);
        let m = default_memory_mib();
        assert!(m >= 1024, "{m}");
    }

    #[test]
    fn settings_defaults_and_overrides() {
        let s = WorkerSettings::from_conf(&RpcConf::new(), 1.0).expect("defaults");
        assert_eq!(s.heartbeat_interval, Duration::from_secs(15));
        assert_eq!(s.schedule.initial_interval, Duration::from_secs(10));
        assert_eq!(s.schedule.prolonged_interval, Duration::from_secs(60));
        assert_eq!(
            (s.schedule.initial_retries, s.schedule.max_retries),
            (6, 16)
        );
        assert_eq!(s.state_sync_max_attempts, 5);
        let cleanup = s.cleanup.expect("cleanup is on by default, as in Spark 4");
        assert_eq!(cleanup.interval, Duration::from_secs(1800));
        let off = RpcConf::new().with(keys::CLEANUP_ENABLED, "false");
        let off = WorkerSettings::from_conf(&off, 1.0).expect("set");
        assert!(off.cleanup.is_none(), "cleanup can be turned off");
        let conf = RpcConf::new()
            .with(keys::TIMEOUT, "400ms")
            .with(keys::REGISTRATION_RETRY_INTERVAL, "100ms")
            .with(keys::CLEANUP_ENABLED, "true");
        let s = WorkerSettings::from_conf(&conf, 0.5).expect("set");
        assert_eq!(s.heartbeat_interval, Duration::from_millis(100));
        assert_eq!(s.schedule.initial_interval, Duration::from_millis(50));
        let cleanup = s.cleanup.expect("enabled");
        assert_eq!(cleanup.interval, Duration::from_secs(1800));
        assert_eq!(cleanup.app_data_ttl, Duration::from_secs(604_800));
        let bad = RpcConf::new().with(keys::REGISTRATION_RETRY_INTERVAL, "0s");
        assert!(WorkerSettings::from_conf(&bad, 1.0).is_err());
    }
}
