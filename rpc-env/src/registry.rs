//! The asks an env is waiting on, by request id, and the one timer thread that fails them.
//!
//! Every ask (local or remote) gets an entry here with its deadline. A reply takes the entry
//! out; the timer takes out the ones whose deadline passed and fails them. Entries sit in a
//! slab (O(1) insert and removal by id) and their deadlines in a heap; removal leaves a stale
//! heap entry behind, skipped when it surfaces and swept when stale ones outnumber live ones,
//! so memory stays proportional to the asks in flight.
//!
//! Request ids are `generation << 32 | slot`: a slot reused for a new ask gets a new
//! generation, so a reply that arrives after its ask timed out can never complete another.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::codec::{DecodeContext, DecodeError};
use crate::error::RpcError;

/// Something waiting for the answer to one ask.
pub(crate) trait PendingAsk: Send {
    /// The response body arrived: decode it and complete the ask.
    fn complete(self: Box<Self>, body: Bytes, ctx: &dyn DecodeContext) -> Result<(), DecodeError>;
    /// The ask failed.
    fn fail(self: Box<Self>, error: RpcError);
}

/// What a timeout error says: who did not answer, after how long, and which setting applies.
#[derive(Debug, Clone)]
pub(crate) struct TimeoutInfo {
    pub(crate) to: Arc<str>,
    pub(crate) after: Duration,
    pub(crate) setting: Arc<str>,
}

impl TimeoutInfo {
    fn error(&self) -> RpcError {
        RpcError::Timeout {
            to: self.to.to_string(),
            after: self.after,
            setting: self.setting.to_string(),
        }
    }
}

/// No connection: the entry is failed only by its timeout, its reply or an abort.
pub(crate) const NO_ROUTE: u64 = 0;

struct Entry {
    target: Box<dyn PendingAsk>,
    /// The outbox or connection carrying the ask, so a closed connection fails its asks.
    route: u64,
    timeout: TimeoutInfo,
}

struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

struct Inner {
    slots: Vec<Slot>,
    free: Vec<u32>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    live: usize,
    /// When the timer thread will next wake, so an insert wakes it only if it must go earlier.
    next_wake: Option<Instant>,
    stopped: bool,
}

impl Inner {
    fn take(&mut self, id: u64) -> Option<Entry> {
        let index = (id & 0xffff_ffff) as usize;
        let generation = (id >> 32) as u32;
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let entry = slot.entry.take()?;
        // Generation 0 is skipped on wrap-around, so no live ask ever has request id 0 (the
        // id of one-way frames).
        slot.generation = slot.generation.wrapping_add(1).max(1);
        self.free.push(index as u32);
        self.live -= 1;
        Some(entry)
    }

    /// Drops the deadlines of asks that are no longer waiting, once they outnumber the live
    /// ones: amortised O(1) per ask, and memory proportional to the asks in flight.
    fn sweep_if_stale(&mut self) {
        if self.deadlines.len() <= 2 * self.live + 1024 {
            return;
        }
        let Inner {
            deadlines, slots, ..
        } = self;
        deadlines.retain(|Reverse((_, id))| slot_is_live(slots, *id));
    }
}

fn slot_is_live(slots: &[Slot], id: u64) -> bool {
    let index = (id & 0xffff_ffff) as usize;
    slots
        .get(index)
        .is_some_and(|s| s.generation == (id >> 32) as u32 && s.entry.is_some())
}

/// The pending asks of one env.
pub(crate) struct AskRegistry {
    inner: Mutex<Inner>,
    timer_wakeup: Condvar,
    timer: Mutex<Option<JoinHandle<()>>>,
}

impl AskRegistry {
    /// A registry with its timer thread running.
    pub(crate) fn start(env_name: &str) -> Result<Arc<AskRegistry>, RpcError> {
        let registry = Arc::new(AskRegistry {
            inner: Mutex::new(Inner {
                slots: Vec::new(),
                free: Vec::new(),
                deadlines: BinaryHeap::new(),
                live: 0,
                next_wake: None,
                stopped: false,
            }),
            timer_wakeup: Condvar::new(),
            timer: Mutex::new(None),
        });
        let for_thread = Arc::clone(&registry);
        let handle = std::thread::Builder::new()
            .name(format!("{env_name}-ask-timeout"))
            .spawn(move || for_thread.run_timer())
            .map_err(|e| RpcError::Io {
                context: "starting the ask timeout thread".into(),
                reason: e.to_string(),
            })?;
        *registry.timer.lock() = Some(handle);
        Ok(registry)
    }

