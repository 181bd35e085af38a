//! The app client's protocol: what the master tells an application's driver, and what the
//! driver's own process tells its app client.

use rpc_env::{message, EndpointRef, Protocol, Reply};

use crate::ids::{AppId, WorkerId};

use super::{ExecutorState, MasterProtocol};

message! {
    /// One-way messages to an application's client (in its driver).
    #[derive(Debug, Clone, PartialEq, Eq)]
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
        /// Informational: why the master cannot place any executor of the application (no
        /// worker, or none large enough), sent when that changes. The driver says it when
        /// it has waited `ember.scheduler.starvationTimeout` without an executor; the
        /// master has no other way to reach the person who started the application.
        ApplicationWaiting {
            /// The cause, in words for that person (it names the numbers compared).
            reason: String,
        },
    }
}

/// What only the driver's own process tells its app client, through the endpoint's
/// [`ControlRef`](rpc_env::ControlRef): no wire encoding, so no peer can have the client
/// kill the application's executors or unregister it.
#[derive(Debug)]
pub enum AppClientControl {
    /// Timer: retry registration.
    RetryRegistration,
    /// Ask the master to kill these executors (Spark's `killExecutors` from the standalone
    /// backend): the driver lost them, yet they may still run.
    KillExecutors {
        /// The executors.
        exec_ids: Vec<u32>,
    },
    /// Timer: warn if no executor has been granted yet (`ember.scheduler.starvationTimeout`).
    CheckStarvation,
    /// Executor `exec_id` registered with this application's driver: tell the master
    /// (`ExecutorRegistered`).
    ExecutorRegistered {
        /// The executor.
        exec_id: u32,
    },
    /// A master could not be reached (or runs no master endpoint): `error` says why. When
    /// every master of a round is so, registration fails at once instead of retrying.
    MasterUnreachable {
        /// The master's address.
        master: rpc_env::RpcAddress,
        /// What went wrong.
        error: String,
    },
    /// Unregister the application and stop (Spark's `StopAppClient`).
    StopAppClient {
        /// The answer.
        reply: Reply<bool>,
    },
}

/// The app client's protocol.
pub struct AppClientProtocol;

impl Protocol for AppClientProtocol {
    type Message = AppClientMessage;
    type Ask = rpc_env::NoMessage;
    type Control = AppClientControl;
}
