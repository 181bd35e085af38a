//! The standalone cluster's messages (Spark's `DeployMessages`), the states they carry, and
//! the endpoint names. In Spark 4 registration is a one-way send answered by a send; the
//! asks are `ExecutorStateChanged` and the tools' requests.

use std::collections::BTreeMap;

use rpc_env::{message, EndpointRef, NoMessage, Protocol, Reply, RpcAddress};

use crate::ids::{AppId, DriverId, WorkerId};

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

message! {
    /// A process to launch: program, arguments (with placeholders), environment.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Command {
        /// The program: an absolute path, or a name looked up in `PATH`.
        pub program: String,
        /// Its arguments.
        pub args: Vec<String>,
        /// Extra environment variables.
        pub env: BTreeMap<String, String>,
    }
}

message! {
    /// An application as the master sees it (Spark's `ApplicationDescription`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ApplicationDescription {
        /// The name.
        pub name: String,
        /// `ember.cores.max`: the most cores it may hold across the cluster.
        pub max_cores: Option<u32>,
        /// Memory per executor in MiB (`ember.executor.memory`, 1024).
        pub memory_per_executor_mib: u32,
        /// `ember.executor.cores`: cores per executor; `None` = all of a worker's free cores.
        pub cores_per_executor: Option<u32>,
        /// How to start one of its executors.
        pub command: Command,
        /// Who submitted it.
        pub user: String,
    }
}

message! {
    /// A driver submitted to run inside the cluster (Spark's `DriverDescription`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DriverDescription {
        /// Memory in MiB.
        pub memory_mib: u32,
        /// Cores.
        pub cores: u32,
        /// Relaunch it when it fails.
        pub supervise: bool,
        /// How to start it.
        pub command: Command,
    }
}

message! {
    /// An executor's state (Spark's `ExecutorState`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ExecutorState {
        /// Its process is being started.
        Launching,
        /// Its process runs.
        Running,
        /// It was killed on request.
        Killed,
        /// It could not be started or failed.
        Failed,
        /// It was lost (with its worker).
        Lost,
        /// Its process exited by itself.
        Exited,
    }
}

impl ExecutorState {
    /// Whether the executor is gone (KILLED, FAILED, LOST, EXITED).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            ExecutorState::Killed
                | ExecutorState::Failed
                | ExecutorState::Lost
                | ExecutorState::Exited
        )
    }
}

message! {
    /// A driver's state (Spark's `DriverState`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum DriverState {
        /// Submitted, not placed yet.
        Submitted,
        /// Its process runs.
        Running,
        /// It exited with 0.
        Finished,
        /// It failed and is being relaunched (supervise).
        Relaunching,
        /// The master lost track of it (recovery).
        Unknown,
        /// It was killed on request.
        Killed,
        /// It exited non-zero.
        Failed,
        /// It could not be launched.
        Error,
    }
}

impl DriverState {
    /// Spark's name for the state (`FINISHED`, ...), as the master and `ember-submit` print it.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverState::Submitted => "SUBMITTED",
            DriverState::Running => "RUNNING",
            DriverState::Finished => "FINISHED",
            DriverState::Relaunching => "RELAUNCHING",
            DriverState::Unknown => "UNKNOWN",
            DriverState::Killed => "KILLED",
            DriverState::Failed => "FAILED",
            DriverState::Error => "ERROR",
        }
    }

    /// Whether the driver is done.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            DriverState::Finished | DriverState::Killed | DriverState::Failed | DriverState::Error
        )
    }
}

message! {
    /// An executor a worker runs, as it reports it after a master change.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ExecutorDescription {
        /// The application.
        pub app_id: AppId,
        /// The executor's id within the application.
        pub exec_id: u32,
        /// Its cores.
        pub cores: u32,
        /// Its memory in MiB.
        pub memory_mib: u32,
        /// Its state.
        pub state: ExecutorState,
    }
}

