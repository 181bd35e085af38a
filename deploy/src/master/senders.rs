//! Who may tell the master what: a worker's heartbeats, state reports, and its executors'
//! and drivers' state changes come only from the connection that worker registered from;
//! an application's unregistration, kill requests and recovery acknowledgement only from
//! its driver's. Anything else is refused before any handler sees it: counted, logged once
//! per peer (`rpc_env::Refusals`), never acted on.
//!
//! The sender is trustworthy because rpc-env ties a connection to the one sender it named
//! first (`Forged sender` otherwise). The address a worker or application is recorded under
//! is the sender of its registration, so the two compare.

use std::fmt;

use rpc_env::RpcAddress;

use crate::ids::{AppId, DriverId, WorkerId};
use crate::messages::{MasterAsk, MasterMessage};

use super::endpoint::Master;

/// Whose message it is, as far as the master can tell from its content.
#[derive(Debug)]
enum Speaker<'a> {
    /// A worker: the one named, or the one running the executor or driver named.
    Worker(&'a WorkerId),
    /// An application's driver.
    App(&'a AppId),
    /// Anyone: registrations, the tools' requests, and messages about workers,
    /// applications, executors or drivers the master does not know (their handlers
    /// ignore them).
    Anyone,
}

/// The message a refusal names, with what the peer chose quoted (`{:?}`), so that a log
/// line cannot be forged.
struct Named<'a>(&'static str, &'a dyn fmt::Debug);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} for {:?}", self.0, self.1)
    }
}

impl Master {
    /// How many messages were refused because of who sent them.
    pub(crate) fn refused_messages(&self) -> u64 {
        self.refused.count()
    }

    /// Whether `sender` may send `msg`; a refusal is counted and logged.
    ///
    /// `None` is a message from this process (a local send of a client-mode env, which
    /// the master's never is; and the tests that drive handlers directly): from the
    /// network, the sender is always known.
    pub(super) fn accepts(&mut self, msg: &MasterMessage, sender: Option<&RpcAddress>) -> bool {
        use MasterMessage as M;
        let (speaker, what): (Speaker<'_>, Named<'_>) = match msg {
            M::Heartbeat { worker_id, .. } => {
                (Speaker::Worker(worker_id), Named("a Heartbeat", worker_id))
            }
            M::WorkerLatestState { id, .. } => {
                (Speaker::Worker(id), Named("a WorkerLatestState", id))
            }
            M::WorkerSchedulerStateResponse { id, .. } => (
                Speaker::Worker(id),
                Named("a WorkerSchedulerStateResponse", id),
            ),
            M::DriverStateChanged { driver_id, .. } => (
                self.worker_of_driver(driver_id),
                Named("a DriverStateChanged", driver_id),
            ),
            M::UnregisterApplication { app_id } => (
                Speaker::App(app_id),
                Named("an UnregisterApplication", app_id),
            ),
            M::KillExecutors { app_id, .. } => {
                (Speaker::App(app_id), Named("a KillExecutors", app_id))
            }
            M::ExecutorRegistered { app_id, .. } => {
                (Speaker::App(app_id), Named("an ExecutorRegistered", app_id))
            }
            M::MasterChangeAcknowledged { app_id } => (
                Speaker::App(app_id),
                Named("a MasterChangeAcknowledged", app_id),
            ),
            M::RegisterWorker { .. } | M::RegisterApplication { .. } => return true,
        };
        let expected = self.address_of(speaker);
        self.check(expected, sender, what)
    }

    /// Whether `sender` may ask `ask`; a refusal is counted and logged.
    pub(super) fn accepts_ask(&mut self, ask: &MasterAsk, sender: Option<&RpcAddress>) -> bool {
        match ask {
            MasterAsk::ExecutorStateChanged {
                app_id, exec_id, ..
            } => self.accepts_executor_state(app_id, *exec_id, sender),
            MasterAsk::RequestMasterState { .. }
            | MasterAsk::RequestKillApplication { .. }
            | MasterAsk::RequestSubmitDriver { .. }
            | MasterAsk::RequestKillDriver { .. }
            | MasterAsk::RequestDriverStatus { .. } => true,
        }
    }

    /// Whether `sender` may report the state of executor `app_id/exec_id`: only the
    /// worker it was placed on may.
    pub(super) fn accepts_executor_state(
        &mut self,
        app_id: &AppId,
        exec_id: u32,
        sender: Option<&RpcAddress>,
    ) -> bool {
        let executor = format!("{app_id}/{exec_id}");
        let expected = self.address_of(self.worker_of_executor(app_id, exec_id));
        self.check(
            expected,
            sender,
            Named("an ExecutorStateChanged", &executor),
        )
    }

    /// The address `speaker` registered from, if the master knows it.
    fn address_of(&self, speaker: Speaker<'_>) -> Option<RpcAddress> {
        match speaker {
            Speaker::Worker(id) => self.workers.get(id).map(|w| w.address().clone()),
            Speaker::App(id) => self.apps.get(id).map(|a| a.address().clone()),
            Speaker::Anyone => None,
        }
    }

    /// Refuses `what` unless it comes from `expected` (or from this process, or is not
    /// tied to any peer).
    fn check(
        &mut self,
        expected: Option<RpcAddress>,
        sender: Option<&RpcAddress>,
        what: Named<'_>,
    ) -> bool {
        let Some(sender) = sender else {
            return true;
        };
        match expected {
            Some(address) if &address != sender => {
                self.refused
                    .refuse("The master", Some(sender), format_args!("{what}"));
                false
            }
            _ => true,
        }
    }

    /// The worker a driver was placed on, which alone reports its state.
    fn worker_of_driver(&self, driver_id: &DriverId) -> Speaker<'_> {
        match self.drivers.get(driver_id).and_then(|d| d.worker()) {
            Some(worker) => Speaker::Worker(worker),
            None => Speaker::Anyone,
        }
    }

    /// The worker an executor was placed on, which alone reports its state.
    fn worker_of_executor(&self, app_id: &AppId, exec_id: u32) -> Speaker<'_> {
        match self.apps.get(app_id).and_then(|a| a.executor(exec_id)) {
            Some(executor) => Speaker::Worker(&executor.worker),
            None => Speaker::Anyone,
        }
    }
}
