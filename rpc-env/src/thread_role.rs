//! What the calling thread is to the env: one of its own threads, an IO thread, or neither.
//!
//! A leaf module: the rules that depend on the thread (no blocking waits on an IO thread,
//! shutdown from inside a handler finishing elsewhere) ask here, and nothing here depends on
//! the rest of the crate.

use std::any::Any;
use std::cell::Cell;

/// The part a thread plays in an env.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Not one of an env's threads: a user's thread.
    Outside,
    /// A message loop or the ask timer: handlers and callbacks run here.
    Rpc,
    /// An IO thread: it reads the network, and inline handlers and callbacks run here.
    Io,
}

thread_local! {
    static ROLE: Cell<Role> = const { Cell::new(Role::Outside) };
}

/// Marks the calling thread as one of an env's own (a message loop or the timer).
pub(crate) fn mark_rpc_thread() {
    ROLE.with(|r| r.set(Role::Rpc));
}

/// Marks the calling thread as an IO thread (also one of the env's own).
pub(crate) fn mark_io_thread() {
    ROLE.with(|r| r.set(Role::Io));
}

/// Whether the calling thread is one of an env's own (a handler or callback runs on it).
pub(crate) fn on_rpc_thread() -> bool {
    ROLE.with(|r| r.get() != Role::Outside)
}

/// Whether the calling thread is an IO thread, where waiting for an ask is refused.
pub(crate) fn on_io_thread() -> bool {
    ROLE.with(|r| r.get() == Role::Io)
}

/// The text of a panic payload, for logs and for the asker of a handler that panicked.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_per_thread() {
        let outside = std::thread::spawn(|| (on_rpc_thread(), on_io_thread()));
        assert_eq!(outside.join().ok(), Some((false, false)));
        let rpc = std::thread::spawn(|| {
            mark_rpc_thread();
            (on_rpc_thread(), on_io_thread())
        });
        assert_eq!(rpc.join().ok(), Some((true, false)));
        let io = std::thread::spawn(|| {
            mark_io_thread();
            (on_rpc_thread(), on_io_thread())
        });
        assert_eq!(io.join().ok(), Some((true, true)));
    }

    #[test]
    fn panic_messages_read_str_and_string_payloads() {
        let text = std::panic::catch_unwind(|| panic!("plain")).expect_err("panics");
        assert_eq!(panic_message(&*text), "plain");
        let formatted = std::panic::catch_unwind(|| panic!("formatted {}", 7)).expect_err("panics");
        assert_eq!(panic_message(&*formatted), "formatted 7");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).expect_err("panics");
        assert_eq!(panic_message(&*other), "panic with a non-string payload");
    }
}
