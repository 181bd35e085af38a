//! The event log (`ember.eventLog.enabled`) of real applications, and `ember-events` (the
//! real binary) reading it: `examples/pi` as a program on `local-cluster[2,1,1024]`; jobs
//! that fail, retry, lose an executor and are cancelled on a test cluster; a driver killed
//! with SIGKILL, which leaves its `.inprogress` file; corrupt and hostile files.

mod built;
pub mod cluster_support;
#[path = "../deploy/tests/script_support/mod.rs"]
pub mod script_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use ember::{EVENT_LOG_DIR, EVENT_LOG_ENABLED};
use ember_test_support::{wait_for, wait_until, TempDir, DEADLINE};

use built::{ensure_built, profile_dir};
use cluster_support::tasks;
use script_support::run_bounded;

ember::executor_entry!(tasks);

/// The one file in `dir`, which must be there.
fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the log dir")
        .map(|e| e.expect("an entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one log in {}: {files:?}", dir.display());
    files.into_iter().next().unwrap()
}

/// Every line of a log, parsed (each must be JSON).
fn lines_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("the log")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn of_kind<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["Event"] == event).collect()
}

/// Runs `ember-events` (the binary cargo built for this test) with `args`.
fn ember_events(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ember-events"));
    command.args(args);
    run_bounded(command, &format!("ember-events {}", args.join(" ")))
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `ember-events --json` on `path`.
fn summary_json(path: &Path) -> Value {
    let output = ember_events(&["--json", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

/// The settings that turn the log on into `dir`, as `EMBER_CONF` carries them.
fn conf_text(dir: &Path) -> String {
    format!(
        "{EVENT_LOG_ENABLED}=true\n{EVENT_LOG_DIR}={}\n",
        dir.display()
    )
}

/// Checks what every complete log must be: one application start (first, with the schema
/// version), one end (last, nothing dropped), one job start and end per job.
fn assert_well_formed(lines: &[Value], jobs: usize) {
    assert_eq!(lines[0]["Event"], "SparkListenerApplicationStart");
    assert_eq!(lines[0]["Ember Event Log Version"], 1);
    let last = lines.last().unwrap();
    assert_eq!(last["Event"], "SparkListenerApplicationEnd");
    assert_eq!(last["Events Dropped"], 0);
    assert_eq!(of_kind(lines, "SparkListenerApplicationStart").len(), 1);
    assert_eq!(of_kind(lines, "SparkListenerApplicationEnd").len(), 1);
    let ids = |kind: &str| -> Vec<u64> {
        of_kind(lines, kind)
            .iter()
            .map(|l| l["Job ID"].as_u64().unwrap())
            .collect()
    };
    let expected: Vec<u64> = (0..jobs as u64).collect();
    assert_eq!(ids("SparkListenerJobStart"), expected);
    let mut ended = ids("SparkListenerJobEnd");
    ended.sort_unstable();
    assert_eq!(ended, expected);
}

#[test]
fn pi_on_a_local_cluster_leaves_one_complete_log_that_ember_events_reads() {
    let bins = profile_dir();
    ensure_built(&bins);
    let dir = TempDir::new("event-log-pi");
    let logs = dir.path().join("events");
    let mut pi = Command::new(bins.join("examples/pi"));
    pi.args(["--master", "local-cluster[2,1,1024]", "--slices", "8"])
        .current_dir(dir.path())
        .env("EMBER_CONF", conf_text(&logs));
    let output = run_bounded(pi, "pi");
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stdout_of(&output).contains("Pi is roughly 3.1"));

    let path = only_file(&logs);
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("app-") && !name.ends_with(".inprogress"),
        "{name}"
    );
    let lines = lines_of(&path);
    assert_well_formed(&lines, 1);
    assert_eq!(lines[0]["App Name"], "pi");
    assert_eq!(lines[0]["App ID"], name.as_str());
    assert_eq!(lines[0]["Ember Event Log Version"], 1);
    let job_start = of_kind(&lines, "SparkListenerJobStart");
    assert_eq!(job_start[0]["Tasks"], 8);
    let job_end = of_kind(&lines, "SparkListenerJobEnd");
    assert_eq!(job_end[0]["Job Result"]["Result"], "JobSucceeded");
    let added: BTreeSet<&str> = of_kind(&lines, "SparkListenerExecutorAdded")
        .iter()
        .map(|l| l["Executor ID"].as_str().unwrap())
        .collect();
    // Pi does not wait for its executors: the second may come after its one job, or not
    // before the stop. Every executor a task ran on was added, before its task ended.
    assert!((1..=2).contains(&added.len()), "{added:?}");
    let ends = of_kind(&lines, "SparkListenerTaskEnd");
    assert_eq!(ends.len(), 8);
    let partitions: BTreeSet<u64> = ends
        .iter()
        .map(|l| l["Partition"].as_u64().unwrap())
        .collect();
    assert_eq!(partitions, (0..8).collect());
    let position = |l: &Value| lines.iter().position(|x| x == l).unwrap();
    for end in &ends {
        let executor = end["Executor ID"].as_str().unwrap();
        let added_at = lines
            .iter()
            .position(|l| {
                l["Event"] == "SparkListenerExecutorAdded" && l["Executor ID"] == executor
            })
            .expect("its executor was added");
        assert!(added_at < position(end), "{end}");
        assert_eq!(end["Task End Reason"]["Reason"], "Success", "{end}");
        assert!(
            added.contains(end["Executor ID"].as_str().unwrap()),
            "{end}"
        );
        assert!(end["Host"].is_string(), "{end}");
        assert!(end["Duration"].is_u64(), "{end}");
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o640);

    // The summary, as people read it.
    let output = ember_events(&[path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = stdout_of(&output);
    for expected in [
        "Application: pi\n",
        &format!("ID: {name}\n"),
        "Jobs: 1\n",
        "  Job 0: 8 tasks, 8 succeeded, 0 failed, 0 killed, ",
        "Task ends: 8, failures: 0\n",
        &format!("Executors: {}\n", added.len()),
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
    assert!(text.contains("Duration: "), "{text}");
    assert!(!text.contains("Skipped"), "{text}");

    // A corrupt line (a torn write, a stray edit) is skipped and counted; the rest reads the
    // same.
    let mut bytes = std::fs::read(&path).unwrap();
    let cut = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes.splice(
        cut..cut,
        b"{\"Event\":\"SparkListenerTaskEnd\",\"Job I\xff\n"
            .iter()
            .copied(),
    );
    let corrupt = dir.path().join("corrupt");
    std::fs::write(&corrupt, &bytes).unwrap();
    let output = ember_events(&[corrupt.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = stdout_of(&output);
    assert!(text.contains("Task ends: 8, failures: 0\n"), "{text}");
    assert!(
        text.contains("Skipped 1 bad line(s) (first: line 2, not JSON"),
        "{text}"
    );
    let json = summary_json(&corrupt);
    assert_eq!(json["bad_lines"], 1);
    assert_eq!(json["task_ends"], 8);
    assert_eq!(json["complete"], true);
}

/// Per job: (task ends that succeeded, failed, were killed), and the failure messages.
fn task_ends_by_job(lines: &[Value]) -> BTreeMap<u64, (u64, u64, u64, Vec<String>)> {
    let mut jobs: BTreeMap<u64, (u64, u64, u64, Vec<String>)> = BTreeMap::new();
    for end in of_kind(lines, "SparkListenerTaskEnd") {
        let job = jobs.entry(end["Job ID"].as_u64().unwrap()).or_default();
        let reason = &end["Task End Reason"];
        match reason["Reason"].as_str().unwrap() {
            "Success" => job.0 += 1,
            "Failed" => {
                job.1 += 1;
                job.3.push(reason["Message"].as_str().unwrap().to_string());
            }
            "TaskKilled" => job.2 += 1,
            other => panic!("unknown reason {other}"),
        }
    }
    jobs
}

#[test]
fn failures_retries_a_lost_executor_and_a_cancel_are_all_in_the_log() {
    let _ = env_logger::try_init();
    let dir = TempDir::new("event-log-cluster");
    let logs = dir.path().join("events");
    let cluster = test_cluster()
        .workers(2)
        .cores_per_worker(1)
        .memory_mib_per_worker(4096)
        .conf(EVENT_LOG_ENABLED, "true")
        .conf(EVENT_LOG_DIR, logs.to_str().unwrap())
        .start()
        .expect("the test cluster starts");
    let ctx = cluster.context("events").expect("registers");
    cluster
        .wait_for_executors(&ctx, 2, DEADLINE)
        .expect("two executors");
    let in_progress = logs.join(format!("{}.inprogress", ctx.app_id()));
    assert!(in_progress.is_file(), "written while it runs");

    // Job 0: every partition fails three times, then succeeds.
    let out: Vec<u32> = ctx
        .run_job("fail_three_times", vec![1u32, 2])
        .expect("4th attempt");
    assert_eq!(out, [1, 2]);
    // Job 1: fails every attempt; aborted after the 4th.
    assert!(ctx.run_job::<u64, u64>("panic_on_three", vec![3]).is_err());
    // Job 2: partition 0's first attempt takes its executor down with it.
    let out: Vec<u32> = ctx
        .run_job("exit_on_first_attempt", vec![10u32, 11])
        .expect("retried elsewhere");
    assert_eq!(out, [10, 11]);
    // Job 3: cancelled while it runs (or before it could).
    let job = ctx
        .submit_job::<u64, u32>("sleep_ms", vec![60_000])
        .expect("submitted");
    job.cancel("no longer wanted");
    assert!(job.wait().is_err());
    // An executor was free, so the task had launched: its kill is reported, and logged as
    // it comes (the log is flushed whenever the writer has nothing queued).
    wait_until("the killed task's end in the log", DEADLINE, || {
        std::fs::read_to_string(&in_progress).is_ok_and(|t| t.contains("\"TaskKilled\""))
    });
    let app_id = ctx.app_id().to_string();
    ctx.stop();
    cluster.stop().expect("stops clean");

    assert!(!in_progress.exists());
    let path = logs.join(&app_id);
    let lines = lines_of(&path);
    assert_well_formed(&lines, 4);
    let results: Vec<&str> = {
        let mut ends = of_kind(&lines, "SparkListenerJobEnd");
        ends.sort_by_key(|l| l["Job ID"].as_u64());
        ends.iter()
            .map(|l| l["Job Result"]["Result"].as_str().unwrap())
            .collect()
    };
    assert_eq!(
        results,
        ["JobSucceeded", "JobFailed", "JobSucceeded", "JobCancelled"]
    );
    let by_job = task_ends_by_job(&lines);
    let (ok, failed, killed, messages) = &by_job[&0];
    assert_eq!((*ok, *failed, *killed), (2, 6, 0), "{messages:?}");
    for attempt in 0..3 {
        let text = format!("attempt {attempt} fails");
        assert_eq!(messages.iter().filter(|m| m.contains(&text)).count(), 2);
    }
    let (ok, failed, _, messages) = &by_job[&1];
    assert_eq!((*ok, *failed), (0, 4), "{messages:?}");
    let (ok, _, _, messages) = &by_job[&2];
    assert_eq!(*ok, 2);
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("ExecutorLostFailure")),
        "{messages:?}"
    );
    let (ok, failed, killed, _) = &by_job[&3];
    assert_eq!(
        (*ok, *failed, *killed),
        (0, 0, 1),
        "a cancelled task is killed"
    );
    // The executor that went down is removed, with why, and its attempt ended with it.
    let added = of_kind(&lines, "SparkListenerExecutorAdded");
    let added_ids: BTreeSet<&str> = added
        .iter()
        .map(|l| l["Executor ID"].as_str().unwrap())
        .collect();
    assert!(added_ids.len() >= 2, "{added_ids:?}");
    let removed = of_kind(&lines, "SparkListenerExecutorRemoved");
    assert!(!removed.is_empty());
    let removed_ids: BTreeSet<&str> = removed
        .iter()
        .map(|l| l["Executor ID"].as_str().unwrap())
        .collect();
    assert!(removed_ids.is_subset(&added_ids), "{removed_ids:?}");
    assert!(removed
        .iter()
        .all(|l| !l["Removed Reason"].as_str().unwrap_or_default().is_empty()));
    let lost_on: BTreeSet<&str> = of_kind(&lines, "SparkListenerTaskEnd")
        .iter()
        .filter(|l| {
            l["Task End Reason"]["Message"]
                .as_str()
                .is_some_and(|m| m.starts_with("ExecutorLostFailure"))
        })
        .map(|l| l["Executor ID"].as_str().unwrap())
        .collect();
    assert!(
        lost_on.is_subset(&removed_ids),
        "{lost_on:?} {removed_ids:?}"
    );

    // ember-events says the same.
    let json = summary_json(&path);
    assert_eq!(json["app_id"], app_id.as_str());
    assert_eq!(json["complete"], true);
    let results: Vec<&str> = json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["succeeded", "failed", "succeeded", "cancelled"]);
    let all_ends = of_kind(&lines, "SparkListenerTaskEnd").len() as u64;
    assert_eq!(json["task_ends"], all_ends);
    let failures: u64 = by_job.values().map(|j| j.1).sum();
    assert_eq!(json["task_failures"], failures);
    assert_eq!(json["jobs"][0]["failed"], 6);
    assert_eq!(json["executors"].as_array().unwrap().len(), added.len());
    let text = stdout_of(&ember_events(&[path.to_str().unwrap()]));
    assert!(text.contains("  2 x attempt 0 fails"), "{text}");
    assert!(text.contains("cancelled: "), "{text}");
    assert!(text.contains("removed at "), "{text}");
}

#[test]
fn a_driver_killed_with_sigkill_leaves_its_inprogress_file() {
    let bins = profile_dir();
    ensure_built(&bins);
    let dir = TempDir::new("event-log-killed");
    let logs = dir.path().join("events");
    // Far more darts than it can throw before the kill.
    let mut driver = Command::new(bins.join("examples/pi"))
        .args(["--master", "local[1]", "--slices", "200000"])
        .current_dir(dir.path())
        .env("EMBER_CONF", conf_text(&logs))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pi starts");
    // Events are on disk as they happen: wait for a task's end there.
    let path = wait_for(
        "a task end in the driver's .inprogress file",
        DEADLINE,
        || {
            let files: Vec<PathBuf> = std::fs::read_dir(&logs)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            match files.as_slice() {
                [path] => match std::fs::read_to_string(path) {
                    Ok(text) if text.contains("\"SparkListenerTaskEnd\"") => Ok(path.clone()),
                    _ => Err(files),
                },
                _ => Err(files),
            }
        },
    );
    driver.kill().expect("SIGKILL");
    let status = driver.wait().expect("reaped");
    assert!(!status.success());

    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(name.ends_with(".inprogress"), "{name}");
    assert_eq!(only_file(&logs), path, "not renamed, and nothing else");
    let text = std::fs::read_to_string(&path).unwrap();
    // The last line may be cut short by the kill; every line before it is whole.
    let whole: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(whole[0]["Event"], "SparkListenerApplicationStart");
    assert!(of_kind(&whole, "SparkListenerApplicationEnd").is_empty());
    assert_eq!(of_kind(&whole, "SparkListenerJobStart").len(), 1);
    assert!(of_kind(&whole, "SparkListenerJobEnd").is_empty());

    // ember-events reads it and says it has no end.
    let output = ember_events(&[path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let summary = stdout_of(&output);
    assert!(summary.contains("Ended: no"), "{summary}");
    assert!(summary.contains("no end in the log"), "{summary}");
    wait_until("nothing else appears", DEADLINE, || {
        only_file(&logs) == path
    });
}

#[test]
fn ember_events_answers_help_and_refuses_what_is_not_a_log() {
    for flag in ["--help", "-h"] {
        let output = ember_events(&[flag]);
        assert!(output.status.success());
        assert!(stdout_of(&output).starts_with("Usage: ember-events"));
    }
    for (args, why) in [
        (&[][..], "ember-events: no event log file given\n"),
        (
            &["--bogus", "f"],
            "ember-events: invalid option '--bogus'\n",
        ),
        (
            &["f", "g"],
            "ember-events: unexpected argument \"g\" (one file only)\n",
        ),
    ] {
        let output = ember_events(args);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr_of(&output);
        assert!(err.starts_with(why), "{args:?}: {err}");
        assert!(err.contains("Usage: ember-events"), "{err}");
        assert!(output.stdout.is_empty());
    }

    let dir = TempDir::new("event-log-hostile");
    let missing = dir.path().join("missing");
    let output = ember_events(&[missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("cannot open"),
        "{}",
        stderr_of(&output)
    );

    let output = ember_events(&[dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("cannot read"),
        "{}",
        stderr_of(&output)
    );

    // 8 MiB with no newline: read a bounded piece at a time, skipped as one bad line.
    let huge = dir.path().join("huge");
    std::fs::write(&huge, vec![b'{'; 8 << 20]).unwrap();
    let output = ember_events(&[huge.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr_of(&output);
    assert!(
        err.contains("is not an event log: no application start in 1 line(s) (1 bad)"),
        "{err}"
    );

    let binary = dir.path().join("binary");
    std::fs::write(&binary, [0u8, 159, 146, 150, b'\n', 0xff, b'\n']).unwrap();
    let output = ember_events(&[binary.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("(2 bad)"),
        "{}",
        stderr_of(&output)
    );
}
