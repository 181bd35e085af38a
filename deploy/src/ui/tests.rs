//! The UI's renderings and routes on fixture views, without a daemon: escaping, Spark's
//! JSON shapes, the kill rules, log paging and its refusals, metrics.

use std::path::Path;
use std::sync::Mutex;

use ember_test_support::TempDir;
use rpc_env::NetworkStats;

use super::http::{Method, UiRequest, UiResponse};
use super::master_routes::{MasterSource, MasterUi};
use super::view::{
    AppLabel, AppRow, DriverRow, ExecutorRow, MasterView, WorkerExecutorRow, WorkerRow, WorkerView,
};
use super::worker_routes::{WorkerSource, WorkerUi};

const XSS: &str = "<script>alert(1)</script>";

fn worker_row(id: &str, state: &str, cores: u32, used: u32) -> WorkerRow {
    WorkerRow {
        id: id.to_string(),
        host: "127.0.0.1".to_string(),
        port: 40001,
        web_ui_url: "http://127.0.0.1:8081".to_string(),
        cores,
        cores_used: used,
        memory_mib: 4096,
        memory_used_mib: 1024,
        state: state.to_string(),
        last_heartbeat_ms: 1_700_000_000_000,
    }
}

fn fixture() -> MasterView {
    MasterView {
        url: "ember://127.0.0.1:7077".to_string(),
        status: "ALIVE".to_string(),
        workers: vec![
            worker_row("worker-1", "ALIVE", 4, 1),
            worker_row("worker-2", "ALIVE", 4, 3),
            worker_row("worker-3", "DEAD", 8, 0),
        ],
        active_apps: vec![AppRow {
            id: "app-20261204212000-0000".to_string(),
            name: XSS.to_string(),
            user: "alice".to_string(),
            max_cores: Some(6),
            cores_granted: 4,
            memory_per_executor_mib: 1024,
            submitted_ms: 1_700_000_000_000,
            ended_ms: None,
            state: "RUNNING".to_string(),
            executors: vec![ExecutorRow {
                id: 0,
                worker_id: "worker-1".to_string(),
                worker_web_ui_url: "http://127.0.0.1:8081".to_string(),
                cores: 1,
                memory_mib: 1024,
                state: "RUNNING".to_string(),
            }],
        }],
        completed_apps: vec![AppRow {
            id: "app-20261204200000-0001".to_string(),
            name: "done".to_string(),
            user: "bob".to_string(),
            max_cores: None,
            cores_granted: 0,
            memory_per_executor_mib: 512,
            submitted_ms: 1_700_000_000_000,
            ended_ms: Some(1_700_000_004_200),
            state: "FINISHED".to_string(),
            executors: Vec::new(),
        }],
        active_drivers: vec![DriverRow {
            id: "driver-20261204212000-0000".to_string(),
            submitted_ms: 1_700_000_000_000,
            state: "SUBMITTED".to_string(),
            cores: 1,
            memory_mib: 1024,
            worker_id: None,
            main_class: "/opt/app".to_string(),
        }],
        completed_drivers: Vec::new(),
        refused_messages: 7,
    }
}

/// A master that records the kills it is asked for.
#[derive(Default)]
struct FakeMaster {
    kills: Mutex<Vec<String>>,
}

impl MasterSource for FakeMaster {
    fn view(&self) -> Result<MasterView, String> {
        Ok(fixture())
    }

    fn kill_app(&self, id: &str) -> Result<bool, String> {
        self.kills.lock().unwrap().push(id.to_string());
        Ok(true)
    }

    fn kill_driver(&self, id: &str) -> Result<String, String> {
        self.kills.lock().unwrap().push(id.to_string());
        Ok(format!("Kill request for {id} submitted"))
    }

    fn network_stats(&self) -> NetworkStats {
        NetworkStats {
            auth_failures: 3,
            bytes_read: 4096,
            open_connections: 2,
            ..NetworkStats::default()
        }
    }
}

fn master_ui(kill_enabled: bool) -> MasterUi<FakeMaster> {
    MasterUi {
        source: FakeMaster::default(),
        kill_enabled,
    }
}

fn get(ui: &MasterUi<FakeMaster>, url: &str) -> UiResponse {
    ui.route(&UiRequest::new(Method::Get, url))
}

/// Asserts that `text` contains each of `expected`.
fn assert_contains_all(text: &str, expected: &[&str]) {
    for e in expected {
        assert!(text.contains(e), "{e} missing from {text}");
    }
}

fn json(response: &UiResponse) -> serde_json::Value {
    assert_eq!(response.status, 200, "{}", response.body_text());
    serde_json::from_slice(&response.body).expect("JSON")
}