    /// Registers an ask; returns its request id, or gives the target back failed if the env
    /// has stopped.
    pub(crate) fn insert(
        &self,
        target: Box<dyn PendingAsk>,
        route: u64,
        timeout: TimeoutInfo,
    ) -> Option<u64> {
        let deadline = Instant::now() + timeout.after;
        let mut inner = self.inner.lock();
        if inner.stopped {
            drop(inner);
            target.fail(RpcError::EnvStopped);
            return None;
        }
        let entry = Entry {
            target,
            route,
            timeout,
        };
        let index = match inner.free.pop() {
            Some(i) => i as usize,
            None => {
                inner.slots.push(Slot {
                    generation: 1,
                    entry: None,
                });
                inner.slots.len() - 1
            }
        };
        let slot = &mut inner.slots[index];
        slot.entry = Some(entry);
        let id = (u64::from(slot.generation) << 32) | index as u64;
        inner.live += 1;
        inner.sweep_if_stale();
        inner.deadlines.push(Reverse((deadline, id)));
        let wake = inner.next_wake.is_none_or(|w| deadline < w);
        drop(inner);
        if wake {
            self.timer_wakeup.notify_one();
        }
        Some(id)
    }

    /// Takes the ask with this id out, if it is still waiting.
    pub(crate) fn take(&self, id: u64) -> Option<Box<dyn PendingAsk>> {
        self.inner.lock().take(id).map(|e| e.target)
    }

    /// Takes out the ask with this id if it travelled on one of `routes`: an answer counts
    /// only on the connection its ask went out on, so no other peer can answer it.
    pub(crate) fn take_answered_on(
        &self,
        id: u64,
        routes: [u64; 2],
    ) -> Option<Box<dyn PendingAsk>> {
        let mut inner = self.inner.lock();
        let index = (id & 0xffff_ffff) as usize;
        let travelled_here = inner.slots.get(index).is_some_and(|s| {
            s.generation == (id >> 32) as u32
                && s.entry
                    .as_ref()
                    .is_some_and(|e| e.route != NO_ROUTE && routes.contains(&e.route))
        });
        if !travelled_here {
            return None;
        }
        inner.take(id).map(|e| e.target)
    }

    /// Fails the ask with this id, if it is still waiting.
    pub(crate) fn fail(&self, id: u64, error: RpcError) {
        if let Some(target) = self.take(id) {
            target.fail(error);
        }
    }

    /// Forgets the ask with this id without failing it (it was completed elsewhere).
    pub(crate) fn forget(&self, id: u64) {
        drop(self.take(id));
    }

