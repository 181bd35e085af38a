//! What the driver tells a listener as it happens (the part of Spark's listener bus events
//! the scheduler side knows of): jobs starting and ending, task attempts ending, executors
//! joining and leaving. The event log (`ember.eventLog.enabled`) is such a listener.
//!
//! The hook is one trait object, an [`EventSink`], given to the driver endpoint at
//! construction ([`DriverEndpoint::with_event_sink`](crate::DriverEndpoint::with_event_sink))
//! and to each job's [`JobState`](crate::JobState). The endpoint calls it from its
//! handlers, on the scheduler's hot path, so a sink must only hand the event over (to a
//! bounded channel, say) and never block or do IO there. Without a sink nothing is built:
//! the endpoint checks for one before it gathers an event's fields.

use std::time::Duration;

use crate::ids::{ExecutorId, JobId, TaskId};
use crate::job::JobError;

/// One thing that happened on the driver side. Timestamps are the sink's to add (it knows
/// its clock; the endpoint works with `Instant`s).
#[derive(Debug, Clone, PartialEq)]
pub enum DriverEvent {
    /// A job was submitted (Spark's `SparkListenerJobStart`).
    JobStart {
        /// The job.
        job_id: JobId,
        /// How many tasks (partitions) it has.
        tasks: usize,
    },
    /// A job ended (Spark's `SparkListenerJobEnd`): succeeded, failed or cancelled.
    JobEnd {
        /// The job.
        job_id: JobId,
        /// `Ok` when every partition has its result.
        result: Result<(), JobError>,
    },
    /// A task attempt ended (Spark's `SparkListenerTaskEnd`).
    TaskEnd(TaskEnd),
    /// An executor registered (Spark's `SparkListenerExecutorAdded`).
    ExecutorAdded {
        /// The executor.
        executor_id: ExecutorId,
        /// The host it said it runs on.
        host: String,
        /// Its cores.
        cores: u32,
    },
    /// An executor was removed (Spark's `SparkListenerExecutorRemoved`).
    ExecutorRemoved {
        /// The executor.
        executor_id: ExecutorId,
        /// Why, in Spark's words where it has them.
        reason: String,
    },
}

/// How one task attempt ended, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEnd {
    /// The attempt's job (a job is one stage in Ember).
    pub job_id: JobId,
    /// The task's partition.
    pub partition: u32,
    /// The attempt's id (unique in the application).
    pub task_id: TaskId,
    /// How many attempts of the partition came before this one.
    pub attempt: u32,
    /// Where it ran.
    pub executor_id: ExecutorId,
    /// The executor's host, if the driver knows it.
    pub host: Option<String>,
    /// From its launch to its end, as the driver saw them.
    pub duration: Duration,
    /// How it ended.
    pub outcome: TaskOutcome,
}

/// How a task attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// It produced its result.
    Success,
    /// It failed (its function's error, a lost result, its executor lost ...).
    Failed {
        /// Why.
        reason: String,
    },
    /// It was killed (cancelled, a speculative copy no longer needed, ...).
    Killed {
        /// Why.
        reason: String,
    },
}

/// Where driver events go. Called on the scheduler's hot path: hand the event over and
/// return; never block.
pub trait EventSink: Send + Sync {
    /// Takes one event.
    fn post(&self, event: DriverEvent);
}
