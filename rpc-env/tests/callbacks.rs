//! `on_complete` callbacks (Spark's `Future.onComplete` on an ask): the callback runs once
//! with the ask's outcome, whichever thread ends the ask: a handler replying locally, the IO
//! thread reading a remote reply, the timer thread firing a timeout. A callback that panics
//! harms only itself: Spark runs callbacks through an `ExecutionContext` that reports their
//! exceptions, and the Netty and timeout threads carry on. Also the pattern Ember prescribes
//! for a handler that needs an answer: ask without waiting and pipe the answer back to
//! itself as a message (`ARCHITECTURE.md`), which works even with one loop thread.

pub mod util;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rpc_env::{
    keys, EndpointContext, EndpointRef, HandlerResult, Reply, RpcConf, RpcEndpoint, RpcError,
    RpcTimeout,
};
use util::{answer, echo, text, Env, Event, Probe, ProbeAsk, ProbeMessage, ProbeProtocol};
use util::{wait_until, ProbeHandle, DEADLINE};

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

fn hold(reply: Reply<String>) -> ProbeAsk {
    ProbeAsk::Hold { reply }
}

#[test]
fn a_callback_gets_a_remote_failure_and_a_timeout() {
    let (_server, _client, ep, _h) = remote_probe("callbacks");
    let (tx, rx) = mpsc::channel();
    let failed = tx.clone();
    ep.ask(|reply| ProbeAsk::FailWith {
        message: "Oops".into(),
        reply,
    })
    .on_complete(move |r| failed.send(r).unwrap());
    assert_eq!(
        rx.recv_timeout(DEADLINE),
        Ok(Err(RpcError::failure("Oops")))
    );
    let timeout = RpcTimeout::new(Duration::from_millis(20), "ember.rpc.short.timeout");
    ep.ask_with_rpc_timeout(hold, &timeout)
        .on_complete(move |r| tx.send(r).unwrap());
    let outcome = rx.recv_timeout(DEADLINE).expect("the callback runs");
    assert!(
        matches!(outcome, Err(RpcError::Timeout { .. })),
        "{outcome:?}"
    );
}

#[test]
fn a_panicking_callback_on_a_remote_reply_harms_nothing_else() {
    let (_server, _client, ep, h) = remote_probe("callbacks");
    let (ran, ran_rx) = mpsc::channel();
    ep.ask(hold).on_complete(move |_| {
        let _ = ran.send(());
        panic!("a careless callback");
    });
    // The callback is in place before the reply exists: the IO thread runs it.
    wait_until("the server holds the reply", DEADLINE, || h.held() == 1);
    h.release_held("boom");
    ran_rx.recv_timeout(DEADLINE).expect("the callback ran");
    // The same connection, hence the same IO thread, goes on delivering replies.
    for i in 0..10 {
        let text = format!("after {i}");
        assert_eq!(answer(ep.ask(echo(&text))), Ok(text));
    }
}

#[test]
fn a_panicking_callback_on_a_timeout_harms_nothing_else() {
    let env = Env::server("local");
    let (probe, _h) = Probe::new();
    let ep = env.setup_endpoint("callbacks", probe).unwrap();
    let test_thread = thread::current().id();
    let short = |ms| RpcTimeout::new(Duration::from_millis(ms), "ember.rpc.short.timeout");
    // The callback must be in place before the timeout fires, for the timer thread to run
    // it; should a loaded machine fire it first, try again with more time.
    let on_timer = [10, 100, 1000, 5000].into_iter().any(|ms| {
        let (ran, ran_rx) = mpsc::channel();
        ep.ask_with_rpc_timeout(hold, &short(ms))
            .on_complete(move |_| {
                let elsewhere = thread::current().id() != test_thread;
                let _ = ran.send(elsewhere);
                if elsewhere {
                    panic!("a careless callback");
                }
            });
        ran_rx.recv_timeout(DEADLINE).expect("the callback ran")
    });
    assert!(on_timer, "the timer thread never ran the callback");
    // The timer thread goes on firing timeouts.
    let later = answer(ep.ask_with_rpc_timeout(hold, &short(10)));
    assert!(matches!(later, Err(RpcError::Timeout { .. })), "{later:?}");
}

/// On `Text "<x>"`, asks `target` to echo `answer <x>` without waiting; the callback sends
/// the answer back to itself, where it is recorded.
struct Relay {
    target: EndpointRef<ProbeProtocol>,
    answers: mpsc::Sender<String>,
}

impl RpcEndpoint for Relay {
    type Protocol = ProbeProtocol;
    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, ProbeProtocol>,
        msg: ProbeMessage,
    ) -> HandlerResult {
        let ProbeMessage::Text { text } = msg else {
            return Ok(());
        };
        if let Some(answer) = text.strip_prefix("answer ") {
            let _ = self.answers.send(answer.to_string());
            return Ok(());
        }
        let me = ctx.self_ref().clone();
        self.target
            .ask(echo(&format!("answer {text}")))
            .on_complete(move |result| {
                let text = result.unwrap_or_else(|e| format!("answer failed: {e}"));
                let _ = me.send(ProbeMessage::Text { text });
            });
        Ok(())
    }
}

#[test]
fn a_handler_pipes_an_answer_back_to_itself_on_one_loop_thread() {
    let conf = RpcConf::new().with(keys::DISPATCHER_NUM_THREADS, "1");
    let env = Env::server_with("one-thread", conf);
    let (probe, h) = Probe::new();
    let target = env.setup_endpoint("target", probe).unwrap();
    let (tx, answers) = mpsc::channel();
    let relay = env
        .setup_endpoint(
            "relay",
            Relay {
                target,
                answers: tx,
            },
        )
        .unwrap();
    for i in 0..10 {
        relay.send(text(&i.to_string())).unwrap();
    }
    let got: Vec<String> = (0..10)
        .map(|_| answers.recv_timeout(DEADLINE).expect("an answer"))
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(
        h.count(|e| matches!(e, Event::Asked { what: "Echo", .. })),
        10
    );
}
