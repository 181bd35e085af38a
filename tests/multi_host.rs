//! A cluster across hosts: the master and two workers each in a network namespace of its
//! own (made by the test: veth pairs to a bridge, addresses that exist only on those
//! interfaces), each daemon bound to its host's address, the driver here on the bridge.
//! A job runs across both workers; then one worker is cut off (its link down): the master
//! marks it DEAD after `ember.worker.timeout`, its executor is lost, a replacement starts
//! on the other worker and the job finishes there with every result exactly once; the
//! link comes back and the worker re-registers.
//!
//! The hosts share no disk where this test's binary is (each sees an empty directory
//! there): the workers fetch it from the driver into their caches and run it from there.
//! Nor where a file the driver adds for its tasks is (`Context::add_file`): the executors
//! fetch it. Last, `examples/pi`, whose directory the hosts lack too, runs in cluster deploy
//! mode: its worker fetches it from the master's program store.
//!
//! Where namespaces cannot be made (not root, no `ip`), the daemons bind distinct loopback
//! addresses (127.0.0.2, ...) instead, and the partition case is skipped, saying so.
//!
//! The daemons are the `ember-master` and `ember-worker` binaries `cargo test --workspace`
//! builds next to this test (built here when missing); executors are this test binary.

mod built;
pub mod daemons;
#[path = "../deploy/tests/script_support/mod.rs"]
pub mod script_support;

use std::net::Ipv4Addr;
use std::time::Duration;

use ember::testing::EXECUTOR_ENTRY_ARGS;
use ember::{Context, RpcConf, TaskContext, TaskError, TaskRegistry};
use ember_deploy::messages::MasterState;

use built::{ensure_built, profile_dir};
use daemons::netns::Network;
use daemons::{Daemons, Hosts, DEADLINE};
use ember_deploy::messages::DriverState;
use script_support::{run_bounded, submitted_driver_id, text};

/// The squares, slowly enough that a job spans the partition.
fn slow_square(_: &TaskContext, x: u64) -> Result<u64, TaskError> {
    std::thread::sleep(Duration::from_millis(20));
    Ok(x * x)
}

/// The text of a file the driver added, read where the task runs.
fn read_added(ctx: &TaskContext, name: String) -> Result<String, TaskError> {
    let path = ctx.file(&name)?;
    std::fs::read_to_string(&path).map_err(|e| TaskError::msg(format!("{}: {e}", path.display())))
}

fn tasks() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register("slow_square", slow_square);
    registry.register("read_added", read_added);
    registry
}

