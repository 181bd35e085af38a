//! Waiting on a condition with a deadline.

use std::time::{Duration, Instant};

/// How long a test waits for something that should happen, unless it has a reason to wait
/// longer (then it passes a multiple of this, and says why).
///
/// Generous on purpose: a passing test waits only as long as the condition takes (usually
/// milliseconds); only a failing one waits this long, and a loaded two-core machine can stall
/// a thread or a process start for seconds.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The longest pause between two checks: short enough that a test never waits noticeably
/// longer than its condition takes, long enough not to burn a core while a process starts.
const MAX_PAUSE: Duration = Duration::from_millis(10);

/// Checks `cond` until it holds; panics naming `what` (and the caller's line) if it still
/// does not hold after `deadline`.
///
/// The pause between checks starts at a millisecond and doubles up to 10 ms, so a condition
/// that holds at once is seen at once and a slow one costs little CPU.
///
/// ```
/// use std::time::Instant;
/// use ember_test_support::{wait_until, DEADLINE};
///
/// let start = Instant::now();
/// wait_until("a few milliseconds have passed", DEADLINE, || start.elapsed().as_millis() >= 3);
/// ```
#[track_caller]
pub fn wait_until(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let look = || if cond() { Ok(()) } else { Err(()) };
    poll(what, deadline, look, |()| String::new());
}

/// Looks with `look` until it finds something (`Ok`), and returns it; panics naming `what`
/// and the last thing seen (the last `Err`) if it finds nothing within `deadline`. For waits
/// whose failure is easier to understand with what was there instead, such as a state that
/// never reached the wanted one, or the processes still running.
///
/// Checks as often as [`wait_until`], and once more after the deadline has passed.
///
/// ```
/// use ember_test_support::{wait_for, DEADLINE};
///
/// let mut n = 0;
/// let found = wait_for("n reaches 3", DEADLINE, || {
///     n += 1;
///     if n == 3 { Ok(n) } else { Err(n) }
/// });
/// assert_eq!(found, 3);
/// ```
#[track_caller]
pub fn wait_for<T, Seen: std::fmt::Debug>(
    what: &str,
    deadline: Duration,
    look: impl FnMut() -> Result<T, Seen>,
) -> T {
    poll(what, deadline, look, |seen| {
        format!("; last seen: {seen:?}")
    })
}

/// The loop of both waits: `describe` turns the last thing seen into the end of the panic
/// message.
#[track_caller]
fn poll<T, Seen>(
    what: &str,
    deadline: Duration,
    mut look: impl FnMut() -> Result<T, Seen>,
    describe: impl Fn(&Seen) -> String,
) -> T {
    let end = Instant::now() + deadline;
    let mut pause = Duration::from_millis(1);
    loop {
        // The time is read before the look, so the last look happens after the deadline.
        let now = Instant::now();
        let seen = match look() {
            Ok(found) => return found,
            Err(seen) => seen,
        };
        if now >= end {
            let seen = describe(&seen);
            panic!("timed out after {deadline:?} waiting until {what}{seen}");
        }
        std::thread::sleep(pause.min(end - now));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn returns_as_soon_as_the_condition_holds() {
        let checks = Cell::new(0);
        wait_until("the third check", DEADLINE, || {
            checks.set(checks.get() + 1);
            checks.get() == 3
        });
        assert_eq!(checks.get(), 3);
    }

    #[test]
    fn panics_naming_what_it_waited_for_and_where() {
        let outcome = std::panic::catch_unwind(|| {
            wait_until("pigs fly", Duration::from_millis(20), || false);
        });
        let payload = outcome.expect_err("a condition that never holds fails the test");
        let message = payload
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(message.contains("waiting until pigs fly"), "{message}");
        assert!(message.contains("20ms"), "{message}");
    }

    #[test]
    fn wait_for_returns_what_it_found_or_names_the_last_thing_seen() {
        let mut looks = 0;
        let found = wait_for("the second look", DEADLINE, || {
            looks += 1;
            if looks == 2 {
                Ok("found")
            } else {
                Err(looks)
            }
        });
        assert_eq!((found, looks), ("found", 2));

        let outcome = std::panic::catch_unwind(|| {
            wait_for(
                "a state that never comes",
                Duration::from_millis(20),
                || Err::<(), _>(vec!["still WAITING"]),
            )
        });
        let payload = outcome.expect_err("nothing found fails the test");
        let message = payload
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(
            message.contains("waiting until a state that never comes"),
            "{message}"
        );
        assert!(
            message.contains("last seen: [\"still WAITING\"]"),
            "{message}"
        );
    }

    #[test]
    fn checks_once_more_at_the_deadline() {
        // A condition that becomes true while the waiter sleeps its last pause still counts.
        let start = Instant::now();
        wait_until("the deadline", Duration::from_millis(30), || {
            start.elapsed() >= Duration::from_millis(30)
        });
    }
}
