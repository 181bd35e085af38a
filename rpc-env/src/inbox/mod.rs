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
use parking_lot::{Mutex, MutexGuard};

use crate::address::RpcAddress;
use crate::ask::CallSlot;
use crate::codec::{Decode, DecodeError, Reader};
use crate::connection::{Connection, Cork};
use crate::endpoint::{
    ConcurrentRpcEndpoint, EndpointContext, HandlerResult, NetworkEvent, Protocol, RpcEndpoint,
    Threading,
};
use crate::endpoint_ref::EndpointRef;
use crate::env::{Arrival, RpcEnv};
use crate::error::{EndpointError, RpcError};
use crate::frame::FrameKind;
use crate::message_loop::{MessageLoop, Runnable};
use crate::thread_role::panic_message;

mod backpressure;
mod handler;
mod inline_batch;

use backpressure::{resume, Backpressure};
use handler::{Concurrent, Handler, Serial};
pub(crate) use inline_batch::InlineBatch;

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
    /// From this process only (a [`ControlRef`](crate::ControlRef)); `call` when it
    /// carries a reply port, to fail the ask if its handler fails.
    Control {
        msg: P::Control,
        call: Option<Arc<dyn CallSlot>>,
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

/// Runs a claimed inline inbox on this thread, counting the nesting.
fn run_inline(inbox: Arc<dyn Runnable>) {
    INLINE_DEPTH.with(|d| d.set(d.get() + 1));
    inbox.run();
    INLINE_DEPTH.with(|d| d.set(d.get() - 1));
}

/// How many messages a thread handles before letting other inboxes of its loop run.
const BATCH: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotStarted,
    /// `on_start` is running: no other handler may run, whatever the concurrency.
    Starting,
    Running,
    Stopped,
}

/// A queued message and what it weighs against the inbox's cap (0 unless remote).
struct Queued<P: Protocol> {
    msg: InboxMessage<P>,
    weight: usize,
}

struct InboxState<P: Protocol> {
    queue: VecDeque<Queued<P>>,
    /// Remote bytes held, and the connections paused until they drain.
    pressure: Backpressure,
    phase: Phase,
    stop_requested: bool,
    /// Threads running this inbox (at most 1 for a serial endpoint).
    active: usize,
    /// The inbox is on its loop's run queue.
    scheduled: bool,
    dropped: u64,
}

/// The inbox of an endpoint speaking protocol `P`.
pub(crate) struct Inbox<P: Protocol> {
    name: Arc<str>,
    handler: Box<dyn Handler<P>>,
    self_ref: EndpointRef<P>,
    env: RpcEnv,
    message_loop: Arc<MessageLoop>,
    threading: Threading,
    /// Threads that may run handlers at once once started: 1, or a concurrent endpoint's.
    concurrency: usize,
    state: Mutex<InboxState<P>>,
    weak_self: Weak<Inbox<P>>,
}

impl<P: Protocol> Inbox<P> {
    /// An inbox for a serial `endpoint`, not yet scheduled.
    pub(crate) fn new<E: RpcEndpoint<Protocol = P>>(
        endpoint: E,
        self_ref: EndpointRef<P>,
        env: RpcEnv,
        message_loop: Arc<MessageLoop>,
        threading: Threading,
    ) -> Arc<Inbox<P>> {
        let handler = Box::new(Serial(Mutex::new(endpoint)));
        Inbox::with_handler(handler, self_ref, env, message_loop, threading, 1)
    }

    /// An inbox for a concurrent `endpoint` on its own loop of `threads` threads.
    pub(crate) fn new_concurrent<E: ConcurrentRpcEndpoint<Protocol = P>>(
        endpoint: E,
        self_ref: EndpointRef<P>,
        env: RpcEnv,
        message_loop: Arc<MessageLoop>,
        threads: usize,
    ) -> Arc<Inbox<P>> {
        let handler = Box::new(Concurrent(endpoint));
        Inbox::with_handler(
            handler,
            self_ref,
            env,
            message_loop,
            Threading::Dedicated,
            threads,
        )
    }

