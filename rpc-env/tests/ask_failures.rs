//! How asks fail, local and remote alike: a handler's error or panic (Spark's "Any throwable
//! from receiveAndReply is first sent back with ctx.sendFailure", and `NettyRpcEnvSuite`'s
//! "StackOverflowError should be sent back"), a reply port dropped without an answer (Ember's
//! `NoReply`), and messages to unknown or stopped endpoints (Spark's `Dispatcher` drops or
//! fails them), which in Ember
//! fail at once instead of timing out.

pub mod util;

use std::time::Duration;

use rpc_env::{EndpointRef, RpcError, RpcTimeout};
use util::{answer, echo, text, Env, Event, Probe, ProbeAsk, ProbeProtocol};

/// A server env with a probe called `name`, and a client-mode env's ref to it.
fn remote_probe(name: &str) -> (Env, Env, EndpointRef<ProbeProtocol>, util::ProbeHandle) {
    let server = Env::server("server");
    let (probe, h) = Probe::new();
    server.setup_endpoint(name, probe).unwrap();
    let client = Env::client("client");
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), name)
        .unwrap();
    (server, client, ep, h)
}

/// A long timeout: these asks must fail at once, not by timing out.
fn long() -> RpcTimeout {
    RpcTimeout::new(Duration::from_secs(600), "ember.rpc.askTimeout")
}

fn err_with(ep: &EndpointRef<ProbeProtocol>) -> Result<String, RpcError> {
    let make = |reply| ProbeAsk::ErrWith {
        message: "Oops".into(),
        reply,
    };
    answer(ep.ask_with_rpc_timeout(make, &long()))
}

fn panic_with(ep: &EndpointRef<ProbeProtocol>) -> Result<String, RpcError> {
    let make = |reply| ProbeAsk::PanicWith {
        message: "Oops".into(),
        reply,
    };
    answer(ep.ask_with_rpc_timeout(make, &long()))
}

fn drop_reply(ep: &EndpointRef<ProbeProtocol>) -> Result<String, RpcError> {
    answer(ep.ask_with_rpc_timeout(|reply| ProbeAsk::DropReply { reply }, &long()))
}

#[test]
fn a_handler_error_fails_the_local_ask_with_its_message_and_reaches_on_error() {
    let env = Env::server("local");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("errs", probe).unwrap();
    assert_eq!(err_with(&ep), Err(RpcError::failure("Oops")));
    h.wait_for_event(&Event::Error("Oops".into()));
}

#[test]
fn a_handler_error_fails_the_remote_ask_with_its_message_and_reaches_on_error() {
    let (_server, _client, ep, h) = remote_probe("errs");
    assert_eq!(err_with(&ep), Err(RpcError::failure("Oops")));
    h.wait_for_event(&Event::Error("Oops".into()));
}

#[test]
fn a_handler_panic_fails_the_local_ask_with_its_message() {
    let env = Env::server("local");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("panics", probe).unwrap();
    assert_eq!(panic_with(&ep), Err(RpcError::failure("Oops")));
    h.wait_for_event(&Event::Error("Oops".into()));
    assert_eq!(answer(ep.ask(echo("alive"))), Ok("alive".to_string()));
}

#[test]
fn a_handler_panic_fails_the_remote_ask_with_its_message() {
    let (_server, _client, ep, h) = remote_probe("panics");
    assert_eq!(panic_with(&ep), Err(RpcError::failure("Oops")));
    h.wait_for_event(&Event::Error("Oops".into()));
    assert_eq!(answer(ep.ask(echo("alive"))), Ok("alive".to_string()));
}

#[test]
fn a_dropped_reply_port_fails_the_local_ask_at_once() {
    let env = Env::server("local");
    let (probe, _h) = Probe::new();
    let ep = env.setup_endpoint("drops", probe).unwrap();
    let error = drop_reply(&ep).unwrap_err();
    assert_eq!(
        error,
        RpcError::NoReply {
            endpoint: "drops".into()
        }
    );
    assert_eq!(error.to_string(), "drops dropped the ask without replying");
}

