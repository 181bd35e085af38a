//! What the status pages show: a daemon's state as plain data, built by the daemon's
//! endpoint in one handler call and rendered by the UI thread (HTML, JSON, metrics) without
//! touching the endpoint again. One model, three renderings, as Flink's and Ray's UIs are
//! built; the wire's `MasterState` stays the tools' smaller answer.
//!
//! The types are declared with `message!` because a reply port answers only with values
//! that can be encoded; the view itself never leaves its process (the UI asks for it with
//! a control message, which has no wire form).

use rpc_env::message;

message! {
    /// The master as its status page shows it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MasterView {
        /// `ember://host:port`.
        pub url: String,
        /// ALIVE, STANDBY, RECOVERING or COMPLETING_RECOVERY.
        pub status: String,
        /// Every worker the master knows, dead ones included, in id order.
        pub workers: Vec<WorkerRow>,
        /// Applications registered and not finished, oldest first.
        pub active_apps: Vec<AppRow>,
        /// Finished applications kept for this page (`ember.deploy.retainedApplications`).
        pub completed_apps: Vec<AppRow>,
        /// Cluster-mode drivers waiting or running.
        pub active_drivers: Vec<DriverRow>,
        /// Finished drivers kept (`ember.deploy.retainedDrivers`).
        pub completed_drivers: Vec<DriverRow>,
        /// Messages refused because their sender may not send them.
        pub refused_messages: u64,
    }
}

impl MasterView {
    /// The application `id`, active or completed.
    pub fn app(&self, id: &str) -> Option<&AppRow> {
        self.active_apps
            .iter()
            .chain(&self.completed_apps)
            .find(|a| a.id == id)
    }

    /// The workers that may get work.
    pub fn alive_workers(&self) -> impl Iterator<Item = &WorkerRow> + '_ {
        self.workers.iter().filter(|w| w.state == "ALIVE")
    }

    /// How many workers are in `state` (ALIVE, DEAD, UNKNOWN).
    pub fn workers_in(&self, state: &str) -> usize {
        self.workers.iter().filter(|w| w.state == state).count()
    }

    /// Cluster-mode drivers waiting to be placed (SUBMITTED).
    pub fn waiting_drivers(&self) -> usize {
        self.active_drivers
            .iter()
            .filter(|d| d.state == "SUBMITTED")
            .count()
    }

    /// Cores and memory of the alive workers, total and used: what every rendering sums.
    pub fn alive_capacity(&self) -> Capacity {
        self.alive_workers()
            .fold(Capacity::default(), |c, w| Capacity {
                cores: c.cores + u64::from(w.cores),
                cores_used: c.cores_used + u64::from(w.cores_used),
                memory_mib: c.memory_mib + u64::from(w.memory_mib),
                memory_used_mib: c.memory_used_mib + u64::from(w.memory_used_mib),
            })
    }
}

/// Cores and memory of a set of workers, total and used (sums past `u32`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Cores.
    pub cores: u64,
    /// Cores held.
    pub cores_used: u64,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// Memory held, MiB.
    pub memory_used_mib: u64,
}

message! {
    /// One worker, as the master sees it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct WorkerRow {
        /// `worker-<stamp>-<host>-<port>`.
        pub id: String,
        /// The host it registered with.
        pub host: String,
        /// Its RPC port.
        pub port: u16,
        /// Its status page, as it reported it (`http://host:port`).
        pub web_ui_url: String,
        /// Cores offered.
        pub cores: u32,
        /// Cores held by executors and drivers.
        pub cores_used: u32,
        /// Memory offered, MiB.
        pub memory_mib: u32,
        /// Memory held, MiB.
        pub memory_used_mib: u32,
        /// ALIVE, DEAD or UNKNOWN.
        pub state: String,
        /// Its last heartbeat, milliseconds since the Unix epoch.
        pub last_heartbeat_ms: u64,
    }
}

