//! Spark's InboxSuite, on the sans-thread inbox: the test thread runs it.
use super::*;
use crate::ask::{AskHandle, AskShared, LocalCall, Reply};
use crate::env::RpcEnvConfig;
use crate::{message, RpcEnv};

message! {
    enum TestMsg {
        Text { text: String },
        Panic,
    }
}

message! {
    enum TestAsk {
        Echo { text: String, reply: Reply<String> },
        Panic { reply: Reply<String> },
    }
}

struct TestProtocol;
impl Protocol for TestProtocol {
    type Message = TestMsg;
    type Ask = TestAsk;
    type Control = crate::NoMessage;
}

type Log = Arc<Mutex<Vec<String>>>;

struct Recorder(Log);

impl RpcEndpoint for Recorder {
    type Protocol = TestProtocol;
    fn on_start(&mut self, _: &EndpointContext<'_, TestProtocol>) -> HandlerResult {
        self.0.lock().push("start".into());
        Ok(())
    }
    fn receive(&mut self, _: &EndpointContext<'_, TestProtocol>, msg: TestMsg) -> HandlerResult {
        match msg {
            TestMsg::Text { text } => self.0.lock().push(format!("receive {text}")),
            TestMsg::Panic => panic!("Oops"),
        }
        Ok(())
    }
    fn receive_and_reply(
        &mut self,
        _: &EndpointContext<'_, TestProtocol>,
        ask: TestAsk,
    ) -> HandlerResult {
        match ask {
            TestAsk::Echo { text, reply } => {
                self.0.lock().push(format!("ask {text}"));
                reply.send(text);
            }
            TestAsk::Panic { reply: _reply } => panic!("Oops in ask"),
        }
        Ok(())
    }
    fn on_error(&mut self, _: &EndpointContext<'_, TestProtocol>, error: EndpointError) {
        self.0.lock().push(format!("error {error}"));
    }
    fn on_connected(&mut self, _: &EndpointContext<'_, TestProtocol>, remote: &RpcAddress) {
        self.0.lock().push(format!("connected {remote}"));
    }
    fn on_disconnected(&mut self, _: &EndpointContext<'_, TestProtocol>, remote: &RpcAddress) {
        self.0.lock().push(format!("disconnected {remote}"));
    }
    fn on_network_error(
        &mut self,
        _: &EndpointContext<'_, TestProtocol>,
        error: &RpcError,
        remote: &RpcAddress,
    ) {
        self.0
            .lock()
            .push(format!("network error {error} {remote}"));
    }
    fn on_stop(&mut self, _: &RpcEnv) -> HandlerResult {
        self.0.lock().push("stop".into());
        Ok(())
    }
}

/// An inbox on a loop with no threads, so only the test runs it.
fn inbox() -> (RpcEnv, Arc<Inbox<TestProtocol>>, Log) {
    let env = RpcEnv::create(RpcEnvConfig::client("inbox-test")).expect("env");
    let log: Log = Arc::default();
    let idle_loop = MessageLoop::start(0, |_| String::new()).expect("loop");
    let self_ref = env.local_ref::<TestProtocol>("test");
    let inbox = Inbox::new(
        Recorder(Arc::clone(&log)),
        self_ref,
        env.clone(),
        idle_loop,
        Threading::Shared,
    );
    (env, inbox, log)
}

fn text(t: &str) -> InboxMessage<TestProtocol> {
    InboxMessage::OneWay {
        sender: None,
        msg: TestMsg::Text { text: t.into() },
    }
}

fn local_ask<T: Send + 'static>(
    make: impl FnOnce(Reply<T>) -> TestAsk,
) -> (InboxMessage<TestProtocol>, AskHandle<T>) {
    let shared = AskShared::new();
    let call = Arc::new(LocalCall::new(Arc::clone(&shared), None, Arc::from("test")));
    let ask = make(Reply::local(Arc::clone(&call)));
    (
        InboxMessage::Ask {
            sender: None,
            ask,
            call,
        },
        AskHandle::new(shared, None),
    )
}

fn run(inbox: &Arc<Inbox<TestProtocol>>) {
    Arc::clone(inbox).run();
}

#[test]
fn post_runs_on_start_first_and_on_stop_last() {
    let (env, inbox, log) = inbox();
    inbox.post(text("hi"));
    run(&inbox);
    assert_eq!(*log.lock(), ["start", "receive hi"]);
    inbox.stop();
    run(&inbox);
    assert_eq!(*log.lock(), ["start", "receive hi", "stop"]);
    env.shutdown();
}

