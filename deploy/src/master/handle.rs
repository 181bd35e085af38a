//! Starting a master: [`start_master`] and the [`MasterHandle`] it returns.

use std::net::SocketAddr;
use std::sync::Arc;

use rpc_env::{
    ConfError, EndpointRef, RpcAddress, RpcConf, RpcEnv, RpcEnvConfig, RpcError, Secret,
};

use parking_lot::Mutex;

use crate::messages::{
    MasterAsk, MasterProtocol, MasterState, MASTER_ENDPOINT_NAME, PROGRAM_STORE_ENDPOINT_NAME,
    PROGRAM_STORE_FILE_BASE,
};
use crate::ui::{BoundUi, Daemon, UiServer};

use super::config::{keys, MasterConfig, MasterSettings, RecoveryMode};
use super::endpoint::Master;
use super::leader::{FileLockLeader, LeaderElection, NeverLeader, SingleNodeLeader};
use super::persistence::{BlackHolePersistence, FileSystemPersistence, PersistenceEngine};
use super::program_store::{ProgramStore, ProgramStoreEndpoint, STORE_IN_RECOVERY_DIR};

/// The name of the master's RPC environment (Spark's `sparkMaster`).
const MASTER_ENV_NAME: &str = "ember-master";

/// Starts a master: an RPC environment on `config.host:config.port` with the `Master`
/// endpoint. Returns when the endpoint is registered; it handles messages from then on.
///
/// Before its first message the master polls its leader election: in recovery mode NONE
/// it leads at once (ALIVE); in FILESYSTEM mode it leads if it takes the recovery
/// directory's lock, and then recovers what is stored there (RECOVERING, then ALIVE),
/// else it stands by (STANDBY) and polls every `ember.deploy.leaderPollInterval` until
/// the leader goes. With `config.standby` it stands by for ever.
///
/// Its status UI listens on `config.host:config.webui_port` (the next free port if that
/// one is taken; any free port for 0) unless `ember.ui.enabled` is `false`.
///
/// ```no_run
/// use ember_deploy::{start_master, MasterConfig};
///
/// let master = start_master(MasterConfig::local())?;
/// println!("Master listening on {}", master.url());
/// master.shutdown();
/// # Ok::<(), rpc_env::RpcError>(())
/// ```
///
/// # Errors
///
/// A setting that does not parse, or a recovery directory that cannot be created or is not
/// safe to trust (owned by another user, writable by group or others) ([`RpcError::Conf`],
/// naming the key); a port that cannot be bound.
pub fn start_master(config: MasterConfig) -> Result<MasterHandle, RpcError> {
    let settings = config.settings()?;
    let persistence = persistence_engine(&settings.recovery_mode, &config.conf)?;
    let env_config = RpcEnvConfig::server(MASTER_ENV_NAME, config.host.clone(), config.port)
        .with_conf(config.conf.clone());
    let env = RpcEnv::create(env_config)?;
    let Some(address) = env.address().cloned() else {
        env.shutdown();
        return Err(RpcError::NoListenAddress);
    };
    let me = env.local_ref::<MasterProtocol>(MASTER_ENDPOINT_NAME);
    // The UI binds before the master exists, so workers and drivers are told its real port.
    let bound_ui = match BoundUi::bind(
        Daemon::Master,
        &config.conf,
        &config.host,
        config.webui_port,
    ) {
        Ok(bound) => bound,
        Err(e) => {
            env.shutdown();
            return Err(e);
        }
    };
    let web_ui_url = bound_ui.url(address.host());
    let election = leader_election(&settings.recovery_mode, config.standby, &address);
    let store = match serve_program_store(&env, &settings) {
        Ok(store) => store,
        Err(e) => {
            env.shutdown();
            return Err(e);
        }
    };
    let master = Master::new(
        settings,
        me.clone(),
        &address,
        web_ui_url,
        persistence,
        election,
    )
    .with_program_store(store);
    if let Err(e) = env.setup_endpoint(MASTER_ENDPOINT_NAME, master) {
        env.shutdown();
        return Err(e);
    }
    let ui = match bound_ui.serve(&env, MASTER_ENDPOINT_NAME) {
        Ok(ui) => ui,
        Err(e) => {
            env.shutdown();
            return Err(e);
        }
    };
    Ok(MasterHandle {
        env,
        master: me,
        address,
        ui,
    })
}

