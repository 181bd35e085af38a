//! `Probe`: an endpoint that records every callback and can be told to answer, fail, panic,
//! hold its reply or block.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use rpc_env::{
    message, EndpointContext, EndpointError, EndpointRef, HandlerResult, Protocol, Reply,
    RpcAddress, RpcEndpoint, RpcEnv, RpcError, Threading,
};

use super::{wait_until, DEADLINE};

message! {
    /// One-way messages of the probe.
    #[derive(Debug)]
    pub enum ProbeMessage {
        /// Recorded as [`Event::Text`].
        Text {
            /// What is recorded.
            text: String,
        },
        /// The handler returns an error with this message.
        Fail {
            /// The error's message.
            message: String,
        },
        /// The handler panics with this message.
        Panic {
            /// The panic's message.
            message: String,
        },
        /// The handler sends `Text { text }` to its own ref.
        SendToSelf {
            /// What it sends itself.
            text: String,
        },
        /// The handler stops its own endpoint (`ctx.stop()`).
        StopSelf,
    }
}

message! {
    /// Asks of the probe. `reply` is the ask's port in each.
    pub enum ProbeAsk {
        /// Answers `text`.
        Echo {
            /// The answer.
            text: String,
            /// The port.
            reply: Reply<String>,
        },
        /// Fails the ask through the port: `reply.fail(message)`.
        FailWith {
            /// The failure's message.
            message: String,
            /// The port.
            reply: Reply<String>,
        },
        /// Returns an error with this message, dropping the port.
        ErrWith {
            /// The error's message.
            message: String,
            /// The port.
            reply: Reply<String>,
        },
        /// Panics with this message.
        PanicWith {
            /// The panic's message.
            message: String,
            /// The port.
            reply: Reply<String>,
        },
        /// Drops the port without answering.
        DropReply {
            /// The port.
            reply: Reply<String>,
        },
        /// Keeps the port; the test answers it later with [`ProbeHandle::release_held`].
        Hold {
            /// The port.
            reply: Reply<String>,
        },
        /// Blocks the handler until [`ProbeHandle::open_latch`], then answers `text`.
        Block {
            /// The answer.
            text: String,
            /// The port.
            reply: Reply<String>,
        },
        /// Answers with the probe's own ref.
        SelfRef {
            /// The port.
            reply: Reply<EndpointRef<ProbeProtocol>>,
        },
        /// Answers how many `Text` messages the probe has handled.
        Count {
            /// The port.
            reply: Reply<u64>,
        },
    }
}

/// The probe's protocol.
pub struct ProbeProtocol;

impl Protocol for ProbeProtocol {
    type Message = ProbeMessage;
    type Ask = ProbeAsk;
    type Control = rpc_env::NoMessage;
}

/// What happened to a probe, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `on_start` ran.
    Start,
    /// A `Text` message, and who sent it.
    Text {
        /// The text.
        text: String,
        /// `ctx.sender()`.
        sender: Option<RpcAddress>,
    },
    /// An ask came (its variant name), and who sent it.
    Asked {
        /// The variant, e.g. `"Echo"`.
        what: &'static str,
        /// `ctx.sender()`.
        sender: Option<RpcAddress>,
    },
    /// `on_error` with this message.
    Error(String),
    /// `on_connected`.
    Connected(RpcAddress),
    /// `on_disconnected`.
    Disconnected(RpcAddress),
    /// `on_network_error`.
    NetworkError(RpcAddress),
    /// `on_stop` ran.
    Stop,
}

/// A one-shot gate that blocked handlers wait on.
#[derive(Default)]
struct Latch {
    open: Mutex<bool>,
    opened: Condvar,
}

/// The test's view of a probe: its record, its held replies, its latch.
#[derive(Clone, Default)]
pub struct ProbeHandle {
    log: Arc<Mutex<Vec<Event>>>,
    held: Arc<Mutex<Vec<Reply<String>>>>,
    latch: Arc<Latch>,
    blocked: Arc<AtomicUsize>,
}

impl ProbeHandle {
    fn push(&self, event: Event) {
        self.log.lock().unwrap().push(event);
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.log.lock().unwrap().clone()
    }

    /// Whether `event` was recorded.
    pub fn has(&self, event: &Event) -> bool {
        self.log.lock().unwrap().contains(event)
    }

