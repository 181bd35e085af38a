//! Asks: the asker's [`AskHandle`], the handler's [`Reply`] port, and the state between them.
//!
//! The thread that completes an ask (a handler replying locally, or the IO thread that read
//! a response) wakes the waiter directly: there is no thread in between.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::{Condvar, Mutex};

use crate::ask_registry::AskRegistry;
use crate::codec::{Decode, DecodeContext, DecodeError, Encode, Reader};
use crate::connection::Connection;
use crate::env::Arrival;
use crate::error::RpcError;
use crate::frame::{finish_frame, put_failure_frame, start_frame, FrameKind};
use crate::pending_asks::PendingAsk;

type Callback<T> = Box<dyn FnOnce(Result<T, RpcError>) + Send>;

/// Where an ask is between its handle and whoever answers it.
///
/// ```text
///   Unanswered --wait--> Awaited --answer (wakes the waiter)--> Done --taken--> Taken
///       |  \--on_complete--> Subscribed --answer (runs the callback)-----------> Taken
///       \--answer--> Done --wait / poll / on_complete--> Taken
/// ```
///
/// A handle is consumed by `wait` and by `on_complete`, so an ask is never both awaited and
/// subscribed.
enum AskState<T> {
    /// No answer yet, and nobody waiting for it.
    Unanswered,
    /// No answer yet; a thread is blocked in `wait` on the condvar.
    Awaited,
    /// No answer yet; this callback takes it.
    Subscribed(Callback<T>),
    /// Answered, and the answer not yet taken.
    Done(Result<T, RpcError>),
    /// The answer went to a callback or a waiter.
    Taken,
}

/// The meeting point of an ask's waiter and whoever completes it. Completes once.
pub(crate) struct AskShared<T> {
    state: Mutex<AskState<T>>,
    wakeup: Condvar,
    /// Set after the state leaves `Pending`, so a waiter can spin on it without the lock.
    done: AtomicBool,
}

impl<T> AskShared<T> {
    pub(crate) fn new() -> Arc<AskShared<T>> {
        Arc::new(AskShared {
            state: Mutex::new(AskState::Unanswered),
            wakeup: Condvar::new(),
            done: AtomicBool::new(false),
        })
    }

    /// Completes the ask; `false` if it was already complete (a late reply, say).
    pub(crate) fn complete(&self, result: Result<T, RpcError>) -> bool {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, AskState::Taken) {
            AskState::Subscribed(callback) => {
                self.done.store(true, Ordering::Release);
                drop(state);
                // The callback runs on whichever thread ends the ask (an IO thread, the timer
                // thread); a panic in it must not take that thread down with it.
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(result)));
                if let Err(panic) = outcome {
                    log::error!(
                        "An ask's on_complete callback panicked: {}",
                        crate::thread_role::panic_message(&*panic)
                    );
                }
                true
            }
            waiting @ (AskState::Unanswered | AskState::Awaited) => {
                *state = AskState::Done(result);
                self.done.store(true, Ordering::Release);
                drop(state);
                if matches!(waiting, AskState::Awaited) {
                    self.wakeup.notify_all();
                }
                true
            }
            already @ (AskState::Done(_) | AskState::Taken) => {
                *state = already;
                false
            }
        }
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// The asker's side of an ask: wait for the answer, poll it, or hand it a callback.
///
/// Every ask ends: with the reply, the handler's failure, a connection loss, an abort, or
/// the timeout, which one timer thread enforces. Dropping the handle forgets the answer.
#[must_use = "an ask's answer is only seen through its handle"]
pub struct AskHandle<T> {
    shared: Arc<AskShared<T>>,
    ticket: Option<Ticket>,
    /// How long [`wait`](Self::wait) polls for the answer before it parks
    /// (`ember.rpc.io.spinWait`); zero: it parks at once.
    spin: Duration,
}

/// The registry entry of an ask, for abort.
#[derive(Clone)]
pub(crate) struct Ticket {
    pub(crate) registry: Arc<AskRegistry>,
    pub(crate) id: u64,
}

