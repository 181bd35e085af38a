//! Who may tell the app client what: what the master says about the application
//! (`ExecutorAdded`, `ExecutorUpdated`, `WorkerRemoved`, `ApplicationWaiting`, and above all
//! `ApplicationRemoved`, which ends it) comes only from the master it registered with, and
//! a master announcing itself (`RegisteredApplication`, `MasterChanged`) must be the sender
//! it names. Anything else is refused before any handler sees it: counted, logged once per
//! peer (`rpc_env::Refusals`), never acted on. `MasterInStandby` changes nothing and is
//! taken from anyone. As for the worker (`worker/senders.rs`), the sender is the address
//! rpc-env bound to the connection.

use std::sync::atomic::Ordering;

use rpc_env::RpcAddress;

use crate::messages::AppClientMessage;

use super::app_client::AppClient;

impl AppClient {
    /// Whether `sender` may send `msg`; a refusal is counted and logged. `None` is a
    /// message from this process.
    pub(super) fn accepts(&mut self, msg: &AppClientMessage, sender: Option<&RpcAddress>) -> bool {
        use AppClientMessage as A;
        let Some(sender) = sender else {
            return true;
        };
        let (allowed, what) = match msg {
            A::RegisteredApplication { master, .. } => (
                master.rpc_address() == Some(sender),
                "a RegisteredApplication",
            ),
            A::MasterChanged { master, .. } => {
                (master.rpc_address() == Some(sender), "a MasterChanged")
            }
            A::ExecutorAdded { .. } => (self.is_registered_master(sender), "an ExecutorAdded"),
            A::ExecutorUpdated { .. } => (self.is_registered_master(sender), "an ExecutorUpdated"),
            A::ApplicationRemoved { .. } => {
                (self.is_registered_master(sender), "an ApplicationRemoved")
            }
            A::WorkerRemoved { .. } => (self.is_registered_master(sender), "a WorkerRemoved"),
            A::ApplicationWaiting { .. } => {
                (self.is_registered_master(sender), "an ApplicationWaiting")
            }
            A::MasterInStandby => (true, ""),
        };
        if !allowed {
            self.refused_count.fetch_add(1, Ordering::Relaxed);
            self.refused.refuse(
                "The app client",
                Some(sender),
                format_args!("{what} not from its master"),
            );
        }
        allowed
    }

    /// Whether `sender` is the master the application registered with (or followed).
    fn is_registered_master(&self, sender: &RpcAddress) -> bool {
        self.master
            .as_ref()
            .is_some_and(|m| m.rpc_address() == Some(sender))
    }
}
