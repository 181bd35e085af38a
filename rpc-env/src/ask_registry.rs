//! The pending asks of one env behind a lock, and the one timer thread that fails the ones
//! whose deadline passes (the table itself is [`PendingAsks`]).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::error::RpcError;
use crate::pending_asks::{Entry, PendingAsk, PendingAsks, TimeoutInfo};

struct Inner {
    table: PendingAsks,
    /// When the timer thread will next wake, so an insert wakes it only if it must go earlier.
    next_wake: Option<Instant>,
    stopped: bool,
}

/// The pending asks of one env and their timer.
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
                table: PendingAsks::default(),
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

    /// Registers an ask; returns its request id, or fails the target if the env has stopped.
    pub(crate) fn insert(
        &self,
        target: Box<dyn PendingAsk>,
        route: u64,
        timeout: TimeoutInfo,
    ) -> Option<u64> {
        let now = Instant::now();
        let deadline = now + timeout.after;
        let mut inner = self.inner.lock();
        if inner.stopped {
            drop(inner);
            target.fail(RpcError::EnvStopped);
            return None;
        }
        let id = inner.table.insert(target, route, timeout, now);
        let wake = inner.next_wake.is_none_or(|w| deadline < w);
        drop(inner);
        if wake {
            self.timer_wakeup.notify_one();
        }
        Some(id)
    }

    /// Takes out the ask with this id if it travelled on one of `routes` (see
    /// [`PendingAsks::take_answered_on`]).
    pub(crate) fn take_answered_on(
        &self,
        id: u64,
        routes: [u64; 2],
    ) -> Option<Box<dyn PendingAsk>> {
        let entry = self.inner.lock().table.take_answered_on(id, routes);
        entry.map(|e| e.target)
    }

    /// Fails the ask with this id, if it is still waiting.
    pub(crate) fn fail(&self, id: u64, error: RpcError) {
        let entry = self.inner.lock().table.take(id);
        if let Some(entry) = entry {
            entry.target.fail(error);
        }
    }

    /// Forgets the ask with this id without failing it (it was completed elsewhere).
    pub(crate) fn forget(&self, id: u64) {
        let entry = self.inner.lock().table.take(id);
        drop(entry);
    }

    /// Fails every ask travelling on `route` (a closed connection or a failed outbox).
    pub(crate) fn fail_route(&self, route: u64, error: &RpcError) {
        let failed = self.inner.lock().table.take_route(route);
        for entry in failed {
            entry.target.fail(error.clone());
        }
    }

    /// Fails everything still waiting, stops the timer and refuses new asks.
    pub(crate) fn stop(&self) {
        let failed: Vec<Entry> = {
            let mut inner = self.inner.lock();
            inner.stopped = true;
            inner.table.drain()
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

    /// How many asks are waiting (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().table.len()
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
                inner.table.take_expired(Instant::now(), &mut expired);
                inner.next_wake = inner.table.next_deadline();
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
            // Failed outside the lock: a failure runs the ask's callback.
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
    use crate::pending_asks::tests::{info, Probe};
    use crate::pending_asks::NO_ROUTE;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn the_timer_fails_expired_asks_with_the_setting_in_the_message() {
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
    fn an_earlier_deadline_wakes_a_timer_waiting_for_a_later_one() {
        let registry = AskRegistry::start("test").expect("starts");
        let (late_tx, _late_rx) = mpsc::channel();
        registry.insert(
            Box::new(Probe(late_tx)),
            NO_ROUTE,
            info(Duration::from_secs(3600)),
        );
        let (tx, rx) = mpsc::channel();
        registry.insert(
            Box::new(Probe(tx)),
            NO_ROUTE,
            info(Duration::from_millis(1)),
        );
        let result = rx.recv_timeout(Duration::from_secs(10)).expect("in time");
        assert!(matches!(result, Err(RpcError::Timeout { .. })));
        registry.stop();
    }

    #[test]
    fn stop_fails_what_waits_and_refuses_new_asks() {
        let registry = AskRegistry::start("test").expect("starts");
        let (tx, rx) = mpsc::channel();
        registry.insert(
            Box::new(Probe(tx.clone())),
            7,
            info(Duration::from_secs(60)),
        );
        registry.stop();
        assert_eq!(rx.recv().ok(), Some(Err(RpcError::EnvStopped)));
        let refused = registry.insert(Box::new(Probe(tx)), 7, info(Duration::from_secs(60)));
        assert_eq!(refused, None);
        assert_eq!(rx.recv().ok(), Some(Err(RpcError::EnvStopped)));
    }
}
