//! Shared helpers of the executor's integration tests: a fake driver (a
//! `CoarseGrainedScheduler` endpoint speaking `DriverProtocol` and a `HeartbeatReceiver`
//! speaking `HeartbeatProtocol`, in one server-mode env) and the real `ember-executor` binary
//! as a child process that is always reaped. Waiting on conditions is ember-test-support's.
//!
//! Every test file declares this module `pub mod util;`: its items are public items of each
//! test crate, of which each file uses a part.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use ember_test_support::exited_within;
use parking_lot::{Condvar, Mutex};
use rpc_env::{
    EndpointContext, EndpointRef, HandlerResult, Reply, RpcAddress, RpcEndpoint, RpcEnv,
    RpcEnvConfig,
};

use ember_scheduler::{
    AppConfig, DriverAsk, DriverMessage, DriverProtocol, ExecutorProtocol, HeartbeatAsk,
    HeartbeatProtocol, HeartbeatResponse, TaskId, TaskUpdate, DRIVER_ENDPOINT_NAME,
    HEARTBEAT_RECEIVER_NAME,
};

pub use ember_test_support::{wait_until, DEADLINE};

/// What the fake driver saw, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum DriverEvent {
    /// `RetrieveAppConfig` was asked.
    ConfigFetched,
    /// `RegisterExecutor` was asked.
    Registered {
        /// The executor's id.
        executor_id: String,
        /// The name of the executor's endpoint.
        ref_name: String,
        /// The executor's host.
        hostname: String,
        /// Its cores.
        cores: u32,
        /// Its log URLs.
        log_urls: BTreeMap<String, String>,
    },
    /// The driver answered the registration (recorded before the answer leaves).
    Answered(bool),
    /// `LaunchedExecutor`.
    Launched(String),
    /// One update of a `StatusUpdate` from this executor.
    Status(String, TaskUpdate),
}

/// How the fake driver answers `RegisterExecutor`.
#[derive(Debug, Clone)]
pub enum Registration {
    /// `true`.
    Accept,
    /// `false`.
    Refuse,
    /// Fails the ask with this message.
    Fail(String),
    /// Keeps the reply until [`FakeDriver::answer_registration`].
    Hold,
}

/// What the fake driver and heartbeat receiver share with the test.
struct Shared {
    events: Mutex<Vec<DriverEvent>>,
    changed: Condvar,
    heartbeats: Mutex<Vec<(String, Vec<TaskId>)>>,
    executor: Mutex<Option<EndpointRef<ExecutorProtocol>>>,
    held: Mutex<Option<Reply<bool>>>,
    /// How many connections to the driver endpoint have gone; each comes after every
    /// message that arrived on it (rpc-env's order of network events).
    disconnects: AtomicUsize,
}

impl Shared {
    fn push(&self, event: DriverEvent) {
        self.events.lock().push(event);
        self.changed.notify_all();
    }
}

/// The fake `CoarseGrainedScheduler` endpoint.
struct DriverEndpoint {
    shared: Arc<Shared>,
    properties: BTreeMap<String, String>,
    registration: Registration,
}

impl RpcEndpoint for DriverEndpoint {
    type Protocol = DriverProtocol;

    fn receive(
        &mut self,
        _ctx: &EndpointContext<'_, DriverProtocol>,
        msg: DriverMessage,
    ) -> HandlerResult {
        match msg {
            DriverMessage::LaunchedExecutor { executor_id } => {
                self.shared
                    .push(DriverEvent::Launched(executor_id.to_string()));
            }
            DriverMessage::StatusUpdate {
                executor_id,
                updates,
            } => {
                for update in updates {
                    self.shared
                        .push(DriverEvent::Status(executor_id.to_string(), update));
                }
            }
        }
        Ok(())
    }

    fn on_disconnected(&mut self, _ctx: &EndpointContext<'_, DriverProtocol>, _: &RpcAddress) {
        self.shared.disconnects.fetch_add(1, Ordering::SeqCst);
    }

