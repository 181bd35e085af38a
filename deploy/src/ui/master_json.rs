//! The master's `/json`, `/json/<field>` and `/json/clusterutilization` in Spark's field
//! names and order (`JsonProtocol.writeMasterState`), so the tools people point at a Spark
//! master read an Ember master too. Ember has no custom resources: those fields are empty.

use serde::Serialize;
use serde_json::{Map, Value};

use super::layout::now_ms;
use super::view::{AppRow, DriverRow, MasterView, WorkerRow};

/// An empty resources object (`{}`): Ember has no custom resources (GPUs and the like).
type NoResources = Map<String, Value>;

/// `GET /json`.
#[derive(Debug, Serialize)]
pub(crate) struct MasterJson {
    url: String,
    workers: Vec<WorkerJson>,
    aliveworkers: usize,
    cores: u64,
    coresused: u64,
    memory: u64,
    memoryused: u64,
    resources: Vec<NoResources>,
    resourcesused: Vec<NoResources>,
    activeapps: Vec<AppJson>,
    completedapps: Vec<AppJson>,
    activedrivers: Vec<DriverJson>,
    completeddrivers: Vec<DriverJson>,
    status: String,
}

#[derive(Debug, Serialize)]
struct WorkerJson {
    id: String,
    host: String,
    port: u16,
    webuiaddress: String,
    cores: u32,
    coresused: u32,
    coresfree: u32,
    memory: u32,
    memoryused: u32,
    memoryfree: u32,
    resources: NoResources,
    resourcesused: NoResources,
    resourcesfree: NoResources,
    state: String,
    lastheartbeat: u64,
}

#[derive(Debug, Serialize)]
struct AppJson {
    id: String,
    starttime: u64,
    name: String,
    cores: u32,
    user: String,
    memoryperexecutor: u32,
    memoryperslave: u32,
    resourcesperexecutor: Vec<Value>,
    resourcesperslave: Vec<Value>,
    submitdate: String,
    state: String,
    duration: u64,
}

#[derive(Debug, Serialize)]
struct DriverJson {
    id: String,
    starttime: String,
    state: String,
    cores: u32,
    memory: u32,
    resources: Vec<Value>,
    submitdate: String,
    worker: String,
    mainclass: String,
}

/// `GET /json/clusterutilization`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClusterUtilization {
    waiting_drivers: usize,
    cores: u64,
    #[serde(rename = "coresused")]
    cores_used: u64,
    #[serde(rename = "coresutilization")]
    cores_utilization: u64,
    memory: u64,
    #[serde(rename = "memoryused")]
    memory_used: u64,
    #[serde(rename = "memoryutilization")]
    memory_utilization: u64,
}

/// The whole `/json` document.
pub(crate) fn master_json(view: &MasterView) -> MasterJson {
    let t = view.alive_capacity();
    let now = now_ms();
    let alive = view.alive_workers().count();
    MasterJson {
        url: view.url.clone(),
        workers: view.workers.iter().map(worker_json).collect(),
        aliveworkers: alive,
        cores: t.cores,
        coresused: t.cores_used,
        memory: t.memory_mib,
        memoryused: t.memory_used_mib,
        resources: vec![NoResources::new(); alive],
        resourcesused: vec![NoResources::new(); alive],
        activeapps: view.active_apps.iter().map(|a| app_json(a, now)).collect(),
        completedapps: view
            .completed_apps
            .iter()
            .map(|a| app_json(a, now))
            .collect(),
        activedrivers: view.active_drivers.iter().map(driver_json).collect(),
        completeddrivers: view.completed_drivers.iter().map(driver_json).collect(),
        status: view.status.clone(),
    }
}

/// `GET /json/<field>`: `{"<field>": value}`, or `{"<field>": ""}` for a field `/json`
/// does not have (Spark's answer).
pub(crate) fn master_json_field(view: &MasterView, field: &str) -> Value {
    let value = serde_json::to_value(master_json(view))
        .ok()
        .and_then(|mut whole| whole.get_mut(field).map(Value::take))
        .unwrap_or_else(|| Value::String(String::new()));
    let mut answer = Map::new();
    answer.insert(field.to_string(), value);
    Value::Object(answer)
}

/// `GET /json/clusterutilization`: integer percentages, 100 when there is nothing to use.
pub(crate) fn cluster_utilization(view: &MasterView) -> ClusterUtilization {
    let t = view.alive_capacity();
    let percent = |used: u64, total: u64| (used * 100).checked_div(total).unwrap_or(100);
    ClusterUtilization {
        waiting_drivers: view.waiting_drivers(),
        cores: t.cores,
        cores_used: t.cores_used,
        cores_utilization: percent(t.cores_used, t.cores),
        memory: t.memory_mib,
        memory_used: t.memory_used_mib,
        memory_utilization: percent(t.memory_used_mib, t.memory_mib),
    }
}

fn worker_json(w: &WorkerRow) -> WorkerJson {
    WorkerJson {
        id: w.id.clone(),
        host: w.host.clone(),
        port: w.port,
        webuiaddress: w.web_ui_url.clone(),
        cores: w.cores,
        coresused: w.cores_used,
        coresfree: w.cores.saturating_sub(w.cores_used),
        memory: w.memory_mib,
        memoryused: w.memory_used_mib,
        memoryfree: w.memory_mib.saturating_sub(w.memory_used_mib),
        resources: NoResources::new(),
        resourcesused: NoResources::new(),
        resourcesfree: NoResources::new(),
        state: w.state.clone(),
        lastheartbeat: w.last_heartbeat_ms,
    }
}

fn app_json(a: &AppRow, now: u64) -> AppJson {
    AppJson {
        id: a.id.clone(),
        starttime: a.submitted_ms,
        name: a.name.clone(),
        cores: a.cores_granted,
        user: a.user.clone(),
        memoryperexecutor: a.memory_per_executor_mib,
        memoryperslave: a.memory_per_executor_mib,
        resourcesperexecutor: Vec::new(),
        resourcesperslave: Vec::new(),
        submitdate: java_date(a.submitted_ms),
        state: a.state.clone(),
        duration: a.ended_ms.unwrap_or(now).saturating_sub(a.submitted_ms),
    }
}

fn driver_json(d: &DriverRow) -> DriverJson {
    DriverJson {
        id: d.id.clone(),
        starttime: d.submitted_ms.to_string(),
        state: d.state.clone(),
        cores: d.cores,
        memory: d.memory_mib,
        resources: Vec::new(),
        submitdate: java_date(d.submitted_ms),
        worker: d.worker_id.clone().unwrap_or_else(|| "None".to_string()),
        mainclass: d.main_class.clone(),
    }
}

/// A date as Java's `Date.toString` writes it, which is what Spark's `submitdate` holds:
/// `Fri Dec 04 21:30:00 UTC 2026`.
pub(crate) fn java_date(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis)
        .map_or_else(String::new, |t| {
            t.format("%a %b %d %H:%M:%S UTC %Y").to_string()
        })
}
