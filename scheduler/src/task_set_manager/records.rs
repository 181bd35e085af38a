//! The state a task-set manager keeps: one record per task (index), one per running attempt,
//! and the task set's own lifecycle.
//!
//! Spark spreads this over parallel arrays (`copiesRunning`, `successful`, `numFailures`,
//! `taskAttempts`, `speculatableTasks`, ...); here each task is one [`TaskRecord`] whose
//! [`IndexStatus`] says where it stands, and the pending lists only hold indices that are
//! checked against that status when they are taken.

use std::fmt;
use std::time::Instant;

use crate::ids::{ExecutorId, TaskId};
use crate::locality::TaskLocality;

use super::pending::LevelMask;
use super::speculation::HostsTried;

/// The lifecycle of a task set.
///
/// ```text
/// Active --all tasks succeeded / abort / kill_all_attempts--> Zombie(cause)
/// Zombie(cause) --no attempt left running--> Finished(cause)   (reported once, as `Finished`)
/// ```
///
/// A zombie launches nothing more but still tracks its running attempts and handles their
/// results, so that the cores they hold are accounted for until they end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskSetPhase {
    /// Offers may launch tasks.
    Active,
    /// Launches nothing more; waits for its running attempts to end.
    Zombie(ZombieCause),
    /// A zombie with nothing running; `TaskSetEvent::Finished` has been emitted.
    Finished(ZombieCause),
}

/// Why a task set stopped launching tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZombieCause {
    /// Every task has a successful attempt.
    AllSucceeded,
    /// The task set was aborted (too many failures, results too large, or by the scheduler).
    Aborted,
    /// The job was cancelled (`kill_all_attempts`).
    Cancelled,
}

impl fmt::Display for ZombieCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ZombieCause::AllSucceeded => "all tasks succeeded",
            ZombieCause::Aborted => "aborted",
            ZombieCause::Cancelled => "cancelled",
        })
    }
}

/// Where one task of the set stands.
///
/// ```text
/// Pending --launch--> Running{copies: 1} --speculation check--> Running{1, speculatable}
/// Running{1, speculatable} --speculative launch--> Running{copies: 2}
/// Running{n} --an attempt fails--> Running{n-1} or, at 0, Pending (re-queued)
/// Running{..} --an attempt succeeds--> Succeeded (other attempts are killed)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexStatus {
    /// No attempt running and none succeeded: waiting in the pending lists.
    Pending,
    /// `copies` (at least 1) attempts are running.
    Running {
        /// How many attempts run.
        copies: u32,
        /// A speculative copy is wanted and not launched yet (only with `copies == 1`).
        speculatable: bool,
    },
    /// An attempt succeeded; the task is done.
    Succeeded,
}

/// One task of the set (Spark keeps this spread over several arrays indexed by task index).
#[derive(Debug, Clone)]
pub(crate) struct TaskRecord {
    /// Where it stands.
    pub(crate) status: IndexStatus,
    /// Failures that counted towards `max_task_failures` since the last success
    /// (SPARK-37580: a success resets it).
    pub(crate) failures: u32,
    /// Attempts launched so far; the next attempt's number.
    pub(crate) attempts: u32,
    /// The pending lists its preferences put it in (fixed for the task set's life).
    pub(crate) levels: LevelMask,
    /// Hosts an attempt ran on; kept only with speculation on, since only speculative
    /// launches ask (a copy never runs where an attempt already ran).
    pub(crate) hosts_tried: HostsTried,
}

impl TaskRecord {
    /// A pending task whose preferences put it in `levels`.
    pub(crate) fn new(levels: LevelMask) -> TaskRecord {
        TaskRecord {
            status: IndexStatus::Pending,
            failures: 0,
            attempts: 0,
            levels,
            hosts_tried: HostsTried::default(),
        }
    }
}

/// Whether a running attempt has told us it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptPhase {
    /// Sent to its executor; no `Running` status yet. Losing the executor now is not the
    /// task's fault (SPARK-39955).
    Launching,
    /// The executor reported it running.
    Running,
}

/// One attempt that has not ended yet. Ended attempts are forgotten: a second end report for
/// the same task id is ignored, as Spark ignores updates for finished attempts (SPARK-37300).
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    /// The task's index in the set.
    pub(crate) index: u32,
    /// How many attempts of the index came before this one.
    pub(crate) attempt_number: u32,
    /// Where it runs.
    pub(crate) executor: ExecutorId,
    /// When it was launched (the offer's `now`).
    pub(crate) launched_at: Instant,
    /// The locality it was launched at.
    pub(crate) locality: TaskLocality,
    /// Whether it is a speculative copy.
    pub(crate) speculative: bool,
    /// Launching or running.
    pub(crate) phase: AttemptPhase,
    /// The attempt whose success made us kill this one, if any: its own success is then
    /// reported as killed (SPARK-13343).
    pub(crate) killed_by: Option<TaskId>,
}

/// Running attempts by task id, in a dense window of recent ids (issue 15: a hash map of
/// 4,000 attempts in flight missed the cache on every launch and status update).
pub(crate) type AttemptMap = crate::task_table::TaskTable<Attempt>;
