//! ExecutorRunner with real child processes (Spark's ExecutorRunnerTest, and the runner's
//! life cycle: output files, working directory, reported states, kill).

use std::sync::mpsc;
use std::time::Instant;

use super::*;
use crate::worker::test_util::{is_alive, TempDir};

/// Long enough for a loaded machine; the happy paths take milliseconds.
/// How long a test waits for a report: the one deadline of ember-test-support.
use crate::worker::test_util::DEADLINE as PATIENCE;

fn values() -> Placeholders {
    Placeholders {
        executor_id: "7".to_string(),
        hostname: "host1".to_string(),
        cores: 4,
        app_id: "12345-worker321-9876".to_string(),
        worker_url: "ember://Worker@host1:5555".to_string(),
    }
}

fn spec(work: &Path, program: &str, args: &[&str]) -> ExecutorSpec {
    ExecutorSpec {
        app_id: AppId("app-20240101000000-0001".to_string()),
        exec_id: 3,
        command: Command {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: BTreeMap::from([("FROM_APP".to_string(), "yes".to_string())]),
        },
        cores: 2,
        memory_mib: 512,
        host: "127.0.0.1".to_string(),
        worker_url: "ember://Worker@127.0.0.1:4444".to_string(),
        work_dir: work.to_path_buf(),
        kill_grace: Duration::from_secs(10),
        launcher: Vec::new(),
        security_env: Vec::new(),
        fetch: None,
    }
}

/// Starts `spec` with a channel for its final report.
fn start(spec: ExecutorSpec) -> (ExecutorRunner, mpsc::Receiver<StateUpdate>) {
    let (tx, rx) = mpsc::channel();
    let (runner, started) = ExecutorRunner::start(spec, move |u| {
        let _ = tx.send(u);
    })
    .expect("starts");
    assert_eq!(started, Started::Now, "no fetch: started at once");
    (runner, rx)
}

/// ExecutorRunnerTest 1, "command includes appId": placeholders are filled in.
#[test]
fn command_includes_app_id() {
    let args = vec!["foo".to_string(), placeholders::APP_ID.to_string()];
    let filled = fill_placeholders(&args, &values());
    assert_eq!(
        filled.last().map(String::as_str),
        Some("12345-worker321-9876")
    );
}

#[test]
fn every_placeholder_is_filled_even_inside_an_argument() {
    let args = vec![
        "--executor-id".to_string(),
        "{{EXECUTOR_ID}}".to_string(),
        "echo {{EXECUTOR_ID}} {{HOSTNAME}} {{CORES}} {{APP_ID}} {{WORKER_URL}}".to_string(),
        "--driver-url".to_string(),
        "ember://CoarseGrainedScheduler@d:1".to_string(),
    ];
    assert_eq!(
        fill_placeholders(&args, &values()),
        [
            "--executor-id",
            "7",
            "echo 7 host1 4 12345-worker321-9876 ember://Worker@host1:5555",
            "--driver-url",
            "ember://CoarseGrainedScheduler@d:1",
        ]
    );
}

#[test]
fn an_exiting_executor_is_reported_exited_with_its_code_and_output() {
    let work = TempDir::new("runner-exit");
    let script = "pwd; echo $FROM_APP $EMBER_LOG_URL_STDOUT; echo err >&2; exit 3";
    let (runner, reports) = start(spec(work.path(), "/bin/sh", &["-c", script]));
    let dir = work.path().join("app-20240101000000-0001").join("3");
    let update = reports.recv_timeout(PATIENCE).expect("a report");
    assert_eq!(
        update,
        StateUpdate {
            state: ExecutorState::Exited,
            message: Some("Command exited with code 3".to_string()),
            exit_status: Some(3),
        }
    );
    let stdout = std::fs::read_to_string(dir.join("stdout")).expect("stdout");
    let real_dir = dir.canonicalize().expect("canonical");
    assert_eq!(
        stdout,
        format!(
            "{}\nyes {}\n",
            real_dir.display(),
            dir.join("stdout").display()
        )
    );
    let stderr = std::fs::read_to_string(dir.join("stderr")).expect("stderr");
    assert!(
        stderr.starts_with("Ember Executor Command: \"/bin/sh\" \"-c\""),
        "{stderr}"
    );
    assert!(stderr.ends_with("\n\nerr\n"), "{stderr}");
    assert_eq!(
        runner.description(ExecutorState::Exited).memory_mib,
        512,
        "the description carries the executor's size"
    );
}

