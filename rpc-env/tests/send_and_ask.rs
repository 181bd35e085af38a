//! Sends and asks, local and remote, ported from Spark's `RpcEnvSuite`:
//!
//! - "send a message locally", "send a message remotely"
//! - "ask a message locally", "ask a message remotely"
//! - "sendWithReply", "sendWithReply: remotely" (the asynchronous ask: `on_complete`)
//! - "sendWithReply: error", "sendWithReply: remotely error" (`reply.fail`)
//!
//! plus the per-peer FIFO order of remote messages and concurrent asks on one connection.
//! ("send a RpcEndpointRef" is in `refs_in_messages.rs`.)

pub mod util;

use std::sync::mpsc;
use std::thread;

use rpc_env::{EndpointRef, RpcError};
use util::{answer, echo, text, Env, Event, Probe, ProbeAsk, ProbeProtocol, DEADLINE};

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

#[test]
fn send_a_message_locally() {
    let env = Env::server("local");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("send-locally", probe).unwrap();
    ep.send(text("hello")).unwrap();
    h.wait_for("hello arrives", |e| matches!(e, Event::Text { .. }));
    assert_eq!(
        h.events()[1],
        Event::Text {
            text: "hello".into(),
            sender: Some(env.addr())
        }
    );
}

#[test]
fn send_a_message_remotely_from_a_client_mode_env() {
    let (server, _client, ep, h) = remote_probe("send-remotely");
    ep.send(text("hello")).unwrap();
    h.wait_for("hello arrives", |e| matches!(e, Event::Text { .. }));
    assert_eq!(h.texts(), ["hello"]);
    // A client-mode sender is known by its socket address.
    let Some(Event::Text {
        sender: Some(sender),
        ..
    }) = h
        .events()
        .into_iter()
        .find(|e| matches!(e, Event::Text { .. }))
    else {
        panic!("the message has a sender");
    };
    assert_eq!(sender.host(), "127.0.0.1");
    assert_ne!(sender.port(), server.addr().port());
}

#[test]
fn send_a_message_remotely_from_a_server_mode_env_names_its_address() {
    let (server, _client, _ep, h) = remote_probe("send-remotely");
    let other = Env::server("other-server");
    let ep = other
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "send-remotely")
        .unwrap();
    ep.send(text("hello")).unwrap();
    h.wait_for_event(&Event::Text {
        text: "hello".into(),
        sender: Some(other.addr()),
    });
}

#[test]
fn ask_a_message_locally() {
    let env = Env::server("local");
    let (probe, _h) = Probe::new();
    let ep = env.setup_endpoint("ask-locally", probe).unwrap();
    assert_eq!(ep.ask_sync(echo("hello")), Ok("hello".to_string()));
}

#[test]
fn ask_a_message_remotely() {
    let (_server, _client, ep, h) = remote_probe("ask-remotely");
    assert_eq!(ep.ask_sync(echo("hello")), Ok("hello".to_string()));
    assert_eq!(
        h.count(|e| matches!(e, Event::Asked { what: "Echo", .. })),
        1
    );
}

#[test]
fn ask_in_a_client_mode_env_to_its_own_endpoint() {
    let client = Env::client("client");
    let (probe, _h) = Probe::new();
    let ep = client.setup_endpoint("local-in-client", probe).unwrap();
    assert_eq!(ep.ask_sync(echo("hello")), Ok("hello".to_string()));
}

/// Asks without waiting and takes the answer through `on_complete`.
fn ask_with_callback(ep: &EndpointRef<ProbeProtocol>) -> Result<String, RpcError> {
    let (tx, rx) = mpsc::channel();
    ep.ask(echo("Hi")).on_complete(move |result| {
        let _ = tx.send(result);
    });
    rx.recv_timeout(DEADLINE).expect("on_complete runs")
}

#[test]
fn send_with_reply_completes_the_callback() {
    let env = Env::server("local");
    let (probe, _h) = Probe::new();
    let ep = env.setup_endpoint("send-with-reply", probe).unwrap();
    assert_eq!(ask_with_callback(&ep), Ok("Hi".to_string()));
    env.stop(&ep);
}

