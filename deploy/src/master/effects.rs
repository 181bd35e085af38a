//! What the master's handlers want done: messages to send, the recovery timer to start or
//! stop. A handler changes the registries and returns its [`Effects`]; the endpoint
//! performs them once the handler has returned (`Master::perform` in `endpoint.rs`, the
//! one place the master sends), and the handler tests assert on them.
//!
//! Storing for a successor is not an effect: it happens inside the handler, so what is
//! acknowledged is stored first, and the recovery tests read the store itself.

use rpc_env::EndpointRef;

use crate::messages::{AppClientMessage, AppClientProtocol, WorkerMessage, WorkerProtocol};

/// One thing a handler wants done after it returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Send `msg` to a worker.
    ToWorker {
        /// The worker's endpoint.
        to: EndpointRef<WorkerProtocol>,
        /// What to send.
        msg: WorkerMessage,
    },
    /// Send `msg` to an application's driver (its app client).
    ToApp {
        /// The app client's endpoint.
        to: EndpointRef<AppClientProtocol>,
        /// What to send.
        msg: AppClientMessage,
    },
    /// Start the one-shot timer that sends `CompleteRecovery` once
    /// `ember.deploy.recoveryTimeout` has passed; if it cannot start, recovery completes
    /// at once.
    ArmRecoveryTimer,
    /// Stop that timer: recovery is complete.
    CancelRecoveryTimer,
}

/// What one handler wants done, in order. Dropping it unperformed would lose messages,
/// hence `must_use`.
#[must_use = "a handler's effects must be performed (or asserted on)"]
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Effects(Vec<Effect>);

impl Effects {
    /// Nothing to do.
    pub(crate) fn none() -> Effects {
        Effects::default()
    }

    /// Sends `msg` to the worker at `to`.
    pub(crate) fn tell_worker(&mut self, to: &EndpointRef<WorkerProtocol>, msg: WorkerMessage) {
        self.0.push(Effect::ToWorker {
            to: to.clone(),
            msg,
        });
    }

    /// Sends `msg` to the app client at `to`.
    pub(crate) fn tell_app(&mut self, to: &EndpointRef<AppClientProtocol>, msg: AppClientMessage) {
        self.0.push(Effect::ToApp {
            to: to.clone(),
            msg,
        });
    }

    /// Adds one effect.
    pub(crate) fn push(&mut self, effect: Effect) {
        self.0.push(effect);
    }

    /// Adds what a helper the handler called wants done, after what is there already.
    pub(crate) fn append(&mut self, later: Effects) {
        self.0.extend(later.0);
    }

    /// The effects in order.
    #[cfg(test)]
    pub(crate) fn as_slice(&self) -> &[Effect] {
        &self.0
    }

    /// What is sent to the worker at `to`, in order.
    #[cfg(test)]
    pub(crate) fn to_worker(&self, to: &EndpointRef<WorkerProtocol>) -> Vec<&WorkerMessage> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::ToWorker { to: t, msg } if t == to => Some(msg),
                _ => None,
            })
            .collect()
    }

    /// What is sent to the app client at `to`, in order.
    #[cfg(test)]
    pub(crate) fn to_app(&self, to: &EndpointRef<AppClientProtocol>) -> Vec<&AppClientMessage> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::ToApp { to: t, msg } if t == to => Some(msg),
                _ => None,
            })
            .collect()
    }
}

impl IntoIterator for Effects {
    type Item = Effect;
    type IntoIter = std::vec::IntoIter<Effect>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