#[test]
fn a_killed_executor_is_reported_killed_within_the_grace_period() {
    let work = TempDir::new("runner-kill");
    let (runner, reports) = start(spec(work.path(), "sleep", &["30"]));
    let pid = runner.pid().expect("a process");
    assert!(is_alive(pid));
    let asked = Instant::now();
    runner.kill();
    let update = reports.recv_timeout(PATIENCE).expect("a report");
    assert!(asked.elapsed() < Duration::from_secs(10), "SIGTERM did it");
    assert_eq!(update.state, ExecutorState::Killed);
    assert_eq!(update.exit_status, Some(128 + 15));
    assert_eq!(runner.wait_exit(Duration::ZERO), Some(128 + 15));
    assert!(!is_alive(pid), "the process is gone");
}

#[test]
fn a_missing_program_fails_to_launch() {
    let work = TempDir::new("runner-missing");
    let result = ExecutorRunner::start(
        spec(work.path(), "/nonexistent/ember-no-such-program", &[]),
        |_| panic!("nothing to report for a process that never started"),
    )
    .map(|(runner, _)| runner);
    let Err(message) = result else {
        panic!("a missing program cannot start")
    };
    assert!(message.contains("cannot run program"), "{message}");
    assert!(
        message.contains("/nonexistent/ember-no-such-program"),
        "{message}"
    );
}

#[test]
fn an_app_id_that_is_not_a_plain_name_is_refused() {
    let work = TempDir::new("runner-escape");
    let mut escaping = spec(work.path(), "/bin/true", &[]);
    escaping.app_id = AppId("../escape".to_string());
    let result = ExecutorRunner::start(escaping, |_| panic!("never started"));
    assert!(result.is_err());
    assert!(!work.path().join("..").join("escape").exists());
}

/// A driver-like env serving `program` (made executable), and the fetch of it.
fn serving(program: &Path, work: &Path) -> (rpc_env::RpcEnv, Fetch) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let driver =
        rpc_env::RpcEnv::create(rpc_env::RpcEnvConfig::server("driver", "127.0.0.1", 0)).unwrap();
    let uri = driver.file_server().unwrap().add_file(program).unwrap();
    let (size, sha256) = crate::program::digest_file(program).unwrap();
    let worker = rpc_env::RpcEnv::create(rpc_env::RpcEnvConfig::client("worker")).unwrap();
    let fetch = Fetch {
        digest: ProgramDigest { uri, size, sha256 },
        cache: Arc::new(ProgramCache::new(work)),
        env: worker,
    };
    (driver, fetch)
}

/// Starts `spec`, whose program is fetched first: its thread reports everything.
fn start_fetching(spec: ExecutorSpec) -> (ExecutorRunner, mpsc::Receiver<StateUpdate>) {
    let (tx, reports) = mpsc::channel();
    let (runner, started) = ExecutorRunner::start(spec, move |u| {
        let _ = tx.send(u);
    })
    .expect("starts");
    assert_eq!(started, Started::Later);
    (runner, reports)
}

