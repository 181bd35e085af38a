//! The master's state as its status UI shows it: [`Master::view`], answered to the UI's
//! control ask in one handler call.

use std::time::Instant;

use crate::ui::view::{AppRow, DriverRow, ExecutorRow, MasterView, WorkerRow};

use super::apps::{millis_since_epoch, AppInfo};
use super::drivers::DriverInfo;
use super::endpoint::Master;
use super::workers::{WorkerInfo, Workers};

impl Master {
    /// Everything the status pages show, now.
    pub(super) fn view(&self) -> MasterView {
        let now = Instant::now();
        let now_ms = millis_since_epoch(std::time::SystemTime::now());
        MasterView {
            url: self.url.clone(),
            status: self.phase.as_str().to_string(),
            workers: self
                .workers
                .iter()
                .map(|w| worker_row(w, now, now_ms))
                .collect(),
            active_apps: self
                .apps
                .in_order()
                .map(|a| app_row(a, &self.workers))
                .collect(),
            completed_apps: self
                .apps
                .completed()
                .map(|a| app_row(a, &self.workers))
                .collect(),
            active_drivers: self.drivers.active().map(driver_row).collect(),
            completed_drivers: self.drivers.completed().map(driver_row).collect(),
            refused_messages: self.refused_messages(),
        }
    }
}

fn worker_row(w: &WorkerInfo, now: Instant, now_ms: u64) -> WorkerRow {
    let since = now.saturating_duration_since(w.last_heartbeat());
    WorkerRow {
        id: w.id().0.clone(),
        host: w.host().to_string(),
        port: w.port(),
        web_ui_url: w.web_ui_url().to_string(),
        cores: w.cores(),
        cores_used: w.cores_used(),
        memory_mib: w.memory_mib(),
        memory_used_mib: w.memory_used_mib(),
        state: w.status().as_str().to_string(),
        last_heartbeat_ms: now_ms.saturating_sub(u64::try_from(since.as_millis()).unwrap_or(0)),
    }
}

fn app_row(a: &AppInfo, workers: &Workers) -> AppRow {
    let d = a.description();
    AppRow {
        id: a.id().0.clone(),
        name: d.name.clone(),
        user: d.user.clone(),
        max_cores: a.max_cores(),
        cores_granted: a.cores_granted(),
        memory_per_executor_mib: d.memory_per_executor_mib,
        submitted_ms: a.submitted_ms(),
        ended_ms: a.ended_ms(),
        state: a.status().as_str().to_string(),
        executors: a
            .executors()
            .map(|(id, e)| ExecutorRow {
                id,
                worker_id: e.worker.0.clone(),
                worker_web_ui_url: workers
                    .get(&e.worker)
                    .map(|w| w.web_ui_url().to_string())
                    .unwrap_or_default(),
                cores: e.cores,
                memory_mib: e.memory_mib,
                state: e.state.as_str().to_string(),
            })
            .collect(),
    }
}

fn driver_row(d: &DriverInfo) -> DriverRow {
    let description = d.description();
    DriverRow {
        id: d.id().0.clone(),
        submitted_ms: d.submitted_ms(),
        state: d.state().as_str().to_string(),
        cores: description.cores,
        memory_mib: description.memory_mib,
        worker_id: d.worker().map(|w| w.0.clone()),
        main_class: description.command.program.clone(),
    }
}
