//! Standby masters (recovery mode FILESYSTEM): masters sharing a recovery directory elect
//! a leader through a lock file there. The first to take it is ALIVE; the others stand
//! by, turn workers away with `MasterInStandby`, and poll. When the leader goes (its env
//! shut down, or its process killed, which releases the lock), a standby takes the lead,
//! recovers what the leader stored, and the workers and applications follow it.

pub mod master_support;
pub mod worker_util;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use ember_deploy::client::{AppClient, AppClientConfig, AppClientListener};
use ember_deploy::messages::{
    ExecutorState, MasterAsk, MasterProtocol, WorkerMessage, APP_CLIENT_ENDPOINT_NAME,
    MASTER_ENDPOINT_NAME,
};
use ember_deploy::{master_keys, worker_keys, AppId, WorkerId};
use master_support::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rpc_env::{RpcAddress, RpcEnv, RpcEnvConfig};

/// A FILESYSTEM master's settings over `dir`, polling the election every 50 ms.
fn shared(dir: &str) -> Vec<(&str, &str)> {
    vec![
        (master_keys::RECOVERY_MODE, "FILESYSTEM"),
        (master_keys::RECOVERY_DIRECTORY, dir),
        (master_keys::LEADER_POLL_INTERVAL, "50ms"),
    ]
}

/// Two masters on one directory: the second stands by, and takes over when the first
/// stops; the worker and the application registered with the first follow it.
#[test]
fn a_standby_takes_over_when_the_leader_stops() {
    let dir = RecoveryDir::new("standby");
    let dir_setting = dir.setting();
    let leader = Running(master_with(&shared(&dir_setting)));
    wait_state(&leader, "the first master leads", |s| s.status == "ALIVE");
    let standby = Running(master_with(&shared(&dir_setting)));
    assert_eq!(standby.state().expect("state").status, "STANDBY");

    // RecoverySuite 12 (SPARK-46353): the standby turns workers away.
    let turned_away = FakeWorker::start(&standby, "worker-turned-away");
    turned_away.send_registration(1, 64);
    turned_away.got.wait_for("MasterInStandby", |m| {
        m.iter()
            .any(|m| matches!(m, WorkerMessage::MasterInStandby))
            .then_some(())
    });
    let refused = standby
        .master_ref()
        .ask_sync(|reply| MasterAsk::RequestSubmitDriver {
            description: driver(1, 64, false),
            reply,
        })
        .expect("answered");
    assert!(!refused.success);
    assert!(refused.message.contains("STANDBY"), "{}", refused.message);

    let worker = FakeWorker::start(&leader, "worker-1");
    worker.register(2, 1024);
    let app = FakeApp::start(&leader, "app");
    let app_id = app.register(self::app("app", Some(1), Some(1), 64));
    let execs = worker.launches(1);
    worker.follow_master_changes(running(&execs), Vec::new());
    app.follow_master_changes(&app_id);
    assert_eq!(standby.state().expect("state").status, "STANDBY");

    // The leader goes; its lock is released when its endpoint stops.
    leader.shutdown();
    leader.await_termination();
    let state = wait_state(&standby, "the standby leads", |s| s.status == "ALIVE");
    let told = worker.master_changed(1);
    assert_eq!(told.rpc_address(), Some(&standby.address()));
    assert_eq!(worker_state(&state, &worker.id), Some("ALIVE"));
    let a = state
        .active_apps
        .iter()
        .find(|a| a.id == app_id)
        .expect("app");
    assert_eq!((a.state.as_str(), a.executors), ("RUNNING", 1));
    assert!(worker_state(&state, &turned_away.id).is_none());
    standby.shutdown();
}

fn running(executors: &[(AppId, u32, u32)]) -> Vec<ember_deploy::messages::ExecutorDescription> {
    executors
        .iter()
        .map(
            |(app_id, exec_id, cores)| ember_deploy::messages::ExecutorDescription {
                app_id: app_id.clone(),
                exec_id: *exec_id,
                cores: *cores,
                memory_mib: 64,
                state: ExecutorState::Running,
            },
        )
        .collect()
}

/// What a real app client tells its scheduler backend.
#[derive(Default)]
struct Seen {
    connected: Option<AppId>,
    dead: Option<String>,
}

struct Listener(Arc<Mutex<Seen>>);

impl AppClientListener for Listener {
    fn connected(&mut self, app_id: &AppId) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).connected = Some(app_id.clone());
    }
    fn disconnected(&mut self) {}
    fn dead(&mut self, reason: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).dead = Some(reason.to_string());
    }
    fn executor_added(&mut self, _: u32, _: &WorkerId, _: &str, _: u32) {}
    fn executor_removed(&mut self, _: u32, _: &str, _: Option<i32>, _: Option<&str>) {}
    fn worker_removed(&mut self, _: &WorkerId, _: &str, _: &str) {}
}

