//! Reading an event log back ([`read`]) into a [`Summary`] of the application: what
//! `ember-events` prints.
//!
//! Every byte of the file is hostile. A line is read at most [`MAX_LINE`] bytes at a
//! time (a longer one is skipped to its end, not held); a line that is not JSON, not an
//! object, or not an event with the fields it needs is skipped and counted
//! ([`Summary::bad_lines`]); events of a kind this reader does not know are counted
//! apart. What is kept is bounded too: at most [`MAX_JOBS`] jobs, [`MAX_EXECUTORS`]
//! executors and [`MAX_REASONS`] distinct failure reasons (more are counted in
//! [`Summary::not_kept`]), and texts are cut at [`MAX_TEXT`] characters: whatever the
//! file, a summary holds at most some 80 MiB. Nothing here panics on any input.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};

use serde_json::{Map, Value};

use super::schema::{
    APPLICATION_END, APPLICATION_START, EVENT, EXECUTOR_ADDED, EXECUTOR_REMOVED, JOB_END,
    JOB_START, TASK_END, VERSION_FIELD,
};

/// The longest line read (1 MiB); a longer one is skipped and counted as bad.
pub const MAX_LINE: usize = 1 << 20;
/// The most jobs kept (each with its result's message).
pub const MAX_JOBS: usize = 100_000;
/// The most executors kept.
pub const MAX_EXECUTORS: usize = 10_000;
/// The most distinct failure reasons kept.
pub const MAX_REASONS: usize = 1_000;
/// The longest text (a name, a reason) kept, in characters.
pub const MAX_TEXT: usize = 500;

/// How a job ended, as its log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Every partition has its result.
    Succeeded,
    /// Aborted, with this message.
    Failed(String),
    /// Cancelled, for this reason.
    Cancelled(String),
}

/// One job of the application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSummary {
    /// Its tasks (partitions), from its start line.
    pub tasks: Option<u64>,
    /// When it was submitted (ms since the epoch).
    pub submitted_ms: Option<u64>,
    /// When it ended.
    pub completed_ms: Option<u64>,
    /// How it ended; `None` if its end is not in the log.
    pub outcome: Option<JobOutcome>,
    /// Task attempts that succeeded.
    pub succeeded: u64,
    /// Task attempts that failed.
    pub failed: u64,
    /// Task attempts killed.
    pub killed: u64,
}

/// One executor of the application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutorSummary {
    /// Its host.
    pub host: Option<String>,
    /// Its cores.
    pub cores: Option<u64>,
    /// When it was added.
    pub added_ms: Option<u64>,
    /// When it was removed, if it was.
    pub removed_ms: Option<u64>,
    /// Why it was removed.
    pub removed_reason: Option<String>,
}

/// What an event log says of its application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The application's name.
    pub app_name: Option<String>,
    /// Its id.
    pub app_id: Option<String>,
    /// The user who ran it.
    pub user: Option<String>,
    /// The log's format version (`Ember Event Log Version`).
    pub version: Option<u64>,
    /// When it started (ms since the epoch).
    pub start_ms: Option<u64>,
    /// When it ended; `None` if the log has no end (still running, or its driver died).
    pub end_ms: Option<u64>,
    /// Events the driver dropped, from the end line.
    pub events_dropped: Option<u64>,
    /// Its jobs by id.
    pub jobs: BTreeMap<u64, JobSummary>,
    /// Its executors by id.
    pub executors: BTreeMap<String, ExecutorSummary>,
    /// Failed task attempts by reason.
    pub failure_reasons: BTreeMap<String, u64>,
    /// Every task end line.
    pub task_ends: u64,
    /// Lines read (bad ones included; empty ones not).
    pub lines: u64,
    /// Lines skipped as bad (not JSON, too long, missing a field).
    pub bad_lines: u64,
    /// The first bad line's number (from 1) and what was wrong with it.
    pub first_bad: Option<(u64, String)>,
    /// Lines of events this reader does not know.
    pub unknown_events: u64,
    /// Application start lines after the first (a well-formed log has one).
    pub extra_starts: u64,
    /// Jobs, executors or failure reasons not kept because as many as may be were.
    pub not_kept: u64,
}