#[test]
fn an_application_named_like_a_script_renders_as_text() {
    let ui = master_ui(true);
    let page = get(&ui, "/").body_text();
    assert!(!page.contains(XSS), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    let app = get(&ui, "/app/?appId=app-20261204212000-0000").body_text();
    assert!(!app.contains(XSS));
    assert!(app.contains("&lt;script&gt;"));
}

#[test]
fn the_master_page_has_sparks_summary_and_tables() {
    let page = get(&master_ui(true), "/").body_text();
    assert_contains_all(
        &page,
        &[
            "<title>Ember Master at ember://127.0.0.1:7077</title>",
            "2 Alive, 1 Dead, 0 Unknown",
            "8 Total, 4 Used",
            "Workers (3)",
            "Running Applications (1)",
            "Completed Applications (1)",
            "Running Drivers (1)",
            "1 Running (1 Waiting), 0 Completed",
            "4 (1 Used)",
            "href=\"/app/?appId=app-20261204212000-0000\"",
            "action=\"/app/kill/\"",
        ],
    );
    assert!(
        !page.contains("Completed Drivers"),
        "empty driver tables are left out"
    );
    let no_kill = get(&master_ui(false), "/").body_text();
    assert!(!no_kill.contains("(kill)"));
}

#[test]
fn json_has_sparks_fields_in_sparks_order() {
    let ui = master_ui(true);
    let v = json(&get(&ui, "/json"));
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "url",
            "workers",
            "aliveworkers",
            "cores",
            "coresused",
            "memory",
            "memoryused",
            "resources",
            "resourcesused",
            "activeapps",
            "completedapps",
            "activedrivers",
            "completeddrivers",
            "status"
        ]
    );
    let worker_keys: Vec<&str> = v["workers"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        worker_keys,
        [
            "id",
            "host",
            "port",
            "webuiaddress",
            "cores",
            "coresused",
            "coresfree",
            "memory",
            "memoryused",
            "memoryfree",
            "resources",
            "resourcesused",
            "resourcesfree",
            "state",
            "lastheartbeat"
        ]
    );
    assert_eq!(v["aliveworkers"], 2);
    assert_eq!(v["cores"], 8, "only alive workers count");
    assert_eq!(v["coresused"], 4);
    assert_eq!(
        v["activeapps"][0]["name"], XSS,
        "JSON carries the name as it is"
    );
    assert_eq!(v["activeapps"][0]["cores"], 4);
    assert_eq!(
        v["activeapps"][0]["submitdate"],
        "Tue Nov 14 22:13:20 UTC 2023"
    );
    assert_eq!(v["completedapps"][0]["duration"], 4200);
    assert_eq!(v["activedrivers"][0]["worker"], "None");
    assert_eq!(v["activedrivers"][0]["starttime"], "1700000000000");
    assert_eq!(v["status"], "ALIVE");
}

#[test]
fn json_fields_come_one_at_a_time() {
    let ui = master_ui(true);
    let status = json(&get(&ui, "/json/status"));
    assert_eq!(status, serde_json::json!({"status": "ALIVE"}));
    let unknown = json(&get(&ui, "/json/nosuchfield"));
    assert_eq!(unknown, serde_json::json!({"nosuchfield": ""}));
    let workers = json(&get(&ui, "/json/workers"));
    assert_eq!(workers["workers"].as_array().unwrap().len(), 3);
    let use_ = json(&get(&ui, "/json/clusterutilization"));
    assert_eq!(
        use_,
        serde_json::json!({"waitingDrivers": 1, "cores": 8, "coresused": 4,
            "coresutilization": 50, "memory": 8192, "memoryused": 2048,
            "memoryutilization": 25})
    );
}

fn post(ui: &MasterUi<FakeMaster>, url: &str, same_origin: bool, form: &str) -> UiResponse {
    let mut request = UiRequest::new(Method::Post, url);
    request.same_origin = same_origin;
    request.params.extend(super::http::parse_params(form));
    ui.route(&request)
}

#[test]
fn a_kill_needs_the_setting_the_same_origin_and_a_confirmation() {
    let app = "app-20261204212000-0000";
    let off = master_ui(false);
    let refused = post(
        &off,
        "/app/kill/",
        true,
        &format!("id={app}&terminate=true"),
    );
    assert_eq!(refused.status, 403);
    assert!(refused.body_text().contains("ember.ui.killEnabled"));
    assert!(off.source.kills.lock().unwrap().is_empty());

    let ui = master_ui(true);
    let cross_site = post(
        &ui,
        "/app/kill/",
        false,
        &format!("id={app}&terminate=true"),
    );
    assert_eq!(
        cross_site.status, 403,
        "a POST from another site is refused"
    );
    let by_get = get(&ui, &format!("/app/kill/?id={app}&terminate=true"));
    assert_ne!(by_get.status, 200, "a kill is never a GET");
    assert!(ui.source.kills.lock().unwrap().is_empty());

    let confirm = post(&ui, "/app/kill/", true, &format!("id={app}"));
    assert_eq!(confirm.status, 200);
    let page = confirm.body_text();
    assert!(
        page.contains("Kill application app-20261204212000-0000?"),
        "{page}"
    );
    assert!(page.contains("name=\"terminate\" value=\"true\""), "{page}");
    assert!(
        ui.source.kills.lock().unwrap().is_empty(),
        "nothing killed before confirming"
    );

    let done = post(&ui, "/app/kill/", true, &format!("id={app}&terminate=true"));
    assert_eq!((done.status, done.location.as_deref()), (303, Some("/")));
    let driver = post(&ui, "/driver/kill/", true, "id=driver-1&terminate=true");
    assert_eq!(driver.status, 303);
    assert_eq!(*ui.source.kills.lock().unwrap(), [app, "driver-1"]);
}

