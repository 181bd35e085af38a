//! Endpoint lifecycle, ported from Spark's `RpcEnvSuite`:
//!
//! - "onStart and onStop"
//! - "onError: error in onStart", "onError: error in onStop",
//!   "onError: error in receive" (plus the same with panics)
//! - "self: call in onStart", "self: call in receive"
//! - "self: call in onStop": in Ember `on_stop` gets no self ref at all (a compile-time
//!   fact); its runtime counterpart here is that the name is no longer registered in `on_stop`
//! - "call receive in sequence"
//! - "stop(RpcEndpointRef) reentrant"

pub mod util;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use rpc_env::RpcError;
use rpc_env::{EndpointContext, EndpointError, EndpointRef, HandlerResult, RpcEndpoint, RpcEnv};
use util::{text, wait_until, Env, Event, Probe, ProbeMessage, ProbeProtocol, DEADLINE};

/// Where [`Faulty`] fails, and how.
#[derive(Clone, Copy)]
enum Fault {
    StartErr,
    StartPanic,
    StopErr,
    StopPanic,
}

/// An endpoint whose `on_start` or `on_stop` fails with "Oops!".
struct Faulty {
    fault: Fault,
    log: Arc<Mutex<Vec<String>>>,
}

impl RpcEndpoint for Faulty {
    type Protocol = ProbeProtocol;

    fn on_start(&mut self, _: &EndpointContext<'_, ProbeProtocol>) -> HandlerResult {
        self.log.lock().unwrap().push("start".into());
        match self.fault {
            Fault::StartErr => Err(EndpointError::msg("Oops!")),
            Fault::StartPanic => panic!("Oops!"),
            _ => Ok(()),
        }
    }

    fn receive(
        &mut self,
        _: &EndpointContext<'_, ProbeProtocol>,
        _: ProbeMessage,
    ) -> HandlerResult {
        self.log.lock().unwrap().push("receive".into());
        Ok(())
    }

    fn on_error(&mut self, _: &EndpointContext<'_, ProbeProtocol>, error: EndpointError) {
        self.log.lock().unwrap().push(format!("error {error}"));
    }

    fn on_stop(&mut self, _: &RpcEnv) -> HandlerResult {
        self.log.lock().unwrap().push("stop".into());
        match self.fault {
            Fault::StopErr => Err(EndpointError::msg("Oops!")),
            Fault::StopPanic => panic!("Oops!"),
            _ => Ok(()),
        }
    }
}

fn run_faulty(fault: Fault, expected: &[&str]) {
    let env = Env::server("lifecycle");
    let log = Arc::new(Mutex::new(Vec::new()));
    let ep = env
        .setup_endpoint(
            "faulty",
            Faulty {
                fault,
                log: Arc::clone(&log),
            },
        )
        .unwrap();
    ep.send(text("after start")).unwrap();
    env.stop(&ep);
    wait_until("on_stop and its on_error ran", DEADLINE, || {
        log.lock().unwrap().len() >= expected.len()
    });
    env.stop_now();
    assert_eq!(*log.lock().unwrap(), expected);
}

#[test]
fn on_start_runs_first_and_on_stop_last() {
    let env = Env::server("lifecycle");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("start-stop", probe).unwrap();
    env.stop(&ep);
    h.wait_for_event(&Event::Stop);
    assert_eq!(h.events(), [Event::Start, Event::Stop]);
}

#[test]
fn messages_queued_before_a_stop_are_handled_before_on_stop() {
    let env = Env::server("lifecycle");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("drain", probe).unwrap();
    for i in 0..100 {
        ep.send(text(&i.to_string())).unwrap();
    }
    env.stop(&ep);
    h.wait_for_event(&Event::Stop);
    let events = h.events();
    assert_eq!(events.first(), Some(&Event::Start));
    assert_eq!(events.last(), Some(&Event::Stop));
    let expected: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(h.texts(), expected, "all handled, in order");
}

#[test]
fn an_error_in_on_start_goes_to_on_error_and_the_endpoint_runs_on() {
    run_faulty(
        Fault::StartErr,
        &["start", "error Oops!", "receive", "stop"],
    );
}

#[test]
fn a_panic_in_on_start_goes_to_on_error_and_the_endpoint_runs_on() {
    run_faulty(
        Fault::StartPanic,
        &["start", "error Oops!", "receive", "stop"],
    );
}