/// Why a line was skipped.
type Bad = String;

/// Cuts `text` to [`MAX_TEXT`] characters.
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

fn field<'a>(event: &'a Map<String, Value>, name: &str) -> Result<&'a Value, Bad> {
    event.get(name).ok_or_else(|| format!("no \"{name}\""))
}

fn number(event: &Map<String, Value>, name: &str) -> Result<u64, Bad> {
    field(event, name)?
        .as_u64()
        .ok_or_else(|| format!("\"{name}\" is not a number"))
}

fn text(event: &Map<String, Value>, name: &str) -> Result<String, Bad> {
    field(event, name)?
        .as_str()
        .map(clip)
        .ok_or_else(|| format!("\"{name}\" is not a string"))
}

fn optional_text(event: &Map<String, Value>, name: &str) -> Option<String> {
    event.get(name).and_then(Value::as_str).map(clip)
}

/// Reads a whole log from `input`.
///
/// # Errors
///
/// Reading fails (the file is a directory, a disk error). Bad content is no error: see
/// the module's doc.
pub fn read(mut input: impl BufRead) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let n = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(summary);
        }
        let too_long = line.last() != Some(&b'\n') && line.len() > MAX_LINE;
        if too_long {
            skip_to_line_end(&mut input)?;
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() && !too_long {
            continue;
        }
        summary.lines += 1;
        let outcome = if too_long {
            Err(format!("longer than {MAX_LINE} bytes"))
        } else {
            summary.take_line(trimmed)
        };
        if let Err(why) = outcome {
            summary.bad_lines += 1;
            if summary.first_bad.is_none() {
                summary.first_bad = Some((summary.lines, why));
            }
        }
    }
}

/// Consumes what is left of an over-long line, a buffer at a time.
fn skip_to_line_end(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(at) => {
                input.consume(at + 1);
                return Ok(());
            }
            None => {
                let len = buf.len();
                input.consume(len);
            }
        }
    }
}

impl Summary {
    /// Takes one non-empty line into the summary.
    fn take_line(&mut self, line: &[u8]) -> Result<(), Bad> {
        let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON ({e})"))?;
        let Value::Object(event) = value else {
            return Err("not a JSON object".to_string());
        };
        let kind = field(&event, EVENT)?
            .as_str()
            .ok_or_else(|| format!("\"{EVENT}\" is not a string"))?;
        match kind {
            APPLICATION_START => {
                if self.app_id.is_some() {
                    self.extra_starts += 1;
                    return Ok(());
                }
                let app_id = text(&event, "App ID")?;
                self.app_name = optional_text(&event, "App Name");
                self.user = optional_text(&event, "User");
                self.version = event.get(VERSION_FIELD).and_then(Value::as_u64);
                self.start_ms = event.get("Timestamp").and_then(Value::as_u64);
                self.app_id = Some(app_id);
            }
            APPLICATION_END => {
                self.end_ms = Some(number(&event, "Timestamp")?);
                self.events_dropped = event.get("Events Dropped").and_then(Value::as_u64);
            }
            JOB_START => {
                let id = number(&event, "Job ID")?;
                let tasks = event.get("Tasks").and_then(Value::as_u64);
                let at = event.get("Submission Time").and_then(Value::as_u64);
                if let Some(job) = self.job(id) {
                    job.tasks = tasks;
                    job.submitted_ms = at;
                }
            }
            JOB_END => {
                let id = number(&event, "Job ID")?;
                let result = field(&event, "Job Result")?;
                let outcome = match result.get("Result").and_then(Value::as_str) {
                    Some("JobSucceeded") => JobOutcome::Succeeded,
                    Some("JobFailed") => JobOutcome::Failed(
                        result
                            .get("Message")
                            .and_then(Value::as_str)
                            .map_or_else(String::new, clip),
                    ),
                    Some("JobCancelled") => JobOutcome::Cancelled(
                        result
                            .get("Reason")
                            .and_then(Value::as_str)
                            .map_or_else(String::new, clip),
                    ),
                    _ => return Err("\"Job Result\" has no known \"Result\"".to_string()),
                };
                let at = event.get("Completion Time").and_then(Value::as_u64);
                if let Some(job) = self.job(id) {
                    job.outcome = Some(outcome);
                    job.completed_ms = at;
                }
            }
            TASK_END => self.task_end(&event)?,
            EXECUTOR_ADDED => {
                let id = text(&event, "Executor ID")?;
                let info = event.get("Executor Info");
                let host = info
                    .and_then(|i| i.get("Host"))
                    .and_then(Value::as_str)
                    .map(clip);
                let cores = info
                    .and_then(|i| i.get("Total Cores"))
                    .and_then(Value::as_u64);
                let at = event.get("Timestamp").and_then(Value::as_u64);
                if let Some(e) = self.executor(id) {
                    e.host = host;
                    e.cores = cores;
                    e.added_ms = at;
                }
            }
            EXECUTOR_REMOVED => {
                let id = text(&event, "Executor ID")?;
                let reason = optional_text(&event, "Removed Reason");
                let at = event.get("Timestamp").and_then(Value::as_u64);
                if let Some(e) = self.executor(id) {
                    e.removed_ms = at;
                    e.removed_reason = reason;
                }
            }
            _ => self.unknown_events += 1,
        }
        Ok(())
    }