    /// Fails every ask travelling on `route` (a closed connection or a failed outbox).
    pub(crate) fn fail_route(&self, route: u64, error: &RpcError) {
        if route == NO_ROUTE {
            return;
        }
        let failed: Vec<Entry> = {
            let mut inner = self.inner.lock();
            let ids: Vec<u64> = inner
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.entry.as_ref().is_some_and(|e| e.route == route))
                .map(|(i, s)| (u64::from(s.generation) << 32) | i as u64)
                .collect();
            ids.into_iter().filter_map(|id| inner.take(id)).collect()
        };
        for entry in failed {
            entry.target.fail(error.clone());
        }
    }

    /// Fails everything still waiting, stops the timer and refuses new asks.
    pub(crate) fn stop(&self) {
        let failed: Vec<Entry> = {
            let mut inner = self.inner.lock();
            inner.stopped = true;
            inner.deadlines.clear();
            inner.free.clear();
            inner.live = 0;
            inner.slots.drain(..).filter_map(|s| s.entry).collect()
        };
        self.timer_wakeup.notify_all();
        for entry in failed {
            entry.target.fail(RpcError::EnvStopped);
        }
        let handle = self.timer.lock().take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }

    /// How many asks are waiting (for tests and metrics).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().live
    }

    fn run_timer(&self) {
        crate::thread_role::mark_rpc_thread();
        let mut expired: Vec<Entry> = Vec::new();
        loop {
            {
                let mut inner = self.inner.lock();
                if inner.stopped {
                    return;
                }
                let now = Instant::now();
                while let Some(Reverse((deadline, id))) = inner.deadlines.peek().copied() {
                    if deadline > now {
                        break;
                    }
                    inner.deadlines.pop();
                    if let Some(entry) = inner.take(id) {
                        expired.push(entry);
                    }
                }
                inner.next_wake = inner.deadlines.peek().map(|Reverse((d, _))| *d);
                if expired.is_empty() {
                    match inner.next_wake {
                        Some(at) => {
                            self.timer_wakeup.wait_until(&mut inner, at);
                        }
                        None => self.timer_wakeup.wait(&mut inner),
                    }
                    continue;
                }
            }
            for entry in expired.drain(..) {
                let error = entry.timeout.error();
                entry.target.fail(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    struct Probe(mpsc::Sender<Result<Bytes, RpcError>>);

    impl PendingAsk for Probe {
        fn complete(
            self: Box<Self>,
            body: Bytes,
            _ctx: &dyn DecodeContext,
        ) -> Result<(), DecodeError> {
            let _ = self.0.send(Ok(body));
            Ok(())
        }
        fn fail(self: Box<Self>, error: RpcError) {
            let _ = self.0.send(Err(error));
        }
    }

    fn info(after: Duration) -> TimeoutInfo {
        TimeoutInfo {
            to: Arc::from("h:1"),
            after,
            setting: Arc::from("ember.rpc.askTimeout"),
        }
    }

    #[test]
    fn expired_asks_fail_with_the_setting_in_the_message() {
        let registry = AskRegistry::start("test").expect("starts");
        let (tx, rx) = mpsc::channel();
        registry.insert(
            Box::new(Probe(tx)),
            NO_ROUTE,
            info(Duration::from_millis(5)),
        );
        let result = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fails in time");
        let error = result.expect_err("a timeout");
        assert_eq!(
            error.to_string(),
            "Cannot receive any reply from h:1 in 5 milliseconds. \
             This timeout is controlled by ember.rpc.askTimeout"
        );
        assert_eq!(registry.len(), 0);
        registry.stop();
    }

    #[test]
    fn taken_asks_never_time_out_and_ids_are_not_reused() {
        let registry = AskRegistry::start("test").expect("starts");
        let (tx, rx) = mpsc::channel();
        let first = registry
            .insert(
                Box::new(Probe(tx.clone())),
                NO_ROUTE,
                info(Duration::from_millis(1)),
            )
            .expect("id");
        assert!(registry.take(first).is_some());
        assert!(registry.take(first).is_none(), "taken once");
        let second = registry
            .insert(Box::new(Probe(tx)), NO_ROUTE, info(Duration::from_secs(60)))
            .expect("id");
        assert_ne!(first, second, "the reused slot has a new generation");
        assert!(
            registry.take(first).is_none(),
            "a stale id completes nothing"
        );
        registry.stop();
        // The live one is failed by stop; the taken one never reports.
        assert!(matches!(rx.recv(), Ok(Err(RpcError::EnvStopped))));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_closed_route_fails_only_its_asks() {
        let registry = AskRegistry::start("test").expect("starts");
        let (tx_a, rx_a) = mpsc::channel();
        let (tx_b, rx_b) = mpsc::channel();
        registry.insert(Box::new(Probe(tx_a)), 7, info(Duration::from_secs(60)));
        registry.insert(Box::new(Probe(tx_b)), 8, info(Duration::from_secs(60)));
        let closed = RpcError::ConnectionClosed { peer: "h:1".into() };
        registry.fail_route(7, &closed);
        assert_eq!(rx_a.recv().expect("failed"), Err(closed));
        assert!(rx_b.try_recv().is_err());
        assert_eq!(registry.len(), 1);
        registry.stop();
    }

    #[test]
    fn many_completed_asks_leave_no_garbage() {
        let registry = AskRegistry::start("test").expect("starts");
        for _ in 0..10_000 {
            let (tx, _rx) = mpsc::channel();
            let id = registry
                .insert(
                    Box::new(Probe(tx)),
                    NO_ROUTE,
                    info(Duration::from_secs(120)),
                )
                .expect("id");
            registry.forget(id);
        }
        assert_eq!(registry.len(), 0);
        let inner = registry.inner.lock();
        assert!(inner.slots.len() <= 1, "slots are reused");
        assert!(inner.deadlines.len() <= 1025, "stale deadlines are swept");
        drop(inner);
        registry.stop();
    }
}
