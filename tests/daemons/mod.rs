//! Real `ember-master` and `ember-worker` processes for the root crate's fault-injection
//! and multi-host tests: started (on a host of a [`Hosts`]) in a directory of the test's
//! own, logging there, killed with SIGKILL or stopped with SIGTERM on purpose, and checked
//! for leftovers: every process the test causes (daemons, executors) works under that
//! directory, so anything still running there at the end was left behind.
//!
//! The binaries are the ones `cargo test --workspace` builds next to the test
//! (`target/<profile>/`), built here when missing.
//!
//! The test files declare this module `pub mod daemons;`: its items are public items of each
//! test crate, of which each file uses a part.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ember_test_support::{free_port_on, processes_under, wait_for, Process};

use ember::rpc_env::{EndpointRef, RpcAddress, RpcConf, RpcEnv, RpcEnvConfig};
use ember_deploy::messages::{MasterAsk, MasterProtocol, MasterState, MASTER_ENDPOINT_NAME};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[path = "../netns/mod.rs"]
pub mod netns;

use netns::Network;

/// How long anything here may take before the test fails: a few of ember-test-support's
/// ordinary deadlines, since one wait here can span daemons, executors and a driver starting
/// as processes (in network namespaces, on a loaded machine).
pub const DEADLINE: Duration = Duration::from_secs(ember_test_support::DEADLINE.as_secs() * 2);

/// `target/<profile>`, from this test's own path (`target/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("this test's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// The secret file's name in a test's directory.
const SECRET_FILE: &str = "secret";

/// Writes a fresh random secret to `<root>/secret`, mode 0600.
fn write_secret(root: &Path) -> PathBuf {
    let path = root.join(SECRET_FILE);
    ember_test_support::write_secret_file(&path);
    path
}

/// `ember.authenticate true` and the secret file's path.
fn auth_settings_for(secret_file: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("ember.authenticate", "true".to_string()),
        (
            "ember.authenticate.secret.file",
            secret_file.display().to_string(),
        ),
    ]
}

/// The daemons' binaries, built if missing.
fn binaries() -> (PathBuf, PathBuf) {
    let dir = profile_dir();
    let (master, worker) = (dir.join("ember-master"), dir.join("ember-worker"));
    if !master.is_file() || !worker.is_file() {
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "-p", "ember-deploy", "--bins", "--target-dir"])
            .arg(dir.parent().expect("the target directory"));
        if profile == "release" {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "building the daemons failed");
    }
    (master, worker)
}

/// Where the daemons run: all on loopback here, on distinct loopback addresses, or in
/// network namespaces of their own.
pub enum Hosts {
    /// Everything on 127.0.0.1.
    Local,
    /// Host `i` is 127.0.0.(2 + i).
    DistinctLoopback,
    /// Host `i` is namespace `i` of the network.
    Namespaces(Network),
}

impl Hosts {
    /// The address the driver (this process) binds.
    pub fn driver_addr(&self) -> Ipv4Addr {
        match self {
            Hosts::Namespaces(n) => n.driver_addr(),
            Hosts::Local | Hosts::DistinctLoopback => Ipv4Addr::LOCALHOST,
        }
    }

    /// Host `i`'s address.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        match self {
            Hosts::Namespaces(n) => n.host_addr(i),
            Hosts::DistinctLoopback => Ipv4Addr::new(127, 0, 0, 2 + i as u8),
            Hosts::Local => Ipv4Addr::LOCALHOST,
        }
    }

    fn command(&self, i: usize, program: &Path) -> Command {
        match self {
            Hosts::Namespaces(n) => n.command(i, program),
            Hosts::Local | Hosts::DistinctLoopback => Command::new(program),
        }
    }
}

/// The test's directory, its daemons by name, and how to ask the master.
pub struct Daemons {
    root: PathBuf,
    conf: PathBuf,
    master_bin: PathBuf,
    worker_bin: PathBuf,
    daemons: Vec<(String, Child)>,
    client: RpcEnv,
    master: EndpointRef<MasterProtocol>,
    master_host: usize,
    master_addr: RpcAddress,
}

