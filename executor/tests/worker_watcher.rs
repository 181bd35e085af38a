//! The `WorkerWatcher` endpoint in a client-mode env of this process (as in an executor),
//! watching a "worker": a server-mode env with an endpoint named `Worker`.

pub mod util;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rpc_env::{EndpointContext, RpcAddress, RpcEndpoint, RpcEnv, RpcEnvConfig};

use ember_executor::{WatchedProtocol, WorkerWatcher, EXIT_WORKER_LOST};
use util::{wait_until, DEADLINE};

/// An endpoint that records the disconnections its env sees; also the worker's `Worker`.
#[derive(Default, Clone)]
struct Disconnects(Arc<Mutex<Vec<RpcAddress>>>);

impl RpcEndpoint for Disconnects {
    type Protocol = WatchedProtocol;

    fn on_disconnected(
        &mut self,
        _ctx: &EndpointContext<'_, WatchedProtocol>,
        remote: &RpcAddress,
    ) {
        self.0.lock().push(remote.clone());
    }
}

/// A server-mode env on loopback with a `Worker` endpoint, and its URL.
fn worker(name: &str) -> (RpcEnv, String) {
    let env = RpcEnv::create(RpcEnvConfig::server(name, "127.0.0.1", 0)).unwrap();
    env.setup_endpoint("Worker", Disconnects::default())
        .unwrap();
    let url = format!("ember://Worker@{}", env.address().unwrap().host_port());
    (env, url)
}

/// The executor's side: a client-mode env with a watcher of `worker_url` and a
/// [`Disconnects`] recorder; returns the env, the watcher's exit code and the recorder.
fn executor_env(worker_url: &str) -> (RpcEnv, Arc<AtomicI32>, Disconnects) {
    let env = RpcEnv::create(RpcEnvConfig::client("executor")).unwrap();
    let exit_code = Arc::new(AtomicI32::new(0));
    let recorder = Disconnects::default();
    env.setup_endpoint("recorder", recorder.clone()).unwrap();
    env.setup_endpoint(
        "WorkerWatcher",
        WorkerWatcher::new(worker_url, Arc::clone(&exit_code)).unwrap(),
    )
    .unwrap();
    (env, exit_code, recorder)
}

fn stop(env: &RpcEnv) {
    env.shutdown();
    env.await_termination();
}

/// WorkerWatcherSuite 1 "WorkerWatcher shuts down on valid disassociation": when the watched
/// worker's connection drops, the watcher sets exit code 255 and stops the env.
#[test]
fn worker_watcher_shuts_down_on_valid_disassociation() {
    let (worker_env, url) = worker("worker");
    let (env, exit_code, _recorder) = executor_env(&url);
    // The connection the watcher watches (its own lookup shares it).
    env.setup_endpoint_ref::<WatchedProtocol>(worker_env.address().unwrap(), "Worker")
        .expect("the worker is reachable");
    assert!(!env.is_stopped());
    assert_eq!(exit_code.load(Ordering::SeqCst), 0);
    stop(&worker_env);
    wait_until("the env is stopped", DEADLINE, || env.is_stopped());
    env.await_termination();
    assert_eq!(exit_code.load(Ordering::SeqCst), EXIT_WORKER_LOST);
}

/// WorkerWatcherSuite 2 "WorkerWatcher stays alive on invalid disassociation": the
/// connection to another env dropping leaves the watcher alone. (The env is then shut down,
/// which has every endpoint handle what it had queued, the disconnection included, before
/// the exit code is read.)
#[test]
fn worker_watcher_stays_alive_on_invalid_disassociation() {
    let (worker_env, url) = worker("worker");
    let (other_env, _) = worker("other");
    let (env, exit_code, recorder) = executor_env(&url);
    let other = other_env.address().unwrap().clone();
    env.setup_endpoint_ref::<WatchedProtocol>(&other, "Worker")
        .expect("the other env is reachable");
    stop(&other_env);
    wait_until("the recorder saw the other env go", DEADLINE, || {
        recorder.0.lock().contains(&other)
    });
    assert!(!env.is_stopped());
    stop(&env);
    assert_eq!(exit_code.load(Ordering::SeqCst), 0);
    stop(&worker_env);
}

/// Ember's own: a worker that cannot be reached when the watcher starts counts as lost.
#[test]
fn an_unreachable_worker_counts_as_lost() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (env, exit_code, _recorder) = executor_env(&format!("ember://Worker@127.0.0.1:{port}"));
    wait_until("the env is stopped", DEADLINE, || env.is_stopped());
    env.await_termination();
    assert_eq!(exit_code.load(Ordering::SeqCst), EXIT_WORKER_LOST);
}
