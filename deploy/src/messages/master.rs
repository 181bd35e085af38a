//! The master's protocol: what workers, applications and tools send it, and its answers.

use rpc_env::{message, EndpointRef, Protocol, Reply, RpcAddress};

use crate::ids::{AppId, DriverId, WorkerId};

use super::{
    AppClientProtocol, ApplicationDescription, DriverDescription, DriverState, ExecutorDescription,
    ExecutorState, WorkerProtocol,
};

message! {
    /// One-way messages to the master.
    pub enum MasterMessage {
        /// A worker introduces itself; answered with `RegisteredWorker`,
        /// `RegisterWorkerFailed` or `MasterInStandby` sent to `registration.worker`.
        RegisterWorker {
            /// Who it is and what it offers.
            registration: WorkerRegistration,
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
        /// An executor of the application registered with its driver: it runs an Ember
        /// executor, so its later end is an executor's end, not a failure to start (only
        /// this resets the application's executor retry count).
        ExecutorRegistered {
            /// The application.
            app_id: AppId,
            /// The executor.
            exec_id: u32,
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

/// What only the master's own process tells it: its timers and its status UI's questions,
/// through the endpoint's [`ControlRef`](rpc_env::ControlRef). No wire encoding, so no
/// peer can, say, end a recovery early.
#[derive(Debug)]
pub enum MasterControl {
    /// Remove workers silent for longer than `ember.worker.timeout`.
    CheckForWorkerTimeout,
    /// End recovery, dropping what did not answer (`ember.deploy.recoveryTimeout`).
    CompleteRecovery,
    /// Standby masters: poll the leader election (`ember.deploy.leaderPollInterval`).
    CheckLeadership,
    /// The status UI: everything its pages show.
    View {
        /// The answer.
        reply: Reply<crate::ui::view::MasterView>,
    },
}

message! {
    /// What a worker says about itself in `RegisterWorker`: one struct, so the master's
    /// registration handler takes it whole.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct WorkerRegistration {
        /// Its id.
        pub id: WorkerId,
        /// Its host.
        pub host: String,
        /// Its RPC port.
        pub port: u16,
        /// Its endpoint.
        pub worker: EndpointRef<WorkerProtocol>,
        /// Its cores.
        pub cores: u32,
        /// Its memory in MiB.
        pub memory_mib: u32,
        /// Its web UI URL.
        pub web_ui_url: String,
        /// The master address it dialled (echoed back).
        pub master_address: RpcAddress,
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
        /// Messages refused because their sender may not send them (a peer speaking for
        /// a worker or an application it is not); since the master started.
        pub refused_messages: u64,
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
        /// That worker's status page (`http://host:port`), where the driver's stdout and
        /// stderr are served; `None` when unknown.
        pub worker_web_ui_url: Option<String>,
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
    type Control = MasterControl;
}
