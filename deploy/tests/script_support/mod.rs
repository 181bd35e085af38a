//! Runs the real `sbin` scripts against a cluster of the test's own: its own temp directory
//! with pid, log, conf and work dirs, a free master port, and every process it starts
//! working in that directory, so that [`Scripts::our_processes`] finds them all (daemons,
//! executors, drivers) by their working directory. Dropping a [`Scripts`] stops everything
//! with the stop scripts, kills what is left, and removes the directory; after a failure
//! it prints the daemons' logs first.
//!
//! Shared by `deploy/tests/{scripts,submit}.rs` and the root crate's `tests/scripts_pi.rs`
//! (which includes this file by path).
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ember_deploy::messages::{MasterAsk, MasterProtocol, MasterState, MASTER_ENDPOINT_NAME};
use rpc_env::{EndpointRef, RpcAddress, RpcConf, RpcEnv, RpcEnvConfig};

/// How long a test waits for something that should happen, on a loaded machine.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// How long one script or program may run before the test kills it and fails.
pub const RUN_DEADLINE: Duration = Duration::from_secs(120);
/// `EMBER_IDENT_STRING` in the tests: pid and log file names use it.
pub const IDENT: &str = "test";

/// Polls `cond` until it holds; panics naming `what` after [`DEADLINE`].
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port nothing listens on now (bind to 0, read it, close).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether process `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Stdout and stderr of a finished run, for assertions and messages.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Sends SIGKILL to `pid` (with kill(1): the root crate's tests have no signal library).
pub fn sigkill(pid: i32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs `command` with piped output, killing it and panicking after [`RUN_DEADLINE`].
pub fn run_bounded(mut command: Command, what: &str) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(RUN_DEADLINE) {
        Ok(output) => output.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            if let Ok(pid) = i32::try_from(pid) {
                sigkill(pid);
            }
            panic!("{what} did not finish within {RUN_DEADLINE:?}");
        }
    }
}

/// A cluster run by the scripts in `<home>/sbin`, with the binaries in `bin_dir`.
pub struct Scripts {
    home: PathBuf,
    root: PathBuf,
    bin_dir: PathBuf,
    master_port: u16,
    env: Vec<(String, String)>,
    client: RpcEnv,
}

impl Scripts {
    /// A fresh directory for a test called `name`, with `conf/ember-defaults.conf` setting
    /// `ember.port.maxRetries 0` (a taken port fails the master instead of moving it).
    pub fn new(name: &str, home: &Path, bin_dir: &Path) -> Scripts {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let root =
            std::env::temp_dir().join(format!("ember-scripts-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["pid", "log", "conf", "work", "run"] {
            std::fs::create_dir_all(root.join(dir)).expect("test dirs");
        }
        std::fs::write(
            root.join("conf/ember-defaults.conf"),
            "ember.port.maxRetries 0\n",
        )
        .expect("ember-defaults.conf");
        let conf = RpcConf::new().with("ember.rpc.askTimeout", "10s");
        let client =
            RpcEnv::create(RpcEnvConfig::client("scripts-test").with_conf(conf)).expect("client");
        Scripts {
            home: home.to_path_buf(),
            root,
            bin_dir: bin_dir.to_path_buf(),
            master_port: free_port(),
            env: Vec::new(),
            client,
        }
    }

    /// Sets an environment variable for every script run from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// The test's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `EMBER_PID_DIR`.
    pub fn pid_dir(&self) -> PathBuf {
        self.root.join("pid")
    }

    /// `EMBER_LOG_DIR`.
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    /// `EMBER_CONF_DIR`.
    pub fn conf_dir(&self) -> PathBuf {
        self.root.join("conf")
    }

    /// `EMBER_WORKER_DIR`.
    pub fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    /// The master's port (`EMBER_MASTER_PORT`).
    pub fn master_port(&self) -> u16 {
        self.master_port
    }

    /// Picks another free port for the master (after a start lost the race for one).
    pub fn new_master_port(&mut self) {
        self.master_port = free_port();
    }

    /// `ember://127.0.0.1:<port>`.
    pub fn master_url(&self) -> String {
        format!("ember://127.0.0.1:{}", self.master_port)
    }

    /// `program` with a clean environment (no inherited `EMBER_*`), the test's settings,
    /// and the working directory under the test's directory.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.env_clear().current_dir(self.root.join("run"));
        for key in ["PATH", "HOME", "USER", "LANG", "TMPDIR"] {
            if let Ok(value) = std::env::var(key) {
                command.env(key, value);
            }
        }
        let dir = |d: PathBuf| d.to_string_lossy().into_owned();
        command
            .env("EMBER_BIN_DIR", dir(self.bin_dir.clone()))
            .env("EMBER_PID_DIR", dir(self.pid_dir()))
            .env("EMBER_LOG_DIR", dir(self.log_dir()))
            .env("EMBER_CONF_DIR", dir(self.conf_dir()))
            .env("EMBER_WORKER_DIR", dir(self.work_dir()))
            .env("EMBER_IDENT_STRING", IDENT)
            .env("EMBER_MASTER_HOST", "127.0.0.1")
            .env("EMBER_MASTER_PORT", self.master_port.to_string())
            .env("EMBER_STOP_TIMEOUT", "20")
            .env("EMBER_START_TIMEOUT", "30")
            .env("RUST_LOG", "info");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Runs `sbin/<script> args...` to the end.
    pub fn run(&self, script: &str, args: &[&str]) -> Output {
        let mut command = self.command(&self.home.join("sbin").join(script));
        command.args(args);
        run_bounded(command, script)
    }

    /// Runs `sbin/<script> args...` and panics unless it succeeds; its stdout.
    #[track_caller]
    pub fn run_ok(&self, script: &str, args: &[&str]) -> String {
        let output = self.run(script, args);
        let (stdout, stderr) = text(&output);
        assert!(
            output.status.success(),
            "{script} {args:?} failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        stdout
    }

    /// `start-master.sh`, on a new port while the chosen one turns out to be taken.
    pub fn start_master(&mut self) -> String {
        for _ in 0..5 {
            let output = self.run("start-master.sh", &[]);
            let (stdout, stderr) = text(&output);
            if output.status.success() {
                return stdout;
            }
            assert!(
                stderr.contains("Could not bind"),
                "start-master.sh failed ({}):\n{stdout}\n{stderr}",
                output.status
            );
            self.new_master_port();
        }
        panic!("no free port for the master after 5 tries");
    }

    /// The pid file of `<command>` instance `instance`.
    pub fn pid_file(&self, command: &str, instance: u32) -> PathBuf {
        self.pid_dir()
            .join(format!("ember-{IDENT}-{command}-{instance}.pid"))
    }

    /// The pid in that file, if there is one.
    pub fn pid(&self, command: &str, instance: u32) -> Option<i32> {
        std::fs::read_to_string(self.pid_file(command, instance))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// The current log of `<command>` instance `instance` (its name ends with the host).
    pub fn log_file(&self, command: &str, instance: u32) -> Option<PathBuf> {
        let prefix = format!("ember-{IDENT}-{command}-{instance}-");
        std::fs::read_dir(self.log_dir())
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".out"))
            })
    }

    /// The master's state, or `None` when it does not answer.
    pub fn master_state(&self) -> Option<MasterState> {
        let master: EndpointRef<MasterProtocol> = self.client.endpoint_ref_at(
            &RpcAddress::new("127.0.0.1", self.master_port),
            MASTER_ENDPOINT_NAME,
        );
        master
            .ask_sync(|reply| MasterAsk::RequestMasterState { reply })
            .ok()
    }

    /// Polls the master's state until `cond` holds; panics with the last state after
    /// [`DEADLINE`].
    #[track_caller]
    pub fn wait_for_master(&self, what: &str, cond: impl Fn(&MasterState) -> bool) -> MasterState {
        let end = Instant::now() + DEADLINE;
        loop {
            let state = self.master_state();
            if let Some(state) = state.as_ref().filter(|s| cond(s)) {
                return state.clone();
            }
            assert!(
                Instant::now() < end,
                "timed out waiting until {what}; the master's state: {state:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Live processes working under the test's directory: daemons, executors, drivers.
    pub fn our_processes(&self) -> Vec<(i32, String)> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(&self.root))
            })
            .filter(|pid| is_alive(*pid))
            .map(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                (pid, cmdline)
            })
            .collect()
    }

    /// Waits until no process works under the test's directory.
    #[track_caller]
    pub fn assert_nothing_left(&self) {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = self.our_processes();
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < end, "processes left behind: {left:#?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Prints every log of the test (after a failure).
    fn print_logs(&self) {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.log_dir())
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        logs.sort();
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            eprintln!("===== {}\n{text}", log.display());
        }
    }
}

impl Drop for Scripts {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        self.client.shutdown();
        // The scripts first, bounded; errors cannot be reported from here.
        for script in ["stop-worker.sh", "stop-master.sh"] {
            let mut command = self.command(&self.home.join("sbin").join(script));
            command.env("EMBER_STOP_TIMEOUT", "10");
            let _ = command.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        // Then whatever still works in our directory.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.our_processes();
            if left.is_empty() || Instant::now() > end {
                break;
            }
            for (pid, _) in left {
                sigkill(pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
