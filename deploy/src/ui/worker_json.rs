//! The worker's `/json` in Spark's field names and order (`JsonProtocol.writeWorkerState`),
//! with the drivers it runs after Spark's fields.

use serde::Serialize;
use serde_json::{Map, Value};

use super::view::{WorkerDriverRow, WorkerExecutorRow, WorkerView};

/// `GET /json` on a worker.
#[derive(Debug, Serialize)]
pub(crate) struct WorkerJson {
    id: String,
    masterurl: String,
    masterwebuiurl: String,
    cores: u32,
    coresused: u32,
    memory: u32,
    memoryused: u32,
    resources: Map<String, Value>,
    resourcesused: Map<String, Value>,
    executors: Vec<ExecutorJson>,
    finishedexecutors: Vec<ExecutorJson>,
    drivers: Vec<DriverJson>,
    finisheddrivers: Vec<DriverJson>,
}

#[derive(Debug, Serialize)]
struct ExecutorJson {
    id: u32,
    memory: u32,
    resources: Map<String, Value>,
    appid: String,
    appdesc: AppDescJson,
    state: String,
}

#[derive(Debug, Serialize)]
struct AppDescJson {
    name: String,
    cores: u32,
    memoryperexecutor: u32,
    resourcesperexecutor: Vec<Value>,
    memoryperslave: u32,
    resourcesperslave: Vec<Value>,
    user: String,
    command: String,
}

#[derive(Debug, Serialize)]
struct DriverJson {
    id: String,
    state: String,
    cores: u32,
    memory: u32,
    mainclass: String,
}

/// The whole document.
pub(crate) fn worker_json(view: &WorkerView) -> WorkerJson {
    WorkerJson {
        id: view.id.clone(),
        masterurl: view.master_url.clone().unwrap_or_default(),
        masterwebuiurl: view.master_web_ui_url.clone().unwrap_or_default(),
        cores: view.cores,
        coresused: view.cores_used,
        memory: view.memory_mib,
        memoryused: view.memory_used_mib,
        resources: Map::new(),
        resourcesused: Map::new(),
        executors: view.executors.iter().map(executor_json).collect(),
        finishedexecutors: view.finished_executors.iter().map(executor_json).collect(),
        drivers: view.drivers.iter().map(driver_json).collect(),
        finisheddrivers: view.finished_drivers.iter().map(driver_json).collect(),
    }
}

fn executor_json(e: &WorkerExecutorRow) -> ExecutorJson {
    ExecutorJson {
        id: e.exec_id,
        memory: e.memory_mib,
        resources: Map::new(),
        appid: e.app_id.clone(),
        appdesc: AppDescJson {
            name: e.app.name.clone(),
            cores: e.app.max_cores.unwrap_or(0),
            memoryperexecutor: e.app.memory_per_executor_mib,
            resourcesperexecutor: Vec::new(),
            memoryperslave: e.app.memory_per_executor_mib,
            resourcesperslave: Vec::new(),
            user: e.app.user.clone(),
            command: e.app.command.clone(),
        },
        state: e.state.clone(),
    }
}

fn driver_json(d: &WorkerDriverRow) -> DriverJson {
    DriverJson {
        id: d.id.clone(),
        state: d.state.clone(),
        cores: d.cores,
        memory: d.memory_mib,
        mainclass: d.main_class.clone(),
    }
}
