//! `ember-submit`, run for real: bad flags, client mode (it becomes the application, with
//! `EMBER_MASTER` and `EMBER_CONF`), and cluster mode against a master and a worker
//! started by the scripts: drivers that finish, fail, outlast `--wait-timeout` and are
//! killed, and `--status`. The drivers are small shell scripts; the root crate's
//! `tests/scripts_pi.rs` runs `examples/pi` the same ways.

pub mod script_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use ember_deploy::messages::DriverState;
use script_support::*;

fn home() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn scripts(name: &str) -> Scripts {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ember-master"))
        .parent()
        .expect("the binaries' directory");
    Scripts::new(name, &home(), bin_dir)
}

/// Runs `ember-submit args...` in the test's environment.
fn submit(s: &Scripts, args: &[&str]) -> Output {
    let mut command = s.command(Path::new(env!("CARGO_BIN_EXE_ember-submit")));
    command.args(args);
    run_bounded(command, "ember-submit")
}

/// Writes an executable shell script under the test's directory; its path.
fn app(s: &Scripts, name: &str, body: &str) -> String {
    let path = s.root().join("apps").join(name);
    std::fs::create_dir_all(path.parent().expect("apps dir")).expect("apps dir");
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("app");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.to_string_lossy().into_owned()
}

#[test]
fn bad_flags_print_the_usage_and_exit_1() {
    let s = scripts("submit-usage");
    let out = submit(&s, &["--bogus", "app"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("--bogus"), "{stderr}");
    assert!(
        stderr.contains("Usage: ember-submit [options] <app-binary>"),
        "{stderr}"
    );
    let out = submit(&s, &["--deploy-mode", "cluster", "app"]);
    assert_eq!(out.status.code(), Some(1));
    let out = submit(&s, &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).0.starts_with("Usage: ember-submit"));
}

