//! The `WorkerWatcher` endpoint: an executor started by a worker exits when that worker's
//! connection drops, so no executor outlives its worker (Spark's fate sharing).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use rpc_env::{
    EndpointAddress, EndpointContext, NoMessage, Protocol, RpcAddress, RpcEndpoint, RpcError,
};

/// The worker's endpoint as the watcher sees it: it only needs the connection.
pub struct WatchedProtocol;

impl Protocol for WatchedProtocol {
    type Message = NoMessage;
    type Ask = NoMessage;
    type Control = NoMessage;
}

/// Exit code of an executor whose worker went away (Spark exits with -1).
pub const EXIT_WORKER_LOST: i32 = 255;

/// Watches the connection to the worker that launched this executor.
pub struct WorkerWatcher {
    worker_url: String,
    worker_address: Option<RpcAddress>,
    exit_code: Arc<AtomicI32>,
}

impl WorkerWatcher {
    /// A watcher of `worker_url` (`ember://Worker@host:port`); the process exits with
    /// [`EXIT_WORKER_LOST`] through `exit_code` when the worker goes.
    pub fn new(worker_url: &str, exit_code: Arc<AtomicI32>) -> Result<WorkerWatcher, String> {
        let address = EndpointAddress::parse(worker_url).map_err(|e| e.to_string())?;
        Ok(WorkerWatcher {
            worker_url: worker_url.to_string(),
            worker_address: address.address().cloned(),
            exit_code,
        })
    }

    fn is_worker(&self, remote: &RpcAddress) -> bool {
        self.worker_address.as_ref() == Some(remote)
    }

    fn worker_lost(&self, ctx: &EndpointContext<'_, WatchedProtocol>) {
        log::error!(
            "Lost connection to worker rpc endpoint {}. Exiting.",
            self.worker_url
        );
        self.exit_code.store(EXIT_WORKER_LOST, Ordering::SeqCst);
        ctx.env().shutdown();
    }
}

impl RpcEndpoint for WorkerWatcher {
    type Protocol = WatchedProtocol;

    fn on_start(&mut self, ctx: &EndpointContext<'_, WatchedProtocol>) -> rpc_env::HandlerResult {
        // Looking the worker up opens the connection whose loss we watch for.
        match ctx
            .env()
            .setup_endpoint_ref_by_uri::<WatchedProtocol>(&self.worker_url)
        {
            Ok(_) => log::info!("Connecting to worker {}", self.worker_url),
            Err(e @ RpcError::ConnectFailed { .. }) | Err(e @ RpcError::LookupFailed { .. }) => {
                log::error!("Cannot reach worker {}: {e}", self.worker_url);
                self.worker_lost(ctx);
            }
            Err(e) => log::warn!("Looking up worker {} failed: {e}", self.worker_url),
        }
        Ok(())
    }

    fn on_disconnected(&mut self, ctx: &EndpointContext<'_, WatchedProtocol>, remote: &RpcAddress) {
        if self.is_worker(remote) {
            self.worker_lost(ctx);
        } else {
            log::debug!("Ignoring disconnection from {remote}, not the worker");
        }
    }

    fn on_network_error(
        &mut self,
        ctx: &EndpointContext<'_, WatchedProtocol>,
        error: &RpcError,
        remote: &RpcAddress,
    ) {
        if self.is_worker(remote) {
            log::error!("Network error talking to worker {remote}: {error}");
            self.worker_lost(ctx);
        }
    }
}
