//! DriverRunner: the supervise decisions without processes (Spark's DriverRunnerTest, whose
//! sleeper and clock are mocked), then real processes for the final states.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;

use super::*;
use crate::messages::Command;
use crate::worker::test_util::TempDir;

/// How long a test waits for a report: the one deadline of ember-test-support.
use crate::worker::test_util::DEADLINE as PATIENCE;
const SHORT: Duration = Duration::from_millis(10);
const LONG: Duration = Duration::from_secs(8);

/// Feeds `runs` (exit code, duration) to a supervising relauncher; returns the waits and
/// how it ended.
fn drive(supervise: bool, runs: &[(i32, Duration)]) -> (Vec<u64>, Option<DriverState>, usize) {
    let mut r = Relauncher::new(supervise, FIRST_BACKOFF, SUCCESSFUL_RUN);
    let mut waits = Vec::new();
    for (n, &(code, ran_for)) in runs.iter().enumerate() {
        match r.after_run(code, ran_for, false) {
            AfterRun::Relaunch(wait) => waits.push(wait.as_secs()),
            AfterRun::Finish(state) => return (waits, Some(state), n + 1),
        }
    }
    (waits, None, runs.len())
}

/// DriverRunnerTest 1 and 7: "Process succeeds instantly", "Finalized with state FINISHED".
#[test]
fn success_at_once_needs_no_wait() {
    assert_eq!(
        drive(true, &[(0, SHORT)]),
        (vec![], Some(DriverState::Finished), 1)
    );
}

/// DriverRunnerTest 2: "Process failing several times and then succeeding".
#[test]
fn failures_back_off_exponentially() {
    let runs = [(-1, SHORT), (-1, SHORT), (-1, SHORT), (0, SHORT)];
    assert_eq!(
        drive(true, &runs),
        (vec![1, 2, 4], Some(DriverState::Finished), 4)
    );
}

/// DriverRunnerTest 3 and 8: "Process doesn't restart if not supervised", "FAILED".
#[test]
fn unsupervised_failure_is_final() {
    assert_eq!(
        drive(false, &[(-1, SHORT)]),
        (vec![], Some(DriverState::Failed), 1)
    );
}

/// DriverRunnerTest 4: "Process doesn't restart if killed".
#[test]
fn a_killed_driver_is_not_relaunched() {
    let mut r = Relauncher::new(true, FIRST_BACKOFF, SUCCESSFUL_RUN);
    assert_eq!(
        r.after_run(-1, SHORT, true),
        AfterRun::Finish(DriverState::Killed)
    );
}

/// DriverRunnerTest 5: "Reset of backoff counter".
#[test]
fn a_long_run_resets_the_back_off() {
    let runs = [
        (-1, SHORT),
        (-1, SHORT),
        (-1, LONG),
        (-1, SHORT),
        (-1, LONG),
        (0, SHORT),
    ];
    let (waits, state, _) = drive(true, &runs);
    assert_eq!(waits, [1, 2, 1, 2, 1]);
    assert_eq!(state, Some(DriverState::Finished));
}

fn spec(work: &Path, program: &str, args: &[&str], supervise: bool) -> DriverSpec {
    DriverSpec {
        driver_id: DriverId("driver-20240101000000-0001".to_string()),
        description: DriverDescription {
            memory_mib: 256,
            cores: 1,
            supervise,
            command: Command {
                program: program.to_string(),
                args: args.iter().map(|a| a.to_string()).collect(),
                env: BTreeMap::new(),
            },
            program_digest: None,
        },
        worker_url: "ember://Worker@127.0.0.1:4444".to_string(),
        host: "127.0.0.1".to_string(),
        work_dir: work.to_path_buf(),
        kill_grace: Duration::from_secs(10),
        first_backoff: SHORT,
        launcher: Vec::new(),
        security_env: Vec::new(),
        fetch: None,
    }
}

fn run(spec: DriverSpec) -> (DriverRunner, mpsc::Receiver<(DriverState, Option<String>)>) {
    let (tx, rx) = mpsc::channel();
    let runner = DriverRunner::start(spec, move |state, why| {
        let _ = tx.send((state, why));
    })
    .expect("starts");
    (runner, rx)
}

#[test]
fn a_real_driver_finishes_with_its_worker_url_filled_in() {
    let work = TempDir::new("driver-ok");
    let (runner, rx) = run(spec(
        work.path(),
        "/bin/sh",
        &["-c", "echo {{WORKER_URL}}"],
        false,
    ));
    assert_eq!(
        rx.recv_timeout(PATIENCE).expect("report"),
        (DriverState::Finished, None)
    );
    assert!(runner.wait_done(PATIENCE));
    let dir = work.path().join("driver-20240101000000-0001");
    let out = std::fs::read_to_string(dir.join("stdout")).expect("stdout");
    assert_eq!(out, "ember://Worker@127.0.0.1:4444\n");
    let err = std::fs::read_to_string(dir.join("stderr")).expect("stderr");
    assert!(err.starts_with("Launch Command: \"/bin/sh\""), "{err}");
}

