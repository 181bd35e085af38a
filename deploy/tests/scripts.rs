//! The daemon scripts, run for real: `ember-daemon.sh` start/stop/status (a second copy is
//! refused, stop waits for the exit and kills after `EMBER_STOP_TIMEOUT`, stale pid files,
//! a daemon that dies at once, log rotation), `start-all.sh`/`stop-all.sh` with
//! `conf/workers`, and `workers.sh` over (a stand-in for) ssh. Each test has its own pid,
//! log, conf and work dirs and master port, and leaves no process behind.

pub mod script_support;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Writes an executable shell script.
fn write_script(path: &Path, body: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("script dir");
    }
    std::fs::write(path, format!("#!/bin/sh\n{body}")).expect("script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn a_second_copy_is_refused_and_stop_waits_for_the_exit() {
    let mut s = scripts("second-copy");
    let out = s.start_master();
    let log = s.log_file("ember-master", 1).expect("a log file");
    assert!(
        out.contains(&format!(
            "starting ember-master, logging to {}",
            log.display()
        )),
        "{out}"
    );
    let pid = s.pid("ember-master", 1).expect("a pid file");
    assert!(is_alive(pid));
    assert_eq!(comm(pid), "ember-master", "the pid is the master's own");
    let state = s.wait_for_master("the master answers", |st| st.status == "ALIVE");
    assert_eq!(state.url, s.master_url());

    let again = s.run("start-master.sh", &[]);
    let (stdout, _) = text(&again);
    assert_eq!(again.status.code(), Some(1), "{stdout}");
    assert_eq!(
        stdout.trim(),
        format!("ember-master running as process {pid}.  Stop it first.")
    );
    assert_eq!(s.pid("ember-master", 1), Some(pid));
    let status = s.run("ember-daemon.sh", &["status", "ember-master", "1"]);
    assert_eq!(status.status.code(), Some(0));
    assert!(text(&status)
        .0
        .contains(&format!("running as process {pid}")));

    let out = s.run_ok("stop-master.sh", &[]);
    assert_eq!(out.trim(), "stopping ember-master");
    assert!(!is_alive(pid), "stop returns once the master has exited");
    assert!(!s.pid_file("ember-master", 1).exists());
    let log = std::fs::read_to_string(&log).expect("the log");
    assert!(
        log.contains("RECEIVED SIGNAL SIGTERM"),
        "a clean stop: {log}"
    );

    let out = s.run_ok("stop-master.sh", &[]);
    assert_eq!(out.trim(), "no ember-master to stop");
    let status = s.run("ember-daemon.sh", &["status", "ember-master", "1"]);
    assert_eq!(status.status.code(), Some(2));
    s.assert_nothing_left();
}

#[test]
fn stale_pid_files_are_replaced_and_never_signalled() {
    let mut s = scripts("stale");
    let pid_file = s.pid_file("ember-master", 1);
    // A pid file naming a live process that is not a master: this test.
    let me = std::process::id().to_string();
    std::fs::write(&pid_file, format!("{me}\n")).expect("pid file");
    let status = s.run("ember-daemon.sh", &["status", "ember-master", "1"]);
    assert_eq!(status.status.code(), Some(1), "a pid file, but not running");
    let out = s.run_ok("stop-master.sh", &[]);
    assert_eq!(out.trim(), "no ember-master to stop");
    assert!(!pid_file.exists(), "the stale pid file is removed");

    std::fs::write(&pid_file, "not a pid\n").expect("pid file");
    let out = s.run_ok("stop-master.sh", &[]);
    assert_eq!(out.trim(), "no ember-master to stop");

    std::fs::write(&pid_file, format!("{me}\n")).expect("pid file");
    s.start_master();
    let pid = s.pid("ember-master", 1).expect("a new pid file");
    assert_ne!(pid.to_string(), me);
    assert_eq!(comm(pid), "ember-master");
    s.run_ok("stop-master.sh", &[]);
    assert!(!is_alive(pid));
    s.assert_nothing_left();
}

#[test]
fn stop_kills_a_daemon_that_ignores_sigterm_after_the_timeout() {
    let mut s = scripts("stubborn");
    let bin = s.root().join("bin");
    // Ignores SIGTERM, says so, and idles.
    write_script(
        &bin.join("stubborn"),
        "trap '' TERM\necho up\nwhile :; do sleep 0.05; done\n",
    );
    s.set_env("EMBER_BIN_DIR", &bin.to_string_lossy());
    s.set_env("EMBER_STOP_TIMEOUT", "1");
    let out = s.run_ok("ember-daemon.sh", &["start", "stubborn", "1"]);
    assert!(out.starts_with("starting stubborn, logging to"), "{out}");
    let pid = s.pid("stubborn", 1).expect("a pid file");
    let log = s.log_file("stubborn", 1).expect("a log");
    wait_until("the stub ignores SIGTERM", DEADLINE, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("up"))
    });

    let started = Instant::now();
    let out = s.run_ok("ember-daemon.sh", &["stop", "stubborn", "1"]);
    assert!(out.starts_with("stopping stubborn\n"), "{out}");
    assert!(
        out.contains(&format!(
            "stubborn (process {pid}) did not stop within 1s; killing it"
        )),
        "{out}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(!is_alive(pid), "SIGKILL, and stop waited for it");
    assert!(!s.pid_file("stubborn", 1).exists());
    s.assert_nothing_left();
}