    fn with_handler(
        handler: Box<dyn Handler<P>>,
        self_ref: EndpointRef<P>,
        env: RpcEnv,
        message_loop: Arc<MessageLoop>,
        threading: Threading,
        concurrency: usize,
    ) -> Arc<Inbox<P>> {
        Arc::new_cyclic(|weak_self| Inbox {
            name: Arc::from(self_ref.name()),
            handler,
            self_ref,
            env,
            message_loop,
            threading,
            concurrency: concurrency.max(1),
            state: Mutex::new(InboxState {
                queue: VecDeque::new(),
                pressure: Backpressure::default(),
                phase: Phase::NotStarted,
                stop_requested: false,
                active: 0,
                scheduled: false,
                dropped: 0,
            }),
            weak_self: weak_self.clone(),
        })
    }

    /// Queues a local message, or drops it if the endpoint is stopping.
    pub(crate) fn post(&self, msg: InboxMessage<P>) {
        self.post_weighed(msg, 0, None);
    }

    /// Queues a message of `weight` remote bytes from `conn` (none for a local one), or
    /// drops it if the endpoint is stopping. Past the inbox's cap, `conn` stops being read.
    fn post_weighed(&self, msg: InboxMessage<P>, weight: usize, conn: Option<&Arc<Connection>>) {
        let mut state = self.state.lock();
        if state.stop_requested {
            state.dropped += 1;
            drop(state);
            self.drop_message(msg);
            return;
        }
        state.queue.push_back(Queued { msg, weight });
        if weight > 0 {
            let cap = self.env.shared.limits.inbox_max_bytes;
            if state.pressure.add(weight, conn, cap) {
                crate::stats::bump(&self.env.shared.counters.read_pauses);
                log::debug!(
                    "Inbox of {} holds more than {cap} bytes ({}): pausing reads from a peer",
                    self.name,
                    crate::conf::keys::INBOX_MAX_BYTES
                );
            }
        }
        let run_here = self.threading == Threading::Inline
            && state.active == 0
            && !state.scheduled
            && INLINE_DEPTH.with(|d| d.get()) < MAX_INLINE_DEPTH;
        if run_here {
            // Claim the inbox as if it were scheduled, and run it on the sending thread.
            state.scheduled = true;
            drop(state);
            if let Some(me) = self.weak_self.upgrade() {
                // Inside a batch (the IO thread routing a chunk of frames) the run waits
                // for the chunk's end and takes every message queued by then.
                if let Err(me) = inline_batch::defer(me) {
                    run_inline(me);
                }
            }
            return;
        }
        self.schedule_locked(&mut state);
    }

