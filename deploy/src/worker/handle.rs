//! [`start_worker`] and [`WorkerHandle`]: how the `ember-worker` binary, local-cluster and
//! tests run a worker.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use rpc_env::{ConfError, EndpointRef, RpcAddress, RpcEnv, RpcEnvConfig, RpcError};

use crate::ids::id_timestamp;
use crate::messages::{WorkerAsk, WorkerProtocol, WorkerState, WORKER_ENDPOINT_NAME};
use crate::ui::{BoundUi, Daemon, UiServer};
use crate::WorkerId;

use super::config::{WorkerConfig, WorkerSettings};
use super::registration::RetrySchedule;
use super::{Worker, WorkerIdentity};

/// Why a worker could not start.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerError {
    /// The configuration is unusable (no master, no cores, no memory).
    Config(String),
    /// An `ember.*` setting does not parse.
    Conf(ConfError),
    /// The work dir cannot be created.
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The RPC environment could not start (the port is taken, say).
    Rpc(RpcError),
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Config(why) => f.write_str(why),
            WorkerError::Conf(e) => e.fmt(f),
            WorkerError::WorkDir { path, reason } => {
                write!(
                    f,
                    "Failed to create work directory {}: {reason}",
                    path.display()
                )
            }
            WorkerError::Rpc(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WorkerError {}

impl From<ConfError> for WorkerError {
    fn from(e: ConfError) -> Self {
        WorkerError::Conf(e)
    }
}

impl From<RpcError> for WorkerError {
    fn from(e: RpcError) -> Self {
        WorkerError::Rpc(e)
    }
}

/// How a worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerExit {
    /// It was shut down.
    Stopped,
    /// It gave up: registration failed or every master was unresponsive (Spark exits 1).
    Failed(String),
}

impl WorkerExit {
    /// The process exit code: 0 when stopped, 1 when it gave up.
    pub fn code(&self) -> u8 {
        match self {
            WorkerExit::Stopped => 0,
            WorkerExit::Failed(_) => 1,
        }
    }
}

/// Where the endpoint records a fatal end for [`WorkerHandle::await_termination`].
#[derive(Debug, Default)]
pub(crate) struct ExitSlot {
    failure: Mutex<Option<String>>,
}

impl ExitSlot {
    /// Records `reason` unless a failure is already recorded (the first one explains).
    pub(crate) fn fail(&self, reason: &str) {
        let mut failure = self.failure.lock();
        if failure.is_none() {
            *failure = Some(reason.to_string());
        }
    }

    fn exit(&self) -> WorkerExit {
        match &*self.failure.lock() {
            Some(reason) => WorkerExit::Failed(reason.clone()),
            None => WorkerExit::Stopped,
        }
    }
}

/// A running worker: its env and endpoint. Cheap to clone; the worker runs until
/// [`shutdown`](Self::shutdown) or until it gives up.
#[derive(Debug, Clone)]
pub struct WorkerHandle {
    env: RpcEnv,
    worker: EndpointRef<WorkerProtocol>,
    id: WorkerId,
    address: RpcAddress,
    exit: Arc<ExitSlot>,
    ui: Option<Arc<UiServer>>,
}

