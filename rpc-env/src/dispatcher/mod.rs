//! The dispatcher: endpoint name -> inbox, and the loops that run them.

use crate::fast_hash::FastMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::endpoint::{ConcurrentRpcEndpoint, NetworkEvent, Protocol, RpcEndpoint, Threading};
use crate::endpoint_ref::EndpointRef;
use crate::env::RpcEnv;
use crate::error::RpcError;
use crate::inbox::{Inbox, InboxEntry};
use crate::message_loop::MessageLoop;

struct Registered {
    endpoints: FastMap<Arc<str>, Arc<dyn InboxEntry>>,
    stopped: bool,
}

impl Registered {
    /// Whether an endpoint may be registered under `name` now.
    fn check_free(&self, name: &str) -> Result<(), RpcError> {
        if self.stopped {
            return Err(RpcError::RegisterAfterStop);
        }
        if self.endpoints.contains_key(name) {
            return Err(RpcError::DuplicateEndpoint {
                name: name.to_string(),
            });
        }
        Ok(())
    }
}

/// Routes messages to endpoints by name; owns the shared loop and the dedicated ones.
pub(crate) struct Dispatcher {
    registered: RwLock<Registered>,
    /// Bumped on every registration change, so IO threads can cache lookups safely.
    generation: AtomicU64,
    shared_threads: usize,
    shared_loop: Mutex<Option<Arc<MessageLoop>>>,
    /// Every loop ever started, to join at termination.
    loops: Mutex<Vec<Arc<MessageLoop>>>,
}

impl Dispatcher {
    pub(crate) fn new(shared_threads: usize) -> Dispatcher {
        Dispatcher {
            registered: RwLock::new(Registered {
                endpoints: FastMap::default(),
                stopped: false,
            }),
            generation: AtomicU64::new(0),
            shared_threads,
            shared_loop: Mutex::new(None),
            loops: Mutex::new(Vec::new()),
        }
    }

    /// The registration generation; a cached lookup is valid while it is unchanged.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The shared loop, started on first use.
    fn shared_loop(&self) -> Result<Arc<MessageLoop>, RpcError> {
        let mut shared = self.shared_loop.lock();
        if let Some(l) = &*shared {
            return Ok(Arc::clone(l));
        }
        let l = MessageLoop::start(self.shared_threads, |i| {
            format!("dispatcher-event-loop-{i}")
        })?;
        self.loops.lock().push(Arc::clone(&l));
        *shared = Some(Arc::clone(&l));
        Ok(l)
    }

    /// Registers `endpoint` under `name` and schedules its `on_start`.
    pub(crate) fn register<E: RpcEndpoint>(
        &self,
        env: &RpcEnv,
        name: &str,
        endpoint: E,
    ) -> Result<EndpointRef<E::Protocol>, RpcError> {
        let threading = endpoint.threading();
        self.install(env, name, |self_ref| {
            let message_loop = match threading {
                Threading::Shared | Threading::Inline => self.shared_loop()?,
                Threading::Dedicated => self.own_loop(1, |_| format!("dispatcher-{name}"))?,
            };
            Ok(Inbox::new(
                endpoint,
                self_ref,
                env.clone(),
                message_loop,
                threading,
            ))
        })
    }

    /// Registers a concurrent `endpoint` under `name`, on a loop of its own with its
    /// threads, and schedules its `on_start`.
    pub(crate) fn register_concurrent<E: ConcurrentRpcEndpoint>(
        &self,
        env: &RpcEnv,
        name: &str,
        endpoint: E,
    ) -> Result<EndpointRef<E::Protocol>, RpcError> {
        let threads = endpoint.threads().max(1);
        self.install(env, name, |self_ref| {
            let message_loop = self.own_loop(threads, |i| format!("dispatcher-{name}-{i}"))?;
            Ok(Inbox::new_concurrent(
                endpoint,
                self_ref,
                env.clone(),
                message_loop,
                threads,
            ))
        })
    }

