//! Aborting an ask, ported from Spark's `RpcEnvSuite` "ask a message abort": the handler
//! never answers in time (it holds its reply instead of sleeping 10 s) and the asker aborts;
//! the ask fails with the abort's reason long before its timeout. Plus: a reply after the abort is dropped,
//! other asks on the connection are untouched, and aborting an answered ask changes nothing.

pub mod util;

use std::time::Duration;

use rpc_env::{EndpointRef, Reply, RpcError, RpcTimeout};
use util::{answer, echo, wait_until, Env, Probe, ProbeAsk, ProbeHandle, ProbeProtocol, DEADLINE};

/// Far longer than any deadline here: an abort must end the ask, not its timeout.
fn long() -> RpcTimeout {
    RpcTimeout::new(Duration::from_secs(600), "ember.rpc.askTimeout")
}

fn hold(reply: Reply<String>) -> ProbeAsk {
    ProbeAsk::Hold { reply }
}

fn remote_probe(name: &str) -> (Env, Env, EndpointRef<ProbeProtocol>, ProbeHandle) {
    let server = Env::server("server");
    let (probe, h) = Probe::new();
    server.setup_endpoint(name, probe).unwrap();
    let client = Env::client("client");
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), name)
        .unwrap();
    (server, client, ep, h)
}

#[test]
fn a_remote_ask_aborts_with_the_reason() {
    let (_server, _client, ep, h) = remote_probe("ask-abort");
    let handle = ep.ask_with_rpc_timeout(hold, &long());
    wait_until("the server holds the reply", DEADLINE, || h.held() == 1);
    handle.abort("TestAbort");
    let error = answer(handle).unwrap_err();
    assert_eq!(
        error,
        RpcError::Aborted {
            reason: "TestAbort".into()
        }
    );
    assert!(error.to_string().contains("TestAbort"), "{error}");

    // The reply comes after the abort: dropped, and the connection works on.
    h.release_held("too late");
    assert_eq!(answer(ep.ask(echo("next"))), Ok("next".to_string()));
}

#[test]
fn an_abort_from_another_thread_ends_the_ask() {
    let (_server, _client, ep, h) = remote_probe("ask-abort");
    let handle = ep.ask_with_rpc_timeout(hold, &long());
    wait_until("the server holds the reply", DEADLINE, || h.held() == 1);
    let aborter = std::thread::spawn(move || {
        handle.abort("TestAbort");
        answer(handle)
    });
    let result = aborter.join().unwrap();
    assert!(
        matches!(&result, Err(RpcError::Aborted { reason }) if reason == "TestAbort"),
        "{result:?}"
    );
    h.release_held("too late");
}

#[test]
fn an_abort_before_the_ask_arrives_wins_over_the_reply() {
    let (_server, _client, ep, h) = remote_probe("ask-abort");
    let handle = ep.ask_with_rpc_timeout(hold, &long());
    handle.abort("early");
    wait_until("the server holds the reply", DEADLINE, || h.held() == 1);
    h.release_held("reply");
    assert_eq!(
        answer(handle),
        Err(RpcError::Aborted {
            reason: "early".into()
        })
    );
}

#[test]
fn a_local_ask_aborts_and_a_later_reply_is_dropped() {
    let env = Env::server("local");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("ask-abort", probe).unwrap();
    let handle = ep.ask_with_rpc_timeout(hold, &long());
    wait_until("the endpoint holds the reply", DEADLINE, || h.held() == 1);
    handle.abort("TestAbort");
    h.release_held("too late");
    assert_eq!(
        answer(handle),
        Err(RpcError::Aborted {
            reason: "TestAbort".into()
        })
    );
    assert_eq!(answer(ep.ask(echo("next"))), Ok("next".to_string()));
}

#[test]
fn aborting_one_ask_leaves_the_others_on_the_connection_alone() {
    let (_server, _client, ep, h) = remote_probe("ask-abort");
    let aborted = ep.ask_with_rpc_timeout(hold, &long());
    let kept = ep.ask_with_rpc_timeout(hold, &long());
    wait_until("the server holds both replies", DEADLINE, || h.held() == 2);
    aborted.abort("only this one");
    h.release_held("answer");
    assert_eq!(answer(kept), Ok("answer".to_string()));
    assert!(matches!(answer(aborted), Err(RpcError::Aborted { .. })));
}

#[test]
fn aborting_an_answered_ask_changes_nothing() {
    let (_server, _client, ep, _h) = remote_probe("ask-abort");
    let handle = ep.ask(echo("done"));
    wait_until("the ask is answered", DEADLINE, || handle.is_done());
    handle.abort("too late to abort");
    assert_eq!(answer(handle), Ok("done".to_string()));
}