    fn receive_and_reply(
        &mut self,
        _ctx: &EndpointContext<'_, DriverProtocol>,
        ask: DriverAsk,
    ) -> HandlerResult {
        match ask {
            DriverAsk::RetrieveAppConfig { reply } => {
                self.shared.push(DriverEvent::ConfigFetched);
                reply.send(AppConfig {
                    app_id: "app-1".into(),
                    properties: self.properties.clone(),
                });
            }
            DriverAsk::RegisterExecutor {
                executor_id,
                executor_ref,
                hostname,
                cores,
                log_urls,
                reply,
            } => {
                self.shared.push(DriverEvent::Registered {
                    executor_id: executor_id.to_string(),
                    ref_name: executor_ref.name().to_string(),
                    hostname,
                    cores,
                    log_urls,
                });
                *self.shared.executor.lock() = Some(executor_ref);
                match &self.registration {
                    Registration::Accept => {
                        self.shared.push(DriverEvent::Answered(true));
                        reply.send(true);
                    }
                    Registration::Refuse => {
                        self.shared.push(DriverEvent::Answered(false));
                        reply.send(false);
                    }
                    Registration::Fail(message) => reply.fail(message.clone()),
                    Registration::Hold => *self.shared.held.lock() = Some(reply),
                }
            }
        }
        Ok(())
    }
}

/// The fake `HeartbeatReceiver`: records heartbeats; answers them, or fails them all.
struct HeartbeatEndpoint {
    shared: Arc<Shared>,
    fail: bool,
}

impl RpcEndpoint for HeartbeatEndpoint {
    type Protocol = HeartbeatProtocol;

    fn receive_and_reply(
        &mut self,
        _ctx: &EndpointContext<'_, HeartbeatProtocol>,
        ask: HeartbeatAsk,
    ) -> HandlerResult {
        let HeartbeatAsk::Heartbeat {
            executor_id,
            running,
            reply,
        } = ask;
        self.shared
            .heartbeats
            .lock()
            .push((executor_id.to_string(), running));
        if self.fail {
            reply.fail("heartbeats are refused here");
        } else {
            reply.send(HeartbeatResponse {
                unknown_executor: false,
            });
        }
        Ok(())
    }
}

/// How a fake driver is set up.
#[derive(Debug, Clone)]
pub struct DriverSetup {
    /// The application's settings the executor fetches.
    pub properties: BTreeMap<String, String>,
    /// How `RegisterExecutor` is answered.
    pub registration: Registration,
    /// Whether heartbeats are failed.
    pub fail_heartbeats: bool,
}

impl Default for DriverSetup {
    fn default() -> Self {
        let mut properties = BTreeMap::new();
        properties.insert(
            "ember.executor.heartbeatInterval".to_string(),
            "100ms".to_string(),
        );
        DriverSetup {
            properties,
            registration: Registration::Accept,
            fail_heartbeats: false,
        }
    }
}

/// A fake driver in a server-mode env on loopback; shut down when dropped.
pub struct FakeDriver {
    /// The driver's env.
    pub env: RpcEnv,
    shared: Arc<Shared>,
}

impl FakeDriver {
    /// A driver that accepts registrations and heartbeats every 100 ms.
    pub fn start() -> FakeDriver {
        FakeDriver::with(DriverSetup::default())
    }

    /// A driver set up so.
    pub fn with(setup: DriverSetup) -> FakeDriver {
        let env = RpcEnv::create(RpcEnvConfig::server("fake-driver", "127.0.0.1", 0))
            .expect("the driver env starts");
        let shared = Arc::new(Shared {
            events: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            heartbeats: Mutex::new(Vec::new()),
            executor: Mutex::new(None),
            held: Mutex::new(None),
            disconnects: AtomicUsize::new(0),
        });
        env.setup_endpoint(
            DRIVER_ENDPOINT_NAME,
            DriverEndpoint {
                shared: Arc::clone(&shared),
                properties: setup.properties,
                registration: setup.registration,
            },
        )
        .unwrap();
        env.setup_endpoint(
            HEARTBEAT_RECEIVER_NAME,
            HeartbeatEndpoint {
                shared: Arc::clone(&shared),
                fail: setup.fail_heartbeats,
            },
        )
        .unwrap();
        FakeDriver { env, shared }
    }