    /// Messages of `weight` remote bytes were handled: gives the bytes back and, if the
    /// inbox drained enough, reads again (outside the lock: it wakes IO threads) the
    /// connections it paused.
    fn release_weight<'a>(
        &'a self,
        mut state: MutexGuard<'a, InboxState<P>>,
        weight: usize,
    ) -> MutexGuard<'a, InboxState<P>> {
        if weight == 0 {
            return state;
        }
        let again = state
            .pressure
            .release(weight, self.env.shared.limits.inbox_max_bytes);
        if again.is_empty() {
            return state;
        }
        drop(state);
        resume(again);
        self.state.lock()
    }

    fn drop_message(&self, msg: InboxMessage<P>) {
        log::debug!(
            "Dropped a message because endpoint {} is stopped",
            self.name
        );
        let call = match msg {
            InboxMessage::Ask { call, .. } => Some(call),
            InboxMessage::Control { call, .. } => call,
            InboxMessage::OneWay { .. } | InboxMessage::Event(_) => None,
        };
        if let Some(call) = call {
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

    /// How many threads may run the inbox now: one until `on_start` has run.
    fn limit(&self, state: &InboxState<P>) -> usize {
        match state.phase {
            Phase::Running => self.concurrency,
            Phase::NotStarted | Phase::Starting | Phase::Stopped => 1,
        }
    }

    fn schedule_locked(&self, state: &mut InboxState<P>) {
        if state.scheduled || state.phase == Phase::Stopped || state.active >= self.limit(state) {
            return;
        }
        let has_work =
            !state.queue.is_empty() || state.phase == Phase::NotStarted || state.stop_requested;
        if !has_work {
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
            InboxMessage::Control { msg, call } => {
                let failed = self.guarded(None, |ctx| self.handler.receive_control(ctx, msg));
                if let (Some(message), Some(call)) = (failed, call) {
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
        if state.phase == Phase::Stopped || state.active >= self.limit(&state) {
            return;
        }
        state.active += 1;
        let mut batch = VecDeque::new();
        let mut handled = 0;
        loop {
            if state.phase == Phase::NotStarted {
                // Only one thread gets here: the limit is 1 until on_start has run.
                state.phase = Phase::Starting;
                drop(state);
                self.guarded(None, |ctx| self.handler.on_start(ctx));
                state = self.state.lock();
                state.phase = Phase::Running;
                // Other threads of a concurrent endpoint may help from now on.
                self.schedule_locked(&mut state);
                continue;
            }
            if !state.queue.is_empty() {
                if handled >= BATCH {
                    // Let the other inboxes of this loop have a turn.
                    state.active -= 1;
                    self.schedule_locked(&mut state);
                    return;
                }
                if self.concurrency > 1 {
                    // One message at a time, calling in a helper while more wait.
                    let queued = state.queue.pop_front();
                    self.schedule_locked(&mut state);
                    drop(state);
                    let mut weight = 0;
                    if let Some(Queued { msg, weight: w }) = queued {
                        self.handle(msg);
                        weight = w;
                    }
                    handled += 1;
                    state = self.release_weight(self.state.lock(), weight);
                    continue;
                }
                std::mem::swap(&mut batch, &mut state.queue);
                drop(state);
                handled += batch.len();
                let mut weight = 0;
                // Answers and sends made while handling the batch leave together at its end.
                let cork = Cork::new();
                for queued in batch.drain(..) {
                    weight += queued.weight;
                    self.handle(queued.msg);
                }
                drop(cork);
                state = self.release_weight(self.state.lock(), weight);
                if state.queue.capacity() == 0 {
                    // Give the emptied buffer back, or the next post allocates a new one.
                    std::mem::swap(&mut batch, &mut state.queue);
                }
                continue;
            }
            // The last thread out runs on_stop, after every other handler has returned.
            if state.stop_requested && state.active == 1 {
                state.phase = Phase::Stopped;
                resume(state.pressure.release_all());
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
            state.active -= 1;
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
        ctx: &Arrival,
    ) -> Result<(), DecodeError>;
    /// Queues a network event.
    fn post_event(&self, event: NetworkEvent);
    /// Stops the endpoint after the messages already queued.
    fn stop(&self);
    /// The inbox as `Any`, to get the typed inbox back.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    /// The endpoint's protocol fingerprint, name and version, for the verifier's answer.
    fn protocol(&self) -> (&'static str, u32);
    /// How many messages wait in it now.
    fn queued(&self) -> usize;
}

fn decode_whole<T: Decode>(body: Bytes, ctx: &Arrival) -> Result<T, DecodeError> {
    let mut r = Reader::with_context(body, ctx);
    let value = T::decode(&mut r)?;
    r.finish()?;
    Ok(value)
}

impl<P: Protocol> InboxEntry for Inbox<P> {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn queued(&self) -> usize {
        self.state.lock().queue.len()
    }

    fn post_remote(
        &self,
        kind: FrameKind,
        sender: Option<Arc<RpcAddress>>,
        body: Bytes,
        ctx: &Arrival,
    ) -> Result<(), DecodeError> {
        let weight = backpressure::weight(body.len(), std::mem::size_of::<Queued<P>>());
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
        self.post_weighed(msg, weight, ctx.conn.as_ref());
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

    fn protocol(&self) -> (&'static str, u32) {
        crate::endpoint::fingerprint::<P>()
    }
}

#[cfg(test)]
mod tests;
