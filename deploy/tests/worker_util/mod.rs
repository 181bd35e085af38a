//! Shared helpers of the worker's integration tests: a fake master that records what
//! workers tell it, a worker that stops when dropped, a port that refuses connections.
//! Scratch directories, waiting on conditions and process checks are ember-test-support's.
//!
//! Every test file declares this module `pub mod worker_util;`: its items are public items of
//! each test crate, of which each file uses a part.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use ember_deploy::messages::{
    ApplicationDescription, Command, DriverState, ExecutorDescription, ExecutorState, MasterAsk,
    MasterMessage, MasterProtocol, WorkerMessage, WorkerProtocol, WorkerRegistration,
    MASTER_ENDPOINT_NAME,
};
use ember_deploy::{
    start_worker, worker_keys, AppId, DriverId, WorkerConfig, WorkerHandle, WorkerId,
};
use parking_lot::{Condvar, Mutex};
use rpc_env::{
    keys, EndpointContext, EndpointRef, HandlerResult, RpcAddress, RpcConf, RpcEndpoint, RpcEnv,
    RpcEnvConfig,
};

pub use ember_test_support::{is_alive, wait_until, TempDir, DEADLINE};

/// What a worker told the fake master (the fields are the message's).
#[derive(Debug, Clone)]
pub enum Event {
    /// `RegisterWorker`.
    Register {
        /// The worker's id.
        id: WorkerId,
        /// Its cores.
        cores: u32,
        /// Its memory.
        memory_mib: u32,
        /// The master address the worker registered with.
        master_address: RpcAddress,
    },
    /// `Heartbeat`.
    Heartbeat {
        /// The worker's id.
        worker_id: WorkerId,
    },
    /// `WorkerLatestState`.
    LatestState {
        /// The executors the worker runs.
        executors: Vec<ExecutorDescription>,
        /// The drivers it runs.
        driver_ids: Vec<DriverId>,
    },
    /// `WorkerSchedulerStateResponse`.
    SchedulerState {
        /// The executors the worker runs.
        executors: Vec<ExecutorDescription>,
    },
    /// `ExecutorStateChanged`.
    ExecutorState {
        /// The executor's application.
        app_id: AppId,
        /// The executor's id.
        exec_id: u32,
        /// Its new state.
        state: ExecutorState,
        /// Why, if said.
        message: Option<String>,
        /// Its exit code, if it exited.
        exit_status: Option<i32>,
    },
    /// `DriverStateChanged`.
    DriverState {
        /// The driver.
        driver_id: DriverId,
        /// Its new state.
        state: DriverState,
        /// Its error, if it failed.
        exception: Option<String>,
    },
}

/// How the fake master answers `RegisterWorker`.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `RegisteredWorker`.
    Accept,
    /// `RegisterWorkerFailed` with this message.
    Refuse(String),
    /// `MasterInStandby`.
    Standby,
}

/// The fake master's shared record.
pub struct Record {
    events: Mutex<Vec<Event>>,
    changed: Condvar,
    answer: Mutex<Answer>,
    worker: Mutex<Option<EndpointRef<WorkerProtocol>>>,
    /// How many executor state asks to fail before answering.
    failing_state_asks: AtomicUsize,
}

impl Record {
    fn push(&self, e: Event) {
        self.events.lock().push(e);
        self.changed.notify_all();
    }
}

struct FakeMasterEndpoint {
    record: Arc<Record>,
}

