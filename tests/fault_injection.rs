//! Fault injection with real processes: an `ember-master` and `ember-worker` processes on
//! loopback, executors started by the workers, and things killed with SIGKILL in the middle
//! of jobs. Every result of every job is checked (nothing lost, nothing counted twice), and
//! at the end no process of the test is left running: executors die with their worker and
//! with their driver.

pub mod daemons;

use std::time::Duration;

use ember::testing::EXECUTOR_ENTRY_ARGS;
use ember::{Context, JobHandle, RpcConf, TaskContext, TaskError, TaskRegistry};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use daemons::{Daemons, Hosts, DEADLINE};
use ember_test_support::{wait_for, wait_until};

/// `x * x`, after 10 ms: slow enough that a job of a few hundred spans a kill.
fn slow_square(_: &TaskContext, x: u64) -> Result<u64, TaskError> {
    std::thread::sleep(Duration::from_millis(10));
    Ok(x * x)
}

fn tasks() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register("slow_square", slow_square);
    registry
}

ember::executor_entry!(tasks);

/// The variable that makes [`driver_entry`] a driver of the master it names.
const DRIVER_MASTER_ENV: &str = "EMBER_FI_DRIVER_MASTER";
/// The cluster's secret file, for [`driver_entry`] to authenticate with.
const DRIVER_SECRET_FILE_ENV: &str = "EMBER_FI_DRIVER_SECRET_FILE";

/// Not a test: in a process started with [`DRIVER_MASTER_ENV`] set (by
/// `executors_die_with_a_killed_driver`), a driver that prints its application id and
/// runs a job that never ends; otherwise it returns at once.
#[test]
fn driver_entry() {
    let Ok(master) = std::env::var(DRIVER_MASTER_ENV) else {
        return;
    };
    let exe = std::env::current_exe().expect("this test's path");
    let conf = RpcConf::new()
        .with(ember::MASTER, master)
        .with(ember::APP_NAME, "doomed-driver")
        .with(ember::EXECUTOR_PROGRAM, exe.to_string_lossy())
        .with(ember::EXECUTOR_PROGRAM_ARGS, EXECUTOR_ENTRY_ARGS)
        .with(ember::EXECUTOR_CORES, "1")
        .with(ember::EXECUTOR_MEMORY, "512m")
        .with("ember.authenticate", "true")
        .with(
            "ember.authenticate.secret.file",
            std::env::var(DRIVER_SECRET_FILE_ENV).expect("the cluster's secret file"),
        );
    let ctx = Context::new(conf, tasks()).expect("the application registers");
    ctx.wait_for_executors(2, DEADLINE).expect("two executors");
    println!("app-id {}", ctx.app_id());
    let _ = ctx.run_job::<u64, u64>(
        "slow_square",
        (0..u64::from(u32::MAX)).take(1_000_000).collect(),
    );
}

/// Settings every daemon reads: a worker missing heartbeats for 2 s is lost; a worker
/// retries registration 6 times every ~200 ms, then every ~1 s; an executor that ignores
/// SIGTERM (a stopped one) gets SIGKILL after 1 s.
const DAEMON_SETTINGS: &[(&str, &str)] = &[
    ("ember.worker.timeout", "2"),
    ("ember.worker.executorTerminateTimeout", "1s"),
    ("ember.worker.registrationRetryInterval", "200ms"),
    ("ember.worker.prolongedRegistrationRetryInterval", "1s"),
];

/// A driver of the daemons' cluster, executors of `cores` cores each.
fn driver(daemons: &Daemons, name: &str, cores: u32) -> Context {
    driver_with(daemons, name, cores, &[])
}