impl<T: Send + 'static> AskHandle<T> {
    pub(crate) fn new(shared: Arc<AskShared<T>>, ticket: Option<Ticket>) -> AskHandle<T> {
        AskHandle {
            shared,
            ticket,
            spin: Duration::ZERO,
        }
    }

    /// This handle, with [`wait`](Self::wait) polling for `spin` before it parks.
    pub(crate) fn spinning(mut self, spin: Duration) -> AskHandle<T> {
        self.spin = spin;
        self
    }

    /// An ask that failed before it was sent.
    pub(crate) fn failed(error: RpcError) -> AskHandle<T> {
        let shared = AskShared::new();
        shared.complete(Err(error));
        AskHandle {
            shared,
            ticket: None,
            spin: Duration::ZERO,
        }
    }

    /// Blocks until the ask ends and returns its answer or why there is none.
    ///
    /// On an IO thread (inside a handler of a [`Threading::Inline`](crate::Threading)
    /// endpoint, or an `on_complete` callback) it fails at once with
    /// [`RpcError::BlockingOnIoThread`] unless the answer is already there: waiting there
    /// would stall every connection the thread serves, possibly the one the answer comes on.
    pub fn wait(self) -> Result<T, RpcError> {
        if crate::thread_role::on_io_thread() {
            if !self.shared.is_done() {
                return Err(RpcError::BlockingOnIoThread);
            }
        } else {
            // An answer that comes within the spin costs no wakeup of this thread.
            crate::spin::poll_for(self.spin, || self.shared.is_done());
        }
        let mut state = self.shared.state.lock();
        loop {
            match std::mem::replace(&mut *state, AskState::Taken) {
                AskState::Done(result) => return result,
                AskState::Unanswered | AskState::Awaited => {
                    *state = AskState::Awaited;
                    self.shared.wakeup.wait(&mut state);
                }
                // Only `on_complete` and `poll`, which consume the handle or return the
                // answer, leave these behind: unreachable through one handle.
                AskState::Subscribed(_) | AskState::Taken => {
                    return Err(RpcError::failure("the answer was already taken"));
                }
            }
        }
    }

    /// The answer if the ask has ended, or the handle back if it has not.
    pub fn poll(self) -> Result<Result<T, RpcError>, AskHandle<T>> {
        if !self.shared.is_done() {
            return Err(self);
        }
        let mut state = self.shared.state.lock();
        match std::mem::replace(&mut *state, AskState::Taken) {
            AskState::Done(result) => Ok(result),
            other => {
                *state = other;
                drop(state);
                Err(self)
            }
        }
    }

    /// Whether the ask has ended.
    pub fn is_done(&self) -> bool {
        self.shared.is_done()
    }

    /// Runs `callback` with the answer when the ask ends, on the thread that ends it (or
    /// here, now, if it already has). The callback must be short and must not block.
    pub fn on_complete(self, callback: impl FnOnce(Result<T, RpcError>) + Send + 'static) {
        let mut state = self.shared.state.lock();
        match std::mem::replace(&mut *state, AskState::Taken) {
            AskState::Done(result) => {
                drop(state);
                callback(result);
            }
            AskState::Unanswered | AskState::Awaited => {
                *state = AskState::Subscribed(Box::new(callback));
            }
            AskState::Subscribed(_) | AskState::Taken => {}
        }
    }

    /// Fails the ask now with `reason`; a reply that comes later is dropped.
    pub fn abort(&self, reason: impl Into<String>) {
        if let Some(ticket) = &self.ticket {
            ticket.registry.forget(ticket.id);
        }
        self.shared.complete(Err(RpcError::Aborted {
            reason: reason.into(),
        }));
    }
}

impl<T> fmt::Debug for AskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AskHandle")
            .field("done", &self.shared.is_done())
            .finish()
    }
}

/// A remote ask waiting in the registry: decodes the response as `T`.
pub(crate) struct RemotePending<T> {
    pub(crate) shared: Arc<AskShared<T>>,
}

impl<T: Decode + Send + 'static> PendingAsk for RemotePending<T> {
    fn complete(self: Box<Self>, body: Bytes, ctx: &dyn DecodeContext) -> Result<(), DecodeError> {
        let mut r = Reader::with_context(body, ctx);
        let decoded = T::decode(&mut r).and_then(|v| r.finish().map(|()| v));
        match decoded {
            Ok(value) => {
                self.shared.complete(Ok(value));
                Ok(())
            }
            Err(e) => {
                self.shared.complete(Err(RpcError::Decode(e.clone())));
                Err(e)
            }
        }
    }

    fn fail(self: Box<Self>, error: RpcError) {
        self.shared.complete(Err(error));
    }
}

/// A local ask waiting in the registry, for its timeout only: the reply itself goes
/// straight from the handler to the shared state.
pub(crate) struct LocalPending<T> {
    pub(crate) shared: Arc<AskShared<T>>,
}

