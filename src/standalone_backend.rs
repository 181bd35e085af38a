//! Spark's `StandaloneSchedulerBackend`, as an [`AppClientListener`]: executors the master
//! removes become executor losses for the driver endpoint, and a dead application fails its
//! jobs.
//!
//! It lives in the root crate because it is the glue between the two sides: deploy's app
//! client talks to the masters and knows nothing of the driver, the scheduler's driver
//! endpoint knows nothing of masters, and this listener (deploy's seam) translates one into
//! the other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rpc_env::ControlRef;

use ember_deploy::client::AppClientListener;
use ember_deploy::{AppId, WorkerId};
use ember_scheduler::{DriverControl, DriverProtocol, ExecutorId, ExecutorLossReason};

/// Exit codes that mean the executor died of something other than the application: heartbeat
/// failures (56), block manager re-registration (58), disk directories (53).
const NOT_THE_APPS_FAULT: [i32; 3] = [53, 56, 58];

/// How an executor's end reads as a loss reason (Spark's mapping in
/// `StandaloneSchedulerBackend.executorRemoved`).
pub(crate) fn executor_loss_reason(
    message: &str,
    exit_status: Option<i32>,
    worker_host: Option<&str>,
) -> ExecutorLossReason {
    match exit_status {
        Some(code) => ExecutorLossReason::Exited {
            exit_code: code,
            exit_caused_by_app: !NOT_THE_APPS_FAULT.contains(&code),
            reason: message.to_string(),
        },
        None => ExecutorLossReason::ProcessLost {
            message: message.to_string(),
            worker_host: worker_host.map(str::to_string),
            // A worker lost is not the application's fault.
            caused_by_app: worker_host.is_none(),
        },
    }
}

#[derive(Default)]
struct Status {
    app_id: Option<AppId>,
    dead: Option<String>,
}

/// Whether the application is registered, or dead; shared with whoever waits for it.
#[derive(Default)]
pub(crate) struct AppStatus {
    status: Mutex<Status>,
    changed: Condvar,
}

impl AppStatus {
    /// Waits until the application is registered (its id) or dead (the reason as `Err`), at
    /// most `timeout` (`None` once it passes).
    pub(crate) fn wait_registered(&self, timeout: Duration) -> Option<Result<AppId, String>> {
        let deadline = Instant::now() + timeout;
        let mut status = self.status.lock();
        loop {
            if let Some(reason) = &status.dead {
                return Some(Err(reason.clone()));
            }
            if let Some(app_id) = &status.app_id {
                return Some(Ok(app_id.clone()));
            }
            if self.changed.wait_until(&mut status, deadline).timed_out() {
                return None;
            }
        }
    }

    /// Why the application died, if it did.
    pub(crate) fn dead_reason(&self) -> Option<String> {
        self.status.lock().dead.clone()
    }
}

/// What the master says when executors keep exiting before they register (`on_apps.rs`).
const EXITED_BEFORE_REGISTERING: &str = "before registering with the driver";

/// `reason`, with what is probably missing when the master gave up on executors that kept
/// exiting before they registered: the program the workers start is not running an Ember
/// executor.
fn with_hint(reason: &str) -> String {
    if !reason.contains(EXITED_BEFORE_REGISTERING) {
        return reason.to_string();
    }
    format!(
        "{reason}. The program the workers start as this application's executors \
         (ember.executor.program, by default the driver's own) does not run an Ember \
         executor: a test file that uses TestCluster needs `ember::executor_entry!(tasks);`, \
         and a program must hand its arguments to `ember::App::run`. The executors' stderr \
         is on the workers' status pages."
    )
}

/// The standalone scheduler backend's listener.
pub(crate) struct StandaloneBackend {
    driver: ControlRef<DriverProtocol>,
    status: Arc<AppStatus>,
}

impl StandaloneBackend {
    /// A backend reporting to `driver`; `status` tells waiters how registration went.
    pub(crate) fn new(
        driver: ControlRef<DriverProtocol>,
        status: Arc<AppStatus>,
    ) -> StandaloneBackend {
        StandaloneBackend { driver, status }
    }
}

impl AppClientListener for StandaloneBackend {
    fn connected(&mut self, app_id: &AppId) {
        log::info!("Connected to Ember cluster with app ID {app_id}");
        self.status.status.lock().app_id = Some(app_id.clone());
        self.status.changed.notify_all();
    }

    fn disconnected(&mut self) {
        log::warn!("Disconnected from Ember cluster! Waiting for reconnection...");
    }

    fn dead(&mut self, reason: &str) {
        let reason = with_hint(reason);
        self.status.status.lock().dead = Some(reason.clone());
        self.status.changed.notify_all();
        let message = format!("Application has been killed. Reason: {reason}");
        if let Err(e) = self.driver.send(DriverControl::AbortAll { message }) {
            log::warn!("Could not fail the application's jobs: {e}");
        }
    }

    fn executor_added(&mut self, id: u32, worker: &WorkerId, host_port: &str, cores: u32) {
        log::info!(
            "Granted executor ID {id} on hostPort {host_port} with {cores} core(s) ({worker})"
        );
    }

    fn executor_removed(
        &mut self,
        id: u32,
        message: &str,
        exit_status: Option<i32>,
        worker_host: Option<&str>,
    ) {
        let reason = executor_loss_reason(message, exit_status, worker_host);
        log::info!("Executor {id} removed: {reason}");
        let removed = self.driver.send(DriverControl::RemoveExecutor {
            executor_id: ExecutorId::new(id.to_string()),
            reason,
        });
        if let Err(e) = removed {
            log::warn!("Could not tell the driver executor {id} is gone: {e}");
        }
    }

    fn worker_removed(&mut self, worker: &WorkerId, host: &str, message: &str) {
        log::info!("Worker {worker} on {host} removed: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_as_in_spark() {
        assert_eq!(
            executor_loss_reason("Command exited with code 42", Some(42), None),
            ExecutorLossReason::Exited {
                exit_code: 42,
                exit_caused_by_app: true,
                reason: "Command exited with code 42".into()
            }
        );
        for code in NOT_THE_APPS_FAULT {
            assert!(matches!(
                executor_loss_reason("x", Some(code), None),
                ExecutorLossReason::Exited {
                    exit_caused_by_app: false,
                    ..
                }
            ));
        }
        assert_eq!(
            executor_loss_reason("Worker lost", None, Some("h1")),
            ExecutorLossReason::ProcessLost {
                message: "Worker lost".into(),
                worker_host: Some("h1".into()),
                caused_by_app: false
            }
        );
        assert!(matches!(
            executor_loss_reason("gone", None, None),
            ExecutorLossReason::ProcessLost {
                caused_by_app: true,
                ..
            }
        ));
    }
}