#[test]
fn unknown_pages_and_methods_are_refused() {
    let ui = master_ui(true);
    assert_eq!(get(&ui, "/nothing").status, 404);
    assert_eq!(get(&ui, "/json/a/b").status, 404);
    assert_eq!(get(&ui, "/app/?appId=app-none").status, 404);
    assert_eq!(ui.route(&UiRequest::new(Method::Other, "/")).status, 405);
    assert_eq!(post(&ui, "/", true, "").status, 405);
}

#[test]
fn metrics_are_prometheus_text() {
    let text = get(&master_ui(true), "/metrics/prometheus").body_text();
    for line in [
        "# TYPE ember_master_workers gauge",
        "ember_master_workers{state=\"ALIVE\"} 2",
        "ember_master_workers{state=\"DEAD\"} 1",
        "ember_master_cores 8",
        "ember_master_apps{state=\"RUNNING\"} 1",
        "ember_master_apps{state=\"COMPLETED\"} 1",
        "ember_master_executors 1",
        "ember_master_drivers{state=\"SUBMITTED\"} 1",
        "ember_master_refused_messages_total 7",
        "ember_rpc_auth_failures_total 3",
        "ember_rpc_bytes_read_total 4096",
        "ember_rpc_open_connections 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').expect("name value");
        assert!(name.starts_with("ember_"), "{line}");
        value.parse::<u64>().expect("a number");
    }
}

/// A worker whose work dir is a test's.
struct FakeWorker {
    work_dir: String,
}

impl WorkerSource for FakeWorker {
    fn view(&self) -> Result<WorkerView, String> {
        Ok(WorkerView {
            id: "worker-1".to_string(),
            host_port: "127.0.0.1:40001".to_string(),
            master_url: Some("ember://127.0.0.1:7077".to_string()),
            master_web_ui_url: Some("http://127.0.0.1:8080".to_string()),
            cores: 4,
            cores_used: 1,
            memory_mib: 4096,
            memory_used_mib: 1024,
            executors: vec![WorkerExecutorRow {
                app_id: "app-1".to_string(),
                exec_id: 0,
                cores: 1,
                memory_mib: 1024,
                state: "RUNNING".to_string(),
                app: AppLabel {
                    name: XSS.to_string(),
                    user: "alice".to_string(),
                    max_cores: None,
                    memory_per_executor_mib: 1024,
                    command: "EMBER_AUTH_SECRET=*********(redacted) \"/bin/app\"".to_string(),
                },
            }],
            finished_executors: Vec::new(),
            drivers: Vec::new(),
            finished_drivers: Vec::new(),
            work_dir: self.work_dir.clone(),
        })
    }

    fn network_stats(&self) -> NetworkStats {
        NetworkStats::default()
    }
}

fn worker_ui(work: &Path) -> WorkerUi<FakeWorker> {
    WorkerUi {
        source: FakeWorker {
            work_dir: work.display().to_string(),
        },
    }
}

fn worker_get(ui: &WorkerUi<FakeWorker>, url: &str) -> UiResponse {
    ui.route(&UiRequest::new(Method::Get, url))
}

#[test]
fn the_worker_page_and_json() {
    let work = TempDir::new("ui-worker");
    let ui = worker_ui(work.path());
    let page = worker_get(&ui, "/").body_text();
    assert_contains_all(
        &page,
        &[
            "<title>Ember Worker at 127.0.0.1:40001</title>",
            "Running Executors (1)",
            "Finished Executors (0)",
            "href=\"/logPage/?appId=app-1&amp;executorId=0&amp;logType=stdout\"",
            "href=\"http://127.0.0.1:8080\"",
        ],
    );
    assert!(!page.contains(XSS));
    let v = json(&worker_get(&ui, "/json"));
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "masterurl",
            "masterwebuiurl",
            "cores",
            "coresused",
            "memory",
            "memoryused",
            "resources",
            "resourcesused",
            "executors",
            "finishedexecutors",
            "drivers",
            "finisheddrivers"
        ]
    );
    assert_eq!(v["executors"][0]["appid"], "app-1");
    assert_eq!(v["executors"][0]["appdesc"]["name"], XSS);
    let command = v["executors"][0]["appdesc"]["command"].as_str().unwrap();
    assert!(command.contains("(redacted)"), "{command}");
    assert_eq!(worker_get(&ui, "/metrics/prometheus").status, 200);
}