#[test]
fn a_daemon_that_dies_at_once_fails_the_start() {
    let mut s = scripts("dies");
    let out = s.run("start-master.sh", &["--bogus"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("failed to launch: "), "{stderr}");
    assert!(
        stderr.contains("invalid option '--bogus'"),
        "the log's end: {stderr}"
    );
    assert!(stderr.contains("full log in "), "{stderr}");
    assert!(!s.pid_file("ember-master", 1).exists());

    // A taken port: with ember.port.maxRetries 0 (the test's ember-defaults.conf, which the
    // master reads from EMBER_CONF_DIR) the master cannot move to the next one.
    let _taken = loop {
        match TcpListener::bind(("127.0.0.1", s.master_port())) {
            Ok(listener) => break listener,
            Err(_) => s.new_master_port(),
        }
    };
    let out = s.run("start-master.sh", &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("Could not bind"), "{stderr}");
    assert!(!s.pid_file("ember-master", 1).exists());

    // No binary at all.
    s.set_env("EMBER_BIN_DIR", "/nonexistent/bin");
    let out = s.run("start-master.sh", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("is not an executable program"));
    s.assert_nothing_left();
}

/// A listener on a free port (the test holds it: the port is taken).
fn taken_port() -> TcpListener {
    loop {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", free_port())) {
            return listener;
        }
    }
}

/// The port in the `<prefix><port>` line of `out` (`Master listening on
/// ember://127.0.0.1:`, `Worker listening on ember://Worker@127.0.0.1:`).
#[track_caller]
fn listening_port(out: &str, prefix: &str) -> u16 {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no '{prefix}' line in: {out}"))
}

/// With Spark's retry rule (ember.port.maxRetries, 16 by default), a daemon whose port is
/// taken binds a later one, warns naming both, and the start script prints the warning and
/// the address really bound.
#[test]
fn a_taken_port_moves_the_daemon_and_the_start_scripts_say_where() {
    let mut s = scripts("taken-port");
    // The default retries, not the harness's 0.
    std::fs::write(s.conf_dir().join("ember-defaults.conf"), "").expect("ember-defaults.conf");
    let master_taken = taken_port();
    let asked = master_taken.local_addr().expect("addr").port();
    s.set_env("EMBER_MASTER_PORT", &asked.to_string());
    let out = s.run_ok("start-master.sh", &[]);
    let bound = listening_port(&out, "Master listening on ember://127.0.0.1:");
    assert_ne!(bound, asked, "{out}");
    let warning = format!(
        "Service 'ember-master' could not bind on port {asked} (Address already in use \
         (os error 98)); bound port {bound} instead"
    );
    // One line per start, printed before the address.
    assert_eq!(out.matches("could not bind").count(), 1, "{out}");
    assert!(out.contains(&warning), "{out}");
    let log = s.log_file("ember-master", 1).expect("the master's log");
    let log = std::fs::read_to_string(log).expect("the log");
    assert!(
        log.lines()
            .any(|l| l.contains(" WARN ") && l.contains(&warning)),
        "a WARN in the log: {log}"
    );

    let worker_taken = taken_port();
    let asked = worker_taken.local_addr().expect("addr").port();
    s.set_env("EMBER_WORKER_PORT", &asked.to_string());
    let master = format!("ember://127.0.0.1:{bound}");
    let out = s.run_ok(
        "start-worker.sh",
        &[&master, "--cores", "1", "--memory", "256m"],
    );
    let worker_bound = listening_port(&out, "Worker listening on ember://Worker@127.0.0.1:");
    assert_ne!(worker_bound, asked, "{out}");
    assert!(
        out.contains(&format!(
            "Service 'ember-worker' could not bind on port {asked} (Address already in use \
             (os error 98)); bound port {worker_bound} instead"
        )),
        "{out}"
    );
    s.run_ok("stop-worker.sh", &[]);
    s.run_ok("stop-master.sh", &[]);
    s.assert_nothing_left();
}

#[test]
fn logs_are_rotated_at_each_start() {
    let mut s = scripts("rotate");
    s.set_env("EMBER_LOG_MAX_FILES", "2");
    for _ in 0..4 {
        s.start_master();
        s.run_ok("stop-master.sh", &[]);
    }
    let mut names: Vec<String> = std::fs::read_dir(s.log_dir())
        .expect("log dir")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let base = s
        .log_file("ember-master", 1)
        .and_then(|p| p.file_name()?.to_str().map(str::to_string))
        .expect("the current log");
    assert_eq!(
        names,
        [base.clone(), format!("{base}.1"), format!("{base}.2")]
    );
    s.assert_nothing_left();
}

