//! The driver's app client against a real master: registration, executors, unregistration,
//! and giving up when no master answers. Ports what applies of AppClientSuite (Ember has no
//! `requestTotalExecutors` or decommissioning yet, so those parts do not).

pub mod cluster_support;

use std::time::{Duration, Instant};

use ember::testing::EXECUTOR_ENTRY_ARGS;
use ember::{Context, RpcConf};

use cluster_support::{
    app_now, cluster, cores_used_per_worker, tasks, wait_gone, wait_until, DEADLINE,
};

ember::executor_entry!(tasks);

/// A port on loopback where nothing listens (it was free a moment ago).
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    listener.local_addr().expect("has an address").port()
}

#[test]
fn an_app_registers_gets_its_executors_and_unregisters_when_it_stops() {
    // AppClientSuite "interface methods of AppClient using local Master": 2 workers, an app
    // of at most 1 core.
    let cluster = cluster(2, 2, &[]);
    let ctx = cluster
        .context_with("AppClientSuite", &[("ember.cores.max", "1")])
        .expect("registers");
    let state = cluster.state().expect("the master answers");
    assert_eq!(state.active_apps.len(), 1, "{state:?}");
    assert_eq!(state.active_apps[0].id.0, ctx.app_id());
    assert_eq!(state.active_apps[0].name, "AppClientSuite");
    cluster
        .wait_for_executors(&ctx, 1, cluster_support::DEADLINE)
        .expect("one executor");
    let app = app_now(&cluster, ctx.app_id());
    assert_eq!(
        (app.state.as_str(), app.cores_granted, app.executors),
        ("RUNNING", 1, 1)
    );
    let executors = cluster.executor_processes();
    assert_eq!(executors.len(), 1);
    assert_eq!(cores_used_per_worker(&cluster, 2).iter().sum::<u32>(), 1);

    // Stopping sends UnregisterApplication; the master removes the app as it handles it.
    ctx.stop();
    wait_until("the master has no active app", DEADLINE, || {
        cluster.state().is_ok_and(|s| s.active_apps.is_empty())
    });
    assert_eq!(app_now(&cluster, ctx.app_id()).state, "FINISHED");
    // Its executors are removed: processes gone, cores free.
    wait_gone(&executors);
    wait_until("the workers' cores are free", DEADLINE, || {
        cores_used_per_worker(&cluster, 2) == vec![0, 0]
    });
    cluster.stop().expect("nothing left");
}

#[test]
fn an_app_registers_with_whichever_master_answers() {
    let cluster = cluster(1, 1, &[]);
    let alive = cluster.master_url();
    let alive = alive.trim_start_matches("ember://");
    // The cluster's settings: its secret, so this context may talk to its master.
    let conf = cluster
        .conf()
        .clone()
        .with(
            ember::MASTER,
            format!("ember://127.0.0.1:{},{alive}", dead_port()),
        )
        .with(ember::APP_NAME, "two-masters")
        .with(ember::EXECUTOR_PROGRAM_ARGS, EXECUTOR_ENTRY_ARGS);
    let ctx = Context::new(conf, tasks()).expect("the live master registers it");
    assert_eq!(app_now(&cluster, ctx.app_id()).name, "two-masters");
    ctx.wait_for_executors(1, cluster_support::DEADLINE)
        .expect("an executor");
    let out: Vec<u64> = ctx.run_job("square", vec![3u64]).expect("succeeds");
    assert_eq!(out, vec![9]);
    let executors = cluster.executor_processes();
    ctx.stop();
    wait_gone(&executors);
    cluster.stop().expect("nothing left");
}

/// Client mode fails fast when every master refuses the connection, naming each master and
/// its error, instead of retrying for a minute in silence.
#[test]
fn an_app_fails_at_once_naming_each_master_when_every_master_refuses() {
    let _ = env_logger::try_init();
    let (one, two) = (dead_port(), dead_port());
    let conf = RpcConf::new()
        .with(
            ember::MASTER,
            format!("ember://127.0.0.1:{one},127.0.0.1:{two}"),
        )
        .with(ember::APP_NAME, "nobody-home");
    let started = Instant::now();
    let error = Context::new(conf, tasks()).expect_err("every master refuses");
    let refused = |port: u16| {
        format!(
            "ember://127.0.0.1:{port}: Failed to connect to 127.0.0.1:{port}: Connection refused \
             (os error 111)"
        )
    };
    let mut masters = [refused(one), refused(two)];
    masters.sort();
    assert_eq!(
        error.to_string(),
        format!(
            "Application has been killed. Reason: All masters are unresponsive! Giving up. {}",
            masters.join("; ")
        )
    );
    // At once: the first registration round lasts 20 s by default.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_app_is_dead_when_no_master_answers() {
    let _ = env_logger::try_init();
    // Something listens but never answers: no error to report, only the rounds run out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = silent.local_addr().expect("has an address").port();
    let conf = RpcConf::new()
        .with(ember::MASTER, format!("ember://127.0.0.1:{port}"))
        .with(ember::APP_NAME, "nobody-home")
        .with(ember::REGISTRATION_TIMEOUT, "200ms")
        .with(ember::REGISTRATION_RETRIES, "3");
    let started = Instant::now();
    let error = Context::new(conf, tasks()).expect_err("no master answers");
    assert_eq!(
        error.to_string(),
        "Application has been killed. Reason: All masters are unresponsive! Giving up."
    );
    // Three rounds of 200 ms, not the 20 s default.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
