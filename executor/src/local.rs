//! The local backend (`local[N]`): an [`Executor`] in the driver's process. Tasks reach it
//! as values and its updates reach the driver endpoint as values: nothing is encoded.

use std::sync::Arc;

use rpc_env::{ControlRef, EndpointRef};

use ember_scheduler::{
    DriverControl, DriverMessage, DriverProtocol, ExecutorId, LocalExecutor, TaskDescription,
    TaskId, TaskUpdate,
};

use crate::executor::{Executor, StatusReporter};

/// Where an executor's status updates go.
enum Driver {
    /// An executor process: over the network, as `StatusUpdate`s the driver accepts only
    /// from this executor's connection.
    Remote(EndpointRef<DriverProtocol>),
    /// The executor inside the driver's process: as control messages, never encoded.
    Local(ControlRef<DriverProtocol>),
}

/// Sends an executor's status updates to the driver endpoint.
pub struct DriverReporter {
    driver: Driver,
    executor_id: ExecutorId,
}

impl DriverReporter {
    /// Updates of the executor process `executor_id` go to `driver` over the network.
    pub fn new(driver: EndpointRef<DriverProtocol>, executor_id: ExecutorId) -> DriverReporter {
        DriverReporter {
            driver: Driver::Remote(driver),
            executor_id,
        }
    }

    /// Updates of the in-process executor `executor_id` go to `driver` as values.
    pub fn local(driver: ControlRef<DriverProtocol>, executor_id: ExecutorId) -> DriverReporter {
        DriverReporter {
            driver: Driver::Local(driver),
            executor_id,
        }
    }
}

impl StatusReporter for DriverReporter {
    fn report(&self, updates: Vec<TaskUpdate>) {
        let executor_id = self.executor_id.clone();
        let sent = match &self.driver {
            Driver::Remote(driver) => driver.send(DriverMessage::StatusUpdate {
                executor_id,
                updates,
            }),
            Driver::Local(driver) => driver.send(DriverControl::LocalStatusUpdate {
                executor_id,
                updates,
            }),
        };
        if let Err(e) = sent {
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
