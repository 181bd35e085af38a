//! The `ember-executor` binary's command line: bad arguments print what is wrong and the
//! usage to stderr, and exit 1 (Spark's `CoarseGrainedExecutorBackend.printUsageAndExit`).

pub mod util;

use std::io::Read;
use std::process::{Command, Stdio};

use ember_test_support::exited_within;
use util::DEADLINE;

/// Runs `ember-executor` with `args`; returns its exit code, stdout and stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember-executor"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ember-executor starts");
    // Reaps the child whatever happens below.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut child = Reap(child);
    let status = exited_within(&mut child.0, DEADLINE)
        .unwrap_or_else(|| panic!("ember-executor {args:?} did not exit"));
    let (mut out, mut err) = (String::new(), String::new());
    stdout.read_to_string(&mut out).unwrap();
    stderr.read_to_string(&mut err).unwrap();
    (status.code().expect("an exit code"), out, err)
}

/// Checks a refused command line: exit 1, nothing on stdout, `first_line` then the usage on
/// stderr.
#[track_caller]
fn assert_refused(args: &[&str], first_line: &str) {
    let (code, out, err) = run(args);
    assert_eq!(code, 1, "{args:?}: {err}");
    assert_eq!(out, "", "{args:?}");
    let mut lines = err.lines();
    assert_eq!(lines.next(), Some(first_line), "{args:?}: {err}");
    let rest: Vec<&str> = lines.collect();
    assert_eq!(
        rest.first().copied(),
        Some("Usage: ember-executor [options]"),
        "{err}"
    );
    for option in [
        "--driver-url <driverUrl>",
        "--executor-id <executorId>",
        "--hostname <hostname>",
        "--cores <cores>",
        "--app-id <appid>",
        "--worker-url <workerUrl>",
    ] {
        assert!(rest.iter().any(|l| l.trim() == option), "{option}: {err}");
    }
}

/// The arguments of a valid command line, minus the option named `without`.
fn valid_without(without: &str) -> Vec<&'static str> {
    let all = [
        ("--driver-url", "ember://CoarseGrainedScheduler@127.0.0.1:1"),
        ("--executor-id", "1"),
        ("--cores", "1"),
        ("--app-id", "app-1"),
    ];
    all.iter()
        .filter(|(k, _)| *k != without)
        .flat_map(|(k, v)| [*k, *v])
        .collect()
}

/// Spark's required options (driver URL, executor id, cores, app id): each one
/// missing is named, with the usage, exit 1. No arguments at all is refused the same way.
#[test]
fn a_missing_required_option_prints_the_usage_and_exits_1() {
    for option in ["--driver-url", "--executor-id", "--cores", "--app-id"] {
        assert_refused(
            &valid_without(option),
            &format!("Missing required option {option}"),
        );
    }
    let (code, _, err) = run(&[]);
    assert_eq!(code, 1);
    assert!(err.starts_with("Missing required option"), "{err}");
    assert!(err.contains("Usage: ember-executor [options]"), "{err}");
}

/// Spark's unknown token (`"Unrecognized options: <rest>"`, usage, exit 1), also
/// for Spark options Ember does not have (`--bind-address`, CGEB 12/13) and a stray value.
#[test]
fn an_unknown_option_prints_unrecognized_options_and_exits_1() {
    let mut args = valid_without("");
    args.extend(["--bogus", "1"]);
    assert_refused(&args, "Unrecognized options: --bogus");
    let mut args = valid_without("");
    args.extend(["--bind-address", "bindaddress1"]);
    assert_refused(&args, "Unrecognized options: --bind-address");
    let mut args = valid_without("");
    args.push("stray");
    assert_refused(&args, "Unrecognized options: stray");
}

/// Spark's `cores > 0`: `--cores 0` and a `--cores` that is not a number are
/// refused with the usage, exit 1.
#[test]
fn cores_must_be_a_positive_number() {
    let mut args = valid_without("--cores");
    args.extend(["--cores", "0"]);
    assert_refused(&args, "--cores must be at least 1");
    let mut args = valid_without("--cores");
    args.extend(["--cores", "two"]);
    assert_refused(&args, "--cores must be a positive integer, not 'two'");
}