message! {
    /// One-way messages to the master.
    pub enum MasterMessage {
        /// A worker introduces itself; answered with `RegisteredWorker`,
        /// `RegisterWorkerFailed` or `MasterInStandby` sent to `worker`.
        RegisterWorker {
            /// Its id.
            id: WorkerId,
            /// Its host.
            host: String,
            /// Its RPC port.
            port: u16,
            /// Its endpoint.
            worker: EndpointRef<WorkerProtocol>,
            /// Its cores.
            cores: u32,
            /// Its memory in MiB.
            memory_mib: u32,
            /// Its web UI URL.
            web_ui_url: String,
            /// The master address it dialled (echoed back).
            master_address: RpcAddress,
        },
        /// A worker is alive (every `ember.worker.timeout` / 4).
        Heartbeat {
            /// The worker.
            worker_id: WorkerId,
            /// Its endpoint.
            worker: EndpointRef<WorkerProtocol>,
        },
        /// A worker's executors and drivers, sent after it registers: the master kills the
        /// ones it does not know.
        WorkerLatestState {
            /// The worker.
            id: WorkerId,
            /// Its executors.
            executors: Vec<ExecutorDescription>,
            /// Its drivers.
            driver_ids: Vec<DriverId>,
        },
        /// An application's driver introduces it; answered with `RegisteredApplication`.
        RegisterApplication {
            /// What it is.
            description: ApplicationDescription,
            /// Its app client endpoint.
            driver: EndpointRef<AppClientProtocol>,
        },
        /// The application is done.
        UnregisterApplication {
            /// The application.
            app_id: AppId,
        },
        /// A driver (cluster mode) changed state.
        DriverStateChanged {
            /// The driver.
            driver_id: DriverId,
            /// Its state.
            state: DriverState,
            /// Why, when it failed.
            exception: Option<String>,
        },
        /// After `MasterChanged`: what a worker runs (recovery).
        WorkerSchedulerStateResponse {
            /// The worker.
            id: WorkerId,
            /// Its executors.
            executors: Vec<ExecutorDescription>,
            /// Its drivers.
            driver_ids: Vec<DriverId>,
        },
        /// After `MasterChanged`: an application's driver follows the new master (recovery).
        MasterChangeAcknowledged {
            /// The application.
            app_id: AppId,
        },
        /// Timer: remove workers silent for longer than `ember.worker.timeout`.
        CheckForWorkerTimeout,
        /// Timer: end recovery, dropping what did not answer.
        CompleteRecovery,
        /// Timer (standby masters): poll the leader election
        /// (`ember.deploy.leaderPollInterval`). Added last to keep the other tags.
        CheckLeadership,
        /// An application's driver asks that these of its executors be killed (ones it lost
        /// that may still run, hung); the master frees their cores, so others may replace
        /// them (Spark's `KillExecutors`, an ask there whose answer nobody waits for).
        KillExecutors {
            /// The application.
            app_id: AppId,
            /// Its executors to kill.
            exec_ids: Vec<u32>,
        },
    }
}

message! {
    /// A snapshot of one worker for tools.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct WorkerSummary {
        /// The worker.
        pub id: WorkerId,
        /// `host:port`.
        pub host_port: String,
        /// ALIVE, DEAD, UNKNOWN.
        pub state: String,
        /// Cores.
        pub cores: u32,
        /// Cores in use.
        pub cores_used: u32,
        /// Memory in MiB.
        pub memory_mib: u32,
        /// Memory in use, MiB.
        pub memory_used_mib: u32,
    }
}

message! {
    /// A snapshot of one application for tools.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AppSummary {
        /// The application.
        pub id: AppId,
        /// Its name.
        pub name: String,
        /// WAITING, RUNNING, FINISHED, FAILED, KILLED.
        pub state: String,
        /// Cores granted now.
        pub cores_granted: u32,
        /// Executors now.
        pub executors: u32,
    }
}

message! {
    /// A snapshot of one cluster-mode driver for tools.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DriverSummary {
        /// The driver.
        pub id: DriverId,
        /// Its state.
        pub state: DriverState,
        /// The worker running it.
        pub worker: Option<WorkerId>,
    }
}

message! {
    /// The master's state, for tools and tests (Spark's `MasterStateResponse`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MasterState {
        /// `ember://host:port`.
        pub url: String,
        /// ALIVE, STANDBY, RECOVERING, COMPLETING_RECOVERY.
        pub status: String,
        /// Every worker known, dead ones included until culled.
        pub workers: Vec<WorkerSummary>,
        /// Running and waiting applications.
        pub active_apps: Vec<AppSummary>,
        /// Finished applications.
        pub completed_apps: Vec<AppSummary>,
        /// Running and waiting drivers.
        pub active_drivers: Vec<DriverSummary>,
        /// Finished drivers.
        pub completed_drivers: Vec<DriverSummary>,
    }
}