#[test]
fn send_with_reply_remotely_completes_the_callback() {
    let (_server, _client, ep, _h) = remote_probe("send-with-reply");
    assert_eq!(ask_with_callback(&ep), Ok("Hi".to_string()));
}

#[test]
fn on_complete_after_the_answer_runs_at_once() {
    let env = Env::server("local");
    let (probe, _h) = Probe::new();
    let ep = env.setup_endpoint("done-before-callback", probe).unwrap();
    let handle = ep.ask(echo("early"));
    util::wait_until("the ask ends", DEADLINE, || handle.is_done());
    let (tx, rx) = mpsc::channel();
    handle.on_complete(move |result| tx.send(result).unwrap());
    assert_eq!(rx.try_recv(), Ok(Ok("early".to_string())));
}

#[test]
fn poll_gives_the_handle_back_until_the_answer_comes() {
    let (_server, _client, ep, h) = remote_probe("poll");
    let handle = ep.ask(|reply| ProbeAsk::Hold { reply });
    util::wait_until("the server holds the reply", DEADLINE, || h.held() == 1);
    let handle = handle.poll().expect_err("no answer yet");
    assert!(!handle.is_done());
    h.release_held("now");
    assert_eq!(answer(handle), Ok("now".to_string()));
}

fn fail_with_oops(ep: &EndpointRef<ProbeProtocol>) -> Result<String, RpcError> {
    answer(ep.ask(|reply| ProbeAsk::FailWith {
        message: "Oops".into(),
        reply,
    }))
}

#[test]
fn send_with_reply_error_reaches_the_asker() {
    let env = Env::server("local");
    let (probe, _h) = Probe::new();
    let ep = env.setup_endpoint("send-with-reply-error", probe).unwrap();
    let error = fail_with_oops(&ep).unwrap_err();
    assert_eq!(
        error,
        RpcError::Failure {
            message: "Oops".into()
        }
    );
    assert_eq!(error.to_string(), "Oops");
}

#[test]
fn send_with_reply_error_crosses_the_wire() {
    let (_server, _client, ep, _h) = remote_probe("send-with-reply-error");
    let error = fail_with_oops(&ep).unwrap_err();
    assert_eq!(
        error,
        RpcError::Failure {
            message: "Oops".into()
        }
    );
    // The connection is fine afterwards.
    assert_eq!(answer(ep.ask(echo("after"))), Ok("after".to_string()));
}

#[test]
fn remote_messages_from_one_peer_arrive_in_order() {
    let (_server, _client, ep, h) = remote_probe("fifo");
    for i in 0..1000 {
        ep.send(text(&i.to_string())).unwrap();
    }
    // The ask travels behind the sends on the same connection.
    assert_eq!(answer(ep.ask(|reply| ProbeAsk::Count { reply })), Ok(1000));
    let expected: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    assert_eq!(h.texts(), expected);
}

#[test]
fn concurrent_remote_asks_each_get_their_own_answer() {
    let (_server, _client, ep, _h) = remote_probe("concurrent");
    let askers: Vec<_> = (0..8)
        .map(|t| {
            let ep = ep.clone();
            thread::spawn(move || {
                let handles: Vec<_> = (0..200)
                    .map(|i| (format!("{t}-{i}"), ep.ask(echo(&format!("{t}-{i}")))))
                    .collect();
                for (expected, handle) in handles {
                    assert_eq!(answer(handle), Ok(expected));
                }
            })
        })
        .collect();
    for asker in askers {
        asker.join().expect("every answer matches its ask");
    }
}

#[test]
fn a_late_remote_lookup_sees_an_endpoint_registered_after_the_connection() {
    let (server, client, _ep, _h) = remote_probe("first");
    let (probe, _h2) = Probe::new();
    server.setup_endpoint("second", probe).unwrap();
    let second = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "second")
        .unwrap();
    assert_eq!(answer(second.ask(echo("hi"))), Ok("hi".to_string()));
}

#[test]
fn a_send_is_not_thread_bound() {
    let (_server, _client, ep, h) = remote_probe("from-thread");
    let sender = thread::spawn(move || ep.send(text("from a thread")));
    sender.join().unwrap().unwrap();
    h.wait_for("the message arrives", |e| matches!(e, Event::Text { .. }));
}