impl Daemons {
    /// A directory named after `name` and this process, with a properties file of
    /// `settings` every daemon reads; the master will be on host `master_host`. Nothing is
    /// started yet.
    ///
    /// The cluster authenticates and encrypts, as a real one on a network must: a fresh
    /// random secret in `<root>/secret` (0600), named by `ember.authenticate.secret.file`
    /// in the properties file; the test's own client and [`auth_settings`](Self::auth_settings)
    /// (for drivers) use it too.
    pub fn new(name: &str, hosts: &Hosts, master_host: usize, settings: &[(&str, &str)]) -> Self {
        let root = std::env::temp_dir().join(format!("ember-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("the test directory");
        let secret_file = write_secret(&root);
        let conf = root.join("ember-defaults.conf");
        let mut text: String = settings.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        // Status UIs on free ports: tests run side by side.
        text.push_str("ember.master.ui.port 0\nember.worker.ui.port 0\n");
        for (k, v) in auth_settings_for(&secret_file) {
            text.push_str(&format!("{k} {v}\n"));
        }
        std::fs::write(&conf, text).expect("the properties file");
        let (master_bin, worker_bin) = binaries();
        let master_ip = hosts.addr(master_host);
        let port = match hosts {
            // A namespace has its ports to itself.
            Hosts::Namespaces(_) => 7077,
            _ => free_port_on(master_ip),
        };
        let master_addr = RpcAddress::new(&master_ip.to_string(), port);
        let client_conf = auth_settings_for(&secret_file)
            .into_iter()
            .fold(RpcConf::new(), |conf, (k, v)| conf.with(k, v));
        let client =
            RpcEnv::create(RpcEnvConfig::client(format!("{name}-test")).with_conf(client_conf))
                .expect("an env");
        let master = client.endpoint_ref_at(&master_addr, MASTER_ENDPOINT_NAME);
        Daemons {
            root,
            conf,
            master_bin,
            worker_bin,
            daemons: Vec::new(),
            client,
            master,
            master_host,
            master_addr,
        }
    }

    /// The settings a driver of this cluster needs to authenticate: `ember.authenticate`
    /// and the secret file's path (never the secret itself).
    pub fn auth_settings(&self) -> Vec<(&'static str, String)> {
        auth_settings_for(&self.secret_file())
    }

    /// The cluster's secret file.
    pub fn secret_file(&self) -> PathBuf {
        self.root.join(SECRET_FILE)
    }

    /// Adds `key value` to the properties file every daemon started from now on reads.
    pub fn add_setting(&self, key: &str, value: &str) {
        use std::io::Write;
        let mut file = File::options()
            .append(true)
            .open(&self.conf)
            .expect("the properties file");
        writeln!(file, "{key} {value}").expect("the properties file is written");
    }

    /// `ember://host:port` of the master.
    pub fn master_url(&self) -> String {
        format!("ember://{}", self.master_addr.host_port())
    }

    /// The test's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts the master (as `master`; a restart reuses the name).
    pub fn start_master(&mut self, hosts: &Hosts) {
        let mut master = hosts.command(self.master_host, &self.master_bin);
        master
            .args(["--host", self.master_addr.host()])
            .args(["--port", &self.master_addr.port().to_string()])
            .arg("--properties-file")
            .arg(&self.conf);
        self.spawn(master, "master");
    }

    /// Starts worker `name` of `cores` cores on host `host`.
    pub fn start_worker(&mut self, hosts: &Hosts, name: &str, host: usize, cores: u32) {
        let mut worker = hosts.command(host, &self.worker_bin);
        worker
            .args(["--host", &hosts.addr(host).to_string()])
            .args(["--cores", &cores.to_string(), "--memory", "4g"])
            .arg("--properties-file")
            .arg(&self.conf)
            .arg("--work-dir")
            .arg(self.root.join(format!("work-{name}")))
            .arg(self.master_url());
        self.spawn(worker, name);
    }

    fn spawn(&mut self, mut command: Command, name: &str) {
        let path = self.root.join(format!("{name}.log"));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .expect("a log file");
        let child = command
            .current_dir(&self.root)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.daemons.push((name.to_string(), child));
    }

    /// The pid of daemon `name`.
    pub fn pid(&self, name: &str) -> u32 {
        self.daemons
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.id())
            .unwrap_or_else(|| panic!("no daemon {name}"))
    }

    /// Kills daemon `name` with SIGKILL, as a crash would, and reaps it.
    pub fn kill9(&mut self, name: &str) {
        let at = self
            .daemons
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no daemon {name}"));
        let (_, mut child) = self.daemons.remove(at);
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The master's state, or `None` when it does not answer.
    pub fn state(&self) -> Option<MasterState> {
        self.master
            .ask_sync(|reply| MasterAsk::RequestMasterState { reply })
            .ok()
    }

    /// Polls the master until `cond` holds of its state; fails with the logs after the
    /// deadline.
    #[track_caller]
    pub fn wait_for(&self, what: &str, cond: impl Fn(&MasterState) -> bool) -> MasterState {
        wait_for(what, DEADLINE, || match self.state() {
            Some(state) if cond(&state) => Ok(state),
            state => Err(WithLogs(state.map(Box::new), self)),
        })
    }

    /// Every daemon's log, for a failing test's message.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return all;
        };
        let mut logs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        for path in logs {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            all.push_str(&format!("--- {}\n{text}\n", path.display()));
        }
        all
    }

    /// Live processes working under the test's directory: daemons and executors.
    pub fn processes(&self) -> Vec<Process> {
        processes_under(&self.root)
    }

    /// The executor processes of application `app_id` still running, by pid.
    pub fn executors_of(&self, app_id: &str) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .processes()
            .into_iter()
            .filter(|p| p.cmdline.contains(&format!("--app-id {app_id}")))
            .map(|p| p.pid)
            .collect();
        pids.sort_unstable();
        pids
    }

    /// Waits until every process in `pids` has ended (none was left behind).
    #[track_caller]
    pub fn wait_gone(&self, what: &str, pids: &[u32]) {
        wait_for(what, DEADLINE, || {
            let left: Vec<Process> = self
                .processes()
                .into_iter()
                .filter(|p| pids.contains(&p.pid))
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(left)
            }
        });
    }

    /// Stops the daemons (SIGTERM, as the stop scripts do) and checks that nothing is left.
    pub fn stop(mut self) {
        for (_, child) in self.daemons.iter().rev() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        for (_, child) in &mut self.daemons {
            let _ = child.wait();
        }
        self.daemons.clear();
        wait_for("no process is left behind", DEADLINE, || {
            let left = self.processes();
            if left.is_empty() {
                Ok(())
            } else {
                Err(left)
            }
        });
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for (_, child) in &mut self.daemons {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.client.shutdown();
    }
}

/// The last state a wait saw, shown with every daemon's log when the wait fails (the logs are
/// read only then).
struct WithLogs<'a>(Option<Box<MasterState>>, &'a Daemons);

impl std::fmt::Debug for WithLogs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the master's state: {:#?}\n{}", self.0, self.1.logs())
    }
}
