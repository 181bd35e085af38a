//! Dedicated ("isolated") endpoints and the survival of message loops, ported from Spark's
//! `RpcEnvSuite` and `NettyRpcEnvSuite`:
//!
//! - `RpcEnvSuite` "isolated endpoints": with one shared loop thread, a dedicated endpoint blocked in
//!   its handler does not starve the shared loop (and, the other way round, a blocked shared
//!   loop does not starve a dedicated endpoint)
//! - `NettyRpcEnvSuite` "StackOverflowError should be sent back and Dispatcher should
//!   survive", with panics
//!   in place of `StackOverflowError`: the ask fails with the panic's message and the loop
//!   (shared or dedicated) goes on answering

pub mod util;

use std::time::Duration;

use rpc_env::{keys, EndpointRef, RpcConf, RpcError, RpcTimeout};
use util::{answer, echo, wait_until, Env, Event, Probe, ProbeAsk, ProbeProtocol, DEADLINE};

fn threads(n: usize) -> RpcConf {
    RpcConf::new().with(keys::DISPATCHER_NUM_THREADS, n.to_string())
}

/// Far longer than any deadline here.
fn long() -> RpcTimeout {
    RpcTimeout::new(Duration::from_secs(600), "ember.rpc.askTimeout")
}

fn block(text: &str) -> impl FnOnce(rpc_env::Reply<String>) -> ProbeAsk {
    let text = text.to_string();
    move |reply| ProbeAsk::Block { text, reply }
}

#[test]
fn a_blocked_dedicated_endpoint_does_not_starve_the_shared_loop() {
    let env = Env::server_with("isolated", threads(1));
    let (blocking, blocking_h) = Probe::dedicated();
    let blocking = env.setup_endpoint("blocking", blocking).unwrap();
    let (non_blocking, _h) = Probe::new();
    let non_blocking = env.setup_endpoint("non-blocking", non_blocking).unwrap();

    let blocked = blocking.ask_with_rpc_timeout(block("hi"), &long());
    wait_until("the dedicated handler blocks", DEADLINE, || {
        blocking_h.blocked() == 1
    });
    let quick = RpcTimeout::new(Duration::from_secs(5), "ember.rpc.short.timeout");
    assert_eq!(
        answer(non_blocking.ask_with_rpc_timeout(echo("hello"), &quick)),
        Ok("hello".to_string())
    );
    blocking_h.open_latch();
    assert_eq!(answer(blocked), Ok("hi".to_string()));
}

#[test]
fn a_blocked_shared_loop_does_not_starve_a_dedicated_endpoint() {
    let env = Env::server_with("isolated", threads(1));
    let (blocking, blocking_h) = Probe::new();
    let blocking = env.setup_endpoint("blocking-shared", blocking).unwrap();
    let (dedicated, _h) = Probe::dedicated();
    let dedicated = env.setup_endpoint("dedicated", dedicated).unwrap();

    let blocked = blocking.ask_with_rpc_timeout(block("hi"), &long());
    wait_until("the only shared thread blocks", DEADLINE, || {
        blocking_h.blocked() == 1
    });
    assert_eq!(
        answer(dedicated.ask(echo("hello"))),
        Ok("hello".to_string())
    );
    blocking_h.open_latch();
    assert_eq!(answer(blocked), Ok("hi".to_string()));
}

fn panic_twice_then_answer(ep: &EndpointRef<ProbeProtocol>, h: &util::ProbeHandle) {
    for _ in 0..2 {
        let make = |reply| ProbeAsk::PanicWith {
            message: "stack overflow, sort of".into(),
            reply,
        };
        assert_eq!(
            answer(ep.ask_with_rpc_timeout(make, &long())),
            Err(RpcError::failure("stack overflow, sort of"))
        );
    }
    assert_eq!(answer(ep.ask(echo("100"))), Ok("100".to_string()));
    assert_eq!(
        h.count(|e| *e == Event::Error("stack overflow, sort of".into())),
        2
    );
}

#[test]
fn a_panic_is_sent_back_and_the_shared_loop_survives() {
    for n in [1, 2] {
        let env = Env::server_with("panics", threads(n));
        let (probe, h) = Probe::new();
        let ep = env.setup_endpoint("panics", probe).unwrap();
        panic_twice_then_answer(&ep, &h);
        // And another endpoint of the same loop is fine too.
        let (other, _h) = Probe::new();
        let other = env.setup_endpoint("other", other).unwrap();
        assert_eq!(answer(other.ask(echo("fine"))), Ok("fine".to_string()));
    }
}

#[test]
fn a_panic_is_sent_back_remotely_and_the_loop_survives() {
    let server = Env::server_with("panics", threads(1));
    let (probe, h) = Probe::new();
    server.setup_endpoint("panics", probe).unwrap();
    let client = Env::client("client");
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "panics")
        .unwrap();
    panic_twice_then_answer(&ep, &h);
}

#[test]
fn a_panic_in_a_dedicated_endpoint_is_sent_back_and_its_loop_survives() {
    let env = Env::server_with("panics", threads(1));
    let (probe, h) = Probe::dedicated();
    let ep = env.setup_endpoint("panics-dedicated", probe).unwrap();
    panic_twice_then_answer(&ep, &h);
}

#[test]
fn a_stopped_dedicated_endpoint_releases_its_name_and_runs_on_stop() {
    let env = Env::server_with("dedicated", threads(1));
    let (probe, h) = Probe::dedicated();
    let ep = env.setup_endpoint("dedicated", probe).unwrap();
    assert_eq!(answer(ep.ask(echo("hi"))), Ok("hi".to_string()));
    env.stop(&ep);
    h.wait_for_event(&Event::Stop);
    let (again, again_h) = Probe::dedicated();
    let again = env.setup_endpoint("dedicated", again).unwrap();
    assert_eq!(answer(again.ask(echo("again"))), Ok("again".to_string()));
    env.stop(&again);
    again_h.wait_for_event(&Event::Stop);
}
