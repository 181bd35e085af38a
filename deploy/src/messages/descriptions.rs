//! What the messages carry: commands, application and driver descriptions, and the
//! executor and driver states.

use std::collections::BTreeMap;

use rpc_env::message;

use crate::ids::AppId;
use crate::program::ProgramDigest;

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
        /// The size, hash and URI of the command's program when the driver serves it, so
        /// a worker without that file fetches it (`None`: the program must be there).
        pub program_digest: Option<ProgramDigest>,
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
        /// The size and hash of the command's program when `ember-submit` uploaded it to
        /// the master's program store (the URI is the master's, filled in when the master
        /// launches the driver), so a worker without that file fetches it. `None`: the
        /// program must already be at its path on the worker.
        pub program_digest: Option<ProgramDigest>,
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
    /// Spark's name for the state (`RUNNING`, ...), as the status pages show it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorState::Launching => "LAUNCHING",
            ExecutorState::Running => "RUNNING",
            ExecutorState::Killed => "KILLED",
            ExecutorState::Failed => "FAILED",
            ExecutorState::Lost => "LOST",
            ExecutorState::Exited => "EXITED",
        }
    }

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