/// A driver binds its worker's host (`EMBER_LOCAL_IP`) unless its command says otherwise.
#[test]
fn a_driver_is_told_its_workers_host_unless_its_command_chose() {
    let work = TempDir::new("driver-host");
    let mut told = spec(
        work.path(),
        "/bin/sh",
        &["-c", "echo $EMBER_LOCAL_IP"],
        false,
    );
    told.host = "10.9.8.7".to_string();
    let mut chose = told.clone();
    chose.driver_id = DriverId("driver-20240101000000-0002".to_string());
    chose
        .description
        .command
        .env
        .insert("EMBER_LOCAL_IP".to_string(), "10.1.1.1".to_string());
    for (spec, expected) in [(told, "10.9.8.7\n"), (chose, "10.1.1.1\n")] {
        let dir = work.path().join(&spec.driver_id.0);
        let (runner, rx) = run(spec);
        assert_eq!(
            rx.recv_timeout(PATIENCE).expect("report"),
            (DriverState::Finished, None)
        );
        assert!(runner.wait_done(PATIENCE));
        let out = std::fs::read_to_string(dir.join("stdout")).expect("stdout");
        assert_eq!(out, expected);
    }
}

#[test]
fn a_supervised_driver_is_relaunched_until_it_succeeds() {
    let work = TempDir::new("driver-retry");
    // Fails twice, then succeeds: each run appends a line and checks the count.
    let script = "echo run >> ../runs; [ $(wc -l < ../runs) -ge 3 ]";
    let (_runner, rx) = run(spec(work.path(), "/bin/sh", &["-c", script], true));
    assert_eq!(
        rx.recv_timeout(PATIENCE).expect("report"),
        (DriverState::Finished, None)
    );
    let runs = std::fs::read_to_string(work.path().join("runs")).expect("runs");
    assert_eq!(runs.lines().count(), 3);
}

/// DriverRunnerTest 8 with a real process: not supervised, non-zero exit.
#[test]
fn an_unsupervised_failing_driver_is_failed() {
    let work = TempDir::new("driver-fail");
    let (_runner, rx) = run(spec(work.path(), "/bin/sh", &["-c", "exit 2"], false));
    assert_eq!(
        rx.recv_timeout(PATIENCE).expect("report"),
        (DriverState::Failed, None)
    );
}

/// DriverRunnerTest 6: "Kill process finalized with state KILLED", even when supervised.
#[test]
fn a_killed_driver_is_killed() {
    let work = TempDir::new("driver-kill");
    let (runner, rx) = run(spec(work.path(), "sleep", &["30"], true));
    let dir = work.path().join("driver-20240101000000-0001");
    // Kill once it runs: the header is written just before the process starts.
    crate::worker::test_util::wait_until("the driver's start", PATIENCE, || {
        dir.join("stderr").exists() && matches!(*runner.shared.state.lock(), RunState::Running(_))
    });
    runner.kill();
    assert_eq!(
        rx.recv_timeout(PATIENCE).expect("report"),
        (DriverState::Killed, None)
    );
    assert!(runner.wait_done(PATIENCE));
}

/// DriverRunnerTest 9: "Handle exception starting process" → ERROR with the reason.
#[test]
fn a_driver_that_cannot_start_is_error() {
    let work = TempDir::new("driver-missing");
    let (_runner, rx) = run(spec(work.path(), "/nonexistent/ember-driver", &[], true));
    let (state, why) = rx.recv_timeout(PATIENCE).expect("report");
    assert_eq!(state, DriverState::Error);
    assert!(why.unwrap_or_default().contains("Cannot run program"));
}

/// A kill during the back-off between runs ends the loop as KILLED at once, with no
/// relaunch.
#[test]
fn a_kill_during_the_back_off_is_final() {
    let work = TempDir::new("driver-kill-backoff");
    let mut spec = spec(
        work.path(),
        "/bin/sh",
        &["-c", "echo run >> ../runs; exit 1"],
        true,
    );
    // Far longer than the test waits: only the kill can end the back-off.
    spec.first_backoff = PATIENCE * 10;
    let (runner, rx) = run(spec);
    let runs = work.path().join("runs");
    crate::worker::test_util::wait_until("the first run's end", PATIENCE, || {
        runs.exists() && matches!(*runner.shared.state.lock(), RunState::Between)
    });
    runner.kill();
    assert_eq!(
        rx.recv_timeout(PATIENCE).expect("report"),
        (DriverState::Killed, None)
    );
    assert!(runner.wait_done(PATIENCE));
    let runs = std::fs::read_to_string(runs).expect("runs");
    assert_eq!(runs.lines().count(), 1, "no relaunch after the kill");
}

/// A kill after the loop ended changes nothing: it stays done.
#[test]
fn a_kill_after_the_end_changes_nothing() {
    let work = TempDir::new("driver-kill-late");
    let (runner, rx) = run(spec(work.path(), "/bin/sh", &["-c", "exit 0"], false));
    assert_eq!(
        rx.recv_timeout(PATIENCE).expect("report"),
        (DriverState::Finished, None)
    );
    assert!(runner.wait_done(PATIENCE));
    runner.kill();
    assert!(matches!(*runner.shared.state.lock(), RunState::Done));
    assert!(runner.wait_done(Duration::ZERO));
}
