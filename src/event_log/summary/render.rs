//! A [`Summary`] as text for people and as JSON for programs.

use serde_json::{json, Value};

use super::{JobOutcome, Summary, MAX_EXECUTORS, MAX_JOBS, MAX_REASONS};

impl Summary {
    /// The summary as text, for people.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_string());
        let _ = writeln!(out, "Application: {}", or_unknown(&self.app_name));
        let _ = writeln!(out, "ID: {}", or_unknown(&self.app_id));
        if let Some(user) = &self.user {
            let _ = writeln!(out, "User: {user}");
        }
        let _ = writeln!(out, "Started: {}", time(self.start_ms));
        match self.end_ms {
            Some(_) => {
                let _ = writeln!(out, "Ended: {}", time(self.end_ms));
                let _ = writeln!(out, "Duration: {}", duration(self.start_ms, self.end_ms));
            }
            None => {
                let _ = writeln!(
                    out,
                    "Ended: no (no application end: still running, or its driver died)"
                );
            }
        }
        if let Some(dropped @ 1..) = self.events_dropped {
            let _ = writeln!(
                out,
                "Events dropped by the driver: {dropped} (missing from this log)"
            );
        }
        let _ = writeln!(out, "\nJobs: {}", self.jobs.len());
        for (id, job) in &self.jobs {
            let result = match &job.outcome {
                Some(JobOutcome::Succeeded) => "succeeded".to_string(),
                Some(JobOutcome::Failed(m)) => format!("failed: {m}"),
                Some(JobOutcome::Cancelled(r)) => format!("cancelled: {r}"),
                None => "no end in the log".to_string(),
            };
            let tasks = job.tasks.map_or_else(|| "?".to_string(), |t| t.to_string());
            let _ = writeln!(
                out,
                "  Job {id}: {tasks} tasks, {} succeeded, {} failed, {} killed, {}, {result}",
                job.succeeded,
                job.failed,
                job.killed,
                duration(job.submitted_ms, job.completed_ms),
            );
        }
        let _ = writeln!(
            out,
            "\nTask ends: {}, failures: {}",
            self.task_ends,
            self.task_failures()
        );
        for (reason, count) in &self.failure_reasons {
            let _ = writeln!(out, "  {count} x {reason}");
        }
        let _ = writeln!(out, "\nExecutors: {}", self.executors.len());
        for (id, e) in &self.executors {
            let host = or_unknown(&e.host);
            let cores = e.cores.map_or_else(|| "?".to_string(), |c| c.to_string());
            let state = match (&e.removed_ms, &e.removed_reason) {
                (None, None) => "not removed".to_string(),
                (_, Some(reason)) => format!("removed at {}: {reason}", time(e.removed_ms)),
                (Some(_), None) => format!("removed at {}", time(e.removed_ms)),
            };
            let _ = writeln!(
                out,
                "  Executor {id} on {host}, {cores} core(s): added at {}, {state}",
                time(e.added_ms)
            );
        }
        if self.bad_lines > 0 || self.unknown_events > 0 || self.not_kept > 0 {
            let _ = writeln!(out);
        }
        if self.bad_lines > 0 {
            let first = self
                .first_bad
                .as_ref()
                .map(|(n, why)| format!(" (first: line {n}, {why})"))
                .unwrap_or_default();
            let _ = writeln!(out, "Skipped {} bad line(s){first}", self.bad_lines);
        }
        if self.unknown_events > 0 {
            let _ = writeln!(out, "Skipped {} unknown event(s)", self.unknown_events);
        }
        if self.not_kept > 0 {
            let _ = writeln!(
                out,
                "Not shown: {} job(s), executor(s) or reason(s) beyond the most kept \
                 ({MAX_JOBS}, {MAX_EXECUTORS}, {MAX_REASONS})",
                self.not_kept
            );
        }
        out
    }

    /// The summary as one JSON object, for programs.
    pub fn to_json(&self) -> Value {
        let jobs: Vec<Value> = self
            .jobs
            .iter()
            .map(|(id, job)| {
                let (result, message) = match &job.outcome {
                    Some(JobOutcome::Succeeded) => (Some("succeeded"), None),
                    Some(JobOutcome::Failed(m)) => (Some("failed"), Some(m)),
                    Some(JobOutcome::Cancelled(r)) => (Some("cancelled"), Some(r)),
                    None => (None, None),
                };
                json!({
                    "id": id,
                    "tasks": job.tasks,
                    "succeeded": job.succeeded,
                    "failed": job.failed,
                    "killed": job.killed,
                    "submitted_ms": job.submitted_ms,
                    "completed_ms": job.completed_ms,
                    "duration_ms": job.completed_ms.zip(job.submitted_ms).map(|(e, s)| e.saturating_sub(s)),
                    "result": result,
                    "message": message,
                })
            })
            .collect();
        let executors: Vec<Value> = self
            .executors
            .iter()
            .map(|(id, e)| {
                json!({
                    "id": id,
                    "host": e.host,
                    "cores": e.cores,
                    "added_ms": e.added_ms,
                    "removed_ms": e.removed_ms,
                    "removed_reason": e.removed_reason,
                })
            })
            .collect();
        let reasons: Vec<Value> = self
            .failure_reasons
            .iter()
            .map(|(reason, count)| json!({ "reason": reason, "count": count }))
            .collect();
        json!({
            "app_name": self.app_name,
            "app_id": self.app_id,
            "user": self.user,
            "version": self.version,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "duration_ms": self.end_ms.zip(self.start_ms).map(|(e, s)| e.saturating_sub(s)),
            "complete": self.is_complete(),
            "events_dropped": self.events_dropped,
            "jobs": jobs,
            "task_ends": self.task_ends,
            "task_failures": self.task_failures(),
            "failure_reasons": reasons,
            "executors": executors,
            "lines": self.lines,
            "bad_lines": self.bad_lines,
            "first_bad_line": self.first_bad.as_ref().map(|(line, why)| json!({ "line": line, "why": why })),
            "unknown_events": self.unknown_events,
            "extra_starts": self.extra_starts,
            "not_kept": self.not_kept,
        })
    }
}

/// A time as `YYYY-MM-DD HH:MM:SS.mmm UTC`, or `?`.
pub(super) fn time(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return "?".to_string();
    };
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        ms % 1000
    )
}

/// The date `days` days after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The time between two moments, or `?` when one is missing.
fn duration(from: Option<u64>, to: Option<u64>) -> String {
    match (from, to) {
        (Some(from), Some(to)) => {
            let ms = to.saturating_sub(from);
            if ms < 10_000 {
                format!("{ms} ms")
            } else {
                format!("{:.1} s", ms as f64 / 1000.0)
            }
        }
        _ => "?".to_string(),
    }
}
