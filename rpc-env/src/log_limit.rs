//! Rate-limited logging: a peer that sends a million bad messages must cost a handful of log
//! lines, not a gigabyte of log.
//!
//! Each call site of [`limited_log!`](crate::limited_log) owns a [`RateLimit`]: at most
//! [`LINES_PER_WINDOW`] lines per [`WINDOW`], then silence (counted) until the window
//! ends; the first line of the next window says how many were left out. What the lines
//! were about is still counted by whoever logs them (see `RpcEnv::network_stats`).

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Lines one call site may write per window.
pub const LINES_PER_WINDOW: u32 = 10;
/// How long a window lasts.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The budget of one log call site.
pub struct RateLimit {
    window: Mutex<Window>,
}

struct Window {
    /// When the current window began; `None` before the first line.
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

/// What a call site may do with its next line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Log it.
    Log,
    /// Log it, saying this many lines were left out since the last one.
    LogAfterSuppressing(u64),
    /// Leave it out (it is counted).
    Suppress,
}

impl RateLimit {
    /// A fresh budget, usable in a `static`.
    pub const fn new() -> RateLimit {
        RateLimit {
            window: parking_lot::const_mutex(Window {
                started: None,
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether a line may be written now.
    pub fn admit(&self) -> Admit {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Admit {
        let mut w = self.window.lock();
        let expired = w
            .started
            .is_none_or(|started| now.saturating_duration_since(started) >= WINDOW);
        if expired {
            w.started = Some(now);
            w.logged = 0;
        }
        if w.logged >= LINES_PER_WINDOW {
            w.suppressed += 1;
            return Admit::Suppress;
        }
        w.logged += 1;
        match std::mem::take(&mut w.suppressed) {
            0 => Admit::Log,
            n => Admit::LogAfterSuppressing(n),
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new()
    }
}

/// Logs like `log::log!(level, ...)`, at most [`LINES_PER_WINDOW`](crate::log_limit::LINES_PER_WINDOW)
/// times per minute from this call site; the first line after a quiet spell says how many
/// were left out. For lines a remote peer can cause at will.
#[macro_export]
macro_rules! limited_log {
    ($level:expr, $($arg:tt)+) => {{
        static LIMIT: $crate::log_limit::RateLimit = $crate::log_limit::RateLimit::new();
        if log::log_enabled!($level) {
            match LIMIT.admit() {
                $crate::log_limit::Admit::Log => log::log!($level, $($arg)+),
                $crate::log_limit::Admit::LogAfterSuppressing(n) => log::log!(
                    $level,
                    "{} ({n} similar lines left out)",
                    format_args!($($arg)+)
                ),
                $crate::log_limit::Admit::Suppress => {}
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_budget_then_reports_what_it_left_out() {
        let limit = RateLimit::new();
        let t0 = Instant::now();
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(limit.admit_at(t0), Admit::Log);
        }
        for _ in 0..1000 {
            assert_eq!(limit.admit_at(t0 + Duration::from_secs(1)), Admit::Suppress);
        }
        assert_eq!(
            limit.admit_at(t0 + WINDOW),
            Admit::LogAfterSuppressing(1000)
        );
        assert_eq!(limit.admit_at(t0 + WINDOW), Admit::Log);
    }
}