#[test]
fn an_error_in_on_stop_goes_to_on_error() {
    run_faulty(Fault::StopErr, &["start", "receive", "stop", "error Oops!"]);
}

#[test]
fn a_panic_in_on_stop_goes_to_on_error() {
    run_faulty(
        Fault::StopPanic,
        &["start", "receive", "stop", "error Oops!"],
    );
}

#[test]
fn an_error_or_panic_in_receive_goes_to_on_error_and_the_endpoint_runs_on() {
    let env = Env::server("lifecycle");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("receive-errors", probe).unwrap();
    ep.send(ProbeMessage::Fail {
        message: "Oops!".into(),
    })
    .unwrap();
    ep.send(ProbeMessage::Panic {
        message: "Oops again!".into(),
    })
    .unwrap();
    ep.send(text("still alive")).unwrap();
    h.wait_for("the message after the errors", |e| {
        matches!(e, Event::Text { .. })
    });
    assert_eq!(h.errors(), ["Oops!", "Oops again!"]);
    assert_eq!(h.texts(), ["still alive"]);
}

/// Uses its own ref in `on_start`: keeps it and sends itself a message through it.
struct SelfInStart {
    seen: Arc<Mutex<Option<EndpointRef<ProbeProtocol>>>>,
    texts: Arc<Mutex<Vec<String>>>,
}

impl RpcEndpoint for SelfInStart {
    type Protocol = ProbeProtocol;

    fn on_start(&mut self, ctx: &EndpointContext<'_, ProbeProtocol>) -> HandlerResult {
        *self.seen.lock().unwrap() = Some(ctx.self_ref().clone());
        ctx.self_ref().send(text("from on_start"))?;
        Ok(())
    }

    fn receive(
        &mut self,
        _: &EndpointContext<'_, ProbeProtocol>,
        msg: ProbeMessage,
    ) -> HandlerResult {
        if let ProbeMessage::Text { text } = msg {
            self.texts.lock().unwrap().push(text);
        }
        Ok(())
    }
}

#[test]
fn self_ref_works_in_on_start() {
    let env = Env::server("lifecycle");
    let seen = Arc::new(Mutex::new(None));
    let texts = Arc::new(Mutex::new(Vec::new()));
    let endpoint = SelfInStart {
        seen: Arc::clone(&seen),
        texts: Arc::clone(&texts),
    };
    let ep = env.setup_endpoint("self-in-start", endpoint).unwrap();
    wait_until(
        "the message on_start sent to itself arrives",
        DEADLINE,
        || !texts.lock().unwrap().is_empty(),
    );
    assert_eq!(*texts.lock().unwrap(), ["from on_start"]);
    assert_eq!(seen.lock().unwrap().as_ref(), Some(&ep));
}

#[test]
fn self_ref_works_in_receive() {
    let env = Env::server("lifecycle");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("self-in-receive", probe).unwrap();
    ep.send(ProbeMessage::SendToSelf {
        text: "via self".into(),
    })
    .unwrap();
    h.wait_for("the message sent through self_ref", |e| {
        matches!(e, Event::Text { .. })
    });
    assert_eq!(h.texts(), ["via self"]);
    let own = util::answer(ep.ask(|reply| util::ProbeAsk::SelfRef { reply })).unwrap();
    assert_eq!(own, ep);
    assert_eq!(
        own.address().to_string(),
        format!("ember://self-in-receive@{}", env.addr())
    );
}

/// What `on_stop` found: whether its name is registered, and how a send to it went.
type Found = Arc<Mutex<Option<(bool, Result<(), RpcError>)>>>;

/// Looks itself up in `on_stop` (Spark's `self` is null there; Ember has none to offer).
struct LooksForItselfInStop {
    found: Found,
}

impl RpcEndpoint for LooksForItselfInStop {
    type Protocol = ProbeProtocol;

    fn on_stop(&mut self, env: &RpcEnv) -> HandlerResult {
        let registered = env.has_endpoint("looks-for-itself");
        let own: EndpointRef<ProbeProtocol> = env.local_ref("looks-for-itself");
        let sent = own.send(text("to myself in on_stop"));
        *self.found.lock().unwrap() = Some((registered, sent));
        Ok(())
    }
}