/// [`driver`] with more settings.
fn driver_with(daemons: &Daemons, name: &str, cores: u32, settings: &[(&str, &str)]) -> Context {
    let _ = env_logger::builder().is_test(true).try_init();
    let exe = std::env::current_exe().expect("this test's path");
    let conf = RpcConf::new()
        .with(ember::MASTER, daemons.master_url())
        .with(ember::APP_NAME, name)
        .with(ember::EXECUTOR_PROGRAM, exe.to_string_lossy())
        .with(ember::EXECUTOR_PROGRAM_ARGS, EXECUTOR_ENTRY_ARGS)
        .with(ember::EXECUTOR_CORES, cores.to_string())
        .with(ember::EXECUTOR_MEMORY, "512m");
    let conf = settings
        .iter()
        .fold(conf, |conf, (key, value)| conf.with(*key, *value));
    let conf = daemons
        .auth_settings()
        .into_iter()
        .fold(conf, |conf, (key, value)| conf.with(key, value));
    Context::new(conf, tasks()).expect("the application registers")
}

/// Submits the squares of `0..n`.
fn submit(ctx: &Context, n: u64) -> JobHandle<u64> {
    ctx.submit_job("slow_square", (0..n).collect())
        .expect("submitted")
}

/// Waits for `job` and checks every square came back once, in order.
#[track_caller]
fn check(daemons: &Daemons, job: JobHandle<u64>, n: u64) {
    let out = job
        .wait_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("the job did not end\n{}", daemons.logs()))
        .unwrap_or_else(|e| panic!("the job failed: {e}\n{}", daemons.logs()));
    assert_eq!(out, (0..n).map(|x| x * x).collect::<Vec<u64>>());
}

/// The executor id in process `pid`'s command line (`--executor-id <id>`).
fn executor_id_of(pid: u32) -> String {
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).expect("a cmdline");
    let words: Vec<&str> = cmdline.split('\0').collect();
    let at = words
        .iter()
        .position(|w| *w == "--executor-id")
        .expect("an executor's command line");
    words[at + 1].to_string()
}

/// Waits until `job` has `done` results: it is under way, mid-job.
#[track_caller]
fn wait_results(job: &JobHandle<u64>, done: usize) {
    wait_until("the job makes progress", DEADLINE, || {
        job.progress().0 >= done
    });
}

fn sigkill(pid: u32) {
    let pid = i32::try_from(pid).expect("a pid");
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("the process is signalled");
}

#[test]
fn an_executor_killed_mid_job_is_replaced_and_the_job_completes() {
    let hosts = Hosts::Local;
    let mut daemons = Daemons::new("fi-executor", &hosts, 0, DAEMON_SETTINGS);
    daemons.start_master(&hosts);
    daemons.start_worker(&hosts, "worker-1", 0, 2);
    daemons.wait_for("the worker is ALIVE", |s| s.workers.len() == 1);
    let ctx = driver(&daemons, "executor-killed", 1);
    ctx.wait_for_executors(2, DEADLINE).expect("two executors");
    let before = daemons.executors_of(ctx.app_id());
    assert_eq!(before.len(), 2, "{before:?}");

    let job = submit(&ctx, 400);
    // Once tasks run (some results are in), kill one executor.
    wait_results(&job, 20);
    sigkill(before[0]);
    check(&daemons, job, 400);
    // The master started a replacement; the next job uses it.
    ctx.wait_for_executors(2, DEADLINE)
        .expect("a replacement executor");
    let after = daemons.executors_of(ctx.app_id());
    assert!(!after.contains(&before[0]), "{after:?}");
    check(&daemons, submit(&ctx, 100), 100);

    ctx.stop();
    // Executors die with their driver's application.
    daemons.wait_gone("the application's executors", &after);
    daemons.stop();
}

