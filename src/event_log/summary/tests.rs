use std::time::Duration;

use ember_scheduler::{DriverEvent, ExecutorId, JobError, JobId, TaskEnd, TaskId, TaskOutcome};

use super::render::time;
use super::*;
use crate::event_log::schema;

/// What a schema function writes, as text.
fn line(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut buf = Vec::new();
    write(&mut buf);
    String::from_utf8(buf).expect("UTF-8")
}

/// The line of `event` at `at_ms`.
fn event_line(at_ms: u64, event: &DriverEvent) -> String {
    line(|buf| schema::event(buf, at_ms, event))
}

fn task_end(job: u32, task: u64, outcome: TaskOutcome) -> String {
    event_line(
        2_000 + task,
        &DriverEvent::TaskEnd(TaskEnd {
            job_id: JobId(job),
            partition: task as u32,
            task_id: TaskId(task),
            attempt: 0,
            executor_id: ExecutorId::from("1"),
            host: None,
            duration: Duration::from_millis(3),
            outcome,
        }),
    )
}

/// A log of two jobs: one of 3 tasks (one failure retried), one cancelled.
fn sample_log() -> String {
    let mut log = line(|b| schema::application_start(b, "pi", "app-1", 1_000, "alice"));
    log += &event_line(
        1_100,
        &DriverEvent::ExecutorAdded {
            executor_id: ExecutorId::from("1"),
            host: "h1".into(),
            cores: 2,
        },
    );
    log += &event_line(
        1_200,
        &DriverEvent::JobStart {
            job_id: JobId(0),
            tasks: 3,
        },
    );
    log += &task_end(0, 0, TaskOutcome::Success);
    log += &task_end(
        0,
        1,
        TaskOutcome::Failed {
            reason: "boom".into(),
        },
    );
    log += &task_end(0, 2, TaskOutcome::Success);
    log += &task_end(0, 3, TaskOutcome::Success);
    log += &event_line(
        2_500,
        &DriverEvent::JobEnd {
            job_id: JobId(0),
            result: Ok(()),
        },
    );
    log += &event_line(
        2_600,
        &DriverEvent::JobStart {
            job_id: JobId(1),
            tasks: 1,
        },
    );
    log += &task_end(
        1,
        4,
        TaskOutcome::Killed {
            reason: "Stage cancelled".into(),
        },
    );
    log += &event_line(
        2_700,
        &DriverEvent::JobEnd {
            job_id: JobId(1),
            result: Err(JobError::Cancelled {
                reason: "asked".into(),
            }),
        },
    );
    log += &event_line(
        2_800,
        &DriverEvent::ExecutorRemoved {
            executor_id: ExecutorId::from("1"),
            reason: "Command exited with code 1: x".into(),
        },
    );
    log += &line(|b| schema::application_end(b, 61_000, 0));
    log
}

#[test]
fn a_log_reads_back_as_what_happened() {
    let summary = read(sample_log().as_bytes()).unwrap();
    assert_eq!(summary.app_name.as_deref(), Some("pi"));
    assert_eq!(summary.app_id.as_deref(), Some("app-1"));
    assert_eq!(summary.version, Some(schema::SCHEMA_VERSION));
    assert!(summary.is_complete());
    assert_eq!(summary.task_ends, 5);
    assert_eq!(summary.task_failures(), 1);
    assert_eq!(summary.failure_reasons.get("boom"), Some(&1));
    let job = &summary.jobs[&0];
    assert_eq!((job.tasks, job.succeeded, job.failed), (Some(3), 3, 1));
    assert_eq!(job.outcome, Some(JobOutcome::Succeeded));
    assert_eq!(
        summary.jobs[&1].outcome,
        Some(JobOutcome::Cancelled("asked".into()))
    );
    assert_eq!(summary.jobs[&1].killed, 1);
    let executor = &summary.executors["1"];
    assert_eq!(executor.host.as_deref(), Some("h1"));
    assert_eq!(
        executor.removed_reason.as_deref(),
        Some("Command exited with code 1: x")
    );
    assert_eq!(summary.bad_lines, 0);
    let text = summary.to_text();
    assert!(text.contains("Duration: 60.0 s"), "{text}");
    assert!(
        text.contains("Job 0: 3 tasks, 3 succeeded, 1 failed, 0 killed, 1300 ms, succeeded"),
        "{text}"
    );
    assert!(text.contains("1 x boom"), "{text}");
    let json = summary.to_json();
    assert_eq!(json["task_ends"], 5);
    assert_eq!(json["duration_ms"], 60_000);
}

