//! A driver whose application cannot get any executor says so, with the cause, within
//! `ember.scheduler.starvationTimeout` (Spark's "Initial job has not accepted any resources"
//! warning): no worker registered, executors larger than any worker in memory, or in cores.
//! Each case runs `examples/pi` as a real driver process against a real master (and worker)
//! and reads its stderr, as the person who started it would.

mod built;
#[path = "../deploy/tests/script_support/mod.rs"]
pub mod script_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use built::{ensure_built, profile_dir};
use ember::testing::TestCluster;
use script_support::DEADLINE;

/// Spark's words, which every warning starts with.
const STARVING: &str = "Initial job has not accepted any resources; check your cluster UI to \
                        ensure that workers are registered and have sufficient resources";

/// A cluster of `workers` workers of `cores` cores and `memory_mib` MiB each, without
/// authentication so that a plain driver process may join it.
fn cluster(workers: u32, cores: u32, memory_mib: u32) -> TestCluster {
    TestCluster::builder()
        .workers(workers)
        .cores_per_worker(cores)
        .memory_mib_per_worker(memory_mib)
        .conf("ember.authenticate", "false")
        .start()
        .expect("the cluster starts")
}

/// Kills the driver when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs pi against `master` with `settings` (and a 1 s starvation timeout); returns the
/// first starvation warning it prints and how long after its start that came.
fn starvation_warning(master: &str, settings: &str) -> (String, Duration) {
    let bins = profile_dir();
    ensure_built(&bins);
    let started = Instant::now();
    let child = Command::new(bins.join("examples/pi"))
        .args(["--master", master, "--slices", "1"])
        .env(
            "EMBER_CONF",
            format!("ember.scheduler.starvationTimeout=1s\n{settings}"),
        )
        .env_remove("RUST_LOG")
        .env_remove("EMBER_MASTER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pi starts");
    let mut driver = Driver(child);
    let stderr = driver.0.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(STARVING) => return (line, started.elapsed()),
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!(
        "no starvation warning within {DEADLINE:?}; stderr:\n{}",
        seen.join("\n")
    );
}

#[test]
fn no_worker_registered_is_named() {
    let cluster = cluster(0, 1, 1024);
    let master = cluster.master_url();
    let (warning, after) = starvation_warning(&master, "");
    assert!(
        warning.ends_with(&format!(
            "{STARVING}. Why: the master {master} says: no worker is registered"
        )),
        "{warning}"
    );
    assert!(warning.contains(" WARN "), "{warning}");
    // Within the timeout (1 s), give or take a loaded machine; not the default 15 s.
    assert!(after < Duration::from_secs(12), "{after:?}");
    cluster.stop().expect("nothing left");
}

#[test]
fn executor_memory_larger_than_any_worker_is_named_with_both_numbers() {
    // The default executor memory (1024 MiB) against a 512 MiB worker.
    let cluster = cluster(1, 1, 512);
    let master = cluster.master_url();
    let (warning, _) = starvation_warning(&master, "");
    assert!(
        warning.ends_with(&format!(
            "{STARVING}. Why: the master {master} says: each executor needs 1024 MiB of memory \
             (ember.executor.memory), more than any worker offers (the most: 512 MiB)"
        )),
        "{warning}"
    );
    cluster.stop().expect("nothing left");
}

#[test]
fn executor_cores_larger_than_any_worker_are_named_with_both_numbers() {
    let cluster = cluster(1, 1, 2048);
    let master = cluster.master_url();
    let (warning, _) = starvation_warning(
        &master,
        "ember.executor.cores=2\nember.executor.memory=256m\n",
    );
    assert!(
        warning.ends_with(&format!(
            "{STARVING}. Why: the master {master} says: each executor needs 2 cores \
             (ember.executor.cores), more than any worker offers (the most: 1)"
        )),
        "{warning}"
    );
    cluster.stop().expect("nothing left");
}