#[test]
fn a_worker_killed_mid_job_takes_its_executors_and_the_job_completes_on_the_other() {
    let hosts = Hosts::Local;
    let mut daemons = Daemons::new("fi-worker", &hosts, 0, DAEMON_SETTINGS);
    daemons.start_master(&hosts);
    daemons.start_worker(&hosts, "worker-1", 0, 1);
    daemons.start_worker(&hosts, "worker-2", 0, 1);
    daemons.wait_for("both workers are ALIVE", |s| {
        s.workers.iter().filter(|w| w.state == "ALIVE").count() == 2
    });
    let ctx = driver(&daemons, "worker-killed", 1);
    ctx.wait_for_executors(2, DEADLINE).expect("two executors");
    let executors = daemons.executors_of(ctx.app_id());
    assert_eq!(executors.len(), 2, "{executors:?}");
    // Worker 1's executor: its work directory is worker 1's.
    let doomed: Vec<u32> = executors
        .iter()
        .copied()
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd"))
                .is_ok_and(|cwd| cwd.starts_with(daemons.root().join("work-worker-1")))
        })
        .collect();
    assert_eq!(doomed.len(), 1, "{executors:?}");

    let job = submit(&ctx, 300);
    wait_results(&job, 20);
    daemons.kill9("worker-1");
    // Its executor dies with it (it watches its worker), no orphan left.
    daemons.wait_gone("the dead worker's executor", &doomed);
    check(&daemons, job, 300);
    let state = daemons.wait_for("worker 1 is DEAD", |s| {
        s.workers.iter().filter(|w| w.state == "ALIVE").count() == 1
    });
    assert_eq!(
        state.workers.iter().filter(|w| w.state == "DEAD").count(),
        1,
        "{state:#?}"
    );
    check(&daemons, submit(&ctx, 50), 50);

    ctx.stop();
    daemons.stop();
}

#[test]
fn a_worker_started_before_the_master_registers_once_it_is_up() {
    let hosts = Hosts::Local;
    let mut daemons = Daemons::new("fi-early-worker", &hosts, 0, DAEMON_SETTINGS);
    daemons.start_worker(&hosts, "worker-1", 0, 1);
    // Long enough for its 6 quick tries (at most 1.8 s) to run out: it must keep trying
    // at the slower pace, and register once the master is up.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(daemons.state().is_none(), "no master yet");
    daemons.start_master(&hosts);
    daemons.wait_for("the early worker registers", |s| {
        s.workers.iter().any(|w| w.state == "ALIVE")
    });
    let ctx = driver(&daemons, "early-worker", 1);
    ctx.wait_for_executors(1, DEADLINE).expect("an executor");
    check(&daemons, submit(&ctx, 20), 20);
    ctx.stop();
    daemons.stop();
}

#[test]
fn a_master_killed_and_restarted_with_recovery_gets_its_workers_and_app_back() {
    let hosts = Hosts::Local;
    let mut daemons = Daemons::new("fi-master", &hosts, 0, DAEMON_SETTINGS);
    let recovery = daemons.root().join("recovery");
    daemons.add_setting("ember.deploy.recoveryMode", "FILESYSTEM");
    daemons.add_setting(
        "ember.deploy.recoveryDirectory",
        &recovery.to_string_lossy(),
    );
    daemons.start_master(&hosts);
    daemons.start_worker(&hosts, "worker-1", 0, 2);
    daemons.wait_for("the worker is ALIVE", |s| s.workers.len() == 1);
    let ctx = driver(&daemons, "master-killed", 1);
    ctx.wait_for_executors(2, DEADLINE).expect("two executors");
    let executors = daemons.executors_of(ctx.app_id());

    // Jobs go on without the master: the driver talks to its executors directly.
    let job = submit(&ctx, 200);
    wait_results(&job, 20);
    daemons.kill9("master");
    check(&daemons, job, 200);

    daemons.start_master(&hosts);
    let state = daemons.wait_for("the worker and the app are back", |s| {
        s.status == "ALIVE"
            && s.workers
                .iter()
                .any(|w| w.state == "ALIVE" && w.cores_used == 2)
            && s.active_apps
                .iter()
                .any(|a| a.id.0 == ctx.app_id() && a.state == "RUNNING")
    });
    assert_eq!(state.workers.len(), 1, "{state:#?}");
    assert_eq!(
        daemons.executors_of(ctx.app_id()),
        executors,
        "the running executors were kept, not relaunched"
    );
    check(&daemons, submit(&ctx, 100), 100);

    // The recovered master schedules again: a killed executor is replaced.
    let killed = executor_id_of(executors[0]);
    sigkill(executors[0]);
    daemons.wait_gone("the killed executor", &executors[..1]);
    let what = format!("a replacement for executor {killed}");
    wait_for(&what, DEADLINE, || {
        let ids = ctx.executor_ids().expect("the driver answers");
        if ids.len() == 2 && !ids.contains(&killed) {
            Ok(())
        } else {
            Err(ids)
        }
    });
    check(&daemons, submit(&ctx, 100), 100);

    ctx.stop();
    daemons.stop();
}

