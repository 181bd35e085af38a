//! The task model: what a task set is made of, what travels to an executor, and how a task
//! ends.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use rpc_env::message;

use crate::ids::{ExecutorId, JobId, StageId, TaskId};
use crate::locality::TaskLocation;

/// One task of a task set before it is launched: a partition's input and where it would
/// like to run.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// The partition this task computes.
    pub partition: u32,
    /// Where the input lives, most preferred first; empty for no preference.
    pub preferred_locations: Vec<TaskLocation>,
    /// The encoded input of the task function.
    pub input: Bytes,
}

/// The tasks of one stage attempt, as the task scheduler receives them.
#[derive(Debug, Clone)]
pub struct TaskSet {
    /// The job this stage belongs to; also its FIFO priority (lower runs first).
    pub job_id: JobId,
    /// The stage.
    pub stage_id: StageId,
    /// The attempt of the stage, from 0.
    pub stage_attempt: u32,
    /// The registered task function every task of the set runs.
    pub function: Arc<str>,
    /// The tasks, by index.
    pub tasks: Vec<TaskSpec>,
    /// Local properties of the job (`ember.scheduler.pool` picks the FAIR pool).
    pub properties: BTreeMap<String, String>,
}

impl TaskSet {
    /// `"<stage>.<attempt>"`, as task names and messages print a stage.
    pub fn stage_name(&self) -> String {
        format!("{}.{}", self.stage_id, self.stage_attempt)
    }
}

message! {
    /// A launched task, as it travels to its executor (Spark's `TaskDescription`).
    #[derive(Debug, Clone, PartialEq)]
    pub struct TaskDescription {
        /// The attempt's unique id.
        pub task_id: TaskId,
        /// How many attempts of this index came before.
        pub attempt_number: u32,
        /// The executor it was launched on.
        pub executor_id: ExecutorId,
        /// The task's index in its task set.
        pub index: u32,
        /// The partition it computes.
        pub partition: u32,
        /// Its job.
        pub job_id: JobId,
        /// Its stage.
        pub stage_id: StageId,
        /// Its stage attempt.
        pub stage_attempt: u32,
        /// The registered task function to run (shared by every task of its set).
        pub function: Arc<str>,
        /// The job's local properties.
        pub properties: BTreeMap<String, String>,
        /// Cores the task holds while it runs (`ember.task.cpus`).
        pub cpus: u32,
        /// The encoded input.
        pub input: Bytes,
    }
}

impl TaskDescription {
    /// Spark's task name, `task <index>.<attempt> in stage <stage>.<attempt> (TID <tid>)`,
    /// made when asked for (logs), not on every launch.
    pub fn name(&self) -> String {
        task_name(
            self.index,
            self.attempt_number,
            self.stage_id,
            self.stage_attempt,
            self.task_id,
        )
    }
}

/// Spark's task name, built without the formatting machinery (it shows up in profiles).
pub fn task_name(
    index: u32,
    attempt_number: u32,
    stage_id: StageId,
    stage_attempt: u32,
    task_id: TaskId,
) -> String {
    let mut name = String::with_capacity(48);
    name.push_str("task ");
    push_decimal(&mut name, u64::from(index));
    name.push('.');
    push_decimal(&mut name, u64::from(attempt_number));
    name.push_str(" in stage ");
    push_decimal(&mut name, u64::from(stage_id.0));
    name.push('.');
    push_decimal(&mut name, u64::from(stage_attempt));
    name.push_str(" (TID ");
    push_decimal(&mut name, task_id.0);
    name.push(')');
    name
}

fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Always ASCII digits, so the check cannot fail.
    if let Ok(text) = std::str::from_utf8(&digits[start..]) {
        out.push_str(text);
    }
}

message! {
    /// The lifecycle states of a task attempt (Spark's `TaskState`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum TaskState {
        /// Handed to an executor, not yet running.
        Launching,
        /// Running on its executor.
        Running,
        /// Ended with a result.
        Finished,
        /// Ended with a failure.
        Failed,
        /// Ended because it was killed.
        Killed,
        /// Lost with its executor.
        Lost,
    }
}

impl TaskState {
    /// Whether the attempt has ended.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskState::Finished | TaskState::Failed | TaskState::Killed | TaskState::Lost
        )
    }
}

message! {
    /// Why a task attempt did not succeed (Spark's `TaskFailedReason`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum TaskFailedReason {
        /// The task function returned an error or panicked.
        ExceptionFailure {
            /// The error or the panic's message.
            message: String,
        },
        /// The attempt was killed (by a user, by a faster attempt, by a cancelled job).
        TaskKilled {
            /// Why.
            reason: String,
        },
        /// The executor running it went away.
        ExecutorLostFailure {
            /// The executor.
            executor_id: ExecutorId,
            /// Whether the application caused the exit (then the failure counts).
            exit_caused_by_app: bool,
            /// What the cluster manager or the driver said about the loss.
            reason: Option<String>,
        },
        /// The result could not be fetched.
        TaskResultLost,
        /// The executor reported something that could not be understood.
        UnknownReason,
    }
}

