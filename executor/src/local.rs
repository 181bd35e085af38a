//! The local backend (`local[N]`): an [`Executor`] in the driver's process. Tasks reach it
//! as values and its updates reach the driver endpoint as values: nothing is encoded.

use std::sync::Arc;

use rpc_env::EndpointRef;

use ember_scheduler::{
    DriverMessage, DriverProtocol, ExecutorId, LocalExecutor, TaskDescription, TaskId, TaskUpdate,
};

use crate::executor::{Executor, StatusReporter};

/// Sends an executor's status updates to the driver endpoint.
pub struct DriverReporter {
    driver: EndpointRef<DriverProtocol>,
    executor_id: ExecutorId,
}

impl DriverReporter {
    /// Updates of `executor_id` go to `driver`.
    pub fn new(driver: EndpointRef<DriverProtocol>, executor_id: ExecutorId) -> DriverReporter {
        DriverReporter {
            driver,
            executor_id,
        }
    }
}

impl StatusReporter for DriverReporter {
    fn report(&self, updates: Vec<TaskUpdate>) {
        let msg = DriverMessage::StatusUpdate {
            executor_id: self.executor_id.clone(),
            updates,
        };
        if let Err(e) = self.driver.send(msg) {
            log::warn!("Dropped task status updates: the driver cannot be reached: {e}");
        }
    }
}

/// The in-process executor, as the driver endpoint drives it.
pub struct LocalExecutorHandle(pub Arc<Executor>);

impl LocalExecutor for LocalExecutorHandle {
    fn launch_tasks(&self, tasks: Vec<TaskDescription>) {
        self.0.launch_tasks(tasks);
    }

    fn kill_task(&self, task_id: TaskId, reason: String) {
        self.0.kill_task(task_id, reason);
    }

    fn stop(&self) {
        self.0.stop();
    }
}
