//! The inbox of one endpoint: its queue and the rules for running it.
//!
//! `on_start` runs before any message; handlers run one at a time; `stop` lets the messages
//! already queued be handled, then `on_stop` runs last. Messages posted after the stop are
//! dropped and counted (an ask among them fails at once, naming the endpoint).
//!
//! ```text
//!  NotStarted --first run, on_start--> Running --stop requested, queue drained, on_stop--> Stopped
//! ```
//!
//! A stop may be requested in any phase; from then on posts are dropped, but `on_start` and
//! the messages queued before the request still run first.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::address::RpcAddress;
use crate::ask::CallSlot;
use crate::codec::{Decode, DecodeError, Reader};
use crate::connection::Cork;
use crate::endpoint::{
    EndpointContext, HandlerResult, NetworkEvent, Protocol, RpcEndpoint, Threading,
};
use crate::endpoint_ref::EndpointRef;
use crate::env::{DecodeContext, RpcEnv};
use crate::error::{EndpointError, RpcError};
use crate::frame::FrameKind;
use crate::message_loop::{MessageLoop, Runnable};

/// A message waiting in an inbox.
pub(crate) enum InboxMessage<P: Protocol> {
    OneWay {
        sender: Option<Arc<RpcAddress>>,
        msg: P::Message,
    },
    Ask {
        sender: Option<Arc<RpcAddress>>,
        ask: P::Ask,
        call: Arc<dyn CallSlot>,
    },
    Event(NetworkEvent),
}

thread_local! {
    /// How many inline endpoints this thread is running inside one another.
    static INLINE_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Past this many nested inline runs, messages go to the loop: a chain of endpoints sending
/// to each other must not grow the stack without bound.
const MAX_INLINE_DEPTH: usize = 4;

/// How many messages a thread handles before letting other inboxes of its loop run.
const BATCH: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotStarted,
    Running,
    Stopped,
}

struct InboxState<P: Protocol> {
    queue: VecDeque<InboxMessage<P>>,
    phase: Phase,
    stop_requested: bool,
    /// A thread is running this inbox.
    active: bool,
    /// The inbox is on its loop's run queue.
    scheduled: bool,
    dropped: u64,
}

/// The handlers, behind the inbox's one-at-a-time rule. The endpoint sits in a mutex only
/// to be shareable between loop threads; the inbox guarantees it is never contended.
struct Serial<E>(Mutex<E>);

/// The inbox of an endpoint speaking protocol `P`.
pub(crate) struct Inbox<P: Protocol> {
    name: Arc<str>,
    handler: Box<dyn Handler<P>>,
    self_ref: EndpointRef<P>,
    env: RpcEnv,
    message_loop: Arc<MessageLoop>,
    threading: Threading,
    state: Mutex<InboxState<P>>,
    weak_self: Weak<Inbox<P>>,
}

