//! Bounded polling before parking (`ember.rpc.io.spinWait`): a thread that expects news
//! soon polls for it for a while instead of parking at once, because waking a parked
//! thread costs tens of microseconds on a loaded machine and a poll costs well under one.
//! Every poll yields the core, so pollers that outnumber the cores take turns instead of
//! starving the thread that would bring the news.

use std::time::{Duration, Instant};

/// How many polls pass between clock reads: reading the clock costs more than a poll.
const POLLS_PER_CLOCK_READ: u32 = 16;

/// Polls `ready` until it holds or `spin` has passed; whether it held. Returns at once
/// (`false`) when `spin` is zero.
pub(crate) fn poll_for(spin: Duration, ready: impl Fn() -> bool) -> bool {
    if spin.is_zero() {
        return false;
    }
    let deadline = Instant::now() + spin;
    let mut polls = 0u32;
    loop {
        if ready() {
            return true;
        }
        polls = polls.wrapping_add(1);
        if polls % POLLS_PER_CLOCK_READ == 0 && Instant::now() >= deadline {
            return ready();
        }
        std::thread::yield_now();
    }
}

/// The polling window of an IO thread: open for `spin` after the last activity, closed
/// otherwise, so that an idle thread parks and costs nothing.
#[derive(Debug)]
pub(crate) struct SpinWindow {
    spin: Duration,
    /// When the window closes; `None` when it is closed.
    until: Option<Instant>,
}

impl SpinWindow {
    /// A closed window that opens for `spin` on activity (never, when `spin` is zero).
    pub(crate) fn new(spin: Duration) -> SpinWindow {
        SpinWindow { spin, until: None }
    }

    /// Something happened: the window opens (again) for `spin` from now.
    pub(crate) fn activity(&mut self) {
        if !self.spin.is_zero() {
            self.until = Some(Instant::now() + self.spin);
        }
    }

    /// Whether the window is still open; closes it once its time has passed.
    pub(crate) fn is_open(&mut self) -> bool {
        match self.until {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                self.until = None;
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn polling_stops_when_ready_or_when_time_is_up() {
        assert!(!poll_for(Duration::ZERO, || true), "off: no poll at all");
        let calls = AtomicU32::new(0);
        assert!(poll_for(Duration::from_secs(60), || {
            calls.fetch_add(1, Ordering::Relaxed) == 3
        }));
        assert_eq!(calls.load(Ordering::Relaxed), 4, "stops at the first true");
        let started = Instant::now();
        assert!(!poll_for(Duration::from_millis(5), || false));
        assert!(started.elapsed() >= Duration::from_millis(5));
    }

    #[test]
    fn a_window_opens_on_activity_and_closes_after_its_time() {
        let mut off = SpinWindow::new(Duration::ZERO);
        off.activity();
        assert!(!off.is_open(), "a zero window never opens");
        let mut window = SpinWindow::new(Duration::from_millis(5));
        assert!(!window.is_open(), "closed until something happens");
        let before = Instant::now();
        window.activity();
        assert!(window.is_open());
        while window.is_open() {
            std::thread::yield_now();
        }
        assert!(before.elapsed() >= Duration::from_millis(5));
        assert!(!window.is_open(), "stays closed");
    }
}