#[test]
fn executors_die_with_a_killed_driver() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let hosts = Hosts::Local;
    let mut daemons = Daemons::new("fi-driver", &hosts, 0, DAEMON_SETTINGS);
    daemons.start_master(&hosts);
    daemons.start_worker(&hosts, "worker-1", 0, 2);
    daemons.wait_for("the worker is ALIVE", |s| s.workers.len() == 1);
    let mut driver = Command::new(std::env::current_exe().expect("this test's path"))
        .args(["driver_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(DRIVER_MASTER_ENV, daemons.master_url())
        .env(DRIVER_SECRET_FILE_ENV, daemons.secret_file())
        .current_dir(daemons.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the driver starts");
    let stdout = driver.stdout.take().expect("its stdout");
    let app_id = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest's "test driver_entry ... " comes first, on the same line.
        .find_map(|line| line.split("app-id ").nth(1).map(str::to_string))
        .unwrap_or_else(|| panic!("the driver never ran\n{}", daemons.logs()));
    let executors = daemons.executors_of(&app_id);
    assert_eq!(executors.len(), 2, "{executors:?}");

    // Mid-job, the driver dies without a word.
    sigkill(driver.id());
    let _ = driver.wait();
    daemons.wait_gone("the dead driver's executors", &executors);
    daemons.wait_for("the master ends the application", |s| {
        s.active_apps.is_empty() && s.completed_apps.iter().any(|a| a.id.0 == app_id)
    });
    daemons.stop();
}

#[test]
fn a_hung_executor_is_found_by_its_heartbeats_killed_and_replaced() {
    let hosts = Hosts::Local;
    let mut daemons = Daemons::new("fi-hung", &hosts, 0, DAEMON_SETTINGS);
    daemons.start_master(&hosts);
    daemons.start_worker(&hosts, "worker-1", 0, 2);
    daemons.wait_for("the worker is ALIVE", |s| s.workers.len() == 1);
    // Silent for 2 s is lost; heartbeats every 200 ms, checked every 200 ms.
    let ctx = driver_with(
        &daemons,
        "hung-executor",
        1,
        &[
            ("ember.network.timeout", "2s"),
            ("ember.executor.heartbeatInterval", "200ms"),
            ("ember.network.timeoutInterval", "200ms"),
        ],
    );
    ctx.wait_for_executors(2, DEADLINE).expect("two executors");
    let executors = daemons.executors_of(ctx.app_id());
    let hung = executors[0];
    let hung_id = executor_id_of(hung);

    let job = submit(&ctx, 300);
    wait_results(&job, 20);
    // Frozen: its connections stay open, its heartbeats stop.
    kill(
        Pid::from_raw(i32::try_from(hung).expect("a pid")),
        Signal::SIGSTOP,
    )
    .expect("the executor is stopped");
    check(&daemons, job, 300);
    // The driver asked the master to kill it; its worker did.
    daemons.wait_gone("the hung executor", &[hung]);
    let what = format!("a replacement for executor {hung_id}");
    wait_for(&what, DEADLINE, || {
        let ids = ctx.executor_ids().expect("the driver answers");
        if ids.len() == 2 && !ids.contains(&hung_id) {
            Ok(())
        } else {
            Err(ids)
        }
    });
    check(&daemons, submit(&ctx, 100), 100);
    ctx.stop();
    daemons.stop();
}
