//! The event log's line format: one JSON object per line, Spark's event and field names
//! where Spark has the event (`{"Event":"SparkListenerJobStart","Job ID":0,...}`), so a
//! reader of Spark's logs finds its way. Times are milliseconds since the Unix epoch (UTC);
//! durations are milliseconds.
//!
//! ```text
//! {"Event":"SparkListenerApplicationStart","Ember Event Log Version":1,"App Name":"pi","App ID":"app-20261204221500-0000","Timestamp":1796422500000,"User":"alice"}
//! {"Event":"SparkListenerExecutorAdded","Timestamp":...,"Executor ID":"0","Executor Info":{"Host":"127.0.0.1","Total Cores":1}}
//! {"Event":"SparkListenerJobStart","Job ID":0,"Submission Time":...,"Tasks":8}
//! {"Event":"SparkListenerTaskEnd","Job ID":0,"Partition":3,"Task ID":3,"Attempt":0,"Executor ID":"1","Host":"127.0.0.1","Finish Time":...,"Duration":12,"Task End Reason":{"Reason":"Success"}}
//! {"Event":"SparkListenerJobEnd","Job ID":0,"Completion Time":...,"Job Result":{"Result":"JobSucceeded"}}
//! {"Event":"SparkListenerExecutorRemoved","Timestamp":...,"Executor ID":"0","Removed Reason":"..."}
//! {"Event":"SparkListenerApplicationEnd","Timestamp":...,"Events Dropped":0}
//! ```
//!
//! - The first line is always the application start; its `Ember Event Log Version` is
//!   [`SCHEMA_VERSION`], raised when a line changes meaning (new fields do not raise it:
//!   readers ignore fields they do not know).
//! - `Task End Reason` is `{"Reason":"Success"}`, `{"Reason":"Failed","Message":...}` (the
//!   task's error, a lost result, or `ExecutorLostFailure (...)` for an attempt its
//!   executor's loss took), or `{"Reason":"TaskKilled","Kill Reason":...}`. `Host` is
//!   `null` when the driver does not know it.
//! - `Job Result` is `{"Result":"JobSucceeded"}`, `{"Result":"JobFailed","Message":...}` or
//!   `{"Result":"JobCancelled","Reason":...}`.
//! - The application end is the last line of a log whose application stopped normally;
//!   `Events Dropped` counts the events the driver dropped because the writer fell behind
//!   (a full queue), which are missing from the log.

use serde_json::{json, Value};

use ember_scheduler::{DriverEvent, JobError, TaskOutcome};

/// The version of this format, in the application start line.
pub const SCHEMA_VERSION: u64 = 1;

/// The field every line has: which event it is.
pub const EVENT: &str = "Event";
/// The application start (the first line).
pub const APPLICATION_START: &str = "SparkListenerApplicationStart";
/// The application end (the last line, at a normal stop).
pub const APPLICATION_END: &str = "SparkListenerApplicationEnd";
/// A job submitted.
pub const JOB_START: &str = "SparkListenerJobStart";
/// A job ended.
pub const JOB_END: &str = "SparkListenerJobEnd";
/// A task attempt ended.
pub const TASK_END: &str = "SparkListenerTaskEnd";
/// An executor registered.
pub const EXECUTOR_ADDED: &str = "SparkListenerExecutorAdded";
/// An executor removed.
pub const EXECUTOR_REMOVED: &str = "SparkListenerExecutorRemoved";
/// The application start's field holding [`SCHEMA_VERSION`].
pub const VERSION_FIELD: &str = "Ember Event Log Version";

/// The application start line.
pub(crate) fn application_start(app_name: &str, app_id: &str, at_ms: u64, user: &str) -> Value {
    json!({
        EVENT: APPLICATION_START,
        VERSION_FIELD: SCHEMA_VERSION,
        "App Name": app_name,
        "App ID": app_id,
        "Timestamp": at_ms,
        "User": user,
    })
}

/// The application end line.
pub(crate) fn application_end(at_ms: u64, dropped: u64) -> Value {
    json!({ EVENT: APPLICATION_END, "Timestamp": at_ms, "Events Dropped": dropped })
}

/// The line of a driver event that happened at `at_ms`.
pub(crate) fn event(at_ms: u64, event: &DriverEvent) -> Value {
    match event {
        DriverEvent::JobStart { job_id, tasks } => json!({
            EVENT: JOB_START,
            "Job ID": job_id.0,
            "Submission Time": at_ms,
            "Tasks": tasks,
        }),
        DriverEvent::JobEnd { job_id, result } => {
            let result = match result {
                Ok(()) => json!({ "Result": "JobSucceeded" }),
                Err(JobError::Failed { message }) => {
                    json!({ "Result": "JobFailed", "Message": message })
                }
                Err(JobError::Cancelled { reason }) => {
                    json!({ "Result": "JobCancelled", "Reason": reason })
                }
            };
            json!({
                EVENT: JOB_END,
                "Job ID": job_id.0,
                "Completion Time": at_ms,
                "Job Result": result,
            })
        }
        DriverEvent::TaskEnd(end) => {
            let reason = match &end.outcome {
                TaskOutcome::Success => json!({ "Reason": "Success" }),
                TaskOutcome::Failed { reason } => json!({ "Reason": "Failed", "Message": reason }),
                TaskOutcome::Killed { reason } => {
                    json!({ "Reason": "TaskKilled", "Kill Reason": reason })
                }
            };
            json!({
                EVENT: TASK_END,
                "Job ID": end.job_id.0,
                "Partition": end.partition,
                "Task ID": end.task_id.0,
                "Attempt": end.attempt,
                "Executor ID": end.executor_id.as_str(),
                "Host": end.host,
                "Finish Time": at_ms,
                "Duration": u64::try_from(end.duration.as_millis()).unwrap_or(u64::MAX),
                "Task End Reason": reason,
            })
        }
        DriverEvent::ExecutorAdded {
            executor_id,
            host,
            cores,
        } => json!({
            EVENT: EXECUTOR_ADDED,
            "Timestamp": at_ms,
            "Executor ID": executor_id.as_str(),
            "Executor Info": { "Host": host, "Total Cores": cores },
        }),
        DriverEvent::ExecutorRemoved {
            executor_id,
            reason,
        } => json!({
            EVENT: EXECUTOR_REMOVED,
            "Timestamp": at_ms,
            "Executor ID": executor_id.as_str(),
            "Removed Reason": reason,
        }),
    }
}
