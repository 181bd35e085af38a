//! The messages between the driver and its executors (Spark's
//! `CoarseGrainedClusterMessages`), and the endpoint names they are sent to.

use std::collections::BTreeMap;
use std::sync::Arc;

use rpc_env::{message, EndpointRef, NoMessage, Protocol, Reply, RpcAddress};

use crate::ids::{ExecutorId, JobId, TaskId};
use crate::job::JobState;
use crate::task::{ExecutorLossReason, TaskDescription, TaskSet, TaskStatus};

/// The driver endpoint's name (Spark's).
pub const DRIVER_ENDPOINT_NAME: &str = "CoarseGrainedScheduler";
/// The heartbeat receiver's name (Spark's).
pub const HEARTBEAT_RECEIVER_NAME: &str = "HeartbeatReceiver";
/// The executor backend endpoint's name (Spark's).
pub const EXECUTOR_ENDPOINT_NAME: &str = "Executor";

message! {
    /// One status change of a task attempt, as an executor reports it.
    #[derive(Debug, Clone, PartialEq)]
    pub struct TaskUpdate {
        /// The attempt.
        pub task_id: TaskId,
        /// What happened.
        pub status: TaskStatus,
        /// The cores it held, freed when it ends.
        pub cpus: u32,
        /// How long the task function ran, in microseconds (0 until it ends): how the driver
        /// judges how much work to queue on an executor.
        pub run_micros: u64,
    }
}

message! {
    /// One-way messages to the driver endpoint from its executors: what may come from the
    /// network. Each is accepted only from the connection of the executor it names.
    pub enum DriverMessage {
        /// The executor exists and takes tasks now (its cores become free).
        LaunchedExecutor {
            /// The executor.
            executor_id: ExecutorId,
        },
        /// Status changes of tasks, batched by the executor.
        StatusUpdate {
            /// The executor reporting.
            executor_id: ExecutorId,
            /// The changes, in order.
            updates: Vec<TaskUpdate>,
        },
    }
}

/// What only the driver's own process may tell or ask its driver endpoint, through a
/// [`ControlRef`](rpc_env::ControlRef): the application's jobs, its timers, the heartbeat
/// receiver and the cluster manager's word on executors. No wire encoding: no peer can send
/// one of these, whatever bytes it writes.
#[derive(Debug)]
pub enum DriverControl {
    /// A job to run.
    SubmitJob {
        /// The job's single stage.
        task_set: TaskSet,
        /// Where results and the outcome go.
        job: Arc<JobState>,
    },
    /// Cancel a job.
    CancelJob {
        /// The job.
        job_id: JobId,
        /// Why.
        reason: String,
    },
    /// The application is dying: fail every job with this message.
    AbortAll {
        /// Why.
        message: String,
    },
    /// Offer every executor's free cores again (the periodic revive).
    ReviveOffers,
    /// Look for slow tasks to speculate (periodic, when speculation is on).
    CheckSpeculation,
    /// Act on what is due: executors disconnected long enough to be removed, jobs that
    /// waited too long for an executor (periodic, with the revive).
    CheckDeadlines,
    /// Kill one task attempt.
    KillTask {
        /// The attempt.
        task_id: TaskId,
        /// Why.
        reason: String,
    },
    /// An executor is gone, or must go (the cluster manager says so).
    RemoveExecutor {
        /// The executor.
        executor_id: ExecutorId,
        /// Why.
        reason: ExecutorLossReason,
    },
    /// An executor's heartbeats stopped for longer than `ember.network.timeout`: it is
    /// removed, and, as it may still run (hung), its cluster manager is asked to kill it
    /// (Spark's `killAndReplaceExecutor`).
    ExecutorUnresponsive {
        /// The executor.
        executor_id: ExecutorId,
        /// How long it has been silent, in milliseconds.
        silent_ms: u64,
    },
    /// Status changes of tasks of an executor inside the driver's process (local modes).
    LocalStatusUpdate {
        /// The executor reporting.
        executor_id: ExecutorId,
        /// The changes, in order.
        updates: Vec<TaskUpdate>,
    },
    /// Tell every executor to stop; answers once told.
    StopExecutors {
        /// The answer.
        reply: Reply<bool>,
    },
    /// Whether an executor is registered and not yet removed (one whose connection
    /// dropped counts until its loss reason comes).
    IsExecutorAlive {
        /// The executor.
        executor_id: ExecutorId,
        /// The answer.
        reply: Reply<bool>,
    },
    /// The executors registered and not yet removed, by id.
    ExecutorIds {
        /// The answer, sorted.
        reply: Reply<Vec<ExecutorId>>,
    },
    /// How many executors take tasks (registered, launched, not disconnected), and
    /// their cores.
    ExecutorCount {
        /// The answer: (executors, total cores).
        reply: Reply<(u32, u32)>,
    },
    /// How many tasks run now for each job that has any (the console progress bar's
    /// `(done + running) / total`).
    RunningTasks {
        /// The answer: (job, tasks running), in job order.
        reply: Reply<Vec<(JobId, u32)>>,
    },
    /// How many messages from the network were refused because their sender was not the
    /// executor they named (for tests and metrics).
    RefusedMessages {
        /// The answer.
        reply: Reply<u64>,
    },
}