    /// `ember://CoarseGrainedScheduler@127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        let port = self.env.address().expect("server mode").port();
        format!("ember://{DRIVER_ENDPOINT_NAME}@127.0.0.1:{port}")
    }

    /// Waits until an executor's connection to the driver has gone: everything it sent has
    /// been handled (and is in [`events`](Self::events)).
    #[track_caller]
    pub fn wait_disconnected(&self) {
        wait_until("the executor's connection goes", DEADLINE, || {
            self.shared.disconnects.load(Ordering::SeqCst) > 0
        });
    }

    /// Everything seen so far.
    pub fn events(&self) -> Vec<DriverEvent> {
        self.shared.events.lock().clone()
    }

    /// Waits until `cond` holds of the events seen, and returns them.
    #[track_caller]
    pub fn wait_for(&self, what: &str, cond: impl Fn(&[DriverEvent]) -> bool) -> Vec<DriverEvent> {
        let end = Instant::now() + DEADLINE;
        let mut events = self.shared.events.lock();
        while !cond(&events) {
            assert!(
                !self.shared.changed.wait_until(&mut events, end).timed_out(),
                "timed out waiting until {what}; the driver saw {events:?}"
            );
        }
        events.clone()
    }

    /// Waits until the executor has registered and said it launched; returns its ref.
    #[track_caller]
    pub fn wait_launched(&self) -> EndpointRef<ExecutorProtocol> {
        self.wait_for("the executor launched", |events| {
            events.iter().any(|e| matches!(e, DriverEvent::Launched(_)))
        });
        self.executor_ref().expect("a launched executor registered")
    }

    /// The ref the executor registered with, if it did.
    pub fn executor_ref(&self) -> Option<EndpointRef<ExecutorProtocol>> {
        self.shared.executor.lock().clone()
    }

    /// The updates reported for `tid`, in order.
    pub fn statuses(&self, tid: u64) -> Vec<ember_scheduler::TaskStatus> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                DriverEvent::Status(_, u) if u.task_id == TaskId(tid) => Some(u.status),
                _ => None,
            })
            .collect()
    }

    /// Waits until `tid` has ended and returns all its statuses.
    #[track_caller]
    pub fn wait_end(&self, tid: u64) -> Vec<ember_scheduler::TaskStatus> {
        self.wait_for(&format!("TID {tid} ends"), |events| {
            events.iter().any(|e| {
                matches!(e, DriverEvent::Status(_, u)
                    if u.task_id == TaskId(tid) && u.status.state().is_finished())
            })
        });
        self.statuses(tid)
    }

    /// Whether a registration is being held.
    pub fn registration_held(&self) -> bool {
        self.shared.held.lock().is_some()
    }

    /// Answers the held registration.
    pub fn answer_registration(&self, accept: bool) {
        let reply = self.shared.held.lock().take().expect("a held registration");
        self.shared.push(DriverEvent::Answered(accept));
        reply.send(accept);
    }

    /// The heartbeats seen so far: (executor, running TIDs).
    pub fn heartbeats(&self) -> Vec<(String, Vec<TaskId>)> {
        self.shared.heartbeats.lock().clone()
    }

    /// Shuts the env down and waits for it: the executor's connection drops.
    pub fn stop_now(&self) {
        self.env.shutdown();
        self.env.await_termination();
    }
}

impl Drop for FakeDriver {
    fn drop(&mut self) {
        self.env.shutdown();
        if !thread::panicking() {
            self.env.await_termination();
        }
    }
}

/// The `ember-executor` binary running as a child process: killed and reaped on drop.
pub struct ExecutorProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl ExecutorProcess {
    /// `ember-executor` with these arguments, logging at `info` to its stderr (collected).
    pub fn spawn(args: &[String]) -> ExecutorProcess {
        ExecutorProcess::spawn_with_env(args, &[])
    }

    /// As [`spawn`](Self::spawn), with these extra environment variables.
    pub fn spawn_with_env(args: &[String], vars: &[(&str, &str)]) -> ExecutorProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ember-executor"));
        command
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in vars {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("ember-executor starts");
        let mut pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = Arc::clone(&stderr);
        // Reads to the end, so the child never blocks on a full pipe.
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                collected
                    .lock()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        ExecutorProcess {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// The usual arguments: executor `1` on `127.0.0.1` with 2 cores, of `app-1`.
    pub fn args(driver_url: &str) -> Vec<String> {
        [
            "--driver-url",
            driver_url,
            "--executor-id",
            "1",
            "--hostname",
            "127.0.0.1",
            "--cores",
            "2",
            "--app-id",
            "app-1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().clone()
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// Waits (at most [`DEADLINE`]) for the process to exit; returns its exit code once all
    /// of its stderr has been read.
    #[track_caller]
    pub fn wait_exit(&mut self) -> i32 {
        let Some(status) = exited_within(&mut self.child, DEADLINE) else {
            panic!(
                "ember-executor did not exit within {DEADLINE:?}; its stderr:\n{}",
                self.stderr()
            );
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
            .code()
            .unwrap_or_else(|| panic!("ember-executor ended by a signal: {status:?}"))
    }
}

impl Drop for ExecutorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