message! {
    /// The answer to `RequestSubmitDriver`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SubmitDriverResponse {
        /// Whether the driver was accepted.
        pub success: bool,
        /// Its id, when accepted.
        pub driver_id: Option<DriverId>,
        /// What happened.
        pub message: String,
    }
}

message! {
    /// The answer to `RequestKillDriver`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct KillDriverResponse {
        /// The driver.
        pub driver_id: DriverId,
        /// Whether the kill was submitted.
        pub success: bool,
        /// What happened.
        pub message: String,
    }
}

message! {
    /// The answer to `RequestDriverStatus`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DriverStatusResponse {
        /// Whether the master knows the driver.
        pub found: bool,
        /// Its state.
        pub state: Option<DriverState>,
        /// The worker running it.
        pub worker_id: Option<WorkerId>,
        /// Why it failed, or why it was not found.
        pub exception: Option<String>,
    }
}

message! {
    /// Asks of the master.
    pub enum MasterAsk {
        /// An executor changed state (from its worker); always answered `true`.
        ExecutorStateChanged {
            /// The application.
            app_id: AppId,
            /// The executor.
            exec_id: u32,
            /// Its new state.
            state: ExecutorState,
            /// What happened.
            message: Option<String>,
            /// Its exit code, once exited.
            exit_status: Option<i32>,
            /// The answer.
            reply: Reply<bool>,
        },
        /// The master's state.
        RequestMasterState {
            /// The answer.
            reply: Reply<MasterState>,
        },
        /// Kill an application (the UI's kill link); `false` if unknown.
        RequestKillApplication {
            /// The application.
            app_id: AppId,
            /// The answer.
            reply: Reply<bool>,
        },
        /// Run a driver inside the cluster.
        RequestSubmitDriver {
            /// What to run.
            description: DriverDescription,
            /// The answer.
            reply: Reply<SubmitDriverResponse>,
        },
        /// Kill a driver.
        RequestKillDriver {
            /// The driver.
            driver_id: DriverId,
            /// The answer.
            reply: Reply<KillDriverResponse>,
        },
        /// A driver's status.
        RequestDriverStatus {
            /// The driver.
            driver_id: DriverId,
            /// The answer.
            reply: Reply<DriverStatusResponse>,
        },
    }
}

/// The master's protocol.
pub struct MasterProtocol;

impl Protocol for MasterProtocol {
    type Message = MasterMessage;
    type Ask = MasterAsk;
}

message! {
    /// One-way messages to a worker.
    pub enum WorkerMessage {
        /// The master accepted the registration.
        RegisteredWorker {
            /// The master.
            master: EndpointRef<MasterProtocol>,
            /// Its web UI URL.
            master_web_ui_url: String,
            /// The master address the worker dialled.
            master_address: RpcAddress,
            /// The worker was already registered.
            duplicate: bool,
        },
        /// The master refused the registration; the worker exits if not registered.
        RegisterWorkerFailed {
            /// Why.
            message: String,
        },
        /// The master is a standby; keep trying the others.
        MasterInStandby,
        /// The master lost this worker (it timed out): register again.
        ReconnectWorker {
            /// The master's URL.
            master_url: String,
        },
        /// Start an executor.
        LaunchExecutor {
            /// The master that asks (others are ignored).
            master_url: String,
            /// The application.
            app_id: AppId,
            /// The executor's id in the application.
            exec_id: u32,
            /// The application.
            description: ApplicationDescription,
            /// Its cores.
            cores: u32,
            /// Its memory in MiB.
            memory_mib: u32,
        },
        /// Kill an executor.
        KillExecutor {
            /// The master that asks.
            master_url: String,
            /// The application.
            app_id: AppId,
            /// The executor.
            exec_id: u32,
        },
        /// Start a driver.
        LaunchDriver {
            /// The driver.
            driver_id: DriverId,
            /// What to run.
            description: DriverDescription,
        },
        /// Kill a driver.
        KillDriver {
            /// The driver.
            driver_id: DriverId,
        },
        /// A new master leads (recovery); answer with `WorkerSchedulerStateResponse`.
        MasterChanged {
            /// The master.
            master: EndpointRef<MasterProtocol>,
            /// Its web UI URL.
            master_web_ui_url: String,
        },
        /// The application finished: its directories may be cleaned.
        ApplicationFinished {
            /// The application.
            app_id: AppId,
        },
        /// From an executor runner: its executor changed state.
        ExecutorStateChanged {
            /// The application.
            app_id: AppId,
            /// The executor.
            exec_id: u32,
            /// Its state.
            state: ExecutorState,
            /// What happened.
            message: Option<String>,
            /// Its exit code.
            exit_status: Option<i32>,
        },
        /// From a driver runner: its driver changed state.
        DriverStateChanged {
            /// The driver.
            driver_id: DriverId,
            /// Its state.
            state: DriverState,
            /// Why, when it failed.
            exception: Option<String>,
        },
        /// Timer: try registering again.
        ReregisterWithMaster,
        /// Timer: heartbeat to the master.
        SendHeartbeat,
        /// Timer: clean finished applications' directories.
        WorkDirCleanup,
    }
}

