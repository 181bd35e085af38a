//! The `ember-master` binary: a bad flag prints the usage and exits 1; a good command line
//! starts a master that prints its URL, answers, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use ember_deploy::messages::{MasterAsk, MasterProtocol, MASTER_ENDPOINT_NAME};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rpc_env::{RpcAddress, RpcEnv, RpcEnvConfig};

use ember_test_support::{wait_for, DEADLINE};

fn ember_master(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember-master"));
    cmd.args(args)
        .env_remove("EMBER_MASTER_HOST")
        .env_remove("EMBER_MASTER_PORT")
        .env_remove("EMBER_MASTER_WEBUI_PORT")
        .env_remove("EMBER_CONF_DIR")
        .env("RUST_LOG", "warn");
    cmd
}

#[test]
fn a_bad_flag_prints_the_usage_and_exits_1() {
    let out = ember_master(&["--bogus"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--bogus"), "{stderr}");
    assert!(stderr.contains("Usage: ember-master [options]"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn help_prints_the_usage_and_exits_0() {
    // Asked for, the usage goes to stdout; `-h` with no host after it asks too.
    for args in [&["--help"][..], &["-p", "0", "-h"]] {
        let out = ember_master(args).output().expect("runs");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with("Usage: ember-master"),
            "{args:?}: {stdout}"
        );
        assert!(stdout.contains("--properties-file FILE"), "{stdout}");
    }
}

/// Removes a scratch directory when the test ends, even by a panic.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A misspelled key is named with the key it was probably meant to be, once, whatever else
/// happens (here the start fails on a bad value read after the file).
#[test]
fn an_unknown_key_is_warned_about_with_the_nearest_known_one() {
    let dir = std::env::temp_dir().join(format!("ember-master-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let dir = RemoveOnDrop(dir);
    let file = dir.0.join("typo.conf");
    std::fs::write(
        &file,
        "ember.executor.memroy 1g\nember.executor.memroy 2g\nember.deploy.spreadOut false\n\
         ember.worker.timeout soon\n",
    )
    .expect("write");
    let path = file.to_str().expect("utf-8 temp path");
    let out = ember_master(&["-p", "0", "--properties-file", path])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = format!(
        "Unknown setting 'ember.executor.memroy' in {path}: did you mean 'ember.executor.memory'?"
    );
    assert_eq!(stderr.matches(&warning).count(), 1, "{stderr}");
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(
        !stderr.contains("spreadOut'"),
        "a known key is not warned about: {stderr}"
    );
}

#[test]
fn a_bad_setting_stops_the_start() {
    let dir = std::env::temp_dir().join(format!("ember-master-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let dir = RemoveOnDrop(dir);
    let file = dir.0.join("bad.conf");
    std::fs::write(&file, "ember.worker.timeout soon\n").expect("write");
    let path = file.to_str().expect("utf-8 temp path");
    let out = ember_master(&["-p", "0", "--properties-file", path])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ember.worker.timeout"), "{stderr}");
}

/// Kills the child if the test fails before it exits by itself.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_master_prints_its_url_answers_and_stops_on_sigterm() {
    let child = ember_master(&["--host", "127.0.0.1", "--port", "0", "--webui-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let mut child = Reaper(child);
    let stdout = child.0.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(DEADLINE).expect("the master prints a line");
    let url = line
        .trim()
        .strip_prefix("Master listening on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    let address = RpcAddress::from_ember_url(url).expect("an ember:// URL");
    assert_eq!(address.host(), "127.0.0.1");
    assert_ne!(address.port(), 0);

    let client = RpcEnv::create(RpcEnvConfig::client("cli-test")).expect("env");
    let master = client
        .setup_endpoint_ref::<MasterProtocol>(&address, MASTER_ENDPOINT_NAME)
        .expect("the master is there");
    let state = master
        .ask_sync(|reply| MasterAsk::RequestMasterState { reply })
        .expect("answers");
    assert_eq!((state.status.as_str(), state.url.as_str()), ("ALIVE", url));
    client.shutdown();

    let pid = Pid::from_raw(i32::try_from(child.0.id()).expect("pid fits"));
    kill(pid, Signal::SIGTERM).expect("signalled");
    let status = wait_for("the master stops on SIGTERM", DEADLINE, || {
        child.0.try_wait().expect("waits").ok_or("still running")
    });
    assert!(status.success(), "{status:?}");
}