#[test]
fn post_with_reply_answers_the_ask() {
    let (env, inbox, log) = inbox();
    let (msg, handle) = local_ask(|reply| TestAsk::Echo {
        text: "hi".into(),
        reply,
    });
    inbox.post(msg);
    run(&inbox);
    assert_eq!(handle.wait(), Ok("hi".to_string()));
    assert_eq!(*log.lock(), ["start", "ask hi"]);
    env.shutdown();
}

#[test]
fn messages_queued_before_a_stop_are_handled_later_ones_dropped_and_counted() {
    let (env, inbox, log) = inbox();
    let senders: Vec<_> = (0..10)
        .map(|t| {
            let inbox = Arc::clone(&inbox);
            std::thread::spawn(move || {
                for i in 0..100 {
                    inbox.post(text(&format!("{t}-{i}")));
                }
            })
        })
        .collect();
    run(&inbox);
    inbox.stop();
    run(&inbox);
    for s in senders {
        s.join().expect("sender thread");
    }
    run(&inbox);
    let received = log
        .lock()
        .iter()
        .filter(|l| l.starts_with("receive"))
        .count() as u64;
    assert_eq!(received + inbox.dropped(), 1000);
    let log = log.lock();
    assert_eq!(log.first().map(String::as_str), Some("start"));
    assert_eq!(log.last().map(String::as_str), Some("stop"));
    drop(log);
    env.shutdown();
}

#[test]
fn an_ask_after_the_stop_fails_at_once_naming_the_endpoint() {
    let (env, inbox, _log) = inbox();
    inbox.stop();
    let (msg, handle) = local_ask(|reply| TestAsk::Echo {
        text: "late".into(),
        reply,
    });
    inbox.post(msg);
    assert_eq!(
        handle.wait(),
        Err(RpcError::EndpointNotFound {
            name: "test".into()
        })
    );
    assert_eq!(inbox.dropped(), 1);
    env.shutdown();
}

#[test]
fn stop_before_start_still_runs_on_start_and_queued_messages_first() {
    let (env, inbox, log) = inbox();
    inbox.post(text("early"));
    inbox.stop();
    run(&inbox);
    assert_eq!(*log.lock(), ["start", "receive early", "stop"]);
    env.shutdown();
}

#[test]
fn network_events_reach_their_callbacks_once() {
    let (env, inbox, log) = inbox();
    let addr = RpcAddress::new("localhost", 11111);
    inbox.post(InboxMessage::Event(NetworkEvent::Connected(addr.clone())));
    inbox.post(InboxMessage::Event(NetworkEvent::Disconnected(
        addr.clone(),
    )));
    inbox.post(InboxMessage::Event(NetworkEvent::Error(
        RpcError::failure("Oops"),
        addr,
    )));
    run(&inbox);
    assert_eq!(
        *log.lock(),
        [
            "start",
            "connected localhost:11111",
            "disconnected localhost:11111",
            "network error Oops localhost:11111"
        ]
    );
    env.shutdown();
}

#[test]
fn a_panicking_handler_reports_to_on_error_and_the_inbox_goes_on() {
    let (env, inbox, log) = inbox();
    inbox.post(InboxMessage::OneWay {
        sender: None,
        msg: TestMsg::Panic,
    });
    let (msg, handle) = local_ask(|reply| TestAsk::Panic { reply });
    inbox.post(msg);
    inbox.post(text("after"));
    run(&inbox);
    assert_eq!(handle.wait(), Err(RpcError::failure("Oops in ask")));
    assert_eq!(
        *log.lock(),
        ["start", "error Oops", "error Oops in ask", "receive after"]
    );
    env.shutdown();
}

#[test]
fn a_dropped_reply_port_fails_the_ask() {
    let (env, inbox, _log) = inbox();
    let shared = AskShared::<String>::new();
    let call = Arc::new(LocalCall::new(Arc::clone(&shared), None, Arc::from("test")));
    drop(Reply::local(Arc::clone(&call)));
    drop(call);
    assert_eq!(
        AskHandle::new(shared, None).wait(),
        Err(RpcError::NoReply {
            endpoint: "test".into()
        })
    );
    drop(inbox);
    env.shutdown();
}
