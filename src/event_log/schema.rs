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

use std::io::Write;

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

/// One line being written: `{"Event":"<name>"`, then `,"<key>":<value>` per field. Keys
/// are this file's constants (nothing to escape); string values go through serde_json's
/// escaping. Written straight into the writer's buffer, with no `Value` built per event:
/// the writer thread keeps up with the scheduler's fastest rate.
struct Line<'a>(&'a mut Vec<u8>);

impl<'a> Line<'a> {
    fn new(buf: &'a mut Vec<u8>, event: &str) -> Line<'a> {
        buf.extend_from_slice(b"{\"Event\":\"");
        buf.extend_from_slice(event.as_bytes());
        buf.push(b'"');
        Line(buf)
    }

    fn key(&mut self, key: &str) -> &mut Self {
        self.0.extend_from_slice(b",\"");
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b"\":");
        self
    }

    fn num(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        // Writing to a Vec cannot fail.
        let _ = write!(self.0, "{value}");
        self
    }

    fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.0.extend_from_slice(b"null");
        self
    }

    fn text(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        let _ = serde_json::to_writer(&mut *self.0, value);
        self
    }

    /// A nested object of one string field (`{"Reason":"Success"}`), and a second one if
    /// given.
    fn object(
        &mut self,
        key: &str,
        first: (&str, &str),
        second: Option<(&str, &str)>,
    ) -> &mut Self {
        self.key(key);
        self.0.push(b'{');
        for (i, (k, v)) in std::iter::once(first).chain(second).enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            let _ = serde_json::to_writer(&mut *self.0, k);
            self.0.push(b':');
            let _ = serde_json::to_writer(&mut *self.0, v);
        }
        self.0.push(b'}');
        self
    }

    fn end(&mut self) {
        self.0.extend_from_slice(b"}\n");
    }
}

/// Writes the application start line into `buf`.
pub(crate) fn application_start(
    buf: &mut Vec<u8>,
    app_name: &str,
    app_id: &str,
    at_ms: u64,
    user: &str,
) {
    Line::new(buf, APPLICATION_START)
        .num(VERSION_FIELD, SCHEMA_VERSION)
        .text("App Name", app_name)
        .text("App ID", app_id)
        .num("Timestamp", at_ms)
        .text("User", user)
        .end();
}

/// Writes the application end line into `buf`.
pub(crate) fn application_end(buf: &mut Vec<u8>, at_ms: u64, dropped: u64) {
    Line::new(buf, APPLICATION_END)
        .num("Timestamp", at_ms)
        .num("Events Dropped", dropped)
        .end();
}

/// Writes the line of a driver event that happened at `at_ms` into `buf`.
pub(crate) fn event(buf: &mut Vec<u8>, at_ms: u64, event: &DriverEvent) {
    match event {
        DriverEvent::JobStart { job_id, tasks } => Line::new(buf, JOB_START)
            .num("Job ID", u64::from(job_id.0))
            .num("Submission Time", at_ms)
            .num("Tasks", *tasks as u64)
            .end(),
        DriverEvent::JobEnd { job_id, result } => {
            let result = match result {
                Ok(()) => (("Result", "JobSucceeded"), None),
                Err(JobError::Failed { message }) => {
                    (("Result", "JobFailed"), Some(("Message", message.as_str())))
                }
                Err(JobError::Cancelled { reason }) => (
                    ("Result", "JobCancelled"),
                    Some(("Reason", reason.as_str())),
                ),
            };
            Line::new(buf, JOB_END)
                .num("Job ID", u64::from(job_id.0))
                .num("Completion Time", at_ms)
                .object("Job Result", result.0, result.1)
                .end()
        }
        DriverEvent::TaskEnd(end) => {
            let reason = match &end.outcome {
                TaskOutcome::Success => (("Reason", "Success"), None),
                TaskOutcome::Failed { reason } => {
                    (("Reason", "Failed"), Some(("Message", reason.as_str())))
                }
                TaskOutcome::Killed { reason } => (
                    ("Reason", "TaskKilled"),
                    Some(("Kill Reason", reason.as_str())),
                ),
            };
            let mut line = Line::new(buf, TASK_END);
            line.num("Job ID", u64::from(end.job_id.0))
                .num("Partition", u64::from(end.partition))
                .num("Task ID", end.task_id.0)
                .num("Attempt", u64::from(end.attempt))
                .text("Executor ID", end.executor_id.as_str());
            match &end.host {
                Some(host) => line.text("Host", host),
                None => line.null("Host"),
            };
            line.num("Finish Time", at_ms)
                .num(
                    "Duration",
                    u64::try_from(end.duration.as_millis()).unwrap_or(u64::MAX),
                )
                .object("Task End Reason", reason.0, reason.1)
                .end()
        }
        DriverEvent::ExecutorAdded {
            executor_id,
            host,
            cores,
        } => {
            let mut line = Line::new(buf, EXECUTOR_ADDED);
            line.num("Timestamp", at_ms)
                .text("Executor ID", executor_id.as_str())
                .key("Executor Info");
            line.0.extend_from_slice(b"{\"Host\":");
            let _ = serde_json::to_writer(&mut *line.0, host.as_str());
            let _ = write!(line.0, ",\"Total Cores\":{cores}}}");
            line.end()
        }
        DriverEvent::ExecutorRemoved {
            executor_id,
            reason,
        } => Line::new(buf, EXECUTOR_REMOVED)
            .num("Timestamp", at_ms)
            .text("Executor ID", executor_id.as_str())
            .text("Removed Reason", reason)
            .end(),
    }
}
