//! Message loops: the threads that run inboxes.
//!
//! The shared loop (`dispatcher-event-loop-N` threads) runs every endpoint that did not ask
//! for its own; a dedicated loop (`dispatcher-<name>`) runs one endpoint. An inbox with work
//! is put on its loop's run queue once; a free thread takes it and drains it.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::error::RpcError;
use crate::thread_role::{mark_rpc_thread, panic_message};

/// Work a loop thread can run: an inbox with messages.
pub(crate) trait Runnable: Send + Sync {
    /// Handles queued messages; reschedules itself if it leaves some behind.
    fn run(self: Arc<Self>);
}

struct RunQueue {
    ready: VecDeque<Arc<dyn Runnable>>,
    idle_threads: usize,
    stopping: bool,
}

/// A pool of threads running inboxes from one run queue.
pub(crate) struct MessageLoop {
    queue: Mutex<RunQueue>,
    work_available: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl MessageLoop {
    /// Starts `threads` threads named by `thread_name(i)`.
    pub(crate) fn start(
        threads: usize,
        thread_name: impl Fn(usize) -> String,
    ) -> Result<Arc<MessageLoop>, RpcError> {
        let message_loop = Arc::new(MessageLoop {
            queue: Mutex::new(RunQueue {
                ready: VecDeque::new(),
                idle_threads: 0,
                stopping: false,
            }),
            work_available: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        });
        for i in 0..threads {
            let worker = Arc::clone(&message_loop);
            let handle = std::thread::Builder::new()
                .name(thread_name(i))
                .spawn(move || worker.run_thread())
                .map_err(|e| RpcError::Io {
                    context: "starting a message loop thread".into(),
                    reason: e.to_string(),
                })?;
            message_loop.threads.lock().push(handle);
        }
        Ok(message_loop)
    }

    /// Puts `work` on the run queue and wakes an idle thread if there is one.
    pub(crate) fn schedule(&self, work: Arc<dyn Runnable>) {
        let mut queue = self.queue.lock();
        queue.ready.push_back(work);
        let wake = queue.idle_threads > 0;
        drop(queue);
        if wake {
            self.work_available.notify_one();
        }
    }

    /// Lets the threads exit once the run queue is empty.
    pub(crate) fn stop(&self) {
        self.queue.lock().stopping = true;
        self.work_available.notify_all();
    }

    /// Waits for the threads to exit (all but the calling one, if it is a loop thread).
    pub(crate) fn join(&self) {
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *self.threads.lock());
        let me = std::thread::current().id();
        for handle in handles {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }

    fn next_work(&self) -> Option<Arc<dyn Runnable>> {
        let mut queue = self.queue.lock();
        loop {
            if let Some(work) = queue.ready.pop_front() {
                return Some(work);
            }
            if queue.stopping {
                return None;
            }
            queue.idle_threads += 1;
            self.work_available.wait(&mut queue);
            queue.idle_threads -= 1;
        }
    }

    fn run_thread(&self) {
        mark_rpc_thread();
        while let Some(work) = self.next_work() {
            // Inboxes catch handler panics themselves; this only guards the loop against a
            // bug of ours, so the pool keeps its size (Spark's SPARK-27496).
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| work.run())) {
                log::error!(
                    "A message loop thread caught a panic outside any handler: {}",
                    panic_message(&*panic)
                );
            }
        }
    }
}
