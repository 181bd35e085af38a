//! The worker's state as its status UI shows it: [`Worker::view`], answered to the UI's
//! control ask in one handler call.

use crate::messages::ExecutorDescription;
use crate::ui::view::{AppLabel, WorkerDriverRow, WorkerExecutorRow, WorkerView};

use super::{FinishedDriver, FinishedExecutor, RunningExecutor, Worker};

impl Worker {
    /// Everything the status pages show, now.
    pub(super) fn view(&self) -> WorkerView {
        let used = self.used();
        WorkerView {
            id: self.who.id.0.clone(),
            host_port: format!("{}:{}", self.who.address.host(), self.who.address.port()),
            master_url: self.active_master_url(),
            master_web_ui_url: self.master_web_ui_url.clone(),
            cores: self.who.cores,
            cores_used: used.cores,
            memory_mib: self.who.memory_mib,
            memory_used_mib: used.memory_mib,
            executors: self.executors.values().map(running_executor).collect(),
            finished_executors: self
                .finished_executors
                .iter()
                .map(finished_executor)
                .collect(),
            drivers: self
                .drivers
                .iter()
                .map(|(id, runner)| WorkerDriverRow {
                    id: id.0.clone(),
                    state: "RUNNING".to_string(),
                    cores: runner.cores(),
                    memory_mib: runner.memory_mib(),
                    main_class: runner.program().to_string(),
                })
                .collect(),
            finished_drivers: self.finished_drivers.iter().map(finished_driver).collect(),
            work_dir: self.who.work_dir.display().to_string(),
        }
    }
}

fn running_executor(e: &RunningExecutor) -> WorkerExecutorRow {
    executor_row(&e.runner.description(e.state), &e.app)
}

fn finished_executor(f: &FinishedExecutor) -> WorkerExecutorRow {
    executor_row(&f.description, &f.app)
}

fn executor_row(d: &ExecutorDescription, app: &AppLabel) -> WorkerExecutorRow {
    WorkerExecutorRow {
        app_id: d.app_id.0.clone(),
        exec_id: d.exec_id,
        cores: d.cores,
        memory_mib: d.memory_mib,
        state: d.state.as_str().to_string(),
        app: app.clone(),
    }
}

fn finished_driver(f: &FinishedDriver) -> WorkerDriverRow {
    WorkerDriverRow {
        id: f.id.0.clone(),
        state: f.state.as_str().to_string(),
        cores: f.cores,
        memory_mib: f.memory_mib,
        main_class: f.program.clone(),
    }
}
