//! A thread that calls a function at a fixed interval: how endpoints get their timers (the
//! function sends the endpoint a message; the endpoint's handler does the work).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Calls a function every interval until dropped (or until the function returns `false`).
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn ticks_until_dropped_and_stops_promptly() {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let ticker = Ticker::start("test-ticker", Duration::from_millis(1), move || {
            seen.fetch_add(1, Ordering::SeqCst);
            true
        })
        .expect("starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while count.load(Ordering::SeqCst) < 3 {
            assert!(Instant::now() < deadline, "ticks");
            std::thread::yield_now();
        }
        let dropped_at = Instant::now();
        drop(ticker);
        assert!(
            dropped_at.elapsed() < Duration::from_secs(5),
            "drop does not wait a tick"
        );
        let after = count.load(Ordering::SeqCst);
        std::thread::yield_now();
        assert_eq!(
            count.load(Ordering::SeqCst),
            after,
            "no tick after the drop returned"
        );
    }

    #[test]
    fn a_false_tick_ends_the_ticker() {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let ticker = Ticker::start("test-ticker", Duration::from_millis(1), move || {
            seen.fetch_add(1, Ordering::SeqCst) < 1
        })
        .expect("starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while count.load(Ordering::SeqCst) < 2 {
            assert!(Instant::now() < deadline, "ticks twice");
            std::thread::yield_now();
        }
        drop(ticker);
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