ember::executor_entry!(tasks);

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
    let exe = std::env::current_exe().expect("this test's path");
    let bins = profile_dir();
    ensure_built(&bins);
    // A file the driver adds for its tasks, in a directory the hosts do not have either.
    let files = std::env::temp_dir().join(format!("ember-multi-host-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&files);
    std::fs::create_dir_all(&files).expect("the files' directory");
    let added = files.join("words.txt");
    std::fs::write(&added, "only on the driver's disk").expect("the added file");
    let hosts = match Network::create(3) {
        Ok(mut network) => {
            // The hosts share no disk with the driver where its binary is: the workers
            // fetch it from the driver. Nor where `examples/pi` is, which runs in cluster
            // mode below: its worker fetches it from the master.
            network.hide_on_hosts(exe.parent().expect("the binary's directory"));
            network.hide_on_hosts(&bins.join("examples"));
            network.hide_on_hosts(&files);
            Hosts::Namespaces(network)
        }
        Err(why) => {
            eprintln!(
                "multi_host: cannot make network namespaces ({why}); using 127.0.0.2-4 \
                 instead, and SKIPPING the partition case"
            );
            Hosts::DistinctLoopback
        }
    };
    // A partitioned worker is DEAD within 2-4 s; workers heartbeat every 0.5 s.
    let mut cluster = Daemons::new("multi-host", &hosts, 0, &[("ember.worker.timeout", "2")]);
    cluster.start_master(&hosts);
    cluster.start_worker(&hosts, "worker-1", 1, 2);
    cluster.start_worker(&hosts, "worker-2", 2, 2);
    cluster.wait_for("both workers are ALIVE", |s| {
        s.workers.iter().filter(|w| w.state == "ALIVE").count() == 2
    });

    let conf = RpcConf::new()
        .with(ember::MASTER, cluster.master_url())
        .with(ember::APP_NAME, "multi-host")
        .with(ember::DRIVER_HOST, hosts.driver_addr().to_string())
        .with(ember::EXECUTOR_PROGRAM, exe.to_string_lossy())
        .with(ember::EXECUTOR_PROGRAM_ARGS, EXECUTOR_ENTRY_ARGS)
        .with(ember::EXECUTOR_CORES, "1")
        .with(ember::CORES_MAX, "2");
    // Namespace hosts are not loopback: the cluster authenticates (its secret in a file).
    let conf = cluster
        .auth_settings()
        .into_iter()
        .fold(conf, |conf, (key, value)| conf.with(key, value));
    let ctx = Context::new(conf, tasks()).expect("the application registers");
    ctx.wait_for_executors(2, DEADLINE)
        .expect("an executor on each worker");
    let state = cluster.wait_for("one executor on each worker", |s| {
        s.workers.iter().all(|w| w.cores_used == 1)
    });
    assert_eq!(state.workers.len(), 2, "{state:#?}");
    squares(&ctx, 100);
    let name = ctx.add_file(&added).expect("added");
    let texts: Vec<String> = ctx
        .run_job("read_added", vec![name; 8])
        .expect("the tasks read the added file");
    assert!(
        texts.iter().all(|t| t == "only on the driver's disk"),
        "{texts:?}"
    );
    if let Hosts::Namespaces(_) = &hosts {
        // Each worker ran the executor from its own cache: the binary's path is empty there.
        for worker in ["worker-1", "worker-2"] {
            let cache = cluster.root().join(format!("work-{worker}/cache"));
            let entries: Vec<String> = std::fs::read_dir(&cache)
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", cache.display(), cluster.logs()))
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(entries.len(), 1, "one program, fetched once: {entries:?}");
            assert_eq!(entries[0].len(), 64, "named by its SHA-256: {entries:?}");
        }
    }

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
    let _ = std::fs::remove_dir_all(&files);
    pi_in_cluster_mode(&cluster, &hosts, &bins);
    cluster.stop();
    drop(hosts);
}

/// `ember-submit --deploy-mode cluster` of `examples/pi` from here: with namespaces, no
/// host has pi's binary, so the worker chosen for the driver fetches it from the master's
/// program store, the driver binds that worker's address, and its executors' workers
/// fetch pi from the driver.
fn pi_in_cluster_mode(cluster: &Daemons, hosts: &Hosts, bins: &std::path::Path) {
    let pi = bins.join("examples").join("pi");
    let mut submit = std::process::Command::new(bins.join("ember-submit"));
    submit
        .args([
            "--master",
            &cluster.master_url(),
            "--deploy-mode",
            "cluster",
        ])
        .arg("--properties-file")
        .arg(cluster.root().join("ember-defaults.conf"))
        .args(["--driver-memory", "256m"])
        .arg(&pi)
        .args(["--slices", "4"]);
    let output = run_bounded(submit, "ember-submit (cluster)");
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "{stdout}\n{stderr}\n{}",
        cluster.logs()
    );
    let id = submitted_driver_id(&stdout);
    assert!(
        stdout.ends_with(&format!("State of driver {id} is FINISHED\n")),
        "{stdout}"
    );
    let state = cluster.wait_for("the driver is done", |s| {
        s.completed_drivers.iter().any(|d| d.id.0 == id)
    });
    let driver = state.completed_drivers.iter().find(|d| d.id.0 == id);
    assert_eq!(driver.map(|d| d.state), Some(DriverState::Finished));
    let worker = ["worker-1", "worker-2"]
        .into_iter()
        .find(|w| cluster.root().join(format!("work-{w}/{id}")).is_dir())
        .expect("a worker ran the driver");
    let out = std::fs::read_to_string(cluster.root().join(format!("work-{worker}/{id}/stdout")))
        .expect("the driver's stdout");
    let value: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Pi is roughly "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no answer in: {out}"));
    assert!((3.1..3.2).contains(&value), "Pi is roughly {value}");
    if let Hosts::Namespaces(_) = hosts {
        let (_, sha) = ember_deploy::program::digest_file(&pi).expect("pi hashes");
        let cached = cluster.root().join(format!("work-{worker}/cache/{sha}"));
        assert!(cached.is_file(), "pi came from the master's store");
    }
}
