//! Corks: while a thread is corked, its sends only queue their frames; uncorking writes each
//! connection they went to, once. Loop threads cork while they drain a batch of messages, so
//! the answers to a batch of asks leave in one write; the IO thread corks while it routes a
//! chunk of frames.

use std::cell::RefCell;
use std::sync::Arc;

use super::Connection;

thread_local! {
    /// Connections written to while this thread is corked; `None` when it is not.
    static CORKED: RefCell<Option<Vec<Arc<Connection>>>> = const { RefCell::new(None) };
}

/// While alive, sends from this thread only queue their frames; dropping it writes every
/// connection they went to, once. Nested corks are no-ops.
pub(crate) struct Cork {
    outermost: bool,
}

impl Cork {
    /// Corks this thread.
    pub(crate) fn new() -> Cork {
        let outermost = CORKED.with(|c| {
            let mut corked = c.borrow_mut();
            if corked.is_some() {
                return false;
            }
            *corked = Some(Vec::new());
            true
        });
        Cork { outermost }
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        let conns = CORKED.with(|c| c.borrow_mut().take()).unwrap_or_default();
        for conn in conns {
            conn.uncork();
        }
    }
}

/// Records `conn` for the cork of this thread; `false` if the thread is not corked.
pub(super) fn cork(conn: &Arc<Connection>) -> bool {
    CORKED.with(|c| match c.try_borrow_mut() {
        Ok(mut corked) => match corked.as_mut() {
            Some(list) => {
                if !list.iter().any(|known| Arc::ptr_eq(known, conn)) {
                    list.push(Arc::clone(conn));
                }
                true
            }
            None => false,
        },
        Err(_) => false,
    })
}
