//! The `ember-worker` binary: its exit codes (refused registration, unresponsive masters,
//! bad flags), what it says when its master URL names something that is not a master, and
//! a clean stop on SIGTERM that leaves no executor behind.

pub mod worker_util;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ember_deploy::messages::{ExecutorState, WorkerMessage};
use ember_deploy::AppId;
use ember_test_support::exited_within;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use worker_util::{
    first_line, is_alive, is_exec_state, shell_app, Answer, Event, FakeMaster, TempDir, DEADLINE,
};

/// A running `ember-worker`, killed and reaped on drop if the test did not end it.
struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    fn start(args: &[&str]) -> Daemon {
        let child = Command::new(env!("CARGO_BIN_EXE_ember-worker"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ember-worker starts");
        Daemon { child: Some(child) }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits for the exit, up to `limit`; returns the status and stderr.
    fn wait(mut self, limit: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let Some(status) = exited_within(&mut child, limit) else {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "ember-worker did not exit in {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let out = child.wait_with_output().expect("output");
        (status, String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A properties file with fast registration retries.
fn properties(dir: &Path, extra: &str) -> String {
    let path = dir.join("worker.conf");
    let text = format!(
        "ember.worker.registrationRetryInterval 100ms\n\
         ember.worker.prolongedRegistrationRetryInterval 200ms\n\
         ember.worker.timeout 400ms\n\
         ember.worker.executorTerminateTimeout 2s\n\
         ember.worker.ui.port 0\n{extra}"
    );
    std::fs::write(&path, text).expect("writes the properties");
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn a_refused_registration_exits_1() {
    let master = FakeMaster::start();
    master.answer(Answer::Refuse(
        "Attempted to re-register worker".to_string(),
    ));
    let dir = TempDir::new("bin-refused");
    let props = properties(dir.path(), "");
    let work = dir.path().join("work");
    let url = master.url();
    let daemon = Daemon::start(&[
        "--properties-file",
        &props,
        "-d",
        work.to_str().expect("utf-8"),
        "-c",
        "2",
        "-m",
        "1g",
        &url,
    ]);
    let (status, stderr) = daemon.wait(DEADLINE);
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains("Worker registration failed: Attempted to re-register worker"),
        "{stderr}"
    );
    match master.wait_for("the registration", |e| matches!(e, Event::Register { .. })) {
        Event::Register {
            cores, memory_mib, ..
        } => assert_eq!((cores, memory_mib), (2, 1024)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unresponsive_masters_make_it_give_up_after_the_last_retry() {
    // A port that was free a moment ago: connections to it are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = TempDir::new("bin-giveup");
    let props = properties(dir.path(), "");
    let work = dir.path().join("work");
    let url = format!("ember://127.0.0.1:{port}");
    let started = Instant::now();
    let daemon = Daemon::start(&[
        "--properties-file",
        &props,
        "--work-dir",
        work.to_str().expect("utf-8"),
        &url,
    ]);
    let (status, stderr) = daemon.wait(DEADLINE);
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains("All masters are unresponsive! Giving up."),
        "{stderr}"
    );
    // 6 quick retries of at least 50 ms and 11 slow ticks of at least 100 ms come first.
    assert!(started.elapsed() >= Duration::from_millis(6 * 50 + 11 * 100));
    assert!(
        stderr.contains("Retrying connection to master (attempt # 16)"),
        "{stderr}"
    );
    assert!(!stderr.contains("attempt # 17"), "{stderr}");
}

/// Runs a worker against `url` with fast retries until it gives up; its stderr.
fn gives_up_against(url: &str, name: &str) -> String {
    let dir = TempDir::new(name);
    let props = properties(dir.path(), "");
    let work = dir.path().join("work");
    let daemon = Daemon::start(&[
        "--properties-file",
        &props,
        "--work-dir",
        work.to_str().expect("utf-8"),
        url,
    ]);
    let (status, stderr) = daemon.wait(DEADLINE);
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    stderr
}

#[test]
fn a_port_where_something_else_answers_is_said_not_to_be_a_master() {
    // Something that is not Ember: it answers anything with an HTTP error and hangs up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 64];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            let _ = std::io::Write::write_all(&mut stream, b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let url = format!("ember://127.0.0.1:{port}");
    let stderr = gives_up_against(&url, "bin-not-ember");
    assert!(
        stderr.contains(&format!("{url} does not answer as an Ember master (")),
        "{stderr}"
    );
}

#[test]
fn an_ember_process_that_is_not_a_master_is_said_to_be_one() {
    let conf = rpc_env::RpcConf::new().with(rpc_env::keys::AUTHENTICATE, "false");
    let other = rpc_env::RpcEnv::create(
        rpc_env::RpcEnvConfig::server("not-a-master", "127.0.0.1", 0).with_conf(conf),
    )
    .expect("an env");
    let url = other.address().expect("an address").to_ember_url();
    let stderr = gives_up_against(&url, "bin-no-master");
    assert!(
        stderr.contains(&format!("{url} is an Ember process but not a master")),
        "{stderr}"
    );
    other.shutdown();
}

#[test]
fn help_exits_0_and_bad_flags_exit_1_with_the_usage() {
    // Asked for, the usage goes to stdout; `-h` with no host after it asks too.
    for flag in ["--help", "-h"] {
        let out = Command::new(env!("CARGO_BIN_EXE_ember-worker"))
            .args(["ember://127.0.0.1:1", flag])
            .stdin(Stdio::null())
            .output()
            .expect("ember-worker runs");
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with("Usage: ember-worker [options] <master>"),
            "{flag}: {stdout}"
        );
    }
    let (status, stderr) = Daemon::start(&["--bogus", "ember://127.0.0.1:1"]).wait(DEADLINE);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("Usage: ember-worker"), "{stderr}");
    let (status, stderr) = Daemon::start(&[]).wait(DEADLINE);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("Master must be a URL"), "{stderr}");
    let (status, stderr) = Daemon::start(&["-m", "10000", "ember://127.0.0.1:1"]).wait(DEADLINE);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("Memory is below 1MB"), "{stderr}");
}

#[test]
fn sigterm_stops_the_worker_and_its_executors() {
    let master = FakeMaster::start();
    let dir = TempDir::new("bin-sigterm");
    let props = properties(dir.path(), "");
    let work = dir.path().join("work");
    let url = master.url();
    let daemon = Daemon::start(&[
        "--properties-file",
        &props,
        "-d",
        work.to_str().expect("utf-8"),
        &url,
    ]);
    master.wait_for("registration", |e| matches!(e, Event::LatestState { .. }));
    let app = "app-20240101000000-0002";
    master.tell_worker(WorkerMessage::LaunchExecutor {
        master_url: url.clone(),
        app_id: AppId(app.to_string()),
        exec_id: 0,
        description: shell_app("echo $$; exec sleep 30"),
        cores: 1,
        memory_mib: 256,
    });
    master.wait_for("RUNNING", |e| is_exec_state(e, 0, ExecutorState::Running));
    // Children start through the binary's launcher mode; a missing program still fails.
    let mut missing = shell_app("");
    missing.command.program = "ember-no-such-program".to_string();
    master.tell_worker(WorkerMessage::LaunchExecutor {
        master_url: url.clone(),
        app_id: AppId(app.to_string()),
        exec_id: 1,
        description: missing,
        cores: 1,
        memory_mib: 256,
    });
    master.wait_for("FAILED", |e| is_exec_state(e, 1, ExecutorState::Failed));
    let dir = work.canonicalize().expect("work").join(app).join("0");
    let stderr = std::fs::read_to_string(dir.join("stderr")).expect("stderr");
    assert!(
        stderr.starts_with("Ember Executor Command: \"/bin/sh\""),
        "{stderr}"
    );
    let stdout = dir.join("stdout");
    let pid: u32 = first_line(&stdout).parse().expect("a pid");
    assert!(is_alive(pid));
    // The worker blocks SIGTERM for its own signal thread; its children must not inherit that.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let blocked = status
        .lines()
        .find(|l| l.starts_with("SigBlk:"))
        .unwrap_or_default();
    assert_eq!(
        blocked.split_whitespace().nth(1),
        Some("0000000000000000"),
        "{blocked}"
    );
    let worker_pid = i32::try_from(daemon.pid()).expect("a pid");
    kill(Pid::from_raw(worker_pid), Signal::SIGTERM).expect("signals the worker");
    let (status, stderr) = daemon.wait(DEADLINE);
    assert_eq!(status.code(), Some(0), "a clean stop; stderr:\n{stderr}");
    assert!(
        !is_alive(pid),
        "executor {pid} outlived its worker; stderr:\n{stderr}"
    );
}