#[test]
fn a_dropped_reply_port_fails_the_remote_ask_at_once() {
    let (_server, _client, ep, _h) = remote_probe("drops");
    let error = drop_reply(&ep).unwrap_err();
    assert_eq!(error.to_string(), "drops dropped the ask without replying");
    assert_eq!(
        error,
        RpcError::NoReply {
            endpoint: "drops".into()
        }
    );
}

#[test]
fn a_local_ask_to_an_unknown_endpoint_fails_at_once() {
    let env = Env::server("local");
    let ep = env.local_ref::<ProbeProtocol>("nope");
    let error = answer(ep.ask_with_rpc_timeout(echo("hi"), &long())).unwrap_err();
    assert_eq!(
        error,
        RpcError::EndpointNotFound {
            name: "nope".into()
        }
    );
    assert_eq!(error.to_string(), "Could not find nope.");
}

#[test]
fn a_local_send_to_an_unknown_endpoint_fails() {
    let env = Env::server("local");
    let ep = env.local_ref::<ProbeProtocol>("nope");
    assert_eq!(
        ep.send(text("hi")),
        Err(RpcError::EndpointNotFound {
            name: "nope".into()
        })
    );
}

#[test]
fn a_local_ask_to_a_stopped_endpoint_fails_at_once() {
    let env = Env::server("local");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("stopped", probe).unwrap();
    env.stop(&ep);
    let error = answer(ep.ask_with_rpc_timeout(echo("hi"), &long())).unwrap_err();
    assert_eq!(
        error,
        RpcError::EndpointNotFound {
            name: "stopped".into()
        }
    );
    h.wait_for_event(&Event::Stop);
    assert_eq!(h.count(|e| matches!(e, Event::Asked { .. })), 0);
}

#[test]
fn a_remote_ask_to_an_unknown_endpoint_fails_at_once() {
    let (server, client, _ep, _h) = remote_probe("known");
    // A ref got by looking up a name that existed then; the endpoint is gone now.
    let (probe, _gone) = Probe::new();
    let doomed = server.setup_endpoint("doomed", probe).unwrap();
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "doomed")
        .unwrap();
    server.stop(&doomed);
    let error = answer(ep.ask_with_rpc_timeout(echo("hi"), &long())).unwrap_err();
    assert_eq!(error.to_string(), "Could not find doomed.");
    assert_eq!(
        error,
        RpcError::EndpointNotFound {
            name: "doomed".into()
        }
    );
}

#[test]
fn a_remote_send_to_an_unknown_endpoint_is_not_reported_and_spoils_nothing() {
    let (server, client, ep, h) = remote_probe("known");
    let (probe, _gone) = Probe::new();
    let doomed = server.setup_endpoint("doomed", probe).unwrap();
    let gone = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "doomed")
        .unwrap();
    server.stop(&doomed);
    assert_eq!(gone.send(text("into the void")), Ok(()));
    ep.send(text("to the living")).unwrap();
    assert_eq!(answer(ep.ask(echo("after"))), Ok("after".to_string()));
    assert_eq!(h.texts(), ["to the living"]);
    assert_eq!(h.count(|e| matches!(e, Event::Disconnected(_))), 0);
}

#[test]
fn a_ref_of_the_wrong_protocol_fails_locally() {
    struct Other;
    impl rpc_env::Protocol for Other {
        type Message = rpc_env::NoMessage;
        type Ask = ProbeAsk;
        type Control = rpc_env::NoMessage;
    }
    let env = Env::server("local");
    let (probe, _h) = Probe::new();
    env.setup_endpoint("typed", probe).unwrap();
    let wrong = env.local_ref::<Other>("typed");
    let failed = answer(wrong.ask(echo("hi")));
    assert_eq!(
        failed,
        Err(RpcError::WrongProtocol {
            name: "typed".into(),
            speaks: "ProbeProtocol".into(),
            used_as: "Other".into(),
        })
    );
    let text = failed.unwrap_err().to_string();
    assert_eq!(
        text,
        "Endpoint typed speaks ProbeProtocol, but it was used as Other"
    );
}
