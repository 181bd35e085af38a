//! Every script in `sbin/` and every binary answers `--help` and `-h` with its usage on
//! stdout and exit 0, and does nothing else: no pid file, no log, no ssh, no port taken, no
//! process left, no job run. Each run is given what it would need to do harm if it ignored
//! the request: a free master port, a `conf/workers` naming a remote host reached through a
//! stand-in for ssh that leaves a mark, and a master URL for the worker and the executor.

mod built;
#[path = "../deploy/tests/script_support/mod.rs"]
pub mod script_support;

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use built::{ensure_built, profile_dir};
use script_support::*;

/// The scripts, each with arguments that would make it act (the flag to ask for help is
/// appended).
const SCRIPTS: [(&str, &[&str]); 10] = [
    ("start-all.sh", &[]),
    ("stop-all.sh", &[]),
    ("start-master.sh", &[]),
    ("stop-master.sh", &[]),
    ("start-worker.sh", &["ember://127.0.0.1:7077"]),
    ("stop-worker.sh", &[]),
    ("start-workers.sh", &[]),
    ("stop-workers.sh", &[]),
    ("workers.sh", &[]),
    ("ember-daemon.sh", &[]),
];

/// A test directory whose `conf/workers` names `node1`, with `ssh` on the PATH a stand-in
/// that writes `<root>/ssh-was-run`.
fn scripts(bins: &Path) -> Scripts {
    let home = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut s = Scripts::new("help", home, bins);
    let fake = s.root().join("fake-bin");
    std::fs::create_dir_all(&fake).expect("fake-bin");
    let ssh = fake.join("ssh");
    let mark = s.root().join("ssh-was-run");
    std::fs::write(&ssh, format!("#!/bin/sh\ntouch '{}'\n", mark.display())).expect("ssh");
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    s.set_env("PATH", &path);
    std::fs::write(s.conf_dir().join("workers"), "node1\n").expect("conf/workers");
    s
}

/// Asserts that `output` is a usage text on stdout with exit 0.
#[track_caller]
fn assert_usage(what: &str, output: &Output) -> String {
    let (stdout, stderr) = text(output);
    assert_eq!(output.status.code(), Some(0), "{what}: {stdout}\n{stderr}");
    assert!(
        stdout.starts_with("Usage: "),
        "{what}: the usage on stdout: {stdout:?} (stderr: {stderr})"
    );
    stdout
}

/// Asserts that nothing was started under `s`: no pid file, no log, no ssh, nothing on the
/// master's port, no process working in the test's directory.
#[track_caller]
fn assert_nothing_done(what: &str, s: &Scripts) {
    let entries = |dir: PathBuf| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        entries(s.pid_dir()),
        Vec::<PathBuf>::new(),
        "{what}: pid files"
    );
    assert_eq!(entries(s.log_dir()), Vec::<PathBuf>::new(), "{what}: logs");
    assert!(!s.root().join("ssh-was-run").exists(), "{what}: ran ssh");
    assert!(
        TcpStream::connect(("127.0.0.1", s.master_port())).is_err(),
        "{what}: something listens on the master's port"
    );
    assert!(s.our_processes().is_empty(), "{what}: a process is left");
}

#[test]
fn every_script_answers_help_and_does_nothing_else() {
    let bins = profile_dir();
    ensure_built(&bins);
    let s = scripts(&bins);
    for (script, args) in SCRIPTS {
        for flag in ["--help", "-h"] {
            let mut line: Vec<&str> = args.to_vec();
            line.push(flag);
            let what = format!("{script} {}", line.join(" "));
            let stdout = assert_usage(&what, &s.run(script, &line));
            assert!(
                stdout.starts_with(&format!("Usage: ./sbin/{script}")),
                "{what}: {stdout}"
            );
            assert_nothing_done(&what, &s);
        }
    }
    // The daemons' scripts show the daemons' own options.
    let out = s.run("start-master.sh", &["--help"]);
    assert!(text(&out).0.contains("--webui-port"), "{}", text(&out).0);
    let out = s.run("start-worker.sh", &["--help"]);
    assert!(text(&out).0.contains("--cores"), "{}", text(&out).0);
}

#[test]
fn a_script_without_arguments_refuses_one_and_does_nothing() {
    let bins = profile_dir();
    ensure_built(&bins);
    let s = scripts(&bins);
    for script in [
        "start-all.sh",
        "stop-all.sh",
        "stop-master.sh",
        "stop-workers.sh",
    ] {
        let out = s.run(script, &["now"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{script}: {stdout}\n{stderr}");
        assert!(
            stderr.starts_with(&format!("{script}: unexpected argument 'now'\nUsage: ")),
            "{script}: {stderr}"
        );
        assert_nothing_done(script, &s);
    }
}

#[test]
fn every_binary_answers_help_and_does_nothing_else() {
    let bins = profile_dir();
    ensure_built(&bins);
    let s = scripts(&bins);
    let port = s.master_port().to_string();
    let master = s.master_url();
    let driver = format!("ember://CoarseGrainedScheduler@127.0.0.1:{port}");
    let executor: &[&str] = &[
        "--driver-url",
        &driver,
        "--executor-id",
        "1",
        "--cores",
        "1",
        "--app-id",
        "app-1",
    ];
    let cases: [(&str, &[&str]); 6] = [
        ("ember-master", &["--port", &port]),
        ("ember-worker", &["--port", &port, &master]),
        // After the application binary, flags are the application's.
        ("ember-submit", &["--master", &master]),
        ("ember-executor", executor),
        ("examples/pi", &["--master", "local[1]", "--slices", "1"]),
        // Started as an executor, an application's binary answers too.
        ("examples/pi", executor),
    ];
    for (binary, args) in cases {
        for flag in ["--help", "-h"] {
            let mut line: Vec<&str> = args.to_vec();
            line.push(flag);
            let what = format!("{binary} {}", line.join(" "));
            let mut command = s.command(&bins.join(binary));
            command.args(&line);
            let output = run_bounded(command, &what);
            let stdout = assert_usage(&what, &output);
            assert!(!stdout.contains("Pi is roughly"), "{what}: ran the job");
            assert_nothing_done(&what, &s);
        }
    }
}

/// Ember's own (Spark's executor is a class of its own): an application launched with
/// executor arguments is an executor before its own option parser runs (`App::
/// run_executor_if_launched`), so an option only the application knows is refused by the
/// executor's parser, in the executor's words, and no job runs.
#[test]
fn an_application_launched_as_an_executor_never_reaches_its_own_options() {
    let bins = profile_dir();
    ensure_built(&bins);
    let s = scripts(&bins);
    let mut command = s.command(&bins.join("examples/pi"));
    command.args([
        "--driver-url",
        "ember://CoarseGrainedScheduler@127.0.0.1:1",
        "--executor-id",
        "1",
        "--cores",
        "1",
        "--app-id",
        "app-1",
        // pi's own option: its parser would take it.
        "--slices",
        "3",
    ]);
    let output = run_bounded(command, "pi as an executor with --slices");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Unrecognized options: --slices"),
        "the executor's parser refused it: {stderr}"
    );
    assert!(stderr.contains("--driver-url <driverUrl>"), "{stderr}");
    assert!(!stderr.contains("Usage: pi"), "pi's parser ran: {stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("Pi is roughly"));
}
