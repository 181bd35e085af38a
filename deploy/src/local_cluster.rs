//! `local-cluster[N,C,M]`: a master and N workers inside the driver's process, each with an
//! RpcEnv of its own on loopback; the executors they launch are real child processes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rpc_env::{RpcConf, RpcError};

use crate::master::{start_master, MasterConfig, MasterHandle};
use crate::messages::MasterState;
use crate::worker::{start_worker, WorkerConfig, WorkerHandle};

/// How long a local cluster waits for its workers to register.
const WORKERS_DEADLINE: Duration = Duration::from_secs(30);

/// A master and its workers in this process.
pub struct LocalCluster {
    master: MasterHandle,
    workers: Vec<Option<WorkerHandle>>,
    work_dir: PathBuf,
}

/// What can go wrong starting a local cluster.
#[derive(Debug)]
pub struct LocalClusterError(String);

impl std::fmt::Display for LocalClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LocalClusterError {}

impl From<RpcError> for LocalClusterError {
    fn from(e: RpcError) -> Self {
        LocalClusterError(e.to_string())
    }
}

/// A fresh directory under the system's temporary directory for this cluster's work dirs.
fn fresh_work_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "ember-local-cluster-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

impl LocalCluster {
    /// Starts a master and `workers` workers of `cores` cores and `memory_mib` MiB each, and
    /// waits until every worker has registered. `conf` applies to all of them (timeouts,
    /// `ember.deploy.*`, ...).
    pub fn start(
        workers: u32,
        cores: u32,
        memory_mib: u32,
        conf: &RpcConf,
    ) -> Result<LocalCluster, LocalClusterError> {
        let master = start_master(MasterConfig::local().with_conf(conf.clone()))?;
        let work_dir = fresh_work_dir();
        let mut cluster = LocalCluster {
            master,
            workers: Vec::new(),
            work_dir,
        };
        for i in 0..workers {
            let mut config = WorkerConfig::new(vec![cluster.master.address()]);
            config.cores = cores;
            config.memory_mib = memory_mib;
            config.webui_port = 0;
            config.work_dir = cluster.work_dir.join(format!("worker-{i}"));
            config.conf = conf.clone();
            match start_worker(config) {
                Ok(worker) => cluster.workers.push(Some(worker)),
                Err(e) => {
                    cluster.stop();
                    return Err(LocalClusterError(format!("worker {i} did not start: {e}")));
                }
            }
        }
        if let Err(e) = cluster.wait_for_workers(workers as usize, WORKERS_DEADLINE) {
            cluster.stop();
            return Err(e);
        }
        log::info!(
            "Started local cluster: master {} with {workers} worker(s) of {cores} core(s), {memory_mib} MiB",
            cluster.master.url()
        );
        Ok(cluster)
    }

    /// The master's URL, `ember://127.0.0.1:<port>`.
    pub fn master_url(&self) -> String {
        self.master.url()
    }

    /// The master.
    pub fn master(&self) -> &MasterHandle {
        &self.master
    }

    /// The master's state.
    pub fn state(&self) -> Result<MasterState, RpcError> {
        self.master.state()
    }

    /// Where the workers keep their executors' directories and logs.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// Worker `i`, unless it was killed.
    pub fn worker(&self, i: usize) -> Option<&WorkerHandle> {
        self.workers.get(i).and_then(Option::as_ref)
    }

    /// Waits until the master counts `count` alive workers.
    pub fn wait_for_workers(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<(), LocalClusterError> {
        let deadline = Instant::now() + timeout;
        loop {
            let alive = self
                .master
                .state()?
                .workers
                .iter()
                .filter(|w| w.state == "ALIVE")
                .count();
            if alive >= count {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LocalClusterError(format!(
                    "{alive} of {count} workers registered within {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops worker `i` as if its machine went away: its executors are killed with it and
    /// the master is left to notice (its connection drops).
    pub fn kill_worker(&mut self, i: usize) {
        if let Some(worker) = self.workers.get_mut(i).and_then(Option::take) {
            worker.shutdown();
            worker.await_termination();
        }
    }

    /// Stops every worker (and so every executor) and the master, and removes the work
    /// directories. Idempotent.
    pub fn stop(&mut self) {
        for worker in self.workers.iter_mut().filter_map(Option::take) {
            worker.shutdown();
            worker.await_termination();
        }
        self.master.shutdown();
        self.master.await_termination();
        if self.work_dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&self.work_dir) {
                log::warn!("Could not remove {}: {e}", self.work_dir.display());
            }
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("master", &self.master.url())
            .field(
                "workers",
                &self.workers.iter().filter(|w| w.is_some()).count(),
            )
            .finish()
    }
}