message! {
    /// The application's settings, as an executor fetches them before it registers.
    #[derive(Debug, Clone, PartialEq)]
    pub struct AppConfig {
        /// The application's id.
        pub app_id: String,
        /// Every `ember.*` setting of the driver.
        pub properties: BTreeMap<String, String>,
    }
}

impl AppConfig {
    /// The application's settings without those that hold a secret
    /// ([`rpc_env::keys::holds_secret`]): what may be handed to any peer that asks. An
    /// executor takes the secret from its environment (`EMBER_AUTH_SECRET`), never from here.
    ///
    /// The secret file's path goes too: it names a file on the driver's host, and since a
    /// secret file takes precedence over the environment variable, an executor that kept it
    /// would ignore the secret its worker hands it.
    pub fn without_secrets(mut self) -> AppConfig {
        self.properties.retain(|key, _| {
            !rpc_env::keys::holds_secret(key) && key != rpc_env::keys::AUTHENTICATE_SECRET_FILE
        });
        self
    }
}

message! {
    /// Asks of the driver endpoint from executors: what may come from the network.
    pub enum DriverAsk {
        /// An executor process introduces itself (Spark's `RegisterExecutor`); answers `true`,
        /// or fails with `Duplicate executor ID: <id>`.
        RegisterExecutor {
            /// Its id.
            executor_id: ExecutorId,
            /// Its backend endpoint.
            executor_ref: EndpointRef<ExecutorProtocol>,
            /// Its host.
            hostname: String,
            /// Its cores.
            cores: u32,
            /// Where its logs are (`stdout`, `stderr`).
            log_urls: BTreeMap<String, String>,
            /// The answer.
            reply: Reply<bool>,
        },
        /// The application's settings (Spark's `RetrieveSparkAppConfig`).
        RetrieveAppConfig {
            /// The answer.
            reply: Reply<AppConfig>,
        },
    }
}

/// The driver endpoint's protocol.
pub struct DriverProtocol;

impl Protocol for DriverProtocol {
    type Message = DriverMessage;
    type Ask = DriverAsk;
    type Control = DriverControl;
}

message! {
    /// One-way messages to an executor backend.
    pub enum ExecutorMessage {
        /// Run these tasks.
        LaunchTasks {
            /// The tasks, in launch order.
            tasks: Vec<TaskDescription>,
        },
        /// Kill this attempt; it reports `Killed` with `reason`.
        KillTask {
            /// The attempt.
            task_id: TaskId,
            /// Why.
            reason: String,
        },
        /// The driver asks the executor to exit.
        StopExecutor,
        /// The driver accepted the registration (sent by the executor to itself).
        RegisteredExecutor,
        /// The driver refused the registration (sent by the executor to itself).
        RegistrationFailed {
            /// Why.
            message: String,
        },
    }
}

/// The executor backend's protocol.
pub struct ExecutorProtocol;

impl Protocol for ExecutorProtocol {
    type Message = ExecutorMessage;
    type Ask = NoMessage;
    type Control = NoMessage;
}

message! {
    /// What a heartbeat answer says.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct HeartbeatResponse {
        /// The driver does not know this executor: it should register again (or exit).
        pub unknown_executor: bool,
    }
}

message! {
    /// Asks of the heartbeat receiver.
    pub enum HeartbeatAsk {
        /// An executor is alive, running these attempts.
        Heartbeat {
            /// The executor.
            executor_id: ExecutorId,
            /// What it runs.
            running: Vec<TaskId>,
            /// The answer.
            reply: Reply<HeartbeatResponse>,
        },
    }
}

/// What the driver's own process tells the heartbeat receiver (the driver endpoint, and
/// the receiver's timer), through a [`ControlRef`](rpc_env::ControlRef): never from the
/// network, so no executor can make it forget another.
#[derive(Debug)]
pub enum HeartbeatControl {
    /// Start expecting heartbeats from this executor, from `address` only (the sender of
    /// its registration; `None` for one inside the driver's process, which sends none).
    ExecutorRegistered {
        /// The executor.
        executor_id: ExecutorId,
        /// Where its heartbeats must come from.
        address: Option<RpcAddress>,
    },
    /// Stop expecting them.
    ExecutorRemoved {
        /// The executor.
        executor_id: ExecutorId,
    },
    /// Check for executors silent longer than the timeout.
    ExpireDeadHosts,
}

/// The heartbeat receiver's protocol.
pub struct HeartbeatProtocol;

impl Protocol for HeartbeatProtocol {
    type Message = NoMessage;
    type Ask = HeartbeatAsk;
    type Control = HeartbeatControl;
}