/// Opens the program store where the settings say, answers uploads to it with the
/// `ProgramStore` endpoint, and serves what it holds at `/programs/<sha256>`.
fn serve_program_store(
    env: &RpcEnv,
    settings: &MasterSettings,
) -> Result<Arc<Mutex<ProgramStore>>, RpcError> {
    let max = settings.program_store_max_bytes;
    let opened = match (&settings.program_store_dir, &settings.recovery_mode) {
        (Some(dir), _) => ProgramStore::open(dir, max, false),
        (None, RecoveryMode::FileSystem { directory }) => {
            ProgramStore::open(&directory.join(STORE_IN_RECOVERY_DIR), max, false)
        }
        (None, RecoveryMode::None) => ProgramStore::open_temporary(max),
    };
    let store = opened.map_err(|reason| {
        let dir = settings
            .program_store_dir
            .as_ref()
            .map_or_else(|| "(default)".to_string(), |d| d.display().to_string());
        RpcError::Conf(ConfError::new(keys::PROGRAM_STORE_DIR, dir, reason))
    })?;
    let programs_dir = store.programs_dir();
    let store = Arc::new(Mutex::new(store));
    env.setup_concurrent_endpoint(
        PROGRAM_STORE_ENDPOINT_NAME,
        ProgramStoreEndpoint::new(Arc::clone(&store)),
    )?;
    env.file_server()?
        .add_directory(PROGRAM_STORE_FILE_BASE, &programs_dir)?;
    Ok(store)
}

/// The store of `mode`, its directory created if need be and checked; its records carry a
/// MAC when `conf` names a secret.
fn persistence_engine(
    mode: &RecoveryMode,
    conf: &RpcConf,
) -> Result<Box<dyn PersistenceEngine>, ConfError> {
    match mode {
        RecoveryMode::None => Ok(Box::new(BlackHolePersistence)),
        RecoveryMode::FileSystem { directory } => {
            let secret = Secret::from_conf(conf)?;
            FileSystemPersistence::open(directory, secret.as_ref())
                .map(|engine| Box::new(engine) as Box<dyn PersistenceEngine>)
                .map_err(|reason| {
                    ConfError::new(
                        keys::RECOVERY_DIRECTORY,
                        directory.display().to_string(),
                        reason,
                    )
                })
        }
    }
}

/// The leader election of `mode`; a master started as a standby never leads.
fn leader_election(
    mode: &RecoveryMode,
    standby: bool,
    address: &RpcAddress,
) -> Box<dyn LeaderElection> {
    match (standby, mode) {
        (true, _) => Box::new(NeverLeader),
        (false, RecoveryMode::None) => Box::new(SingleNodeLeader),
        (false, RecoveryMode::FileSystem { directory }) => {
            Box::new(FileLockLeader::new(directory, address.to_ember_url()))
        }
    }
}

/// A running master: its address, its endpoint, and how to stop it.
///
/// Dropping the handle does not stop the master; [`shutdown`](Self::shutdown) does.
#[derive(Debug, Clone)]
pub struct MasterHandle {
    env: RpcEnv,
    master: EndpointRef<MasterProtocol>,
    address: RpcAddress,
    ui: Option<Arc<UiServer>>,
}

impl MasterHandle {
    /// The address the master listens on.
    pub fn address(&self) -> RpcAddress {
        self.address.clone()
    }

    /// The master URL, `ember://host:port`, as workers and drivers are given it.
    pub fn url(&self) -> String {
        self.address.to_ember_url()
    }

    /// Where its status UI listens (`None` with `ember.ui.enabled=false`).
    pub fn ui_address(&self) -> Option<SocketAddr> {
        self.ui.as_ref().map(|ui| ui.address())
    }

    /// A ref to the `Master` endpoint.
    pub fn master_ref(&self) -> EndpointRef<MasterProtocol> {
        self.master.clone()
    }

    /// The master's RPC environment.
    pub fn env(&self) -> &RpcEnv {
        &self.env
    }

    /// The master's state (`RequestMasterState`), waiting for the answer. Never call it
    /// from inside an endpoint's handler.
    ///
    /// # Errors
    ///
    /// The master is stopped, or did not answer within `ember.rpc.askTimeout`.
    pub fn state(&self) -> Result<MasterState, RpcError> {
        self.master
            .ask_sync(|reply| MasterAsk::RequestMasterState { reply })
    }

    /// Stops the master, its status UI and its environment. Idempotent.
    pub fn shutdown(&self) {
        if let Some(ui) = &self.ui {
            ui.stop();
        }
        self.env.shutdown();
    }

    /// Blocks until the master has been shut down.
    pub fn await_termination(&self) {
        self.env.await_termination();
    }
}