    fn task_end(&mut self, event: &Map<String, Value>) -> Result<(), Bad> {
        let job_id = number(event, "Job ID")?;
        let reason = field(event, "Task End Reason")?;
        let kind = reason
            .get("Reason")
            .and_then(Value::as_str)
            .ok_or("\"Task End Reason\" has no \"Reason\"")?;
        let failure = match kind {
            "Success" => None,
            "TaskKilled" => Some(None),
            "Failed" => Some(Some(
                reason
                    .get("Message")
                    .and_then(Value::as_str)
                    .map_or_else(|| "(no message)".to_string(), clip),
            )),
            other => return Err(format!("unknown task end reason {:?}", clip(other))),
        };
        self.task_ends += 1;
        if let Some(Some(message)) = &failure {
            if let Some(count) = self.failure_reasons.get_mut(message) {
                *count += 1;
            } else if self.failure_reasons.len() < MAX_REASONS {
                self.failure_reasons.insert(message.clone(), 1);
            } else {
                self.not_kept += 1;
            }
        }
        if let Some(job) = self.job(job_id) {
            match failure {
                None => job.succeeded += 1,
                Some(None) => job.killed += 1,
                Some(Some(_)) => job.failed += 1,
            }
        }
        Ok(())
    }

    /// The job's entry, made if there is room.
    fn job(&mut self, id: u64) -> Option<&mut JobSummary> {
        if !self.jobs.contains_key(&id) && self.jobs.len() >= MAX_JOBS {
            self.not_kept += 1;
            return None;
        }
        Some(self.jobs.entry(id).or_default())
    }

    /// The executor's entry, made if there is room.
    fn executor(&mut self, id: String) -> Option<&mut ExecutorSummary> {
        if !self.executors.contains_key(&id) && self.executors.len() >= MAX_EXECUTORS {
            self.not_kept += 1;
            return None;
        }
        Some(self.executors.entry(id).or_default())
    }

    /// Whether the log ends as a normal stop leaves it.
    pub fn is_complete(&self) -> bool {
        self.end_ms.is_some()
    }

    /// Task attempts that failed, over every job.
    pub fn task_failures(&self) -> u64 {
        self.failure_reasons.values().sum()
    }
}

mod render;

#[cfg(test)]
mod tests;