    /// The one registration path: checks `name` is free, builds the inbox with `make`
    /// (under the same lock, so two registrations cannot both take the name), makes it
    /// reachable, tells routing caches the names changed, and schedules its `on_start`.
    fn install<P: Protocol>(
        &self,
        env: &RpcEnv,
        name: &str,
        make: impl FnOnce(EndpointRef<P>) -> Result<Arc<Inbox<P>>, RpcError>,
    ) -> Result<EndpointRef<P>, RpcError> {
        let mut registered = self.registered.write();
        registered.check_free(name)?;
        let self_ref = env.local_ref::<P>(name);
        let inbox = make(self_ref.clone())?;
        registered
            .endpoints
            .insert(Arc::from(name), Arc::clone(&inbox) as Arc<dyn InboxEntry>);
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(registered);
        inbox.start();
        Ok(self_ref)
    }

    /// Starts a loop of `threads` threads for one endpoint, joined at termination.
    fn own_loop(
        &self,
        threads: usize,
        thread_name: impl Fn(usize) -> String,
    ) -> Result<Arc<MessageLoop>, RpcError> {
        let l = MessageLoop::start(threads, thread_name)?;
        self.loops.lock().push(Arc::clone(&l));
        Ok(l)
    }

    /// The inbox registered under `name`.
    pub(crate) fn lookup(&self, name: &str) -> Result<Arc<dyn InboxEntry>, RpcError> {
        let registered = self.registered.read();
        if registered.stopped {
            return Err(RpcError::EnvStopped);
        }
        registered
            .endpoints
            .get(name)
            .cloned()
            .ok_or_else(|| RpcError::EndpointNotFound {
                name: name.to_string(),
            })
    }

    /// The inbox registered under `name`, typed by its protocol.
    pub(crate) fn lookup_typed<P: Protocol>(&self, name: &str) -> Result<Arc<Inbox<P>>, RpcError> {
        let entry = self.lookup(name)?;
        let (speaks, _) = entry.protocol();
        entry
            .into_any()
            .downcast::<Inbox<P>>()
            .map_err(|_| RpcError::WrongProtocol {
                name: name.to_string(),
                speaks: speaks.to_string(),
                used_as: P::protocol_name().to_string(),
            })
    }

    /// Whether an endpoint of this name is registered (the verifier's question).
    pub(crate) fn verify(&self, name: &str) -> bool {
        self.registered.read().endpoints.contains_key(name)
    }

    /// The protocol fingerprint of the endpoint `name`, if one is registered.
    pub(crate) fn protocol_of(&self, name: &str) -> Option<(&'static str, u32)> {
        self.registered
            .read()
            .endpoints
            .get(name)
            .map(|inbox| inbox.protocol())
    }

    /// Unregisters `name` and stops its endpoint; the name is free at once. Idempotent.
    pub(crate) fn unregister(&self, name: &str) {
        let removed = self.registered.write().endpoints.remove(name);
        if let Some(inbox) = removed {
            self.generation.fetch_add(1, Ordering::AcqRel);
            inbox.stop();
        }
    }

    /// Messages waiting in every endpoint's inbox now (each inbox locked in turn, briefly).
    pub(crate) fn queued_messages(&self) -> usize {
        let inboxes: Vec<Arc<dyn InboxEntry>> =
            self.registered.read().endpoints.values().cloned().collect();
        inboxes.iter().map(|inbox| inbox.queued()).sum()
    }

    /// Gives `event` to every endpoint.
    pub(crate) fn broadcast(&self, event: &NetworkEvent) {
        let targets: Vec<Arc<dyn InboxEntry>> =
            self.registered.read().endpoints.values().cloned().collect();
        for inbox in targets {
            inbox.post_event(event.clone());
        }
    }

    /// Stops every endpoint (each handles what it has queued, then `on_stop`) and lets the
    /// loops exit once drained.
    pub(crate) fn stop(&self) {
        let endpoints: Vec<Arc<dyn InboxEntry>> = {
            let mut registered = self.registered.write();
            if registered.stopped {
                return;
            }
            registered.stopped = true;
            registered.endpoints.drain().map(|(_, v)| v).collect()
        };
        self.generation.fetch_add(1, Ordering::AcqRel);
        for inbox in &endpoints {
            inbox.stop();
        }
        for l in self.loops.lock().iter() {
            l.stop();
        }
    }

    /// Waits for every loop thread to exit.
    pub(crate) fn join(&self) {
        let loops: Vec<Arc<MessageLoop>> = self.loops.lock().clone();
        for l in loops {
            l.join();
        }
    }
}

#[cfg(test)]
mod tests;
