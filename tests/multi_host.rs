//! A cluster across hosts: the master and two workers each in a network namespace of its
//! own (made by the test: veth pairs to a bridge, addresses that exist only on those
//! interfaces), each daemon bound to its host's address, the driver here on the bridge.
//! A job runs across both workers; then one worker is cut off (its link down): the master
//! marks it DEAD after `ember.worker.timeout`, its executor is lost, a replacement starts
//! on the other worker and the job finishes there with every result exactly once; the
//! link comes back and the worker re-registers.
//!
//! Where namespaces cannot be made (not root, no `ip`), the daemons bind distinct loopback
//! addresses (127.0.0.2, ...) instead, and the partition case is skipped, saying so.
//!
//! The daemons are the `ember-master` and `ember-worker` binaries `cargo test --workspace`
//! builds next to this test (built here when missing); executors are this test binary.

mod netns;

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ember::rpc_env::{EndpointRef, RpcAddress, RpcEnv, RpcEnvConfig};
use ember::testing::EXECUTOR_ENTRY_ARGS;
use ember::{Context, RpcConf, TaskContext, TaskError, TaskRegistry};
use ember_deploy::messages::{MasterAsk, MasterProtocol, MasterState, MASTER_ENDPOINT_NAME};

use netns::Network;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long anything here may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// The squares, slowly enough that a job spans the partition.
fn slow_square(_: &TaskContext, x: u64) -> Result<u64, TaskError> {
    std::thread::sleep(Duration::from_millis(20));
    Ok(x * x)
}

fn tasks() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register("slow_square", slow_square);
    registry
}

ember::executor_entry!(tasks);

/// `target/<profile>`, from this test's own path (`target/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("this test's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// The daemons' binaries, built if missing.
fn daemons() -> (PathBuf, PathBuf) {
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

/// Where the daemons run: namespaces, or loopback addresses in this one.
enum Hosts {
    Namespaces(Network),
    Loopback,
}

impl Hosts {
    fn driver_addr(&self) -> Ipv4Addr {
        match self {
            Hosts::Namespaces(n) => n.driver_addr(),
            Hosts::Loopback => Ipv4Addr::LOCALHOST,
        }
    }

    fn addr(&self, i: usize) -> Ipv4Addr {
        match self {
            Hosts::Namespaces(n) => n.host_addr(i),
            Hosts::Loopback => Ipv4Addr::new(127, 0, 0, 2 + i as u8),
        }
    }

    fn command(&self, i: usize, program: &Path) -> Command {
        match self {
            Hosts::Namespaces(n) => n.command(i, program),
            Hosts::Loopback => Command::new(program),
        }
    }
}

/// The test's directory, its daemons, and how to ask the master.
struct Cluster {
    root: PathBuf,
    daemons: Vec<Child>,
    client: RpcEnv,
    master: EndpointRef<MasterProtocol>,
    master_url: String,
}

impl Cluster {
    /// Starts the master on host 0 and a worker of 2 cores on each of hosts 1 and 2.
    fn start(hosts: &Hosts) -> Cluster {
        let root = std::env::temp_dir().join(format!("ember-multi-host-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("the test directory");
        let conf = root.join("ember-defaults.conf");
        // A partitioned worker is DEAD within 2-4 s; workers heartbeat every 0.5 s.
        std::fs::write(&conf, "ember.worker.timeout 2\n").expect("the properties file");
        let (master_bin, worker_bin) = daemons();
        let master_addr = RpcAddress::new(&hosts.addr(0).to_string(), 7077);
        let master_url = format!("ember://{}", master_addr.host_port());
        let client = RpcEnv::create(RpcEnvConfig::client("multi-host-test")).expect("an env");
        let master = client.endpoint_ref_at(&master_addr, MASTER_ENDPOINT_NAME);
        let mut cluster = Cluster {
            client,
            master,
            root,
            daemons: Vec::new(),
            master_url: master_url.clone(),
        };
        let mut master = hosts.command(0, &master_bin);
        master
            .args(["--host", &hosts.addr(0).to_string(), "--port", "7077"])
            .arg("--properties-file")
            .arg(&conf);
        cluster.spawn(master, "master");
        for i in 1..=2 {
            let mut worker = hosts.command(i, &worker_bin);
            worker
                .args(["--host", &hosts.addr(i).to_string(), "--cores", "2"])
                .args(["--memory", "2g", "--properties-file"])
                .arg(&conf)
                .arg("--work-dir")
                .arg(cluster.root.join(format!("work-{i}")))
                .arg(&master_url);
            cluster.spawn(worker, &format!("worker-{i}"));
        }
        cluster
    }

    fn spawn(&mut self, mut command: Command, name: &str) {
        let log = File::create(self.root.join(format!("{name}.log"))).expect("a log file");
        let child = command
            .current_dir(&self.root)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {name}: {e}"));
        self.daemons.push(child);
    }

    fn state(&self) -> Option<MasterState> {
        self.master
            .ask_sync(|reply| MasterAsk::RequestMasterState { reply })
            .ok()
    }

    /// Polls the master until `cond` holds of its state; fails with the logs after the
    /// deadline.
    #[track_caller]
    fn wait_for(&self, what: &str, cond: impl Fn(&MasterState) -> bool) -> MasterState {
        let end = Instant::now() + DEADLINE;
        loop {
            let state = self.state();
            if let Some(state) = state.as_ref().filter(|s| cond(s)) {
                return state.clone();
            }
            assert!(
                Instant::now() < end,
                "timed out waiting until {what}; the master's state: {state:#?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for name in ["master", "worker-1", "worker-2"] {
            let log =
                std::fs::read_to_string(self.root.join(format!("{name}.log"))).unwrap_or_default();
            all.push_str(&format!("--- {name}.log\n{log}\n"));
        }
        all
    }

    /// Live processes working under the test's directory: daemons and executors.
    fn processes(&self) -> Vec<(u32, String)> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(&self.root))
            })
            .filter(|pid| {
                // A zombie is dead, only not yet reaped by its parent.
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| !rest.starts_with('Z'))
            })
            .map(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                (pid, String::from_utf8_lossy(&cmdline).replace('\0', " "))
            })
            .collect()
    }

    /// Stops the daemons (SIGTERM, as the stop scripts do) and checks that nothing is left.
    fn stop(mut self) {
        for child in self.daemons.iter().rev() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        for child in &mut self.daemons {
            let _ = child.wait();
        }
        self.daemons.clear();
        let end = Instant::now() + DEADLINE;
        loop {
            let left = self.processes();
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < end, "processes left behind: {left:#?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.daemons {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.client.shutdown();
    }
}

