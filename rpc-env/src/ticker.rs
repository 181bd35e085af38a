//! A thread that calls a function at a fixed interval: how endpoints get their timers (the
//! function sends the endpoint a message; the endpoint's handler does the work, on the
//! endpoint's own thread, so a timer needs no lock of its own). The master's and worker's
//! heartbeats and retries, the app client's registration retries, the executor's heartbeater
//! and the driver's deadlines all run this way.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Calls a function every interval until dropped (or until the function returns `false`).
///
/// An endpoint keeps its `Ticker` in a field and drops it (in `on_stop`, or to cancel the
/// timer): the drop wakes the thread and joins it, so no tick runs after the drop returns.
/// The usual tick sends the endpoint a message through its own ref and returns whether that
/// worked, so the ticker ends by itself once the endpoint is gone.
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use rpc_env::Ticker;
///
/// let (tx, rx) = mpsc::channel();
/// // In an endpoint: `move || me.send(Message::Tick).is_ok()`.
/// let ticker = Ticker::start("doc-ticker", Duration::from_millis(1), move || tx.send(()).is_ok())
///     .expect("a thread");
/// rx.recv().expect("a tick");
/// drop(ticker);
/// ```
pub struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts calling `tick` every `interval`, the first time one interval from now.
    pub fn start(
        name: &str,
        interval: Duration,
        tick: impl Fn() -> bool + Send + 'static,
    ) -> std::io::Result<Ticker> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop_for_thread = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let (stopped, wakeup) = &*stop_for_thread;
                let mut next = Instant::now() + interval;
                loop {
                    {
                        let mut stopped = stopped.lock();
                        while !*stopped && Instant::now() < next {
                            wakeup.wait_until(&mut stopped, next);
                        }
                        if *stopped {
                            return;
                        }
                    }
                    if !tick() {
                        return;
                    }
                    next += interval;
                    let now = Instant::now();
                    if next < now {
                        // Running late (a stopped VM, a long tick): skip the missed ticks.
                        next = now + interval;
                    }
                }
            })?;
        Ok(Ticker {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(handle) = self.handle.take() {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticker")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_test_support::{wait_until, DEADLINE};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn ticks_until_dropped_and_no_tick_runs_after_the_drop() {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let ticker = Ticker::start("test-ticker", Duration::from_millis(1), move || {
            seen.fetch_add(1, Ordering::SeqCst);
            true
        })
        .expect("starts");
        wait_until("three ticks", DEADLINE, || {
            count.load(Ordering::SeqCst) >= 3
        });
        drop(ticker);
        // The tick closure (holding the other reference) is gone: the thread has ended, so no
        // tick can run any more.
        assert_eq!(
            Arc::strong_count(&count),
            1,
            "the ticker's thread has ended"
        );
    }

    #[test]
    fn dropping_wakes_a_ticker_in_the_middle_of_its_interval() {
        let ticker = Ticker::start("test-ticker", Duration::from_secs(3600), || {
            panic!("no tick within the hour")
        })
        .expect("starts");
        // Dropped on another thread, so a drop that waited out the interval fails the test
        // instead of hanging it.
        let (dropped, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(ticker);
            let _ = dropped.send(());
        });
        done.recv_timeout(DEADLINE)
            .expect("the drop did not wait for the hour-long interval");
    }

    #[test]
    fn a_false_tick_ends_the_ticker() {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let ticker = Ticker::start("test-ticker", Duration::from_millis(1), move || {
            seen.fetch_add(1, Ordering::SeqCst) < 1
        })
        .expect("starts");
        wait_until("two ticks", DEADLINE, || count.load(Ordering::SeqCst) >= 2);
        drop(ticker);
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