/// An endpoint's callbacks, with the endpoint type erased.
trait Handler<P: Protocol>: Send + Sync {
    fn on_start(&self, ctx: &EndpointContext<'_, P>) -> HandlerResult;
    fn receive(&self, ctx: &EndpointContext<'_, P>, msg: P::Message) -> HandlerResult;
    fn receive_and_reply(&self, ctx: &EndpointContext<'_, P>, ask: P::Ask) -> HandlerResult;
    fn on_error(&self, ctx: &EndpointContext<'_, P>, error: EndpointError);
    fn on_event(&self, ctx: &EndpointContext<'_, P>, event: &NetworkEvent);
    fn on_stop(&self, env: &RpcEnv) -> HandlerResult;
}

impl<E: RpcEndpoint> Handler<E::Protocol> for Serial<E> {
    fn on_start(&self, ctx: &EndpointContext<'_, E::Protocol>) -> HandlerResult {
        self.0.lock().on_start(ctx)
    }
    fn receive(
        &self,
        ctx: &EndpointContext<'_, E::Protocol>,
        msg: <E::Protocol as Protocol>::Message,
    ) -> HandlerResult {
        self.0.lock().receive(ctx, msg)
    }
    fn receive_and_reply(
        &self,
        ctx: &EndpointContext<'_, E::Protocol>,
        ask: <E::Protocol as Protocol>::Ask,
    ) -> HandlerResult {
        self.0.lock().receive_and_reply(ctx, ask)
    }
    fn on_error(&self, ctx: &EndpointContext<'_, E::Protocol>, error: EndpointError) {
        self.0.lock().on_error(ctx, error)
    }
    fn on_event(&self, ctx: &EndpointContext<'_, E::Protocol>, event: &NetworkEvent) {
        let mut endpoint = self.0.lock();
        match event {
            NetworkEvent::Connected(a) => endpoint.on_connected(ctx, a),
            NetworkEvent::Disconnected(a) => endpoint.on_disconnected(ctx, a),
            NetworkEvent::Error(e, a) => endpoint.on_network_error(ctx, e, a),
        }
    }
    fn on_stop(&self, env: &RpcEnv) -> HandlerResult {
        self.0.lock().on_stop(env)
    }
}

impl<P: Protocol> Inbox<P> {
    /// An inbox for `endpoint`, not yet scheduled.
    pub(crate) fn new<E: RpcEndpoint<Protocol = P>>(
        endpoint: E,
        self_ref: EndpointRef<P>,
        env: RpcEnv,
        message_loop: Arc<MessageLoop>,
        threading: Threading,
    ) -> Arc<Inbox<P>> {
        Arc::new_cyclic(|weak_self| Inbox {
            name: Arc::from(self_ref.name()),
            handler: Box::new(Serial(Mutex::new(endpoint))),
            self_ref,
            env,
            message_loop,
            threading,
            state: Mutex::new(InboxState {
                queue: VecDeque::new(),
                phase: Phase::NotStarted,
                stop_requested: false,
                active: false,
                scheduled: false,
                dropped: 0,
            }),
            weak_self: weak_self.clone(),
        })
    }

    /// Queues a message, or drops it if the endpoint is stopping.
    pub(crate) fn post(&self, msg: InboxMessage<P>) {
        let mut state = self.state.lock();
        if state.stop_requested {
            state.dropped += 1;
            drop(state);
            self.drop_message(msg);
            return;
        }
        state.queue.push_back(msg);
        let run_here = self.threading == Threading::Inline
            && !state.active
            && !state.scheduled
            && INLINE_DEPTH.with(|d| d.get()) < MAX_INLINE_DEPTH;
        if run_here {
            // Claim the inbox as if it were scheduled, and run it on the sending thread.
            state.scheduled = true;
            drop(state);
            if let Some(me) = self.weak_self.upgrade() {
                INLINE_DEPTH.with(|d| d.set(d.get() + 1));
                me.run();
                INLINE_DEPTH.with(|d| d.set(d.get() - 1));
            }
            return;
        }
        self.schedule_locked(&mut state);
    }

    fn drop_message(&self, msg: InboxMessage<P>) {
        log::debug!(
            "Dropped a message because endpoint {} is stopped",
            self.name
        );
        if let InboxMessage::Ask { call, .. } = msg {
            call.fail(RpcError::EndpointNotFound {
                name: self.name.to_string(),
            });
        }
    }

    /// Starts running the inbox (its `on_start` first).
    pub(crate) fn start(&self) {
        let mut state = self.state.lock();
        self.schedule_locked(&mut state);
    }

    fn schedule_locked(&self, state: &mut InboxState<P>) {
        if state.scheduled || state.active || state.phase == Phase::Stopped {
            return;
        }
        if let Some(me) = self.weak_self.upgrade() {
            state.scheduled = true;
            self.message_loop.schedule(me);
        }
    }

    fn context<'a>(&'a self, sender: Option<&'a RpcAddress>) -> EndpointContext<'a, P> {
        EndpointContext {
            env: &self.env,
            self_ref: &self.self_ref,
            sender,
        }
    }

    /// Runs a handler, turning a panic into an error, then gives any error to `on_error`.
    fn guarded(
        &self,
        sender: Option<&RpcAddress>,
        f: impl FnOnce(&EndpointContext<'_, P>) -> HandlerResult,
    ) -> Option<String> {
        let ctx = self.context(sender);
        let (error, panic) = match catch_unwind(AssertUnwindSafe(|| f(&ctx))) {
            Ok(Ok(())) => return None,
            Ok(Err(e)) => (e, None),
            Err(payload) => {
                let message = panic_message(&*payload);
                log::error!("Endpoint {} panicked: {message}", self.name);
                (EndpointError::msg(message.clone()), Some(message))
            }
        };
        let text = error.message().to_string();
        if catch_unwind(AssertUnwindSafe(|| self.handler.on_error(&ctx, error))).is_err() {
            log::error!("on_error of endpoint {} panicked", self.name);
        }
        panic.or(Some(text))
    }

    fn handle(&self, msg: InboxMessage<P>) {
        match msg {
            InboxMessage::OneWay { sender, msg } => {
                self.guarded(sender.as_deref(), |ctx| self.handler.receive(ctx, msg));
            }
            InboxMessage::Ask { sender, ask, call } => {
                let failed = self.guarded(sender.as_deref(), |ctx| {
                    self.handler.receive_and_reply(ctx, ask)
                });
                // As in Spark, a handler's error or panic goes back to the asker (a no-op if
                // it already answered).
                if let Some(message) = failed {
                    call.fail(RpcError::Failure { message });
                }
            }
            InboxMessage::Event(event) => {
                let ctx = self.context(None);
                if catch_unwind(AssertUnwindSafe(|| self.handler.on_event(&ctx, &event))).is_err() {
                    log::error!("Endpoint {} panicked handling a network event", self.name);
                }
            }
        }
    }

    /// Messages dropped because they came after the stop.
    #[cfg(test)]
    fn dropped(&self) -> u64 {
        self.state.lock().dropped
    }

    fn run_on_stop(&self) {
        let result = catch_unwind(AssertUnwindSafe(|| self.handler.on_stop(&self.env)));
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(payload) => Some(EndpointError::msg(panic_message(&*payload))),
        };
        if let Some(error) = error {
            let ctx = self.context(None);
            if catch_unwind(AssertUnwindSafe(|| self.handler.on_error(&ctx, error))).is_err() {
                log::error!("on_error of endpoint {} panicked", self.name);
            }
        }
        if self.threading == Threading::Dedicated {
            self.message_loop.stop();
        }
    }
}

impl<P: Protocol> Runnable for Inbox<P> {
    fn run(self: Arc<Self>) {
        let mut state = self.state.lock();
        state.scheduled = false;
        if state.active || state.phase == Phase::Stopped {
            return;
        }
        state.active = true;
        let mut batch = VecDeque::new();
        let mut handled = 0;
        loop {
            if state.phase == Phase::NotStarted {
                state.phase = Phase::Running;
                drop(state);
                self.guarded(None, |ctx| self.handler.on_start(ctx));
                state = self.state.lock();
                continue;
            }
            if !state.queue.is_empty() {
                if handled >= BATCH {
                    // Let the other inboxes of this loop have a turn.
                    state.active = false;
                    self.schedule_locked(&mut state);
                    return;
                }
                std::mem::swap(&mut batch, &mut state.queue);
                drop(state);
                handled += batch.len();
                // Answers and sends made while handling the batch leave together at its end.
                let cork = Cork::new();
                for msg in batch.drain(..) {
                    self.handle(msg);
                }
                drop(cork);
                state = self.state.lock();
                continue;
            }
            if state.stop_requested {
                state.phase = Phase::Stopped;
                if state.dropped > 0 {
                    log::debug!(
                        "Endpoint {} dropped {} messages posted after its stop",
                        self.name,
                        state.dropped
                    );
                }
                drop(state);
                self.run_on_stop();
                state = self.state.lock();
            }
            state.active = false;
            return;
        }
    }
}

/// The type-erased face of an inbox, for the dispatcher and the IO threads.
pub(crate) trait InboxEntry: Send + Sync {
    /// The endpoint's name.
    fn name(&self) -> &Arc<str>;
    /// Decodes a request or one-way body as this endpoint's message and queues it.
    fn post_remote(
        &self,
        kind: FrameKind,
        sender: Option<Arc<RpcAddress>>,
        body: Bytes,
        ctx: &DecodeContext,
    ) -> Result<(), DecodeError>;
    /// Queues a network event.
    fn post_event(&self, event: NetworkEvent);
    /// Stops the endpoint after the messages already queued.
    fn stop(&self);
    /// The inbox as `Any`, to get the typed inbox back.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

fn decode_whole<T: Decode>(body: Bytes, ctx: &DecodeContext) -> Result<T, DecodeError> {
    let mut r = Reader::with_context(body, ctx);
    let value = T::decode(&mut r)?;
    r.finish()?;
    Ok(value)
}

impl<P: Protocol> InboxEntry for Inbox<P> {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn post_remote(
        &self,
        kind: FrameKind,
        sender: Option<Arc<RpcAddress>>,
        body: Bytes,
        ctx: &DecodeContext,
    ) -> Result<(), DecodeError> {
        let msg = match (kind, &ctx.call) {
            (FrameKind::Request, Some(call)) => InboxMessage::Ask {
                sender,
                ask: decode_whole(body, ctx)?,
                call: Arc::clone(call) as Arc<dyn CallSlot>,
            },
            (FrameKind::OneWay, None) => InboxMessage::OneWay {
                sender,
                msg: decode_whole(body, ctx)?,
            },
            _ => {
                return Err(DecodeError::MissingContext {
                    what: "a message of this frame kind",
                })
            }
        };
        self.post(msg);
        Ok(())
    }

    fn post_event(&self, event: NetworkEvent) {
        self.post(InboxMessage::Event(event));
    }

    fn stop(&self) {
        let mut state = self.state.lock();
        if state.stop_requested {
            return;
        }
        state.stop_requested = true;
        self.schedule_locked(&mut state);
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
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
    }

    type Log = Arc<Mutex<Vec<String>>>;

    struct Recorder(Log);

    impl RpcEndpoint for Recorder {
        type Protocol = TestProtocol;
        fn on_start(&mut self, _: &EndpointContext<'_, TestProtocol>) -> HandlerResult {
            self.0.lock().push("start".into());
            Ok(())
        }
        fn receive(
            &mut self,
            _: &EndpointContext<'_, TestProtocol>,
            msg: TestMsg,
        ) -> HandlerResult {
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
}