#[test]
fn start_all_and_stop_all_run_the_workers_of_conf_workers() {
    let mut s = scripts("all");
    std::fs::write(
        s.conf_dir().join("workers"),
        "# the hosts\nlocalhost   # this one\n\n",
    )
    .expect("conf/workers");
    s.set_env("EMBER_WORKER_INSTANCES", "2");
    s.set_env("EMBER_WORKER_CORES", "1");
    s.set_env("EMBER_WORKER_MEMORY", "512m");
    let out = loop {
        let output = s.run("start-all.sh", &[]);
        let (stdout, stderr) = text(&output);
        if output.status.success() {
            break stdout;
        }
        assert!(stderr.contains("Could not bind"), "{stdout}{stderr}");
        s.new_master_port();
    };
    assert!(out.contains("starting ember-master"), "{out}");
    assert_eq!(
        out.matches("localhost: starting ember-worker").count(),
        2,
        "{out}"
    );
    let state = s.wait_for_master("two workers are ALIVE", |st| {
        st.workers.iter().filter(|w| w.state == "ALIVE").count() == 2
    });
    assert!(state
        .workers
        .iter()
        .all(|w| w.cores == 1 && w.memory_mib == 512));
    let pids: Vec<u32> = [
        ("ember-master", 1),
        ("ember-worker", 1),
        ("ember-worker", 2),
    ]
    .iter()
    .map(|(c, i)| s.pid(c, *i).expect("a pid file"))
    .collect();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pids[2])).expect("cmdline");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("--webui-port 8082"), "{cmdline}");
    assert!(cmdline.contains("ember-defaults.conf"), "{cmdline}");

    let out = s.run_ok("stop-all.sh", &[]);
    assert_eq!(
        out.matches("localhost: stopping ember-worker").count(),
        2,
        "{out}"
    );
    assert!(out.ends_with("stopping ember-master\n"), "{out}");
    for pid in pids {
        assert!(!is_alive(pid), "{pid} stopped before stop-all.sh returned");
    }
    let left: Vec<_> = std::fs::read_dir(s.pid_dir()).expect("pid dir").collect();
    assert!(left.is_empty(), "pid files left: {left:?}");
    s.assert_nothing_left();
}

#[test]
fn workers_sh_reaches_other_hosts_over_ssh() {
    let mut s = scripts("ssh");
    // A stand-in for ssh that shows how it was called.
    let fake = s.root().join("fake-bin");
    write_script(&fake.join("ssh"), "echo \"ssh $*\"\n");
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    s.set_env("PATH", &path);
    std::fs::write(
        s.conf_dir().join("workers"),
        "node1\nnode2 # the second\n#node3\n",
    )
    .expect("conf/workers");

    let out = s.run_ok("workers.sh", &["echo", "hello"]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    let opts = "-o StrictHostKeyChecking=no";
    assert_eq!(
        lines,
        [
            format!("node1: ssh {opts} node1 echo hello"),
            format!("node2: ssh {opts} node2 echo hello"),
        ]
    );

    s.set_env("EMBER_SSH_OPTS", "-p 2222 -o BatchMode=yes");
    s.set_env("EMBER_SSH_FOREGROUND", "1");
    let out = s.run_ok("start-workers.sh", &[]);
    let url = s.master_url();
    let start = format!("{}/sbin/start-worker.sh {url}", home().display());
    assert!(
        out.starts_with("node1: ssh -p 2222 -o BatchMode=yes node1 cd ") && out.contains(&start),
        "{out}"
    );

    // localhost runs here; a failure anywhere fails the whole.
    let hosts = s.root().join("hosts");
    std::fs::write(&hosts, "localhost\n").expect("hosts");
    s.set_env("EMBER_WORKERS", &hosts.to_string_lossy());
    assert_eq!(
        s.run_ok("workers.sh", &["echo", "hello"]),
        "localhost: hello\n"
    );
    let failed = s.run("workers.sh", &["exit", "3"]);
    assert_eq!(failed.status.code(), Some(1));
    s.assert_nothing_left();
}

#[test]
fn usage() {
    let s = scripts("usage");
    let out = s.run("start-worker.sh", &[]);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, _) = text(&out);
    assert!(
        stdout.starts_with("Usage: ./sbin/start-worker.sh <master> [options]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("--cores"), "the worker's options: {stdout}");
    let out = s.run("start-worker.sh", &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let out = s.run("start-master.sh", &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out)
        .0
        .starts_with("Usage: ./sbin/start-master.sh [options]\n"));
    for args in [
        &["start"][..],
        &["restart", "ember-master", "1"],
        &["start", "a/b", "1"],
    ] {
        let out = s.run("ember-daemon.sh", args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
    s.assert_nothing_left();
}
