//! Executor state reports to the master (Spark's `syncExecutorStateWithMaster`): each one is
//! an ask answered `true`, tried up to `ember.worker.executorStateSync.maxAttempts` times,
//! after which the worker gives up and exits.
//!
//! The asks wait on a helper thread, never in a handler, and one thread sends them all in
//! order, so the master sees RUNNING before EXITED for each executor even when a report
//! has to be retried.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rpc_env::{EndpointRef, RpcError, RpcTimeout};

use crate::messages::{ExecutorState, MasterAsk, MasterProtocol};
use crate::AppId;

/// One executor state change, and the master to tell.
pub(crate) struct Report {
    /// The master to tell (the one registered with when the change happened).
    pub(crate) master: EndpointRef<MasterProtocol>,
    /// The application.
    pub(crate) app_id: AppId,
    /// The executor.
    pub(crate) exec_id: u32,
    /// Its new state.
    pub(crate) state: ExecutorState,
    /// What happened.
    pub(crate) message: Option<String>,
    /// Its exit code, once exited.
    pub(crate) exit_status: Option<i32>,
}

/// The reporting thread's handle; dropping it (or [`stop`](Self::stop)) ends the thread.
pub(crate) struct StateSync {
    queue: Option<Sender<Report>>,
    stop: Arc<Stop>,
}

/// A stop flag that interrupts the thread's waits between retries.
struct Stop {
    stopped: Mutex<bool>,
    wakeup: Condvar,
}

impl Stop {
    /// Waits `d` or until stopped; whether it was stopped.
    fn wait(&self, d: Duration) -> bool {
        let deadline = std::time::Instant::now() + d;
        let mut stopped = self.stopped.lock();
        while !*stopped {
            if self.wakeup.wait_until(&mut stopped, deadline).timed_out() {
                break;
            }
        }
        *stopped
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.lock()
    }
}

impl StateSync {
    /// Starts the thread. `give_up` runs (on it) with the reason when a report failed
    /// `max_attempts` times; the thread ends then.
    pub(crate) fn start(
        max_attempts: u32,
        timeout: RpcTimeout,
        give_up: impl FnOnce(String) + Send + 'static,
    ) -> std::io::Result<StateSync> {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(Stop {
            stopped: Mutex::new(false),
            wakeup: Condvar::new(),
        });
        let thread_stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("worker-executor-state-sync".to_string())
            .spawn(move || run(rx, max_attempts, &timeout, &thread_stop, give_up))?;
        Ok(StateSync {
            queue: Some(tx),
            stop,
        })
    }

    /// Queues a report.
    pub(crate) fn report(&self, report: Report) {
        if let Some(queue) = &self.queue {
            if queue.send(report).is_err() {
                log::warn!("Executor state reporting has stopped; dropping a report");
            }
        }
    }

    /// Ends the thread without waiting for it: an ask in flight ends with the env.
    pub(crate) fn stop(&mut self) {
        self.queue = None;
        *self.stop.stopped.lock() = true;
        self.stop.wakeup.notify_all();
    }
}

impl Drop for StateSync {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    reports: Receiver<Report>,
    max_attempts: u32,
    timeout: &RpcTimeout,
    stop: &Stop,
    give_up: impl FnOnce(String),
) {
    while let Ok(report) = reports.recv() {
        let full_id = format!("{}/{}", report.app_id, report.exec_id);
        let mut failures = 0;
        loop {
            if stop.is_stopped() {
                return;
            }
            let answer = report
                .master
                .ask_with_rpc_timeout(
                    |reply| MasterAsk::ExecutorStateChanged {
                        app_id: report.app_id.clone(),
                        exec_id: report.exec_id,
                        state: report.state,
                        message: report.message.clone(),
                        exit_status: report.exit_status,
                        reply,
                    },
                    timeout,
                )
                .wait();
            let error = match answer {
                Ok(_) => break,
                Err(RpcError::EnvStopped) => return,
                Err(e) => e,
            };
            failures += 1;
            if failures >= max_attempts {
                give_up(format!(
                    "Failed to send {:?} of executor {full_id} to Master {} for {max_attempts} \
                     times. Giving up.",
                    report.state, report.master
                ));
                return;
            }
            log::error!(
                "Failed to send {:?} of executor {full_id} to Master {} ({failures} of \
                 {max_attempts}): {error}",
                report.state,
                report.master
            );
            // A timeout already waited; otherwise the connection may come back shortly.
            if !error.is_timeout() && stop.wait(timeout.duration()) {
                return;
            }
        }
    }
}
