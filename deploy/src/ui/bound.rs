//! A daemon's UI socket from before its endpoint exists to the UI serving it: bound first,
//! so the URL the daemon advertises (to its master, its workers, its drivers) has the port it
//! really got, and served once the endpoint it reads is registered.

use std::net::TcpListener;
use std::sync::Arc;

use rpc_env::{RpcConf, RpcEnv, RpcError};

use super::server::{bind, UiServer};
use super::UiSettings;

/// Which daemon a UI belongs to: what its pages read, and what its errors say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Daemon {
    /// The master (`/`, `/json`, `/app`, kills, metrics).
    Master,
    /// A worker (`/`, `/json`, log pages, metrics).
    Worker,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::Master => "master",
            Daemon::Worker => "worker",
        }
    }
}

/// The UI socket of a daemon that is starting: bound, not served yet (or nothing, with
/// `ember.ui.enabled=false`).
#[derive(Debug)]
pub(crate) struct BoundUi {
    daemon: Daemon,
    settings: UiSettings,
    listener: Option<TcpListener>,
    port: u16,
}

impl BoundUi {
    /// Binds `host:port` (the next free port if it is taken; any free port for 0) unless
    /// the UI is off.
    ///
    /// # Errors
    ///
    /// A UI setting that does not parse, or no port could be bound.
    pub(crate) fn bind(
        daemon: Daemon,
        conf: &RpcConf,
        host: &str,
        port: u16,
    ) -> Result<BoundUi, RpcError> {
        let settings = UiSettings::from_conf(conf)?;
        let listener = if settings.enabled {
            let retries = conf.port_max_retries()?;
            Some(bind(host, port, retries).map_err(|e| start_error(daemon, &e))?)
        } else {
            None
        };
        let port = listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map_or(port, |a| a.port());
        Ok(BoundUi {
            daemon,
            settings,
            listener,
            port,
        })
    }

    /// The URL to advertise for `host`: `http://host:port`, the port it really got.
    pub(crate) fn url(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }

    /// Serves the UI, its pages reading the endpoint `name` of `env`; `None` if it is off.
    ///
    /// # Errors
    ///
    /// The UI's threads could not be started.
    pub(crate) fn serve(self, env: &RpcEnv, name: &str) -> Result<Option<Arc<UiServer>>, RpcError> {
        let Some(listener) = self.listener else {
            return Ok(None);
        };
        let started = match self.daemon {
            Daemon::Master => super::live::start_master_ui(listener, env, name, &self.settings),
            Daemon::Worker => super::live::start_worker_ui(listener, env, name, &self.settings),
        };
        started
            .map(|server| Some(Arc::new(server)))
            .map_err(|e| start_error(self.daemon, &e))
    }
}

/// The error a daemon's start fails with when its UI cannot start.
fn start_error(daemon: Daemon, e: &std::io::Error) -> RpcError {
    RpcError::Io {
        context: format!("Could not start the {}'s status UI", daemon.name()),
        reason: e.to_string(),
    }
}