/// Ember's own (Spark's workers run the path they are given): a program that is not on
/// this worker's disk is fetched into its cache, then started; the thread reports RUNNING,
/// then how it ended.
#[test]
fn a_program_not_on_this_disk_is_fetched_then_run() {
    let work = TempDir::new("runner-fetch");
    let script = work.path().join("served-app");
    std::fs::write(&script, "#!/bin/sh\necho \"fetched and run with $1\"\n").unwrap();
    let (driver, fetch) = serving(&script, work.path());
    let cached = work.path().join("cache").join(&fetch.digest.sha256);
    let mut spec = spec(
        work.path(),
        "/nonexistent/ember/served-app",
        &["an-argument"],
    );
    spec.fetch = Some(fetch);
    let (runner, reports) = start_fetching(spec);
    let running = reports.recv_timeout(PATIENCE).expect("a report");
    assert_eq!(running.state, ExecutorState::Running);
    let ended = reports.recv_timeout(PATIENCE).expect("a report");
    assert_eq!(
        (ended.state, ended.exit_status),
        (ExecutorState::Exited, Some(0)),
        "{ended:?}"
    );
    assert!(runner.pid().is_some());
    let stdout = std::fs::read_to_string(work.path().join("app-20240101000000-0001/3/stdout"))
        .expect("its stdout");
    assert!(
        stdout.contains("fetched and run with an-argument"),
        "{stdout}"
    );
    assert!(cached.is_file(), "kept in the cache");
    driver.shutdown();
}

/// A program that cannot be fetched (here: its hash is not what arrives) is FAILED,
/// reported by the thread with the reason; nothing runs and nothing is cached.
#[test]
fn a_program_that_cannot_be_fetched_fails_the_launch() {
    let work = TempDir::new("runner-fetch-bad");
    let script = work.path().join("served-app");
    std::fs::write(&script, "#!/bin/sh\ntouch ran\n").unwrap();
    let (driver, mut fetch) = serving(&script, work.path());
    fetch.digest.sha256 = "0".repeat(64);
    let mut spec = spec(work.path(), "/nonexistent/ember/served-app", &[]);
    spec.fetch = Some(fetch);
    let (runner, reports) = start_fetching(spec);
    let failed = reports.recv_timeout(PATIENCE).expect("a report");
    assert_eq!(failed.state, ExecutorState::Failed);
    let message = failed.message.unwrap_or_default();
    assert!(
        message.contains("Failed to fetch the application's program"),
        "{message}"
    );
    assert!(message.ends_with("refused"), "{message}");
    assert_eq!(runner.pid(), None, "no process");
    assert!(!work.path().join("app-20240101000000-0001/3/ran").exists());
    assert!(!work.path().join("cache").join("0".repeat(64)).exists());
    driver.shutdown();
}

/// An executor killed while its program is being fetched (here from a "driver" that accepts
/// the connection and never answers) is reported KILLED once the fetch gives up, and no
/// process is ever started.
#[test]
fn an_executor_killed_while_fetching_never_starts() {
    let work = TempDir::new("runner-fetch-killed");
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let conf = rpc_env::RpcConf::new().with(rpc_env::keys::ASK_TIMEOUT, "1s");
    let worker =
        rpc_env::RpcEnv::create(rpc_env::RpcEnvConfig::client("worker").with_conf(conf)).unwrap();
    let mut spec = spec(work.path(), "/nonexistent/ember/served-app", &[]);
    spec.fetch = Some(Fetch {
        digest: ProgramDigest {
            uri: format!("ember://127.0.0.1:{port}/files/served-app"),
            size: 10,
            sha256: "0".repeat(64),
        },
        cache: Arc::new(ProgramCache::new(work.path())),
        env: worker.clone(),
    });
    let (runner, reports) = start_fetching(spec);
    runner.kill();
    assert_eq!(
        runner.wait_exit(Duration::ZERO),
        Some(-1),
        "nothing to wait for"
    );
    let update = reports.recv_timeout(PATIENCE).expect("a report");
    assert_eq!(update.state, ExecutorState::Killed, "{update:?}");
    assert_eq!(runner.pid(), None, "no process was started");
    assert!(
        reports.recv_timeout(Duration::from_millis(200)).is_err(),
        "one report only"
    );
    drop(silent);
    worker.shutdown();
}
