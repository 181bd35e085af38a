//! The UI's sources backed by a running daemon: its state by a control ask (which no
//! peer can send), its kills by the same asks `ember-submit --kill` sends, its counters
//! from its env.

use std::net::TcpListener;

use rpc_env::{ControlRef, EndpointRef, NetworkStats, RpcEnv, RpcTimeout};

use crate::ids::{AppId, DriverId};
use crate::messages::{MasterAsk, MasterControl, MasterProtocol, WorkerControl, WorkerProtocol};

use super::master_routes::{MasterSource, MasterUi};
use super::server::UiServer;
use super::view::{MasterView, WorkerView};
use super::worker_routes::{WorkerSource, WorkerUi};
use super::UiSettings;

/// A running master, as its pages see it.
struct LiveMaster {
    control: ControlRef<MasterProtocol>,
    master: EndpointRef<MasterProtocol>,
    env: RpcEnv,
    timeout: RpcTimeout,
}

impl MasterSource for LiveMaster {
    fn view(&self) -> Result<MasterView, String> {
        self.control
            .ask_with_rpc_timeout(|reply| MasterControl::View { reply }, &self.timeout)
            .wait()
            .map_err(|e| e.to_string())
    }

    fn kill_app(&self, id: &str) -> Result<bool, String> {
        let app_id = AppId(id.to_string());
        self.master
            .ask_with_rpc_timeout(
                |reply| MasterAsk::RequestKillApplication { app_id, reply },
                &self.timeout,
            )
            .wait()
            .map_err(|e| e.to_string())
    }

    fn kill_driver(&self, id: &str) -> Result<String, String> {
        let driver_id = DriverId(id.to_string());
        self.master
            .ask_with_rpc_timeout(
                |reply| MasterAsk::RequestKillDriver { driver_id, reply },
                &self.timeout,
            )
            .wait()
            .map(|answer| answer.message)
            .map_err(|e| e.to_string())
    }

    fn network_stats(&self) -> NetworkStats {
        self.env.network_stats()
    }
}

/// Serves the master's UI on `listener`, its data from the endpoint `name` of `env`.
///
/// # Errors
///
/// The UI thread could not be started.
pub(crate) fn start_master_ui(
    listener: TcpListener,
    env: &RpcEnv,
    name: &str,
    settings: &UiSettings,
) -> std::io::Result<UiServer> {
    let ui = MasterUi {
        source: LiveMaster {
            control: env.control_ref(name),
            master: env.local_ref(name),
            env: env.clone(),
            timeout: settings.timeout.clone(),
        },
        kill_enabled: settings.kill_enabled,
    };
    UiServer::start("ember-master-ui", listener, Box::new(move |r| ui.route(r)))
}

/// A running worker, as its pages see it.
struct LiveWorker {
    control: ControlRef<WorkerProtocol>,
    env: RpcEnv,
    timeout: RpcTimeout,
}

impl WorkerSource for LiveWorker {
    fn view(&self) -> Result<WorkerView, String> {
        self.control
            .ask_with_rpc_timeout(|reply| WorkerControl::View { reply }, &self.timeout)
            .wait()
            .map_err(|e| e.to_string())
    }

    fn network_stats(&self) -> NetworkStats {
        self.env.network_stats()
    }
}

/// Serves a worker's UI on `listener`, its data from the endpoint `name` of `env`.
///
/// # Errors
///
/// The UI thread could not be started.
pub(crate) fn start_worker_ui(
    listener: TcpListener,
    env: &RpcEnv,
    name: &str,
    settings: &UiSettings,
) -> std::io::Result<UiServer> {
    let ui = WorkerUi {
        source: LiveWorker {
            control: env.control_ref(name),
            env: env.clone(),
            timeout: settings.timeout.clone(),
        },
    };
    UiServer::start("ember-worker-ui", listener, Box::new(move |r| ui.route(r)))
}
