use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use ember_scheduler::{ExecutorId, JobId, TaskEnd, TaskId, TaskOutcome};
use ember_test_support::TempDir;
use serde_json::Value;

use super::*;

fn lines_of(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("the log");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

fn task_end(task: u64, outcome: TaskOutcome) -> DriverEvent {
    DriverEvent::TaskEnd(TaskEnd {
        job_id: JobId(0),
        partition: task as u32,
        task_id: TaskId(task),
        attempt: 0,
        executor_id: ExecutorId::from("0"),
        host: Some("h".into()),
        duration: Duration::from_millis(7),
        outcome,
    })
}

#[test]
fn start_events_and_end_in_order_then_renamed() {
    let dir = TempDir::new("event-log-order");
    let logs = dir.path().join("a/b");
    let log = EventLog::start(logs.clone(), 100);
    // Before the id is known (a standalone master gives it): kept, written after the start.
    log.post(DriverEvent::ExecutorAdded {
        executor_id: ExecutorId::from("0"),
        host: "h".into(),
        cores: 2,
    });
    log.application_started("app-1", "tester");
    log.post(DriverEvent::JobStart {
        job_id: JobId(0),
        tasks: 2,
    });
    log.post(task_end(0, TaskOutcome::Success));
    log.post(task_end(
        1,
        TaskOutcome::Failed {
            reason: "boom \"quoted\"\nline two \u{1F525} \\ end".into(),
        },
    ));
    log.post(DriverEvent::JobEnd {
        job_id: JobId(0),
        result: Err(ember_scheduler::JobError::Failed {
            message: "Task 1 failed".into(),
        }),
    });
    log.application_ended();
    assert!(!logs.join("app-1.inprogress").exists());
    let path = logs.join("app-1");
    let mode = std::fs::metadata(&path)
        .expect("the log")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    let lines = lines_of(&path);
    let events: Vec<&str> = lines.iter().map(|l| l["Event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            schema::APPLICATION_START,
            schema::EXECUTOR_ADDED,
            schema::JOB_START,
            schema::TASK_END,
            schema::TASK_END,
            schema::JOB_END,
            schema::APPLICATION_END
        ]
    );
    assert_eq!(lines[0]["Ember Event Log Version"], 1);
    assert_eq!(lines[0]["App ID"], "app-1");
    assert_eq!(lines[0]["App Name"], "tester");
    assert_eq!(lines[3]["Task End Reason"]["Reason"], "Success");
    assert_eq!(lines[3]["Duration"], 7);
    // Escaped, and read back as it was.
    assert_eq!(
        lines[4]["Task End Reason"]["Message"],
        "boom \"quoted\"\nline two \u{1F525} \\ end"
    );
    assert_eq!(lines[4]["Host"], "h");
    assert_eq!(lines[5]["Job Result"]["Result"], "JobFailed");
    assert_eq!(lines[6]["Events Dropped"], 0);
    // The first key of every line is the event's name, as in Spark's logs.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().all(|l| l.starts_with("{\"Event\":")), "{text}");
}

/// However the writer and the posters interleave, every event is in the log or counted as
/// dropped in its last line.
#[test]
fn a_full_queue_drops_and_counts_every_event_it_loses() {
    let dir = TempDir::new("event-log-drops");
    let log = EventLog::start(dir.path().to_path_buf(), 2);
    let posted = 5_000;
    // Before the start, at most `capacity` wait in the writer: most must be dropped.
    for i in 0..posted {
        log.post(task_end(i, TaskOutcome::Success));
    }
    log.application_started("app-2", "tester");
    log.application_ended();
    let lines = lines_of(&dir.path().join("app-2"));
    let written = lines
        .iter()
        .filter(|l| l["Event"] == schema::TASK_END)
        .count() as u64;
    let dropped = lines.last().unwrap()["Events Dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{written} written");
    assert_eq!(written + dropped, posted);
}

#[test]
fn a_symlink_where_the_file_goes_is_never_followed() {
    let dir = TempDir::new("event-log-symlink");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("app-3.inprogress")).unwrap();
    let err = create_log_file(dir.path(), "app-3").expect_err("a symlink is in the way");
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    // Through the log: it turns itself off, and the application goes on.
    let log = EventLog::start(dir.path().to_path_buf(), 10);
    log.application_started("app-3", "tester");
    log.post(task_end(0, TaskOutcome::Success));
    log.application_ended();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(!dir.path().join("app-3").exists());
}

#[test]
fn ids_that_are_not_one_file_name_are_refused() {
    let dir = TempDir::new("event-log-ids");
    for id in ["", "../escape", "a/b", ".hidden"] {
        assert!(create_log_file(dir.path(), id).is_err(), "{id:?}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_directory_that_cannot_be_made_turns_the_log_off() {
    let dir = TempDir::new("event-log-nodir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let log = EventLog::start(file.join("logs"), 10);
    log.application_started("app-4", "tester");
    log.post(task_end(0, TaskOutcome::Success));
    log.application_ended();
    assert!(log.shared.disabled.load(Ordering::Acquire));
}

#[test]
fn a_failed_write_turns_the_log_off_once() {
    let shared = Arc::new(Shared {
        dropped: AtomicU64::new(0),
        disabled: AtomicBool::new(false),
    });
    let mut writer = Writer::new(PathBuf::from("/nonexistent"), 10, Arc::clone(&shared));
    let full = OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    writer.out = Some(Output {
        file: BufWriter::with_capacity(64, full),
        in_progress: PathBuf::from("/dev/full"),
        done: PathBuf::from("/nonexistent/done"),
    });
    for i in 0..10 {
        let event = task_end(i, TaskOutcome::Success);
        assert!(!writer.handle(Command::Event { at_ms: 0, event }));
    }
    writer.flush();
    assert!(shared.disabled.load(Ordering::Acquire));
    assert!(writer.out.is_none());
    assert!(
        writer.handle(Command::Stop { at_ms: 0 }),
        "a stop still ends it"
    );
}

#[test]
fn off_by_default_and_on_with_the_key() {
    assert!(EventLog::from_conf(&RpcConf::new()).unwrap().is_none());
    let bad = RpcConf::new().with(EVENT_LOG_ENABLED, "maybe");
    assert!(EventLog::from_conf(&bad).is_err());
    let dir = TempDir::new("event-log-conf");
    let conf = RpcConf::new()
        .with(EVENT_LOG_ENABLED, "true")
        .with(EVENT_LOG_DIR, format!("file://{}", dir.path().display()));
    let log = EventLog::from_conf(&conf).unwrap().expect("on");
    log.application_started("app-5", "tester");
    log.application_ended();
    assert!(dir.path().join("app-5").is_file());
}