#[test]
fn a_log_is_served_a_window_at_a_time() {
    let work = TempDir::new("ui-logs");
    let dir = work.path().join("app-1").join("0");
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = (0..30_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.join("stdout"), &text).unwrap();
    let total = text.len();
    let ui = worker_ui(work.path());

    let tail = worker_get(&ui, "/logPage/?appId=app-1&executorId=0&logType=stdout");
    assert_eq!(tail.status, 200);
    let page = tail.body_text();
    let start = total - 100 * 1024;
    assert!(
        page.contains(&format!(
            "Showing 102400 Bytes: {start} - {total} of {total}"
        )),
        "{page}"
    );
    assert!(page.contains("line 29999"));
    assert!(page.contains("Previous") && !page.contains("Next"));

    let raw = worker_get(
        &ui,
        "/log?appId=app-1&executorId=0&logType=stdout&offset=0&byteLength=12",
    );
    assert_eq!(raw.body_text(), "line 0\nline ");
    let past_end = worker_get(
        &ui,
        &format!(
            "/log?appId=app-1&executorId=0&logType=stdout&offset={}",
            total + 5
        ),
    );
    assert_eq!(
        (past_end.status, past_end.body_text()),
        (200, String::new())
    );
    let huge = worker_get(
        &ui,
        "/log?appId=app-1&executorId=0&logType=stdout&offset=0&byteLength=999999999",
    );
    assert_eq!(
        huge.body.len(),
        total.min(1024 * 1024),
        "a window is capped at 1 MiB"
    );
}

#[test]
fn a_log_request_cannot_leave_the_work_dir() {
    let work = TempDir::new("ui-log-refusals");
    let outside = TempDir::new("ui-log-outside");
    std::fs::write(outside.path().join("stdout"), "secret outside").unwrap();
    let app_dir = work.path().join("app-1");
    std::fs::create_dir_all(app_dir.join("0")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("stdout"),
        app_dir.join("0").join("stdout"),
    )
    .unwrap();
    nix::unistd::mkfifo(
        &app_dir.join("0").join("stderr"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    let ui = worker_ui(work.path());
    for (url, status) in [
        ("/logPage/?appId=..&executorId=0&logType=stdout", 400),
        (
            "/logPage/?appId=app-1%2F..&executorId=0&logType=stdout",
            400,
        ),
        (
            "/logPage/?appId=app-1&executorId=..%2F..&logType=stdout",
            400,
        ),
        (
            "/logPage/?appId=app-1&executorId=0&logType=..%2Fstdout",
            400,
        ),
        ("/logPage/?appId=app-1&executorId=0&logType=environ", 400),
        ("/logPage/?driverId=..%2Fapp-1&logType=stdout", 400),
        ("/logPage/?appId=app-1&logType=stdout", 400),
        (
            "/logPage/?appId=app-1&executorId=0&logType=stdout&offset=x",
            400,
        ),
        ("/logPage/?appId=app-1&executorId=0&logType=stdout", 404),
        ("/logPage/?appId=app-1&executorId=0&logType=stderr", 404),
        ("/logPage/?appId=app-2&executorId=0&logType=stdout", 404),
    ] {
        let response = worker_get(&ui, url);
        assert_eq!(response.status, status, "{url}: {}", response.body_text());
        assert!(!response.body_text().contains("secret outside"), "{url}");
        assert!(
            !response
                .body_text()
                .contains(&work.path().display().to_string()),
            "{url}: the answer names no path"
        );
    }
}

#[test]
fn kills_are_off_by_default_when_the_cluster_authenticates() {
    use super::{keys, UiSettings};
    use rpc_env::RpcConf;
    let plain = UiSettings::from_conf(&RpcConf::new()).unwrap();
    assert!(plain.enabled && plain.kill_enabled);
    let secured = RpcConf::new().with(rpc_env::keys::AUTHENTICATE, "true");
    assert!(!UiSettings::from_conf(&secured).unwrap().kill_enabled);
    let chosen = secured.with(keys::KILL_ENABLED, "true");
    assert!(UiSettings::from_conf(&chosen).unwrap().kill_enabled);
    let bad = RpcConf::new().with(keys::KILL_ENABLED, "maybe");
    let error = UiSettings::from_conf(&bad).unwrap_err().to_string();
    assert!(error.contains(keys::KILL_ENABLED), "{error}");
}
