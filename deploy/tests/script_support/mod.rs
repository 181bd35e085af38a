//! Runs the real `sbin` scripts against a cluster of the test's own: its own temp directory
//! with pid, log, conf and work dirs, a free master port, and every process it starts
//! working in that directory, so that [`Scripts::our_processes`] finds them all (daemons,
//! executors, drivers) by their working directory. Dropping a [`Scripts`] stops everything
//! with the stop scripts, kills what is left, and removes the directory; after a failure
//! it prints the daemons' logs first.
//!
//! Shared by `deploy/tests/{scripts,submit}.rs` and the root crate's `tests/scripts_pi.rs`
//! (which includes this file by path). Each declares it `pub mod script_support;`: its items
//! are public items of each test crate, of which each file uses a part.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use ember_test_support::{free_port, is_alive, wait_until, DEADLINE};
use ember_test_support::{processes_under, wait_for, Process, TempDir};

use ember_deploy::messages::{MasterAsk, MasterProtocol, MasterState, MASTER_ENDPOINT_NAME};
use rpc_env::{EndpointRef, RpcAddress, RpcConf, RpcEnv, RpcEnvConfig};

/// How long a wait may take that spans a whole application run (a driver and its executors
/// started as processes by daemons the scripts started): a few ordinary waits in a row.
pub const APP_DEADLINE: Duration = Duration::from_secs(DEADLINE.as_secs() * 2);
/// How long one script or program may run before the test kills it and fails: the scripts
/// themselves wait up to `EMBER_START_TIMEOUT` (30 s) for a daemon.
pub const RUN_DEADLINE: Duration = Duration::from_secs(DEADLINE.as_secs() * 4);
/// `EMBER_IDENT_STRING` in the tests: pid and log file names use it.
pub const IDENT: &str = "test";

/// The driver id in `ember-submit`'s `Driver successfully submitted as <id>`.
pub fn submitted_driver_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Driver successfully submitted as "))
        .unwrap_or_else(|| panic!("no driver id in: {stdout}"))
        .trim()
        .to_string()
}

/// Stdout and stderr of a finished run, for assertions and messages.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Sends SIGKILL to `pid` (with kill(1): the root crate's tests have no signal library).
pub fn sigkill(pid: u32) {
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
            sigkill(pid);
            panic!("{what} did not finish within {RUN_DEADLINE:?}");
        }
    }
}

/// A cluster run by the scripts in `<home>/sbin`, with the binaries in `bin_dir`.
pub struct Scripts {
    home: PathBuf,
    root: TempDir,
    bin_dir: PathBuf,
    master_port: u16,
    env: Vec<(String, String)>,
    client: RpcEnv,
}

impl Scripts {
    /// A fresh directory for a test called `name`, with `conf/ember-defaults.conf` setting
    /// `ember.port.maxRetries 0` (a taken port fails the master instead of moving it) and
    /// the status UIs on free ports (tests run side by side).
    pub fn new(name: &str, home: &Path, bin_dir: &Path) -> Scripts {
        let root = TempDir::new(&format!("scripts-{name}"));
        for dir in ["pid", "log", "conf", "work", "run"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("test dirs");
        }
        std::fs::write(
            root.path().join("conf/ember-defaults.conf"),
            "ember.port.maxRetries 0\nember.master.ui.port 0\nember.worker.ui.port 0\n",
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

    /// Like [`new`](Self::new), with authentication on: a random secret in
    /// `conf/secret` (mode 0600) named by `ember.authenticate.secret.file` in
    /// `ember-defaults.conf`, which the scripts and `ember-submit` read; the test's own client
    /// authenticates with it too.
    pub fn authenticated(name: &str, home: &Path, bin_dir: &Path) -> Scripts {
        let mut s = Scripts::new(name, home, bin_dir);
        let secret_file = s.secret_file();
        ember_test_support::write_secret_file(&secret_file);
        let defaults = s.conf_dir().join("ember-defaults.conf");
        let mut text = std::fs::read_to_string(&defaults).expect("ember-defaults.conf");
        text.push_str(&format!(
            "ember.authenticate true\nember.authenticate.secret.file {}\n",
            secret_file.display()
        ));
        std::fs::write(&defaults, text).expect("ember-defaults.conf");
        let conf = RpcConf::new()
            .with("ember.rpc.askTimeout", "10s")
            .with("ember.authenticate", "true")
            .with(
                "ember.authenticate.secret.file",
                secret_file.display().to_string(),
            );
        s.client.shutdown();
        s.client =
            RpcEnv::create(RpcEnvConfig::client("scripts-test").with_conf(conf)).expect("client");
        s
    }

    /// Where [`authenticated`](Self::authenticated) keeps the secret.
    pub fn secret_file(&self) -> PathBuf {
        self.conf_dir().join("secret")
    }

    /// Sets an environment variable for every script run from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// The test's directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `EMBER_PID_DIR`.
    pub fn pid_dir(&self) -> PathBuf {
        self.root().join("pid")
    }

    /// `EMBER_LOG_DIR`.
    pub fn log_dir(&self) -> PathBuf {
        self.root().join("log")
    }

    /// `EMBER_CONF_DIR`.
    pub fn conf_dir(&self) -> PathBuf {
        self.root().join("conf")
    }

    /// `EMBER_WORKER_DIR`.
    pub fn work_dir(&self) -> PathBuf {
        self.root().join("work")
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
        command.env_clear().current_dir(self.root().join("run"));
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
    pub fn pid(&self, command: &str, instance: u32) -> Option<u32> {
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
    /// [`APP_DEADLINE`] (some of these waits span a whole application run).
    #[track_caller]
    pub fn wait_for_master(&self, what: &str, cond: impl Fn(&MasterState) -> bool) -> MasterState {
        wait_for(what, APP_DEADLINE, || match self.master_state() {
            Some(state) if cond(&state) => Ok(state),
            state => Err(state.map(Box::new)),
        })
    }

    /// Live processes working under the test's directory: daemons, executors, drivers.
    pub fn our_processes(&self) -> Vec<Process> {
        processes_under(self.root())
    }

    /// Waits until no process works under the test's directory.
    #[track_caller]
    pub fn assert_nothing_left(&self) {
        wait_for("no process is left behind", DEADLINE, || {
            let left = self.our_processes();
            if left.is_empty() {
                Ok(())
            } else {
                Err(left)
            }
        });
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
        // No panic from a drop (the test may be failing already): a bounded wait by hand.
        let end = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.our_processes();
            if left.is_empty() || std::time::Instant::now() > end {
                break;
            }
            for process in left {
                sigkill(process.pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The directory goes with `root`.
    }
}