/// Runs `slow_square` over `0..n` and checks every square comes back exactly once.
fn squares(ctx: &Context, n: u64) {
    let out: Vec<u64> = ctx
        .run_job("slow_square", (0..n).collect())
        .expect("the job succeeds");
    let expected: Vec<u64> = (0..n).map(|x| x * x).collect();
    assert_eq!(out, expected, "every result, once, in order");
}

fn worker_at(state: &MasterState, addr: Ipv4Addr) -> Vec<&str> {
    state
        .workers
        .iter()
        .filter(|w| w.host_port.starts_with(&format!("{addr}:")))
        .map(|w| w.state.as_str())
        .collect()
}

#[test]
fn a_job_across_hosts_survives_a_partition() {
    let _ = env_logger::builder().is_test(true).try_init();
    let hosts = match Network::create(3) {
        Ok(network) => Hosts::Namespaces(network),
        Err(why) => {
            eprintln!(
                "multi_host: cannot make network namespaces ({why}); using 127.0.0.2-4 \
                 instead, and SKIPPING the partition case"
            );
            Hosts::Loopback
        }
    };
    let cluster = Cluster::start(&hosts);
    cluster.wait_for("both workers are ALIVE", |s| {
        s.workers.iter().filter(|w| w.state == "ALIVE").count() == 2
    });

    let exe = std::env::current_exe().expect("this test's path");
    let conf = RpcConf::new()
        .with(ember::MASTER, &cluster.master_url)
        .with(ember::APP_NAME, "multi-host")
        .with(ember::DRIVER_HOST, hosts.driver_addr().to_string())
        .with(ember::EXECUTOR_PROGRAM, exe.to_string_lossy())
        .with(ember::EXECUTOR_PROGRAM_ARGS, EXECUTOR_ENTRY_ARGS)
        .with(ember::EXECUTOR_CORES, "1")
        .with(ember::CORES_MAX, "2");
    let ctx = Context::new(conf, tasks()).expect("the application registers");
    ctx.wait_for_executors(2, DEADLINE)
        .expect("an executor on each worker");
    let state = cluster.wait_for("one executor on each worker", |s| {
        s.workers.iter().all(|w| w.cores_used == 1)
    });
    assert_eq!(state.workers.len(), 2, "{state:#?}");
    squares(&ctx, 100);

    if let Hosts::Namespaces(network) = &hosts {
        let cut = hosts.addr(1);
        let job = ctx
            .submit_job::<u64, u64>("slow_square", (0..300).collect())
            .expect("submitted");
        network.partition(1).expect("the link goes down");
        let state = cluster.wait_for("the cut-off worker is DEAD", |s| {
            worker_at(s, cut) == ["DEAD"]
        });
        assert_eq!(worker_at(&state, hosts.addr(2)), ["ALIVE"]);
        let out = job
            .wait_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("the job ends\n{}", cluster.logs()))
            .expect("the job succeeds on the other worker");
        assert_eq!(out, (0..300).map(|x| x * x).collect::<Vec<u64>>());
        cluster.wait_for("a replacement executor on the live worker", |s| {
            s.workers
                .iter()
                .any(|w| w.state == "ALIVE" && w.cores_used == 2)
        });

        network.heal(1).expect("the link comes back");
        cluster.wait_for("the worker re-registers", |s| {
            worker_at(s, cut).contains(&"ALIVE")
        });
        squares(&ctx, 100);
    }

    ctx.stop();
    cluster.stop();
    drop(hosts);
}