#[test]
fn in_on_stop_the_endpoint_is_no_longer_registered() {
    let env = Env::server("lifecycle");
    let found: Found = Arc::default();
    let endpoint = LooksForItselfInStop {
        found: Arc::clone(&found),
    };
    let ep = env.setup_endpoint("looks-for-itself", endpoint).unwrap();
    env.stop(&ep);
    wait_until("on_stop ran", DEADLINE, || found.lock().unwrap().is_some());
    let (registered, sent) = found.lock().unwrap().take().unwrap();
    assert!(!registered, "has_endpoint is false in on_stop");
    assert_eq!(
        sent,
        Err(RpcError::EndpointNotFound {
            name: "looks-for-itself".into()
        })
    );
}

/// Counts with a deliberately non-atomic read-modify-write on shared state (Spark's
/// `result += 1`), and notes any overlap of two handlers.
struct SerialCounter {
    count: Arc<AtomicU64>,
    in_handler: Arc<AtomicBool>,
    overlapped: Arc<AtomicBool>,
}

impl RpcEndpoint for SerialCounter {
    type Protocol = ProbeProtocol;

    fn receive(
        &mut self,
        _: &EndpointContext<'_, ProbeProtocol>,
        _: ProbeMessage,
    ) -> HandlerResult {
        if self.in_handler.swap(true, Ordering::SeqCst) {
            self.overlapped.store(true, Ordering::SeqCst);
        }
        let seen = self.count.load(Ordering::Relaxed);
        thread::yield_now();
        self.count.store(seen + 1, Ordering::Relaxed);
        self.in_handler.store(false, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn receive_is_called_in_sequence() {
    let env = Env::server("lifecycle");
    for round in 0..100 {
        let count = Arc::new(AtomicU64::new(0));
        let overlapped = Arc::new(AtomicBool::new(false));
        let counter = SerialCounter {
            count: Arc::clone(&count),
            in_handler: Arc::default(),
            overlapped: Arc::clone(&overlapped),
        };
        let ep = env
            .setup_endpoint(&format!("receive-in-sequence-{round}"), counter)
            .unwrap();
        let senders: Vec<_> = (0..10)
            .map(|_| {
                let ep = ep.clone();
                thread::spawn(move || {
                    for _ in 0..100 {
                        ep.send(text("x")).unwrap();
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        wait_until("1000 messages are counted", DEADLINE, || {
            count.load(Ordering::Relaxed) >= 1000
        });
        env.stop(&ep);
        assert_eq!(count.load(Ordering::Relaxed), 1000, "round {round}");
        assert!(
            !overlapped.load(Ordering::SeqCst),
            "round {round}: handlers overlapped"
        );
    }
}

#[test]
fn stop_is_reentrant_and_on_stop_runs_once() {
    let env = Env::server("lifecycle");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("stop-twice", probe).unwrap();
    env.stop(&ep);
    env.stop(&ep);
    h.wait_for_event(&Event::Stop);
    env.stop(&ep);
    // Shutdown joins every loop, so any second `on_stop` would have run by now.
    env.stop_now();
    assert_eq!(h.count(|e| *e == Event::Stop), 1);
}

#[test]
fn stop_from_inside_a_handler_runs_on_stop() {
    let env = Env::server("lifecycle");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("stops-itself", probe).unwrap();
    ep.send(ProbeMessage::StopSelf).unwrap();
    h.wait_for_event(&Event::Stop);
    assert!(!env.has_endpoint("stops-itself"));
}

#[test]
fn a_stopped_name_is_free_at_once() {
    let env = Env::server("lifecycle");
    let (first, first_h) = Probe::new();
    let ep = env.setup_endpoint("reused", first).unwrap();
    env.stop(&ep);
    let (second, second_h) = Probe::new();
    let again = env
        .setup_endpoint("reused", second)
        .expect("the name is free after stop");
    again.send(text("to the second")).unwrap();
    second_h.wait_for("the second endpoint got the message", |e| {
        matches!(e, Event::Text { .. })
    });
    first_h.wait_for_event(&Event::Stop);
    assert!(first_h.texts().is_empty());
}

#[test]
fn stop_through_a_ref_of_another_env_stops_nothing_here() {
    let server = Env::server("server");
    let (probe, h) = Probe::new();
    server.setup_endpoint("remote", probe).unwrap();
    let client = Env::client("client");
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "remote")
        .unwrap();
    client.stop(&ep);
    assert_eq!(
        util::answer(ep.ask(util::echo("alive"))),
        Ok("alive".into())
    );
    assert!(!h.has(&Event::Stop));
}
