//! Deferred inline runs: while a thread routes a chunk of frames, the inline inboxes it
//! would run at once are run when the chunk is done instead, so a burst of messages to one
//! endpoint is handled as one batch (one claim of the inbox, one pass over its queue)
//! rather than one run per message.

use std::cell::RefCell;
use std::sync::Arc;

use crate::message_loop::Runnable;

thread_local! {
    /// The inboxes claimed inside this thread's batch; `None` outside one.
    static DEFERRED: RefCell<Option<Vec<Arc<dyn Runnable>>>> = const { RefCell::new(None) };
}

/// While alive, inline runs on this thread are deferred to its drop. Nested batches are
/// no-ops. The IO thread opens one around each chunk of frames it reads.
pub(crate) struct InlineBatch {
    outermost: bool,
}

impl InlineBatch {
    /// Opens a batch on this thread.
    pub(crate) fn new() -> InlineBatch {
        let outermost = DEFERRED.with(|d| {
            let mut deferred = d.borrow_mut();
            if deferred.is_some() {
                return false;
            }
            *deferred = Some(Vec::new());
            true
        });
        InlineBatch { outermost }
    }
}

impl Drop for InlineBatch {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        // Closed before running, so what the handlers send inline runs at once, as
        // outside a batch.
        let runs = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
        for inbox in runs {
            super::run_inline(inbox);
        }
    }
}

/// Keeps `inbox` (already claimed) for the end of this thread's batch; gives it back if
/// there is no batch open.
pub(super) fn defer(inbox: Arc<dyn Runnable>) -> Result<(), Arc<dyn Runnable>> {
    DEFERRED.with(|d| match d.try_borrow_mut() {
        Ok(mut deferred) => match deferred.as_mut() {
            Some(list) => {
                list.push(inbox);
                Ok(())
            }
            None => Err(inbox),
        },
        Err(_) => Err(inbox),
    })
}
