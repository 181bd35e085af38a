//! Who may tell the worker what: the orders that run or stop processes here
//! (`LaunchExecutor`, `KillExecutor`, `LaunchDriver`, `KillDriver`, `ApplicationFinished`)
//! come only from the master the worker is registered with, and a master announcing itself
//! (`RegisteredWorker`, `MasterChanged`) must be the sender it names. Anything else is
//! refused before any handler sees it: counted, logged once per peer
//! (`rpc_env::Refusals`), never acted on.
//!
//! The sender is trustworthy because rpc-env ties a connection to the one sender it named
//! first; the registered master's address is the one its `RegisteredWorker` (or
//! `MasterChanged`) came from, so the two compare.
//!
//! Not checked: `RegisterWorkerFailed`, `MasterInStandby` and `ReconnectWorker`, which only
//! steer the registration (a master advertises an address that may differ from the one the
//! worker was given, so a refusal could not be told from a misconfiguration). As in Spark,
//! a peer that holds the cluster's secret may announce itself as the new leader; what keeps
//! others out is authentication.

use rpc_env::RpcAddress;

use crate::messages::WorkerMessage;

use super::Worker;

impl Worker {
    /// Whether `sender` may send `msg`; a refusal is counted and logged. `None` is a
    /// message from this process.
    pub(super) fn accepts(&mut self, msg: &WorkerMessage, sender: Option<&RpcAddress>) -> bool {
        use WorkerMessage as W;
        let Some(sender) = sender else {
            return true;
        };
        let (allowed, what) = match msg {
            W::RegisteredWorker { master, .. } => {
                (master.rpc_address() == Some(sender), "a RegisteredWorker")
            }
            W::MasterChanged { master, .. } => {
                (master.rpc_address() == Some(sender), "a MasterChanged")
            }
            W::LaunchExecutor { .. } => (self.is_registered_master(sender), "a LaunchExecutor"),
            W::KillExecutor { .. } => (self.is_registered_master(sender), "a KillExecutor"),
            W::LaunchDriver { .. } => (self.is_registered_master(sender), "a LaunchDriver"),
            W::KillDriver { .. } => (self.is_registered_master(sender), "a KillDriver"),
            W::ApplicationFinished { .. } => {
                (self.is_registered_master(sender), "an ApplicationFinished")
            }
            W::RegisterWorkerFailed { .. } | W::MasterInStandby | W::ReconnectWorker { .. } => {
                (true, "")
            }
        };
        if !allowed {
            self.refused.refuse(
                "The worker",
                Some(sender),
                format_args!("{what} not from its master"),
            );
        }
        allowed
    }

    /// Whether `sender` is the master this worker is registered with.
    fn is_registered_master(&self, sender: &RpcAddress) -> bool {
        self.registration.master() == Some(sender)
    }
}