#[test]
fn bad_lines_are_skipped_and_counted() {
    let log = sample_log();
    let bad: Vec<Vec<u8>> = vec![
        b"not json at all".to_vec(),
        b"[1, 2, 3]".to_vec(),
        b"{\"Event\": 5}".to_vec(),
        b"{\"no event\": true}".to_vec(),
        b"{\"Event\":\"SparkListenerJobStart\",\"Job ID\":\"zero\"}".to_vec(),
        b"{\"Event\":\"SparkListenerTaskEnd\",\"Job ID\":0,\"Task End Reason\":{\"Reason\":\"?\"}}"
            .to_vec(),
        vec![0xff, 0xfe, b'{', b'}'],
        // Nested past serde_json's limit.
        "[".repeat(100_000).into_bytes(),
        // Longer than a line may be: skipped without being held whole.
        vec![b'x'; MAX_LINE * 3],
        b"{\"Event\":\"SparkListenerJobEnd\",\"Job ID\":0,\"Job Result\":{\"Result\":1}}".to_vec(),
    ];
    // Bad lines between the good ones, and one unterminated at the end.
    let mut out = Vec::new();
    for (i, good) in log.as_bytes().split(|&b| b == b'\n').enumerate() {
        out.extend_from_slice(good);
        out.push(b'\n');
        if let Some(b) = bad.get(i) {
            out.extend_from_slice(b);
            out.push(b'\n');
        }
    }
    out.extend_from_slice(b"{\"Event\":\"SparkListenerSomethingNew\"}\n{\"trunc");
    let summary = read(&out[..]).unwrap();
    assert_eq!(summary.bad_lines, bad.len() as u64 + 1);
    assert_eq!(summary.unknown_events, 1);
    assert_eq!(summary.first_bad.as_ref().map(|(n, _)| *n), Some(2));
    // The good lines still count.
    assert_eq!(summary.task_ends, 5);
    assert_eq!(summary.jobs.len(), 2);
    assert!(summary.is_complete());
    let text = summary.to_text();
    assert!(
        text.contains("Skipped 11 bad line(s) (first: line 2, not JSON"),
        "{text}"
    );
}

#[test]
fn what_is_kept_is_bounded() {
    let mut log = String::new();
    for id in 0..(MAX_JOBS as u64 + 10) {
        log += &format!("{{\"Event\":\"SparkListenerJobStart\",\"Job ID\":{id}}}\n");
    }
    for id in 0..(MAX_EXECUTORS + 5) {
        log += &format!("{{\"Event\":\"SparkListenerExecutorAdded\",\"Executor ID\":\"{id}\"}}\n");
    }
    for i in 0..(MAX_REASONS as u64 + 3) {
        let reason = format!("{i}{}", "r".repeat(MAX_TEXT * 5));
        log += &task_end(0, i, TaskOutcome::Failed { reason });
    }
    let summary = read(log.as_bytes()).unwrap();
    assert_eq!(summary.jobs.len(), MAX_JOBS);
    assert_eq!(summary.executors.len(), MAX_EXECUTORS);
    assert_eq!(summary.failure_reasons.len(), MAX_REASONS);
    assert_eq!(summary.not_kept, 10 + 5 + 3);
    // Every failure counts, kept or not.
    assert_eq!(summary.jobs[&0].failed, MAX_REASONS as u64 + 3);
    let reason = summary.failure_reasons.keys().next().unwrap();
    assert_eq!(reason.chars().count(), MAX_TEXT + 3);
}

#[test]
fn an_empty_log_or_one_without_an_end_says_so() {
    let summary = read(&b""[..]).unwrap();
    assert_eq!(summary.lines, 0);
    assert!(summary.app_id.is_none());
    let unfinished = line(|b| schema::application_start(b, "pi", "app-2", 0, "bob"));
    let summary = read(unfinished.as_bytes()).unwrap();
    assert!(!summary.is_complete());
    assert!(summary.to_text().contains("Ended: no"));
}

#[test]
fn times_are_utc_dates() {
    assert_eq!(time(Some(0)), "1970-01-01 00:00:00.000 UTC");
    assert_eq!(time(Some(1_796_422_500_123)), "2026-12-04 22:15:00.123 UTC");
    assert_eq!(time(Some(951_782_400_000)), "2000-02-29 00:00:00.000 UTC");
    assert_eq!(time(None), "?");
    // Any number, however hostile, is a date.
    let _ = time(Some(u64::MAX));
}