impl<T: Send + 'static> PendingAsk for LocalPending<T> {
    fn complete(
        self: Box<Self>,
        _body: Bytes,
        _ctx: &dyn DecodeContext,
    ) -> Result<(), DecodeError> {
        // A local ask never travels, so no response frame can name it.
        Ok(())
    }

    fn fail(self: Box<Self>, error: RpcError) {
        self.shared.complete(Err(error));
    }
}

/// The untyped side of a call that the inbox keeps while a handler runs, to fail the ask
/// with a panic's message.
pub(crate) trait CallSlot: Send + Sync {
    fn fail(&self, error: RpcError);
}

/// A local ask as its handler sees it. Dropped unanswered, it fails the ask.
pub(crate) struct LocalCall<T> {
    shared: Arc<AskShared<T>>,
    ticket: Option<Ticket>,
    endpoint: Arc<str>,
}

impl<T> LocalCall<T> {
    pub(crate) fn new(
        shared: Arc<AskShared<T>>,
        ticket: Option<Ticket>,
        endpoint: Arc<str>,
    ) -> LocalCall<T> {
        LocalCall {
            shared,
            ticket,
            endpoint,
        }
    }

    fn finish(&self, result: Result<T, RpcError>) {
        if self.shared.complete(result) {
            if let Some(ticket) = &self.ticket {
                ticket.registry.forget(ticket.id);
            }
        } else {
            log::debug!("Ignored a late answer to an ask of {}", self.endpoint);
        }
    }
}

impl<T: Send> CallSlot for LocalCall<T> {
    fn fail(&self, error: RpcError) {
        self.finish(Err(error));
    }
}

impl<T> Drop for LocalCall<T> {
    fn drop(&mut self) {
        if !self.shared.is_done() {
            self.finish(Err(RpcError::NoReply {
                endpoint: self.endpoint.to_string(),
            }));
        }
    }
}

/// A remote ask as its handler sees it: answers go back as frames on the connection it
/// came on. Dropped unanswered, it sends a failure.
pub(crate) struct RemoteCall {
    conn: Arc<Connection>,
    request_id: u64,
    endpoint: Arc<str>,
    answered: AtomicBool,
}

impl RemoteCall {
    pub(crate) fn new(conn: Arc<Connection>, request_id: u64, endpoint: Arc<str>) -> RemoteCall {
        RemoteCall {
            conn,
            request_id,
            endpoint,
            answered: AtomicBool::new(false),
        }
    }

    fn answer<T: Encode>(&self, value: &T) {
        if self.answered.swap(true, Ordering::AcqRel) {
            return;
        }
        let id = self.request_id;
        let sent = self.conn.send_answer(&mut |buf: &mut BytesMut| {
            let start = start_frame(buf, FrameKind::Response, id);
            value.encode(buf);
            finish_frame(buf, start);
        });
        match sent {
            Ok(()) => {}
            Err(e @ RpcError::MessageTooLarge { .. }) => {
                crate::limited_log!(
                    log::Level::Warn,
                    "Reply of {} to RPC {id} not sent: {e}",
                    self.endpoint
                );
                self.send_failure(&e);
            }
            Err(e) => log::debug!("Reply of {} to RPC {id} not sent: {e}", self.endpoint),
        }
    }

    fn send_failure(&self, error: &RpcError) {
        let id = self.request_id;
        if let Err(e) = self.conn.send_answer(&mut |buf: &mut BytesMut| {
            put_failure_frame(buf, id, error);
        }) {
            log::debug!("Failure of RPC {id} not sent: {e}");
        }
    }

    fn fail_with(&self, error: &RpcError) {
        if !self.answered.swap(true, Ordering::AcqRel) {
            self.send_failure(error);
        }
    }
}

impl CallSlot for RemoteCall {
    fn fail(&self, error: RpcError) {
        self.fail_with(&error);
    }
}

impl Drop for RemoteCall {
    fn drop(&mut self) {
        if !self.answered.load(Ordering::Acquire) {
            let error = RpcError::NoReply {
                endpoint: self.endpoint.to_string(),
            };
            self.fail_with(&error);
        }
    }
}

enum ReplyTarget<T> {
    Local(Arc<LocalCall<T>>),
    Remote(Arc<RemoteCall>),
    /// The asker's own copy of the message, which only gets encoded.
    Detached,
}

