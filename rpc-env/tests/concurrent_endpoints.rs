//! Concurrent endpoints (Spark's `IsolatedRpcEndpoint` with `threadCount() > 1`): handlers
//! run on their own loop of N threads, up to N at once; `on_start` still runs first and
//! alone, and `on_stop` last, after every handler has returned.

pub mod util;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rpc_env::{
    message, ConcurrentRpcEndpoint, EndpointContext, HandlerResult, NoMessage, Protocol, Reply,
    RpcEnv,
};
use util::{answer, wait_until, Env, DEADLINE};

message! {
    enum GateAsk {
        /// Waits until `wanted` handlers are inside at once (or the deadline passes), then
        /// answers the most it saw, and the thread it ran on.
        Meet { wanted: u64, reply: Reply<(u64, String)> },
        /// Answers whether on_start had finished when the handler ran.
        Started { reply: Reply<bool> },
    }
}

struct GateProtocol;

impl Protocol for GateProtocol {
    type Message = NoMessage;
    type Ask = GateAsk;
    type Control = NoMessage;
}

#[derive(Default)]
struct Shared {
    inside: Mutex<u64>,
    changed: Condvar,
    peak: AtomicUsize,
    started: AtomicBool,
    handlers_running_at_stop: AtomicUsize,
    stopped: AtomicBool,
    /// Whether `on_start` waits for [`Shared::release_start`] (the test's latch).
    hold_start: Mutex<bool>,
    /// Set when `on_start` has begun.
    start_entered: AtomicBool,
}

impl Shared {
    /// Lets a held `on_start` finish.
    fn release_start(&self) {
        *self.hold_start.lock() = false;
        self.changed.notify_all();
    }
}

struct Gate {
    threads: usize,
    shared: Arc<Shared>,
}

impl ConcurrentRpcEndpoint for Gate {
    type Protocol = GateProtocol;

    fn threads(&self) -> usize {
        self.threads
    }

    fn on_start(&self, _ctx: &EndpointContext<'_, GateProtocol>) -> HandlerResult {
        self.shared.start_entered.store(true, Ordering::SeqCst);
        // Held while the test queues asks, when it asks for that: a message handled before
        // this returns would see started == false.
        let mut held = self.shared.hold_start.lock();
        let deadline = Instant::now() + DEADLINE;
        while *held {
            if self
                .shared
                .changed
                .wait_until(&mut held, deadline)
                .timed_out()
            {
                break;
            }
        }
        drop(held);
        self.shared.started.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn receive_and_reply(
        &self,
        _ctx: &EndpointContext<'_, GateProtocol>,
        ask: GateAsk,
    ) -> HandlerResult {
        match ask {
            GateAsk::Meet { wanted, reply } => {
                let mut inside = self.shared.inside.lock();
                *inside += 1;
                self.shared
                    .peak
                    .fetch_max(*inside as usize, Ordering::SeqCst);
                self.shared.changed.notify_all();
                let deadline = Instant::now() + Duration::from_secs(2);
                while *inside < wanted {
                    if self
                        .shared
                        .changed
                        .wait_until(&mut inside, deadline)
                        .timed_out()
                    {
                        break;
                    }
                }
                let seen = self.shared.peak.load(Ordering::SeqCst) as u64;
                *inside -= 1;
                self.shared.changed.notify_all();
                drop(inside);
                reply.send((
                    seen,
                    std::thread::current().name().unwrap_or("").to_string(),
                ));
            }
            GateAsk::Started { reply } => reply.send(self.shared.started.load(Ordering::SeqCst)),
        }
        Ok(())
    }

    fn on_stop(&self, _env: &RpcEnv) -> HandlerResult {
        let inside = *self.shared.inside.lock();
        self.shared
            .handlers_running_at_stop
            .store(inside as usize, Ordering::SeqCst);
        self.shared.stopped.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn n_handlers_run_at_once_on_the_endpoints_own_threads() {
    let env = Env::server("server");
    let shared = Arc::new(Shared::default());
    let gate = env
        .setup_concurrent_endpoint(
            "gate",
            Gate {
                threads: 3,
                shared: Arc::clone(&shared),
            },
        )
        .unwrap();
    let asks: Vec<_> = (0..3)
        .map(|_| gate.ask(|reply| GateAsk::Meet { wanted: 3, reply }))
        .collect();
    for ask in asks {
        let (seen, thread) = answer(ask).expect("answered");
        assert_eq!(seen, 3, "three handlers were inside at once");
        assert!(thread.starts_with("dispatcher-gate-"), "ran on {thread}");
    }
}

#[test]
fn never_more_handlers_than_threads() {
    let env = Env::server("server");
    let shared = Arc::new(Shared::default());
    let gate = env
        .setup_concurrent_endpoint(
            "gate",
            Gate {
                threads: 2,
                shared: Arc::clone(&shared),
            },
        )
        .unwrap();
    // Each waits (up to 2 s) for 3 inside at once, which two threads can never give.
    let asks: Vec<_> = (0..6)
        .map(|_| gate.ask(|reply| GateAsk::Meet { wanted: 3, reply }))
        .collect();
    for ask in asks {
        let (seen, _) = answer(ask).expect("answered");
        assert!(seen <= 2, "saw {seen} handlers at once with 2 threads");
    }
    assert_eq!(shared.peak.load(Ordering::SeqCst), 2);
}

#[test]
fn on_start_runs_first_and_alone() {
    let env = Env::server("server");
    let shared = Arc::new(Shared {
        hold_start: Mutex::new(true),
        ..Shared::default()
    });
    let gate = env
        .setup_concurrent_endpoint(
            "gate",
            Gate {
                threads: 4,
                shared: Arc::clone(&shared),
            },
        )
        .unwrap();
    // Queued while on_start is certainly running (it waits for the test): none may run
    // before it returns.
    wait_until("on_start begins", DEADLINE, || {
        shared.start_entered.load(Ordering::SeqCst)
    });
    let asks: Vec<_> = (0..8)
        .map(|_| gate.ask(|reply| GateAsk::Started { reply }))
        .collect();
    shared.release_start();
    for ask in asks {
        assert_eq!(
            answer(ask),
            Ok(true),
            "a handler ran before on_start finished"
        );
    }
}

#[test]
fn on_stop_runs_last_after_every_handler() {
    let env = Env::server("server");
    let shared = Arc::new(Shared::default());
    let gate = env
        .setup_concurrent_endpoint(
            "gate",
            Gate {
                threads: 3,
                shared: Arc::clone(&shared),
            },
        )
        .unwrap();
    let asks: Vec<_> = (0..3)
        .map(|_| gate.ask(|reply| GateAsk::Meet { wanted: 3, reply }))
        .collect();
    wait_until("three handlers are inside", DEADLINE, || {
        *shared.inside.lock() >= 1
    });
    env.stop(&gate);
    for ask in asks {
        assert!(answer(ask).is_ok(), "queued before the stop, so handled");
    }
    wait_until("on_stop ran", DEADLINE, || {
        shared.stopped.load(Ordering::SeqCst)
    });
    assert_eq!(shared.handlers_running_at_stop.load(Ordering::SeqCst), 0);
    assert!(!env.has_endpoint("gate"));
}