/// Starts a worker: creates its work dir, binds its env (`ember-worker`) and registers its
/// `Worker` endpoint, which then registers with the masters in the background.
///
/// # Errors
///
/// An unusable configuration, a setting that does not parse, a work dir that cannot be
/// created, or an env that cannot bind.
pub fn start_worker(config: WorkerConfig) -> Result<WorkerHandle, WorkerError> {
    if config.masters.is_empty() {
        return Err(WorkerError::Config(
            "No master to register with".to_string(),
        ));
    }
    if config.cores == 0 {
        return Err(WorkerError::Config(
            "A worker needs at least one core".to_string(),
        ));
    }
    if config.memory_mib == 0 {
        return Err(WorkerError::Config(
            super::config::MEMORY_TOO_SMALL.to_string(),
        ));
    }
    let now = SystemTime::now();
    // One random draw per worker, so that workers started together do not retry together.
    let fuzz = RetrySchedule::fuzz_from(RandomState::new().hash_one((now, std::process::id())));
    let settings = WorkerSettings::from_conf(&config.conf, fuzz)?;
    let work_dir = create_work_dir(&config.work_dir)?;
    let env = RpcEnv::create(
        RpcEnvConfig::server("ember-worker", config.host.clone(), config.port)
            .with_conf(config.conf.clone()),
    )?;
    let Some(address) = env.address().cloned() else {
        env.shutdown();
        return Err(WorkerError::Config(
            "The worker's env has no address".to_string(),
        ));
    };
    // The UI binds before the worker registers, so the master is told its real port.
    let bound_ui = match BoundUi::bind(
        Daemon::Worker,
        &config.conf,
        &config.host,
        config.webui_port,
    ) {
        Ok(bound) => bound,
        Err(e) => {
            env.shutdown();
            return Err(e.into());
        }
    };
    let id = WorkerId(format!(
        "worker-{}-{}-{}",
        id_timestamp(now),
        address.host(),
        address.port()
    ));
    let exit = Arc::new(ExitSlot::default());
    let worker = Worker::new(
        WorkerIdentity {
            id: id.clone(),
            address: address.clone(),
            cores: config.cores,
            memory_mib: config.memory_mib,
            work_dir,
            web_ui_url: bound_ui.url(address.host()),
            masters: config.masters,
            launcher: config.launcher,
            security_env: env.security().child_env(),
        },
        settings,
        Arc::clone(&exit),
    );
    let worker = match env.setup_endpoint(WORKER_ENDPOINT_NAME, worker) {
        Ok(worker) => worker,
        Err(e) => {
            env.shutdown();
            return Err(e.into());
        }
    };
    let ui = match bound_ui.serve(&env, WORKER_ENDPOINT_NAME) {
        Ok(ui) => ui,
        Err(e) => {
            env.shutdown();
            env.await_termination();
            return Err(e.into());
        }
    };
    Ok(WorkerHandle {
        env,
        worker,
        id,
        address,
        exit,
        ui,
    })
}

/// Creates the work dir and returns its absolute path, so children's directories and log
/// paths do not depend on where the worker was started.
fn create_work_dir(dir: &std::path::Path) -> Result<PathBuf, WorkerError> {
    let failed = |e: std::io::Error| WorkerError::WorkDir {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    dir.canonicalize().map_err(failed)
}

impl WorkerHandle {
    /// The worker's id, `worker-<yyyyMMddHHmmss>-<host>-<port>`.
    pub fn id(&self) -> &WorkerId {
        &self.id
    }

    /// The worker env's address.
    pub fn address(&self) -> &RpcAddress {
        &self.address
    }

    /// The worker endpoint's URI, `ember://Worker@host:port`.
    pub fn url(&self) -> String {
        self.worker.address().to_string()
    }

    /// A ref to the worker endpoint.
    pub fn worker_ref(&self) -> EndpointRef<WorkerProtocol> {
        self.worker.clone()
    }

    /// The worker's env.
    pub fn env(&self) -> &RpcEnv {
        &self.env
    }

    /// The worker's state (asks `RequestWorkerState`; waits, so not from a handler).
    ///
    /// # Errors
    ///
    /// The worker has stopped, or did not answer within `ember.rpc.askTimeout`.
    pub fn state(&self) -> Result<WorkerState, RpcError> {
        self.worker
            .ask_sync(|reply| WorkerAsk::RequestWorkerState { reply })
    }

    /// Stops the worker: kills its executors and drivers (SIGTERM, then SIGKILL after the
    /// grace periods) and waits for them, then closes its env. Idempotent. Not from one of
    /// the worker env's own threads, since it waits for them.
    pub fn shutdown(&self) {
        if let Some(ui) = &self.ui {
            ui.stop();
        }
        self.env.shutdown();
        self.env.await_termination();
    }

    /// Where its status UI listens (`None` with `ember.ui.enabled=false`).
    pub fn ui_address(&self) -> Option<SocketAddr> {
        self.ui.as_ref().map(|ui| ui.address())
    }

    /// Blocks until the worker has stopped, and says how it ended.
    pub fn await_termination(&self) -> WorkerExit {
        self.env.await_termination();
        self.exit.exit()
    }
}
