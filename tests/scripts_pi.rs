//! `examples/pi` on a standalone cluster started by the real scripts: `start-master.sh`,
//! `start-worker.sh` (two workers), pi as a driver here (directly, then through
//! `ember-submit` in client mode), then as a driver on a worker (`ember-submit
//! --deploy-mode cluster`); the answers and the master's view are checked, and
//! `stop-worker.sh` / `stop-master.sh` leave nothing running.
//!
//! The binaries are the ones `cargo test --workspace` builds next to this test's directory
//! (`target/<profile>/{ember-master,ember-worker,ember-submit,examples/pi}`); missing ones
//! are built first.

mod built;
#[path = "../deploy/tests/script_support/mod.rs"]
pub mod script_support;

use std::path::Path;

use built::{ensure_built, profile_dir};

use ember_deploy::messages::{DriverState, MasterState};
use script_support::*;

/// The value in `Pi is roughly <value>`.
fn pi_in(stdout: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Pi is roughly "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no answer in: {stdout}"))
}

fn finished_pi_apps(state: &MasterState) -> usize {
    state
        .completed_apps
        .iter()
        .filter(|a| a.name == "pi" && a.state == "FINISHED")
        .count()
}

#[test]
fn pi_runs_on_a_cluster_started_by_the_scripts() {
    let bins = profile_dir();
    ensure_built(&bins);
    let home = Path::new(env!("CARGO_MANIFEST_DIR"));
    pi_on(Scripts::new("pi", home, &bins), &bins, false);
}

/// The same with `ember.authenticate=true` and a secret file in `ember-defaults.conf`: every
/// daemon, driver and executor authenticates and encrypts, and the secret is on no command
/// line and in no log the run leaves.
#[test]
fn pi_runs_on_an_authenticated_cluster_started_by_the_scripts() {
    let bins = profile_dir();
    ensure_built(&bins);
    let home = Path::new(env!("CARGO_MANIFEST_DIR"));
    pi_on(Scripts::authenticated("pi-auth", home, &bins), &bins, true);
}

/// Asserts that no file under `root` but the secret file itself holds `secret`; returns how
/// many files were read.
fn assert_secret_in_no_file(root: &Path, secret: &str) -> usize {
    let mut files = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "secret") {
                let bytes = std::fs::read(&path).unwrap_or_default();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(secret),
                    "the secret is in {}",
                    path.display()
                );
                files += 1;
            }
        }
    }
    files
}

/// Runs pi on a cluster started by the scripts of `s`: directly, through `ember-submit` in
/// both deploy modes; checks the answers, then stops everything. With `secure`, also checks
/// that no process of the run has the secret on its command line.
fn pi_on(mut s: Scripts, bins: &Path, secure: bool) {
    let pi = bins.join("examples").join("pi");
    let pi_path = pi.to_string_lossy().into_owned();
    let submit = bins.join("ember-submit");
    let secret = secure.then(|| std::fs::read_to_string(s.secret_file()).expect("the secret"));

    s.set_env("EMBER_WORKER_INSTANCES", "2");
    // The master's debug lines show its executors' last reports arriving (below).
    s.set_env("RUST_LOG", "info,ember_deploy::master=debug");
    s.start_master();
    let url = s.master_url();
    let out = s.run_ok("start-worker.sh", &[&url, "--cores", "2", "--memory", "2g"]);
    assert_eq!(out.matches("starting ember-worker").count(), 2, "{out}");
    let daemons: Vec<u32> = [
        ("ember-master", 1),
        ("ember-worker", 1),
        ("ember-worker", 2),
    ]
    .iter()
    .map(|(c, i)| s.pid(c, *i).expect("a pid file"))
    .collect();
    s.wait_for_master("two workers are ALIVE", |st| {
        st.workers.iter().filter(|w| w.state == "ALIVE").count() == 2
    });

    // pi's driver here, as the issue runs it (an application run without ember-submit gets
    // its settings in EMBER_CONF).
    let mut command = s.command(&pi);
    command.args(["--master", &url, "--slices", "4"]);
    if secure {
        command.env(
            "EMBER_CONF",
            format!(
                "ember.authenticate=true\nember.authenticate.secret.file={}\n",
                s.secret_file().display()
            ),
        );
    }
    let output = run_bounded(command, "pi");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "pi failed:\n{stdout}\n{stderr}");
    assert!(
        !stderr.contains("Initial job has not accepted any resources"),
        "a driver that got its executors does not warn of starvation: {stderr}"
    );
    let value = pi_in(&stdout);
    assert!((3.1..3.2).contains(&value), "Pi is roughly {value}");
    let state = s.wait_for_master("pi is FINISHED", |st| {
        finished_pi_apps(st) == 1 && st.active_apps.is_empty()
    });
    assert_eq!(state.status, "ALIVE");

    // The same through ember-submit, client mode.
    let mut command = s.command(&submit);
    command.args(["--master", &url, &pi_path, "--slices", "4"]);
    let output = run_bounded(command, "ember-submit (client)");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(pi_in(&stdout), value, "the same darts, the same answer");
    s.wait_for_master("the second pi is FINISHED", |st| finished_pi_apps(st) == 2);

    // Cluster mode: the driver runs on a worker.
    let mut command = s.command(&submit);
    command.args([
        "--master",
        &url,
        "--deploy-mode",
        "cluster",
        "--driver-memory",
        "256m",
        &pi_path,
        "--slices",
        "4",
    ]);
    let output = run_bounded(command, "ember-submit (cluster)");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let id = submitted_driver_id(&stdout);
    assert!(
        stdout.ends_with(&format!("State of driver {id} is FINISHED\n")),
        "{stdout}"
    );
    let driver_out = std::fs::read_to_string(s.work_dir().join(&id).join("stdout"))
        .expect("the driver's stdout");
    assert_eq!(pi_in(&driver_out), value);
    let state = s.wait_for_master("the third pi is FINISHED", |st| {
        finished_pi_apps(st) == 3 && st.active_apps.is_empty()
    });
    let driver = state.completed_drivers.iter().find(|d| d.id.0 == id);
    assert_eq!(driver.map(|d| d.state), Some(DriverState::Finished));

    if let Some(secret) = &secret {
        for process in s.our_processes() {
            assert!(
                !process.cmdline.contains(secret.trim()),
                "the secret is on the command line of {}",
                process.pid
            );
        }
    }

    // After each normal end the workers report the executors the master killed: expected,
    // so said at debug, never as a WARN about an unknown executor.
    let master_log = s.log_file("ember-master", 1).expect("the master's log");
    wait_until(
        "the executors' last reports reach the master",
        DEADLINE,
        || {
            let log = std::fs::read_to_string(&master_log).unwrap_or_default();
            log.matches("after it was removed; nothing to do").count() >= 2
        },
    );
    let log = std::fs::read_to_string(&master_log).expect("the master's log");
    assert!(
        !log.contains("Got status update for unknown executor"),
        "{log}"
    );

    // Stop with the scripts: each returns once its daemons have exited.
    let out = s.run_ok("stop-worker.sh", &[]);
    assert_eq!(out.matches("stopping ember-worker").count(), 2, "{out}");
    assert_eq!(
        s.run_ok("stop-master.sh", &[]).trim(),
        "stopping ember-master"
    );
    for pid in daemons {
        assert!(!is_alive(pid), "daemon {pid} is still running");
    }
    s.assert_nothing_left();
    if let Some(secret) = &secret {
        // Every log, stdout and stderr the daemons, drivers and executors wrote.
        let files = assert_secret_in_no_file(s.root(), secret.trim());
        assert!(files > 5, "only {files} files were checked");
    }
}
