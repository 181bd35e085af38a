//! The daemons' status web UI: the master's on `ember.master.ui.port` (8080), a worker's on
//! `ember.worker.ui.port` (8081). HTML pages, `/json` in Spark's field names, worker log
//! pages and `/metrics/prometheus`.
//!
//! Layout, from the data out:
//!
//! - `view`: the model, a daemon's state as plain data ([`view::MasterView`],
//!   [`view::WorkerView`]), built by its endpoint in one handler call (a control ask, so
//!   no peer can ask for it);
//! - `master_json`, `worker_json`, `master_pages`, `worker_pages`, `log_page`, `metrics`:
//!   pure renderings of the model (JSON, HTML through maud, which escapes every value,
//!   Prometheus text); `layout` and `redact` are what they share;
//! - `master_routes`, `worker_routes`: which rendering answers which request, over a
//!   source trait that a test can fake;
//! - `live`: the sources backed by a running master or worker;
//! - `http` and `server`: requests and responses as plain data, and a small bounded HTTP
//!   server (`httparse` parses; four workers, deadlines, size caps) that every page's
//!   security headers go through.
//!
//! The UI binds the daemon's own host (loopback unless the operator says otherwise) and is
//! not authenticated, as Spark's is not; kills are POST-only, same-origin only, and off by
//! default when `ember.authenticate` is on.

mod bound;
mod http;
mod layout;
mod live;
mod log_page;
mod master_json;
mod master_pages;
mod master_routes;
mod metrics;
mod redact;
mod server;
pub mod view;
mod worker_json;
mod worker_pages;
mod worker_routes;

#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod tests;

use std::time::Duration;

use rpc_env::{ConfError, RpcConf, RpcTimeout};

pub(crate) use bound::{BoundUi, Daemon};
pub(crate) use redact::command_line as redacted_command_line;
pub(crate) use server::UiServer;

/// The UI's settings.
pub mod keys {
    /// Whether the daemon serves its status UI at all. Default `true`.
    pub const ENABLED: &str = "ember.ui.enabled";
    /// Whether the master's pages may kill applications and drivers (Spark's
    /// `spark.ui.killEnabled`). Default `true`, but `false` when `ember.authenticate` is on:
    /// the UI itself is not authenticated, so with a secret in force a kill button would
    /// be the one unauthenticated way to act on the cluster. Setting it explicitly wins.
    pub const KILL_ENABLED: &str = "ember.ui.killEnabled";
    /// How long a page waits for its daemon's state before answering 503 (a busy or
    /// recovering master never hangs a page). Default `5s`.
    pub const TIMEOUT: &str = "ember.ui.timeout";
    /// Every key above.
    pub const ALL: &[&str] = &[ENABLED, KILL_ENABLED, TIMEOUT];

    #[cfg(test)]
    mod tests {
        #[test]
        fn all_lists_every_key_declared_here() {
            let declared = ember_test_support::declared_keys(include_str!("mod.rs"));
            assert_eq!(super::ALL, declared);
        }
    }
}

/// The UI's settings, read from a daemon's conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UiSettings {
    /// [`keys::ENABLED`].
    pub(crate) enabled: bool,
    /// [`keys::KILL_ENABLED`], after the authentication rule.
    pub(crate) kill_enabled: bool,
    /// [`keys::TIMEOUT`].
    pub(crate) timeout: RpcTimeout,
}

impl UiSettings {
    /// The settings in `conf`.
    ///
    /// # Errors
    ///
    /// A value that is not a boolean, naming its key.
    pub(crate) fn from_conf(conf: &RpcConf) -> Result<UiSettings, ConfError> {
        let authenticated = conf.get_bool(rpc_env::keys::AUTHENTICATE, false)?;
        Ok(UiSettings {
            enabled: conf.get_bool(keys::ENABLED, true)?,
            kill_enabled: conf.get_bool(keys::KILL_ENABLED, !authenticated)?,
            timeout: RpcTimeout::from_conf(conf, &[keys::TIMEOUT], Duration::from_secs(5))?,
        })
    }
}
