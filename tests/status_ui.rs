//! The status UI of a real cluster over real HTTP: the master's page, `/json` against the
//! master's own state, a worker's page and `/json` reached through the master's links, an
//! executor's log, the metrics, and a kill from the UI with its same-origin rule.

use std::net::SocketAddr;
use std::time::Duration;

use ember::{TaskContext, TaskError, TaskRegistry};
use ember_test_support::{http_get, http_request, wait_until, HttpResponse, DEADLINE};

/// The application's name: it must render as text everywhere.
const NAME: &str = "<script>alert(1)</script>";

/// Says hello on the executor's stdout, which the worker's log page then serves.
fn shout(_: &TaskContext, n: u32) -> Result<u32, TaskError> {
    println!("hello from task {n}");
    Ok(n)
}

fn tasks() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register("shout", shout);
    registry
}

ember::executor_entry!(tasks);

fn json(response: &HttpResponse) -> serde_json::Value {
    assert_eq!(response.status, 200, "{}", response.body);
    serde_json::from_str(&response.body).expect("JSON")
}

/// `http://host:port` as a socket address.
fn ui_address(url: &str) -> SocketAddr {
    url.strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not a UI address: {url}"))
}

#[test]
fn operators_see_the_cluster_and_kill_an_application_from_the_ui() -> Result<(), ember::Error> {
    let cluster = test_cluster()
        .workers(2)
        .cores_per_worker(1)
        .memory_mib_per_worker(1024)
        .conf("ember.ui.killEnabled", "true")
        .start()?;
    let ctx = cluster.context(NAME)?;
    cluster.wait_for_executors(&ctx, 2, Duration::from_secs(60))?;
    let said: Vec<u32> = ctx.run_job("shout", (0..8u32).collect())?;
    assert_eq!(said, (0..8).collect::<Vec<_>>());
    let master = cluster.master().ui_address().expect("the master's UI");
    let app_id = ctx.app_id().to_string();

    // The master's page: its title, both workers, the application's name as text.
    let page = http_get(master, "/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page
        .body
        .contains(&format!("Ember Master at {}", cluster.master_url())));
    let state = cluster.state()?;
    assert_eq!(state.workers.len(), 2);
    for w in &state.workers {
        assert!(page.body.contains(&w.id.0), "{} missing", w.id);
    }
    assert!(!page.body.contains(NAME), "the name is escaped");
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // /json agrees with the master's state.
    let v = json(&http_get(master, "/json"));
    assert_eq!(v["url"], cluster.master_url());
    assert_eq!(v["status"], "ALIVE");
    assert_eq!(v["aliveworkers"], 2);
    let mut ids: Vec<&str> = v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected: Vec<&str> = state.workers.iter().map(|w| w.id.0.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert_eq!(v["activeapps"][0]["id"], app_id.as_str());
    assert_eq!(v["activeapps"][0]["name"], NAME);
    assert_eq!(v["activeapps"][0]["cores"], 2);

    // Each worker's UI, reached through the address the master shows, runs one executor of
    // the application, whose stdout log page has what its tasks printed.
    let mut hellos = 0;
    for w in v["workers"].as_array().unwrap() {
        let worker = ui_address(w["webuiaddress"].as_str().unwrap());
        let page = http_get(worker, "/");
        assert!(page.body.contains("Running Executors (1)"), "{}", page.body);
        let wj = json(&http_get(worker, "/json"));
        assert_eq!(wj["id"], w["id"]);
        assert_eq!(wj["masterurl"], cluster.master_url());
        let executor = &wj["executors"][0];
        assert_eq!(executor["appid"], app_id.as_str());
        let log = http_get(
            worker,
            &format!(
                "/logPage/?appId={app_id}&executorId={}&logType=stdout",
                executor["id"]
            ),
        );
        assert_eq!(log.status, 200, "{}", log.body);
        hellos += log.body.matches("hello from task").count();
        let metrics = http_get(worker, "/metrics/prometheus");
        assert!(metrics
            .body
            .lines()
            .any(|l| l == "ember_worker_executors 1"));
    }
    assert_eq!(hellos, 8, "every task's line is in one executor's stdout");

    let metrics = http_get(master, "/metrics/prometheus");
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l == "ember_master_workers{state=\"ALIVE\"} 2"),
        "{}",
        metrics.body
    );

    // A kill: refused from another site, confirmed, then done.
    let form = format!("id={app_id}&terminate=true");
    let cross_site = http_request(
        master,
        "POST",
        "/app/kill/",
        &[("Origin", "http://evil.example")],
        &form,
    );
    assert_eq!(cross_site.status, 403);
    let origin = format!("http://{master}");
    let confirm = http_request(
        master,
        "POST",
        "/app/kill/",
        &[("Origin", &origin)],
        &format!("id={app_id}"),
    );
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("name=\"terminate\""));
    assert!(cluster
        .state()?
        .active_apps
        .iter()
        .any(|a| a.id.0 == app_id));
    let killed = http_request(master, "POST", "/app/kill/", &[("Origin", &origin)], &form);
    assert_eq!((killed.status, killed.header("location")), (303, Some("/")));
    wait_until("the application to be KILLED", DEADLINE, || {
        let v = json(&http_get(master, "/json"));
        v["completedapps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == app_id.as_str() && a["state"] == "KILLED")
    });
    cluster.stop()
}