message! {
    /// One application.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AppRow {
        /// `app-<stamp>-<n>`.
        pub id: String,
        /// Its name.
        pub name: String,
        /// Who submitted it.
        pub user: String,
        /// `ember.cores.max` (or the default), `None` when unlimited.
        pub max_cores: Option<u32>,
        /// Cores its executors hold now.
        pub cores_granted: u32,
        /// Memory per executor, MiB.
        pub memory_per_executor_mib: u32,
        /// When it registered, milliseconds since the Unix epoch.
        pub submitted_ms: u64,
        /// When it finished, if it has.
        pub ended_ms: Option<u64>,
        /// WAITING, RUNNING, FINISHED, FAILED, KILLED or UNKNOWN.
        pub state: String,
        /// Its executors now, by id.
        pub executors: Vec<ExecutorRow>,
    }
}

message! {
    /// One executor of an application, as the master sees it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ExecutorRow {
        /// Its id within the application.
        pub id: u32,
        /// The worker it runs on.
        pub worker_id: String,
        /// That worker's status page, for the log links (empty when the worker is unknown).
        pub worker_web_ui_url: String,
        /// Cores.
        pub cores: u32,
        /// Memory, MiB.
        pub memory_mib: u32,
        /// LAUNCHING, RUNNING, ...
        pub state: String,
    }
}

message! {
    /// One cluster-mode driver.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DriverRow {
        /// `driver-<stamp>-<n>`.
        pub id: String,
        /// When it was submitted, milliseconds since the Unix epoch.
        pub submitted_ms: u64,
        /// SUBMITTED, RUNNING, FINISHED, ...
        pub state: String,
        /// Cores.
        pub cores: u32,
        /// Memory, MiB.
        pub memory_mib: u32,
        /// The worker it runs on, if placed.
        pub worker_id: Option<String>,
        /// What it runs: its program (Spark shows the main class).
        pub main_class: String,
    }
}

message! {
    /// The worker as its status page shows it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct WorkerView {
        /// `worker-<stamp>-<host>-<port>`.
        pub id: String,
        /// `host:port` of its RPC env.
        pub host_port: String,
        /// The master it is registered with, if any (`ember://host:port`).
        pub master_url: Option<String>,
        /// That master's status page, if known.
        pub master_web_ui_url: Option<String>,
        /// Cores offered.
        pub cores: u32,
        /// Cores held.
        pub cores_used: u32,
        /// Memory offered, MiB.
        pub memory_mib: u32,
        /// Memory held, MiB.
        pub memory_used_mib: u32,
        /// Executors running, by application and id.
        pub executors: Vec<WorkerExecutorRow>,
        /// Executors finished, oldest first (`ember.worker.ui.retainedExecutors`).
        pub finished_executors: Vec<WorkerExecutorRow>,
        /// Drivers running.
        pub drivers: Vec<WorkerDriverRow>,
        /// Drivers finished, oldest first (`ember.worker.ui.retainedDrivers`).
        pub finished_drivers: Vec<WorkerDriverRow>,
        /// The work dir, where the log pages read executors' and drivers' output.
        pub work_dir: String,
    }
}

message! {
    /// One executor on a worker.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct WorkerExecutorRow {
        /// The application.
        pub app_id: String,
        /// The executor's id within it.
        pub exec_id: u32,
        /// Cores.
        pub cores: u32,
        /// Memory, MiB.
        pub memory_mib: u32,
        /// LAUNCHING, RUNNING, EXITED, ...
        pub state: String,
        /// What the application said about itself.
        pub app: AppLabel,
    }
}

message! {
    /// What a worker knows of an application: what it was given in `LaunchExecutor`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AppLabel {
        /// Its name.
        pub name: String,
        /// Who submitted it.
        pub user: String,
        /// `ember.cores.max`, if set.
        pub max_cores: Option<u32>,
        /// Memory per executor, MiB.
        pub memory_per_executor_mib: u32,
        /// The executor's command line, redacted.
        pub command: String,
    }
}

message! {
    /// One driver on a worker.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct WorkerDriverRow {
        /// `driver-<stamp>-<n>`.
        pub id: String,
        /// RUNNING, FINISHED, ...
        pub state: String,
        /// Cores.
        pub cores: u32,
        /// Memory, MiB.
        pub memory_mib: u32,
        /// What it runs (its program).
        pub main_class: String,
    }
}