/// The real worker and app client, given both masters, follow the new leader: the worker
/// answers `MasterChanged` with the executor it runs, which the new leader re-adopts.
#[test]
fn a_real_worker_and_app_client_follow_the_new_leader() {
    let dir = RecoveryDir::new("real-follow");
    let dir_setting = dir.setting();
    let leader = Running(master_with(&shared(&dir_setting)));
    wait_state(&leader, "the first master leads", |s| s.status == "ALIVE");
    let standby = Running(master_with(&shared(&dir_setting)));
    let masters = vec![leader.address(), standby.address()];
    // Slow registration retries: the worker must not give up while the lead changes.
    let worker = worker_util::TestWorker::start(
        masters.clone(),
        &[
            (worker_keys::REGISTRATION_RETRY_INTERVAL, "1s"),
            (worker_keys::PROLONGED_REGISTRATION_RETRY_INTERVAL, "2s"),
        ],
    );

    let driver_env =
        RpcEnv::create(RpcEnvConfig::server("driver", "127.0.0.1", 0).with_conf(small_conf()))
            .expect("env");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut description = worker_util::shell_app("exec sleep 60");
    description.max_cores = Some(1);
    let client = AppClient::new(
        AppClientConfig {
            masters,
            description,
            registration_timeout: Duration::from_secs(1),
            registration_retries: 60,
            starvation_timeout: Duration::ZERO,
        },
        Box::new(Listener(Arc::clone(&seen))),
    );
    driver_env
        .setup_endpoint(APP_CLIENT_ENDPOINT_NAME, client)
        .expect("app client");
    worker_util::wait_until("the executor to run", DEADLINE, || {
        worker
            .handle
            .state()
            .is_ok_and(|s| s.executors.len() == 1 && s.executors[0].state == ExecutorState::Running)
    });
    // The registration's answer and the executor's launch travel on different
    // connections: either may arrive first.
    let mut app_id = None;
    worker_util::wait_until("the app client to be registered", DEADLINE, || {
        app_id = seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .connected
            .clone();
        app_id.is_some()
    });
    let app_id = app_id.expect("registered");

    leader.shutdown();
    leader.await_termination();
    let state = wait_state(&standby, "the standby recovered", |s| {
        s.status == "ALIVE"
            && worker_state(s, worker.handle.id()) == Some("ALIVE")
            && app_state(s, &app_id) == Some("RUNNING")
    });
    let a = state
        .active_apps
        .iter()
        .find(|a| a.id == app_id)
        .expect("app");
    assert_eq!(
        a.executors, 1,
        "the running executor is adopted, not relaunched"
    );
    let w = state.workers.iter().find(|w| &w.id == worker.handle.id());
    assert_eq!(w.map(|w| w.cores_used), Some(1));
    worker_util::wait_until("the worker to follow", DEADLINE, || {
        worker
            .handle
            .state()
            .is_ok_and(|s| s.master_url == Some(standby.url()))
    });
    let executors = worker.handle.state().expect("state").executors;
    assert_eq!(executors.len(), 1, "the executor was not killed");
    assert!(seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .dead
        .is_none());
    driver_env.shutdown();
    drop(worker);
    standby.shutdown();
}

/// Kills the child if the test fails before it is killed on purpose.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The leader is an `ember-master` process killed with SIGKILL: the operating system
/// releases its lock, and the in-process standby takes over and recovers its worker.
#[test]
fn a_killed_leader_process_hands_over_to_the_standby() {
    let dir = RecoveryDir::new("sigkill");
    let conf = dir.path().join("ember-defaults.conf");
    let store = dir.path().join("recovery");
    let store_setting = store.to_str().expect("UTF-8 temp dir").to_string();
    std::fs::write(
        &conf,
        format!(
            "{} FILESYSTEM\n{} {store_setting}\n",
            master_keys::RECOVERY_MODE,
            master_keys::RECOVERY_DIRECTORY
        ),
    )
    .expect("write the properties");
    let conf_path = conf.to_str().expect("UTF-8 temp dir");
    let child = Command::new(env!("CARGO_BIN_EXE_ember-master"))
        .args(["--host", "127.0.0.1", "--port", "0", "--webui-port", "0"])
        .args(["--properties-file", conf_path])
        .env_remove("EMBER_MASTER_HOST")
        .env_remove("EMBER_MASTER_PORT")
        .env_remove("EMBER_MASTER_WEBUI_PORT")
        .env_remove("EMBER_CONF_DIR")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let mut child = Reaper(child);
    let leader = listening_address(&mut child);
    let probe = RpcEnv::create(RpcEnvConfig::client("probe").with_conf(small_conf())).expect("env");
    let leader_ref = probe
        .setup_endpoint_ref::<MasterProtocol>(&leader, MASTER_ENDPOINT_NAME)
        .expect("the master is there");
    worker_util::wait_until("the process to lead", DEADLINE, || {
        leader_ref
            .ask_sync(|reply| MasterAsk::RequestMasterState { reply })
            .is_ok_and(|s| s.status == "ALIVE")
    });

    let standby = Running(master_with(&shared(&store_setting)));
    assert_eq!(standby.state().expect("state").status, "STANDBY");
    let worker = FakeWorker::start_at(&leader, "worker-1");
    worker.register(2, 1024);
    worker.follow_master_changes(Vec::new(), Vec::new());

    let pid = Pid::from_raw(i32::try_from(child.0.id()).expect("pid fits"));
    kill(pid, Signal::SIGKILL).expect("killed");
    let status = child.0.wait().expect("reaped");
    assert!(!status.success());
    let state = wait_state(&standby, "the standby leads", |s| s.status == "ALIVE");
    assert_eq!(worker_state(&state, &worker.id), Some("ALIVE"));
    let told = worker.master_changed(1);
    assert_eq!(told.rpc_address(), Some(&standby.address()));
    probe.shutdown();
    standby.shutdown();
}

/// The address the `ember-master` child prints on its first line.
fn listening_address(child: &mut Reaper) -> RpcAddress {
    let stdout = child.0.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(DEADLINE).expect("the master prints a line");
    let url = line
        .trim()
        .strip_prefix("Master listening on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    RpcAddress::from_ember_url(url).expect("an ember:// URL")
}