impl TaskFailedReason {
    /// Whether this failure counts towards `ember.task.maxFailures` (Spark's
    /// `countTowardsTaskFailures`).
    pub fn counts_towards_failures(&self) -> bool {
        match self {
            TaskFailedReason::ExceptionFailure { .. }
            | TaskFailedReason::TaskResultLost
            | TaskFailedReason::UnknownReason => true,
            TaskFailedReason::TaskKilled { .. } => false,
            TaskFailedReason::ExecutorLostFailure {
                exit_caused_by_app, ..
            } => *exit_caused_by_app,
        }
    }
}

impl fmt::Display for TaskFailedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskFailedReason::ExceptionFailure { message } => f.write_str(message),
            TaskFailedReason::TaskKilled { reason } => write!(f, "TaskKilled ({reason})"),
            TaskFailedReason::ExecutorLostFailure {
                executor_id,
                exit_caused_by_app,
                reason,
            } => {
                let cause = if *exit_caused_by_app {
                    "exited caused by one of the running tasks"
                } else {
                    "exited unrelated to the running tasks"
                };
                write!(f, "ExecutorLostFailure (executor {executor_id} {cause})")?;
                if let Some(reason) = reason {
                    write!(f, " Reason: {reason}")?;
                }
                Ok(())
            }
            TaskFailedReason::TaskResultLost => {
                f.write_str("TaskResultLost (result lost from the executor)")
            }
            TaskFailedReason::UnknownReason => f.write_str("UnknownReason"),
        }
    }
}

message! {
    /// What an executor reports about a task attempt.
    #[derive(Debug, Clone, PartialEq)]
    pub enum TaskStatus {
        /// The attempt started running.
        Running,
        /// It ended with this encoded result.
        Finished {
            /// The task function's encoded output.
            result: Bytes,
        },
        /// It failed.
        Failed {
            /// Why.
            reason: TaskFailedReason,
        },
        /// It was killed.
        Killed {
            /// Why.
            reason: String,
        },
    }
}

impl TaskStatus {
    /// The state this status puts the attempt in.
    pub fn state(&self) -> TaskState {
        match self {
            TaskStatus::Running => TaskState::Running,
            TaskStatus::Finished { .. } => TaskState::Finished,
            TaskStatus::Failed { .. } => TaskState::Failed,
            TaskStatus::Killed { .. } => TaskState::Killed,
        }
    }
}

/// Free cores on one executor, offered to the task scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOffer {
    /// The executor.
    pub executor_id: ExecutorId,
    /// Its host.
    pub host: String,
    /// Its free cores.
    pub cores: u32,
}

impl WorkerOffer {
    /// An offer of `cores` free cores on `executor_id` at `host`.
    pub fn new(executor_id: impl Into<ExecutorId>, host: impl Into<String>, cores: u32) -> Self {
        WorkerOffer {
            executor_id: executor_id.into(),
            host: host.into(),
            cores,
        }
    }
}

message! {
    /// Why an executor went away (Spark's `ExecutorLossReason`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ExecutorLossReason {
        /// Its process exited with `exit_code`.
        Exited {
            /// The exit code.
            exit_code: i32,
            /// Whether the application caused the exit.
            exit_caused_by_app: bool,
            /// A description.
            reason: String,
        },
        /// The driver killed it.
        Killed,
        /// Its process or its connection was lost (`"Worker lost"` and such).
        ProcessLost {
            /// A description.
            message: String,
            /// The worker's host, when the worker was lost with it.
            worker_host: Option<String>,
            /// Whether the application is to blame.
            caused_by_app: bool,
        },
        /// The reason will come later (the executor disconnected; the cluster manager knows
        /// why).
        Pending,
    }
}

impl ExecutorLossReason {
    /// Whether tasks running there fail in a way that counts (Spark's `exitCausedByApp`).
    pub fn exit_caused_by_app(&self) -> Option<bool> {
        match self {
            ExecutorLossReason::Exited {
                exit_caused_by_app, ..
            } => Some(*exit_caused_by_app),
            ExecutorLossReason::Killed => Some(false),
            ExecutorLossReason::ProcessLost { caused_by_app, .. } => Some(*caused_by_app),
            ExecutorLossReason::Pending => None,
        }
    }
}

impl fmt::Display for ExecutorLossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecutorLossReason::Exited {
                exit_code, reason, ..
            } => write!(f, "Command exited with code {exit_code}: {reason}"),
            ExecutorLossReason::Killed => f.write_str("Executor killed by driver."),
            ExecutorLossReason::ProcessLost { message, .. } => f.write_str(message),
            ExecutorLossReason::Pending => f.write_str("Pending loss reason."),
        }
    }
}
