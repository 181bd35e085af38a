//! The dispatcher alone: a dispatcher of the test's own, registering into a client-mode env
//! that only lends its handle to the endpoints' contexts.

use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::address::RpcAddress;
use crate::endpoint::{ConcurrentRpcEndpoint, EndpointContext, HandlerResult, NoMessage};
use crate::env::RpcEnvConfig;
use crate::{message, Reply};

message! {
    enum Ping {
        Ping { reply: Reply<String> },
    }
}

struct PingProtocol;
impl Protocol for PingProtocol {
    type Message = NoMessage;
    type Ask = Ping;
    type Control = NoMessage;
}

struct OtherProtocol;
impl Protocol for OtherProtocol {
    type Message = NoMessage;
    type Ask = NoMessage;
    type Control = NoMessage;
}

/// Tells the test what happened to it, with the name of the thread it happened on.
struct Witness(mpsc::Sender<String>);

impl Witness {
    fn tell(&self, what: &str) {
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        let _ = self.0.send(format!("{what} on {thread}"));
    }
}

impl RpcEndpoint for Witness {
    type Protocol = PingProtocol;
    fn on_start(&mut self, _: &EndpointContext<'_, PingProtocol>) -> HandlerResult {
        self.tell("start");
        Ok(())
    }
    fn on_connected(&mut self, _: &EndpointContext<'_, PingProtocol>, remote: &RpcAddress) {
        self.tell(&format!("connected {remote}"));
    }
    fn on_stop(&mut self, _: &RpcEnv) -> HandlerResult {
        self.tell("stop");
        Ok(())
    }
}

struct ConcurrentWitness(Mutex<mpsc::Sender<String>>);

impl ConcurrentRpcEndpoint for ConcurrentWitness {
    type Protocol = PingProtocol;
    fn threads(&self) -> usize {
        2
    }
    fn on_start(&self, _: &EndpointContext<'_, PingProtocol>) -> HandlerResult {
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        let _ = self.0.lock().send(format!("start on {thread}"));
        Ok(())
    }
}

fn env() -> RpcEnv {
    RpcEnv::create(RpcEnvConfig::client("dispatcher-test")).expect("env")
}

fn next(events: &mpsc::Receiver<String>) -> String {
    events
        .recv_timeout(Duration::from_secs(20))
        .expect("the endpoint reports in time")
}

#[test]
fn names_are_registered_once_and_free_again_at_once_after_unregister() {
    let env = env();
    let dispatcher = Dispatcher::new(1);
    let (tx, events) = mpsc::channel();
    let before = dispatcher.generation();
    dispatcher
        .register(&env, "a", Witness(tx.clone()))
        .expect("registers");
    assert!(
        dispatcher.generation() > before,
        "lookup caches see the change"
    );
    assert!(dispatcher.verify("a"));
    assert!(!dispatcher.verify("b"));
    assert_eq!(next(&events), "start on dispatcher-event-loop-0");

    let duplicate = dispatcher.register(&env, "a", Witness(tx.clone()));
    assert_eq!(
        duplicate.err(),
        Some(RpcError::DuplicateEndpoint { name: "a".into() })
    );

    let registered = dispatcher.generation();
    dispatcher.unregister("a");
    assert!(dispatcher.generation() > registered);
    assert!(!dispatcher.verify("a"), "the name is free at once");
    assert_eq!(next(&events), "stop on dispatcher-event-loop-0");
    dispatcher.unregister("a");
    dispatcher
        .register(&env, "a", Witness(tx))
        .expect("the name can be taken again");
    assert_eq!(next(&events), "start on dispatcher-event-loop-0");
    dispatcher.stop();
    dispatcher.join();
    env.shutdown();
}

#[test]
fn a_lookup_with_the_wrong_protocol_is_refused() {
    let env = env();
    let dispatcher = Dispatcher::new(1);
    let (tx, _events) = mpsc::channel();
    dispatcher
        .register(&env, "a", Witness(tx))
        .expect("registers");
    assert!(dispatcher.lookup_typed::<PingProtocol>("a").is_ok());
    assert_eq!(
        dispatcher.lookup_typed::<OtherProtocol>("a").err(),
        Some(RpcError::WrongProtocol {
            name: "a".into(),
            speaks: "PingProtocol".into(),
            used_as: "OtherProtocol".into(),
        })
    );
    assert_eq!(
        dispatcher.lookup("nobody").err(),
        Some(RpcError::EndpointNotFound {
            name: "nobody".into()
        })
    );
    dispatcher.stop();
    dispatcher.join();
    env.shutdown();
}

#[test]
fn dedicated_and_concurrent_endpoints_run_on_loops_of_their_own() {
    let env = env();
    let dispatcher = Dispatcher::new(1);
    let (tx, events) = mpsc::channel();
    struct Dedicated(Witness);
    impl RpcEndpoint for Dedicated {
        type Protocol = PingProtocol;
        fn threading(&self) -> Threading {
            Threading::Dedicated
        }
        fn on_start(&mut self, ctx: &EndpointContext<'_, PingProtocol>) -> HandlerResult {
            self.0.on_start(ctx)
        }
    }
    dispatcher
        .register(&env, "slow", Dedicated(Witness(tx.clone())))
        .expect("registers");
    assert_eq!(next(&events), "start on dispatcher-slow");
    dispatcher
        .register_concurrent(&env, "many", ConcurrentWitness(Mutex::new(tx)))
        .expect("registers");
    let started = next(&events);
    assert!(
        started == "start on dispatcher-many-0" || started == "start on dispatcher-many-1",
        "{started}"
    );
    dispatcher.stop();
    dispatcher.join();
    env.shutdown();
}

#[test]
fn a_broadcast_reaches_every_endpoint_and_stop_stops_them_all() {
    let env = env();
    let dispatcher = Dispatcher::new(2);
    let (tx, events) = mpsc::channel();
    for name in ["a", "b"] {
        dispatcher
            .register(&env, name, Witness(tx.clone()))
            .expect("registers");
    }
    let mut seen: Vec<String> = (0..2).map(|_| next(&events)).collect();
    let peer = RpcAddress::new("peer", 1);
    dispatcher.broadcast(&NetworkEvent::Connected(peer));
    seen.extend((0..2).map(|_| next(&events)));
    dispatcher.stop();
    seen.extend((0..2).map(|_| next(&events)));
    let kinds: Vec<&str> = seen
        .iter()
        .map(|e| e.split(" on ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "start",
            "start",
            "connected peer:1",
            "connected peer:1",
            "stop",
            "stop"
        ]
    );
    assert_eq!(
        dispatcher.register(&env, "late", Witness(tx)).err(),
        Some(RpcError::RegisterAfterStop)
    );
    assert_eq!(dispatcher.lookup("a").err(), Some(RpcError::EnvStopped));
    dispatcher.join();
    env.shutdown();
}