#[test]
fn client_mode_becomes_the_application() {
    let s = scripts("submit-client");
    let app = app(
        &s,
        "show",
        "echo \"master=$EMBER_MASTER\"\nprintf '%s' \"$EMBER_CONF\"\necho \"args=$*\"\nexit 3\n",
    );
    let out = submit(
        &s,
        &[
            "--master",
            "ember://127.0.0.1:1",
            "--conf",
            "ember.executor.memory=2g",
            "--name",
            "shown",
            &app,
            "a",
            "--b",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "its exit code: {stdout}{stderr}"
    );
    for line in [
        "master=ember://127.0.0.1:1",
        "ember.executor.memory=2g",
        "ember.app.name=shown",
        "ember.submit.deployMode=client",
        // The test's conf/ember-defaults.conf is read too.
        "ember.port.maxRetries=0",
        "args=a --b",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line} in:\n{stdout}");
    }
    let out = submit(&s, &["/nonexistent/app"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("Cannot run program /nonexistent/app"));
}

#[test]
fn cluster_mode_runs_drivers_on_a_worker() {
    let mut s = scripts("submit-cluster");
    s.start_master();
    let url = s.master_url();
    s.run_ok("start-worker.sh", &[&url, "--cores", "2", "--memory", "1g"]);
    s.wait_for_master("the worker is ALIVE", |st| {
        st.workers.iter().any(|w| w.state == "ALIVE")
    });

    // A driver that finishes.
    let ok = app(&s, "ok", "echo \"driver says hi; master=$EMBER_MASTER\"\n");
    let out = submit(
        &s,
        &[
            "--master",
            &url,
            "--deploy-mode",
            "cluster",
            "--driver-memory",
            "128m",
            &ok,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let id = submitted_driver_id(&stdout);
    assert!(
        stdout.ends_with(&format!("State of driver {id} is FINISHED\n")),
        "{stdout}"
    );
    let driver_out = std::fs::read_to_string(s.work_dir().join(&id).join("stdout"))
        .expect("the driver's stdout");
    assert_eq!(driver_out, format!("driver says hi; master={url}\n"));
    let state = s.wait_for_master("the driver is done", |st| {
        st.completed_drivers.iter().any(|d| d.id.0 == id)
    });
    let done = state.completed_drivers.iter().find(|d| d.id.0 == id);
    assert_eq!(done.map(|d| d.state), Some(DriverState::Finished));

    // A driver that fails.
    let fails = app(&s, "fails", "exit 2\n");
    let out = submit(&s, &["--master", &url, "--deploy-mode", "cluster", &fails]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.ends_with("is FAILED\n"), "{stdout}");

    // A driver that outlasts --wait-timeout, then is killed.
    let sleeps = app(&s, "sleeps", "exec sleep 600\n");
    let out = submit(
        &s,
        &[
            "--master",
            &url,
            "--deploy-mode",
            "cluster",
            "--wait-timeout",
            "1s",
            &sleeps,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let id = submitted_driver_id(&stdout);
    assert!(
        stderr.contains(&format!("Gave up waiting for driver {id}")),
        "{stderr}"
    );
    wait_until("the driver runs", DEADLINE, || {
        text(&submit(&s, &["--master", &url, "--status", &id]))
            .0
            .contains("is RUNNING")
    });
    let out = submit(&s, &["--master", &url, "--kill", &id]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.trim(), format!("Kill request for {id} submitted"));
    wait_until("the driver is KILLED", DEADLINE, || {
        text(&submit(&s, &["--master", &url, "--status", &id]))
            .0
            .contains(&format!("State of driver {id} is KILLED"))
    });

    let out = submit(&s, &["--master", &url, "--status", "driver-nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out)
        .1
        .contains("ERROR: Cluster master did not recognize driver-nope"));

    s.run_ok("stop-worker.sh", &[]);
    s.run_ok("stop-master.sh", &[]);
    s.assert_nothing_left();
}

/// Cluster mode on hosts that share no disk: `ember-submit` uploads the program to the
/// master, whose store (in the FILESYSTEM recovery directory) outlives a master restart;
/// the worker, started after the program was deleted from where it was submitted, fetches
/// it from the restarted master into its cache and runs it.
#[test]
fn cluster_mode_uploads_the_program_and_a_restarted_master_still_serves_it() {
    let mut s = scripts("submit-upload");
    let recovery = s.root().join("recovery");
    let defaults = s.conf_dir().join("ember-defaults.conf");
    let mut conf = std::fs::read_to_string(&defaults).expect("ember-defaults.conf");
    conf.push_str(&format!(
        "ember.deploy.recoveryMode FILESYSTEM\nember.deploy.recoveryDirectory {}\n\
         ember.deploy.recoveryTimeout 2s\n",
        recovery.display()
    ));
    std::fs::write(&defaults, conf).expect("ember-defaults.conf");
    s.start_master();
    let url = s.master_url();
    let body = "echo \"uploaded driver ran: $1\"\n";
    let program = app(&s, "uploaded", body);
    let submit_it = |s: &Scripts, url: &str, program: &str| {
        let out = submit(
            s,
            &[
                "--master",
                url,
                "--deploy-mode",
                "cluster",
                "--supervise",
                "--no-wait",
                program,
                "arg-1",
            ],
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        submitted_driver_id(&stdout)
    };
    let first = submit_it(&s, &url, &program);
    // The same program again, from another path: nothing new is stored.
    let copy = app(&s, "copy-of-uploaded", body);
    let second = submit_it(&s, &url, &copy);
    std::fs::remove_dir_all(s.root().join("apps")).expect("the programs are gone");

    let store = recovery.join("programs-store").join("programs");
    let stored: Vec<String> = std::fs::read_dir(&store)
        .expect("the store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let (_, sha) = rpc_env::digest_reader(format!("#!/bin/sh\n{body}").as_bytes()).expect("hashes");
    assert_eq!(stored, vec![sha.clone()]);

    s.run_ok("stop-master.sh", &[]);
    s.start_master();
    let url = s.master_url();
    s.run_ok("start-worker.sh", &[&url, "--cores", "2", "--memory", "1g"]);
    // Not launched before recovery, so both are relaunched under new ids, and run.
    let state = s.wait_for_master("both relaunched drivers finished", |st| {
        st.completed_drivers
            .iter()
            .filter(|d| d.state == DriverState::Finished)
            .count()
            == 2
    });
    for driver in state
        .completed_drivers
        .iter()
        .filter(|d| d.state == DriverState::Finished)
    {
        assert!(driver.id.0 != first && driver.id.0 != second, "{driver:?}");
        let out = std::fs::read_to_string(s.work_dir().join(&driver.id.0).join("stdout"))
            .expect("the driver's stdout");
        assert_eq!(out, "uploaded driver ran: arg-1\n");
    }
    assert!(s.work_dir().join("cache").join(&sha).is_file());

    s.run_ok("stop-worker.sh", &[]);
    s.run_ok("stop-master.sh", &[]);
    s.assert_nothing_left();
}