/// The reply port of an ask. Its type parameter is the type of the answer.
///
/// A handler answers with [`send`](Self::send) or [`fail`](Self::fail), now or later and
/// from any thread; both consume the port, so an ask is answered at most once. A port
/// dropped without an answer fails the ask with [`RpcError::NoReply`].
///
/// On the wire a reply port takes no bytes: it stands for the request id of the frame.
pub struct Reply<T> {
    target: ReplyTarget<T>,
    _answer: PhantomData<fn(T)>,
}

impl<T> Reply<T> {
    pub(crate) fn local(call: Arc<LocalCall<T>>) -> Reply<T> {
        Reply {
            target: ReplyTarget::Local(call),
            _answer: PhantomData,
        }
    }

    pub(crate) fn detached() -> Reply<T> {
        Reply {
            target: ReplyTarget::Detached,
            _answer: PhantomData,
        }
    }
}

impl<T: Encode + Send + 'static> Reply<T> {
    /// Answers the ask with `value` (Spark's `context.reply`).
    pub fn send(self, value: T) {
        match &self.target {
            ReplyTarget::Local(call) => call.finish(Ok(value)),
            ReplyTarget::Remote(call) => call.answer(&value),
            ReplyTarget::Detached => {}
        }
    }

    /// Fails the ask with `message` (Spark's `context.sendFailure`); the asker sees
    /// [`RpcError::Failure`] with this message.
    pub fn fail(self, message: impl Into<String>) {
        let error = RpcError::Failure {
            message: message.into(),
        };
        match &self.target {
            ReplyTarget::Local(call) => call.finish(Err(error)),
            ReplyTarget::Remote(call) => call.fail(error),
            ReplyTarget::Detached => {}
        }
    }
}

impl<T> Encode for Reply<T> {
    fn encode(&self, _buf: &mut BytesMut) {}
}

impl<T> Decode for Reply<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let call = r
            .context_as::<Arrival>()
            .and_then(|arrival| arrival.call.clone())
            .ok_or(DecodeError::MissingContext {
                what: "a reply port",
            })?;
        Ok(Reply {
            target: ReplyTarget::Remote(call),
            _answer: PhantomData,
        })
    }
}

impl<T> fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.target {
            ReplyTarget::Local(_) => "local",
            ReplyTarget::Remote(_) => "remote",
            ReplyTarget::Detached => "detached",
        };
        write!(f, "Reply<{}>({kind})", std::any::type_name::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn new_ask() -> (AskHandle<u32>, Arc<AskShared<u32>>) {
        let shared = AskShared::new();
        (AskHandle::new(Arc::clone(&shared), None), shared)
    }

    #[test]
    fn an_answer_wakes_a_waiting_thread_and_completes_once() {
        let (handle, shared) = new_ask();
        let (started_tx, started_rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            started_tx.send(()).expect("main thread listens");
            handle.wait()
        });
        started_rx.recv().expect("the waiter starts");
        // Whether the waiter is already parked or not, the answer reaches it.
        assert!(shared.complete(Ok(7)));
        assert!(!shared.complete(Ok(8)), "a second answer is refused");
        assert_eq!(waiter.join().ok(), Some(Ok(7)));
    }

    #[test]
    fn poll_gives_the_handle_back_until_the_answer_is_there() {
        let (handle, shared) = new_ask();
        let handle = handle.poll().expect_err("no answer yet");
        shared.complete(Err(RpcError::failure("no")));
        assert_eq!(handle.poll().ok(), Some(Err(RpcError::failure("no"))));
    }

    #[test]
    fn a_callback_runs_on_the_answering_thread_or_at_once_if_answered() {
        let (handle, shared) = new_ask();
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        handle.on_complete(move |r| tx.send(r).expect("listening"));
        assert!(rx.try_recv().is_err(), "not before the answer");
        shared.complete(Ok(1));
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).ok(), Some(Ok(1)));

        let (answered, shared) = new_ask();
        shared.complete(Ok(2));
        answered.on_complete(move |r| tx2.send(r).expect("listening"));
        assert_eq!(rx.try_recv().ok(), Some(Ok(2)), "ran at once");
    }

    #[test]
    fn a_panicking_callback_does_not_take_the_answering_thread_down() {
        let (handle, shared) = new_ask();
        handle.on_complete(|_| panic!("callback bug"));
        assert!(shared.complete(Ok(3)));
        assert!(shared.is_done());
    }
}