impl RpcEndpoint for FakeMasterEndpoint {
    type Protocol = MasterProtocol;

    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, MasterProtocol>,
        msg: MasterMessage,
    ) -> HandlerResult {
        let record = &self.record;
        match msg {
            MasterMessage::RegisterWorker {
                registration:
                    WorkerRegistration {
                        id,
                        worker,
                        cores,
                        memory_mib,
                        master_address,
                        ..
                    },
            } => {
                *record.worker.lock() = Some(worker.clone());
                record.push(Event::Register {
                    id,
                    cores,
                    memory_mib,
                    master_address: master_address.clone(),
                });
                let answer = record.answer.lock().clone();
                let reply = match answer {
                    Answer::Accept => WorkerMessage::RegisteredWorker {
                        master: ctx.self_ref().clone(),
                        master_web_ui_url: "http://127.0.0.1:8080".to_string(),
                        master_address,
                        duplicate: false,
                    },
                    Answer::Refuse(message) => WorkerMessage::RegisterWorkerFailed { message },
                    Answer::Standby => WorkerMessage::MasterInStandby,
                };
                worker.send(reply)?;
            }
            MasterMessage::Heartbeat { worker_id, .. } => {
                record.push(Event::Heartbeat { worker_id })
            }
            MasterMessage::WorkerLatestState {
                executors,
                driver_ids,
                ..
            } => record.push(Event::LatestState {
                executors,
                driver_ids,
            }),
            MasterMessage::WorkerSchedulerStateResponse { executors, .. } => {
                record.push(Event::SchedulerState { executors })
            }
            MasterMessage::DriverStateChanged {
                driver_id,
                state,
                exception,
            } => record.push(Event::DriverState {
                driver_id,
                state,
                exception,
            }),
            // Application messages and timers are not a worker's to send.
            _ => {}
        }
        Ok(())
    }

    fn receive_and_reply(
        &mut self,
        _ctx: &EndpointContext<'_, MasterProtocol>,
        ask: MasterAsk,
    ) -> HandlerResult {
        // Other asks are the tools'; dropping their reply port fails them at once.
        let MasterAsk::ExecutorStateChanged {
            app_id,
            exec_id,
            state,
            message,
            exit_status,
            reply,
        } = ask
        else {
            return Ok(());
        };
        self.record.push(Event::ExecutorState {
            app_id,
            exec_id,
            state,
            message,
            exit_status,
        });
        let fail = self
            .record
            .failing_state_asks
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            reply.fail("the fake master fails this one");
        } else {
            reply.send(true);
        }
        Ok(())
    }
}

/// A master endpoint in an env of its own that records what workers say; shut down on drop.
pub struct FakeMaster {
    env: RpcEnv,
    /// What the workers said.
    pub record: Arc<Record>,
}

impl FakeMaster {
    /// A fake master on a free loopback port.
    pub fn start() -> FakeMaster {
        FakeMaster::start_on(0)
    }

    /// A fake master on `port` (0: any free one), which must be free: no fallback port.
    pub fn start_on(port: u16) -> FakeMaster {
        let conf = RpcConf::new().with(keys::PORT_MAX_RETRIES, "0");
        let env =
            RpcEnv::create(RpcEnvConfig::server("fake-master", "127.0.0.1", port).with_conf(conf))
                .expect("the fake master's env starts");
        let record = Arc::new(Record {
            events: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            answer: Mutex::new(Answer::Accept),
            worker: Mutex::new(None),
            failing_state_asks: AtomicUsize::new(0),
        });
        env.setup_endpoint(
            MASTER_ENDPOINT_NAME,
            FakeMasterEndpoint {
                record: Arc::clone(&record),
            },
        )
        .expect("registers");
        FakeMaster { env, record }
    }

    /// Its address.
    pub fn address(&self) -> RpcAddress {
        self.env.address().expect("a server env").clone()
    }

    /// `ember://127.0.0.1:port`, the URL the worker compares `master_url`s with.
    pub fn url(&self) -> String {
        self.address().to_ember_url()
    }

    /// How it answers registrations from now on.
    pub fn answer(&self, answer: Answer) {
        *self.record.answer.lock() = answer;
    }

    /// Fails the next `n` executor state asks.
    pub fn fail_state_asks(&self, n: usize) {
        self.record.failing_state_asks.store(n, Ordering::SeqCst);
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.record.events.lock().clone()
    }