    /// How many recorded events match.
    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.log.lock().unwrap().iter().filter(|e| pred(e)).count()
    }

    /// Waits until an event matching `pred` is recorded.
    #[track_caller]
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Event) -> bool) {
        wait_until(what, DEADLINE, || self.count(&pred) > 0);
    }

    /// Waits until `event` is recorded.
    #[track_caller]
    pub fn wait_for_event(&self, event: &Event) {
        wait_until(&format!("{event:?} is recorded"), DEADLINE, || {
            self.has(event)
        });
    }

    /// The texts of the `Text` messages handled, in order.
    pub fn texts(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Text { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// The messages given to `on_error`, in order.
    pub fn errors(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Error(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many `Hold` replies the probe keeps.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Answers every held reply with `text`.
    pub fn release_held(&self, text: &str) {
        let held: Vec<Reply<String>> = std::mem::take(&mut *self.held.lock().unwrap());
        for reply in held {
            reply.send(text.to_string());
        }
    }

    /// How many handlers are blocked on the latch right now.
    pub fn blocked(&self) -> usize {
        self.blocked.load(Ordering::SeqCst)
    }

    /// Lets every blocked handler (and any later one) go on.
    pub fn open_latch(&self) {
        *self.latch.open.lock().unwrap() = true;
        self.latch.opened.notify_all();
    }
}

/// An endpoint that records every callback (see [`ProbeMessage`] and [`ProbeAsk`]).
pub struct Probe {
    handle: ProbeHandle,
    threading: Threading,
    texts: u64,
}

impl Probe {
    /// A probe on the shared loop, and the test's handle to it.
    pub fn new() -> (Probe, ProbeHandle) {
        Probe::with_threading(Threading::Shared)
    }

    /// A probe with a loop of its own, and the test's handle to it.
    pub fn dedicated() -> (Probe, ProbeHandle) {
        Probe::with_threading(Threading::Dedicated)
    }

    fn with_threading(threading: Threading) -> (Probe, ProbeHandle) {
        let handle = ProbeHandle::default();
        let probe = Probe {
            handle: handle.clone(),
            threading,
            texts: 0,
        };
        (probe, handle)
    }

    /// Blocks until the latch opens; `false` if it stayed shut for a whole [`DEADLINE`]
    /// (a broken test), so the thread is never stuck forever.
    fn wait_latch(&self) -> bool {
        let latch = &self.handle.latch;
        let open = latch.open.lock().unwrap();
        let (open, _) = latch
            .opened
            .wait_timeout_while(open, DEADLINE * 3, |open| !*open)
            .unwrap();
        *open
    }
}

impl RpcEndpoint for Probe {
    type Protocol = ProbeProtocol;

    fn threading(&self) -> Threading {
        self.threading
    }

    fn on_start(&mut self, _: &EndpointContext<'_, ProbeProtocol>) -> HandlerResult {
        self.handle.push(Event::Start);
        Ok(())
    }

    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, ProbeProtocol>,
        msg: ProbeMessage,
    ) -> HandlerResult {
        match msg {
            ProbeMessage::Text { text } => {
                self.texts += 1;
                self.handle.push(Event::Text {
                    text,
                    sender: ctx.sender().cloned(),
                });
            }
            ProbeMessage::Fail { message } => return Err(EndpointError::msg(message)),
            ProbeMessage::Panic { message } => panic!("{message}"),
            ProbeMessage::SendToSelf { text } => {
                ctx.self_ref().send(ProbeMessage::Text { text })?;
            }
            ProbeMessage::StopSelf => ctx.stop(),
        }
        Ok(())
    }

    fn receive_and_reply(
        &mut self,
        ctx: &EndpointContext<'_, ProbeProtocol>,
        ask: ProbeAsk,
    ) -> HandlerResult {
        let sender = ctx.sender().cloned();
        let asked = |what| Event::Asked { what, sender };
        match ask {
            ProbeAsk::Echo { text, reply } => {
                self.handle.push(asked("Echo"));
                reply.send(text);
            }
            ProbeAsk::FailWith { message, reply } => {
                self.handle.push(asked("FailWith"));
                reply.fail(message);
            }
            ProbeAsk::ErrWith { message, reply } => {
                self.handle.push(asked("ErrWith"));
                drop(reply);
                return Err(EndpointError::msg(message));
            }
            ProbeAsk::PanicWith { message, reply } => {
                self.handle.push(asked("PanicWith"));
                let _keep_until_unwind = reply;
                panic!("{message}");
            }
            ProbeAsk::DropReply { reply } => {
                self.handle.push(asked("DropReply"));
                drop(reply);
            }
            ProbeAsk::Hold { reply } => {
                self.handle.push(asked("Hold"));
                self.handle.held.lock().unwrap().push(reply);
            }
            ProbeAsk::Block { text, reply } => {
                self.handle.push(asked("Block"));
                self.handle.blocked.fetch_add(1, Ordering::SeqCst);
                let opened = self.wait_latch();
                self.handle.blocked.fetch_sub(1, Ordering::SeqCst);
                if opened {
                    reply.send(text);
                } else {
                    reply.fail("the test never opened the latch");
                }
            }
            ProbeAsk::SelfRef { reply } => {
                self.handle.push(asked("SelfRef"));
                reply.send(ctx.self_ref().clone());
            }
            ProbeAsk::Count { reply } => {
                self.handle.push(asked("Count"));
                reply.send(self.texts);
            }
        }
        Ok(())
    }

    fn on_error(&mut self, _: &EndpointContext<'_, ProbeProtocol>, error: EndpointError) {
        self.handle.push(Event::Error(error.message().to_string()));
    }

    fn on_connected(&mut self, _: &EndpointContext<'_, ProbeProtocol>, remote: &RpcAddress) {
        self.handle.push(Event::Connected(remote.clone()));
    }

    fn on_disconnected(&mut self, _: &EndpointContext<'_, ProbeProtocol>, remote: &RpcAddress) {
        self.handle.push(Event::Disconnected(remote.clone()));
    }

    fn on_network_error(
        &mut self,
        _: &EndpointContext<'_, ProbeProtocol>,
        _error: &RpcError,
        remote: &RpcAddress,
    ) {
        self.handle.push(Event::NetworkError(remote.clone()));
    }

    fn on_stop(&mut self, _: &RpcEnv) -> HandlerResult {
        self.handle.push(Event::Stop);
        Ok(())
    }
}

/// Shorthand for a `Text` message.
pub fn text(t: &str) -> ProbeMessage {
    ProbeMessage::Text { text: t.into() }
}

/// Shorthand for an `Echo` ask builder.
pub fn echo(t: &str) -> impl FnOnce(Reply<String>) -> ProbeAsk {
    let text = t.to_string();
    move |reply| ProbeAsk::Echo { text, reply }
}
