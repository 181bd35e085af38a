//! The worker's protocol: what the master and tools send a worker.

use rpc_env::{message, EndpointRef, Protocol, Reply, RpcAddress};

use crate::ids::{AppId, DriverId, WorkerId};

use super::{
    ApplicationDescription, DriverDescription, DriverState, ExecutorDescription, ExecutorState,
    MasterProtocol,
};

message! {
    /// One-way messages to a worker.
    #[derive(Debug, Clone, PartialEq, Eq)]
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
    }
}

/// What only the worker's own process tells it, through the endpoint's
/// [`ControlRef`](rpc_env::ControlRef): its runners' reports and its timers. No wire
/// encoding, so no peer can make the worker report a state change to its master.
#[derive(Debug)]
pub enum WorkerControl {
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
    /// What the env at a master's address said when asked, beside a registration,
    /// whether it has a master endpoint: `true`, `false`, or why it could not say.
    MasterChecked {
        /// The master's address, as the worker was given it.
        master: RpcAddress,
        /// The answer, or the error's text.
        answer: Result<bool, String>,
    },
    /// The status UI: everything its pages show.
    View {
        /// The answer.
        reply: Reply<crate::ui::view::WorkerView>,
    },
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
        /// Messages refused because their sender may not send them (not its master).
        pub refused_messages: u64,
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
    type Control = WorkerControl;
}