message! {
    /// A worker's state, for tools and tests (Spark's `WorkerStateResponse`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct WorkerState {
        /// The worker.
        pub id: WorkerId,
        /// The master it is registered with (`ember://host:port`), if any.
        pub master_url: Option<String>,
        /// Cores.
        pub cores: u32,
        /// Cores in use.
        pub cores_used: u32,
        /// Memory in MiB.
        pub memory_mib: u32,
        /// Memory in use.
        pub memory_used_mib: u32,
        /// Executors running.
        pub executors: Vec<ExecutorDescription>,
        /// Executors finished.
        pub finished_executors: Vec<ExecutorDescription>,
        /// Drivers running.
        pub drivers: Vec<DriverId>,
    }
}

message! {
    /// Asks of a worker.
    pub enum WorkerAsk {
        /// The worker's state.
        RequestWorkerState {
            /// The answer.
            reply: Reply<WorkerState>,
        },
    }
}

/// The worker's protocol.
pub struct WorkerProtocol;

impl Protocol for WorkerProtocol {
    type Message = WorkerMessage;
    type Ask = WorkerAsk;
}

message! {
    /// One-way messages to an application's client (in its driver).
    pub enum AppClientMessage {
        /// The master registered the application.
        RegisteredApplication {
            /// Its id.
            app_id: AppId,
            /// The master.
            master: EndpointRef<MasterProtocol>,
        },
        /// An executor was granted.
        ExecutorAdded {
            /// The executor's id in the application.
            id: u32,
            /// The worker running it.
            worker_id: WorkerId,
            /// The worker's `host:port`.
            host_port: String,
            /// Its cores.
            cores: u32,
            /// Its memory in MiB.
            memory_mib: u32,
        },
        /// An executor changed state.
        ExecutorUpdated {
            /// The executor.
            id: u32,
            /// Its state.
            state: ExecutorState,
            /// What happened.
            message: Option<String>,
            /// Its exit code.
            exit_status: Option<i32>,
            /// The worker's host, when the worker itself was lost.
            worker_host: Option<String>,
        },
        /// The master removed the application (`FAILED`, `KILLED`, ...).
        ApplicationRemoved {
            /// The final state.
            message: String,
        },
        /// A worker was lost.
        WorkerRemoved {
            /// The worker.
            id: WorkerId,
            /// Its host.
            host: String,
            /// Why.
            message: String,
        },
        /// A new master leads; acknowledge with `MasterChangeAcknowledged`.
        MasterChanged {
            /// The master.
            master: EndpointRef<MasterProtocol>,
            /// Its web UI URL.
            master_web_ui_url: String,
        },
        /// The master is a standby (ignored; registration retries go on).
        MasterInStandby,
        /// Timer: retry registration.
        RetryRegistration,
        /// Ask the master to kill these executors (Spark's `killExecutors` from the
        /// standalone backend): the driver lost them, yet they may still run.
        KillExecutors {
            /// The executors.
            exec_ids: Vec<u32>,
        },
    }
}

message! {
    /// Asks of the app client.
    pub enum AppClientAsk {
        /// Unregister the application and stop (Spark's `StopAppClient`).
        StopAppClient {
            /// The answer.
            reply: Reply<bool>,
        },
    }
}

/// The app client's protocol.
pub struct AppClientProtocol;

impl Protocol for AppClientProtocol {
    type Message = AppClientMessage;
    type Ask = AppClientAsk;
}

/// A protocol with nothing in it, for refs used only to watch a connection.
pub struct Opaque;

impl Protocol for Opaque {
    type Message = NoMessage;
    type Ask = NoMessage;
}