    /// How many recorded events match.
    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.record.events.lock().iter().filter(|e| pred(e)).count()
    }

    /// Waits until at least `n` recorded events match; returns the `n`th.
    #[track_caller]
    pub fn wait_for_nth(&self, n: usize, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + DEADLINE;
        let mut events = self.record.events.lock();
        loop {
            if let Some(e) = events.iter().filter(|e| pred(e)).nth(n - 1) {
                return e.clone();
            }
            let timed_out = self
                .record
                .changed
                .wait_until(&mut events, deadline)
                .timed_out();
            assert!(
                !timed_out,
                "timed out waiting for {what}; saw {:?}",
                *events
            );
        }
    }

    /// Waits for the first recorded event that matches.
    #[track_caller]
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        self.wait_for_nth(1, what, pred)
    }

    /// Sends the last registered worker a message, as the master would.
    pub fn tell_worker(&self, msg: WorkerMessage) {
        let worker = self.record.worker.lock().clone();
        worker
            .expect("a worker has registered")
            .send(msg)
            .expect("sends to the worker");
    }

    /// Looks the worker at `worker_url` up, to tell it things before it registered here.
    pub fn connect_to_worker(&self, worker_url: &str) {
        let worker = self
            .env
            .setup_endpoint_ref_by_uri::<WorkerProtocol>(worker_url)
            .expect("looks the worker up");
        *self.record.worker.lock() = Some(worker);
    }

    /// A ref to the fake master's endpoint, to put in messages.
    pub fn master_ref(&self) -> EndpointRef<MasterProtocol> {
        self.env.local_ref(MASTER_ENDPOINT_NAME)
    }

    /// Stops the fake master (its port is free again once this returns).
    pub fn stop(&self) {
        self.env.shutdown();
        self.env.await_termination();
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Settings that make a worker fast to test: registration retries every 50–150 ms, then
/// 100–300 ms; heartbeats every 100 ms; a 2 s kill grace.
pub fn fast_conf() -> RpcConf {
    RpcConf::new()
        .with(worker_keys::REGISTRATION_RETRY_INTERVAL, "100ms")
        .with(worker_keys::PROLONGED_REGISTRATION_RETRY_INTERVAL, "200ms")
        .with(worker_keys::TIMEOUT, "400ms")
        .with(worker_keys::EXECUTOR_TERMINATE_TIMEOUT, "2s")
        .with(worker_keys::DRIVER_TERMINATE_TIMEOUT, "2s")
}

/// A worker that is shut down (children killed) when dropped, even when a test fails.
pub struct TestWorker {
    /// The running worker.
    pub handle: WorkerHandle,
    /// Its work directory.
    pub work: TempDir,
}

impl TestWorker {
    /// A worker of 4 cores and 4 GiB for `masters`, with [`fast_conf`] plus `extra`.
    pub fn start(masters: Vec<RpcAddress>, extra: &[(&str, &str)]) -> TestWorker {
        let work = TempDir::new("work");
        let mut config = WorkerConfig::new(masters);
        config.cores = 4;
        config.memory_mib = 4096;
        config.webui_port = 0;
        config.work_dir = work.path().to_path_buf();
        config.conf = fast_conf();
        for (k, v) in extra {
            config.conf.set(*k, *v);
        }
        let handle = start_worker(config).expect("the worker starts");
        TestWorker { handle, work }
    }

    /// The directory of executor `exec_id` of `app`.
    pub fn executor_dir(&self, app: &str, exec_id: u32) -> PathBuf {
        self.work
            .path()
            .canonicalize()
            .expect("work dir")
            .join(app)
            .join(exec_id.to_string())
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// An application whose executors run `/bin/sh -c script`.
pub fn shell_app(script: &str) -> ApplicationDescription {
    ApplicationDescription {
        name: "test-app".to_string(),
        max_cores: None,
        memory_per_executor_mib: 256,
        cores_per_executor: Some(1),
        command: Command {
            program: "/bin/sh".to_string(),
            args: vec!["-c".to_string(), script.to_string()],
            env: BTreeMap::new(),
        },
        user: "tester".to_string(),
        program_digest: None,
    }
}

/// Reads the first line of `file` once it has one.
#[track_caller]
pub fn first_line(file: &Path) -> String {
    let mut line = String::new();
    wait_until(&format!("a line in {}", file.display()), DEADLINE, || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        match text.split_once('\n') {
            Some((first, _)) => {
                line = first.to_string();
                true
            }
            None => false,
        }
    });
    line
}

/// A loopback port that accepts connections and closes them at once, counting them: a
/// master that is "down" but shows each registration attempt.
pub struct RefusingPort {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RefusingPort {
    /// Listens on a free loopback port.
    pub fn start() -> RefusingPort {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let port = listener.local_addr().expect("address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopping) = (Arc::clone(&accepted), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                if conn.is_ok() {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        RefusingPort {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many connections it has accepted (and closed).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes the port (it can be bound again once this returns).
    pub fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees the flag and drops the listener.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RefusingPort {
    fn drop(&mut self) {
        self.close();
    }
}

/// Whether `e` is a state report of executor `exec_id` in `state`.
pub fn is_exec_state(e: &Event, exec_id: u32, state: ExecutorState) -> bool {
    matches!(e, Event::ExecutorState { exec_id: id, state: s, .. } if *id == exec_id && *s == state)
}
