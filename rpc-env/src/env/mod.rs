//! [`RpcEnv`]: endpoints, the network, and the threads that run them.

mod dial;
mod network;
mod shared;

pub(crate) use shared::{Arrival, EnvShared};

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::address::{EndpointAddress, RpcAddress};
use crate::ask::AskHandle;
use crate::ask_registry::AskRegistry;
use crate::conf::{Limits, RpcConf};
use crate::control_ref::ControlRef;
use crate::dispatcher::Dispatcher;
use crate::endpoint::{Protocol, RpcEndpoint};
use crate::endpoint_ref::EndpointRef;
use crate::error::RpcError;
use crate::fast_hash::FastMap;
use crate::file_server::{FileServer, FileStream, FILE_SERVER_NAME};
use crate::io_loop::IoThreads;
use crate::outbox::Outbox;
use crate::security::Security;
use crate::stats::{NetworkCounters, NetworkStats};
use crate::verifier::{
    EndpointVerifier, ProtocolCheck, VerifierAsk, VerifierProtocol, VERIFIER_NAME,
};

/// How to create an [`RpcEnv`].
#[derive(Debug, Clone)]
pub struct RpcEnvConfig {
    /// A name for the env, used in thread names and logs.
    pub name: String,
    /// The host to bind the listener to (server mode).
    pub bind_host: String,
    /// The host other envs should use to reach this one; defaults to `bind_host`.
    pub advertise_host: Option<String>,
    /// The port to bind; 0 picks a free one. A taken port is retried upwards
    /// `ember.port.maxRetries` times.
    pub port: u16,
    /// `ember.*` settings.
    pub conf: RpcConf,
    /// Cores this process may use for sizing thread pools; 0 means all the machine's.
    pub usable_cores: usize,
    /// No listener: the env can only connect out, and its endpoints are reachable only over
    /// connections it made (Spark's client mode, used by executors).
    pub client_mode: bool,
}

impl RpcEnvConfig {
    /// A server-mode env bound to `host:port`.
    pub fn server(name: impl Into<String>, host: impl Into<String>, port: u16) -> RpcEnvConfig {
        RpcEnvConfig {
            name: name.into(),
            bind_host: host.into(),
            advertise_host: None,
            port,
            conf: RpcConf::new(),
            usable_cores: 0,
            client_mode: false,
        }
    }

    /// A client-mode env.
    pub fn client(name: impl Into<String>) -> RpcEnvConfig {
        RpcEnvConfig {
            client_mode: true,
            ..RpcEnvConfig::server(name, "", 0)
        }
    }

    /// These settings instead of the defaults.
    pub fn with_conf(mut self, conf: RpcConf) -> RpcEnvConfig {
        self.conf = conf;
        self
    }

    /// Advertise `host` instead of the bind host.
    pub fn advertise(mut self, host: impl Into<String>) -> RpcEnvConfig {
        self.advertise_host = Some(host.into());
        self
    }
}

/// A NettyRpcEnv-style RPC environment: named endpoints, refs to them, and the network.
///
/// The handle is cheap to clone. Every env must be [`shutdown`](Self::shutdown): endpoints
/// and refs hold it alive, so dropping the handle alone does not stop it.
#[derive(Clone)]
pub struct RpcEnv {
    pub(crate) shared: Arc<EnvShared>,
}

impl RpcEnv {
    /// Creates an env: binds its listener (server mode), starts its IO threads and timer,
    /// and registers the `endpoint-verifier` endpoint (server mode).
    pub fn create(config: RpcEnvConfig) -> Result<RpcEnv, RpcError> {
        let conf = config.conf;
        let cores = match config.usable_cores {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let dispatcher_threads = conf.dispatcher_threads(cores)?;
        let io_threads = conf.io_threads(cores)?;
        let max_frame = conf.max_message_size()?;
        let limits = Limits::from_conf(&conf)?;
        let ask_timeout = conf.ask_timeout()?;
        let spin_wait = conf.spin_wait()?;
        let lookup_timeout = conf.lookup_timeout()?;
        let connect_timeout = conf.connect_timeout()?;
        let max_retries = conf.port_max_retries()?;
        // Resolved before anything binds: a refused security setting starts nothing.
        let security = Security::from_conf(
            &conf,
            (!config.client_mode).then_some(config.bind_host.as_str()),
        )?;

        let (listener, address) = if config.client_mode {
            (None, None)
        } else {
            let listener = bind(&config.name, &config.bind_host, config.port, max_retries)?;
            let port = listener
                .local_addr()
                .map_err(|e| RpcError::Io {
                    context: "reading the bound port".into(),
                    reason: e.to_string(),
                })?
                .port();
            let host = config
                .advertise_host
                .as_deref()
                .unwrap_or(&config.bind_host);
            (Some(listener), Some(RpcAddress::new(host, port)))
        };
        let (io, polls) = IoThreads::prepare(io_threads).map_err(|e| RpcError::Io {
            context: "creating the IO event loops".into(),
            reason: e.to_string(),
        })?;
        let registry = AskRegistry::start(&config.name)?;
        let shared = Arc::new(EnvShared {
            name: config.name,
            sender_address: address.clone().map(Arc::new),
            address,
            security,
            handshaking: Mutex::new(VecDeque::new()),
            dispatcher: Dispatcher::new(dispatcher_threads),
            registry,
            io,
            outboxes: RwLock::new(FastMap::default()),
            listen_owners: Mutex::new(FastMap::default()),
            ask_timeout: (ask_timeout.duration(), Arc::from(ask_timeout.key())),
            spin_wait,
            file_server: Mutex::new(None),
            lookup_timeout,
            connect_timeout,
            max_frame,
            counters: NetworkCounters::default(),
            limits,
            open_connections: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            stopped: AtomicBool::new(false),
            conf,
            terminated: Mutex::new(false),
            terminated_signal: Condvar::new(),
        });
        shared.io.spawn(&shared, polls, listener)?;
        let env = RpcEnv { shared };
        if !config.client_mode {
            env.setup_endpoint(VERIFIER_NAME, EndpointVerifier)?;
        }
        log::debug!(
            "RpcEnv {} started at {}",
            env.shared.name,
            env.address()
                .map_or("(client mode)".to_string(), |a| a.host_port())
        );
        Ok(env)
    }

    /// The advertised address; `None` in client mode.
    pub fn address(&self) -> Option<&RpcAddress> {
        self.shared.address.as_ref()
    }

    /// The settings the env was created with.
    pub fn conf(&self) -> &RpcConf {
        &self.shared.conf
    }

    /// How its connections are secured, as resolved from its settings at creation (for
    /// example, to hand the same to a child process with [`Security::child_env`]).
    pub fn security(&self) -> &Security {
        &self.shared.security
    }

    /// Registers `endpoint` under `name`. Returns at once: `on_start` runs on a loop thread
    /// before any message.
    pub fn setup_endpoint<E: RpcEndpoint>(
        &self,
        name: &str,
        endpoint: E,
    ) -> Result<EndpointRef<E::Protocol>, RpcError> {
        self.shared.dispatcher.register(self, name, endpoint)
    }

    /// Registers a concurrent `endpoint` under `name`: its handlers run on a loop of its own
    /// with [`threads()`](crate::ConcurrentRpcEndpoint::threads) threads, several at once.
    pub fn setup_concurrent_endpoint<E: crate::endpoint::ConcurrentRpcEndpoint>(
        &self,
        name: &str,
        endpoint: E,
    ) -> Result<EndpointRef<E::Protocol>, RpcError> {
        self.shared
            .dispatcher
            .register_concurrent(self, name, endpoint)
    }

    /// A ref to the endpoint `name` of this env (it need not be registered yet).
    pub fn local_ref<P: Protocol>(&self, name: &str) -> EndpointRef<P> {
        let address = EndpointAddress::new(self.shared.address.clone(), name.to_string());
        EndpointRef::bind(Arc::clone(&self.shared), address, None)
    }

    /// The control handle of this env's endpoint `name` (it need not be registered yet):
    /// the only way to send it its [control messages](crate::Protocol::Control). Keep it
    /// in this process; it cannot be put in a message.
    pub fn control_ref<P: Protocol>(&self, name: &str) -> ControlRef<P> {
        ControlRef::bind(Arc::clone(&self.shared), Arc::from(name))
    }

    /// A ref to the endpoint `name` of the env at `address`, without asking that env whether
    /// it exists (no round trip, no wait). Messages to an endpoint that is not there are
    /// dropped by the peer (asks fail with `Could not find <name>.`), and to an env that is
    /// not there fail to connect. For senders that retry on a timer anyway, like a worker
    /// or an application registering with masters that may not be up yet.
    pub fn endpoint_ref_at<P: Protocol>(&self, address: &RpcAddress, name: &str) -> EndpointRef<P> {
        let target = EndpointAddress::new(Some(address.clone()), name.to_string());
        EndpointRef::bind(Arc::clone(&self.shared), target, None)
    }

    /// This env's file server (Spark's `RpcEnvFileServer`): what is added to it, its peers
    /// can read with [`open_stream`](Self::open_stream). Its endpoint, `file-server`, is
    /// registered on the first call. A client-mode env has no address to serve at and
    /// refuses.
    pub fn file_server(&self) -> Result<FileServer, RpcError> {
        let mut slot = self.shared.file_server.lock();
        if let Some(server) = &*slot {
            return Ok(server.clone());
        }
        let Some(address) = self.shared.address.clone() else {
            return Err(RpcError::failure(
                "A client-mode env cannot serve files: it has no address for its peers to                  reach",
            ));
        };
        let (server, endpoint) = FileServer::new(address);
        self.setup_concurrent_endpoint(FILE_SERVER_NAME, endpoint)?;
        *slot = Some(server.clone());
        Ok(server)
    }

    /// Opens a file another env serves, by the URI its
    /// [`FileServer`](crate::FileServer) gave (`ember://host:port/files/name`): asks its
    /// size, then yields its bytes in order as they are read, in chunks pulled over this
    /// env's connection to that one. Fails at once if the URI is not a file URI, or that
    /// env does not serve this path.
    pub fn open_stream(&self, uri: &str) -> Result<FileStream, RpcError> {
        self.open_file_stream(uri, false)
    }

    /// Like [`open_stream`](Self::open_stream), and what is read is checked: the serving
    /// env is asked the file's SHA-256 first ([`FileStream::sha256`]), the reader hashes
    /// what arrives, and the read that would end the stream fails instead if the two
    /// differ (the file changed while it was read, or was damaged on the way).
    pub fn open_verified_stream(&self, uri: &str) -> Result<FileStream, RpcError> {
        self.open_file_stream(uri, true)
    }

    fn open_file_stream(&self, uri: &str, verified: bool) -> Result<FileStream, RpcError> {
        let (address, path) = crate::file_server::parse_uri(uri)?;
        let server = self.endpoint_ref_at(&address, FILE_SERVER_NAME);
        FileStream::open(server, path, verified).map_err(|e| match e {
            // A server that has never served anything has no endpoint for it.
            RpcError::EndpointNotFound { .. } => {
                RpcError::failure(format!("No file is served at {uri}"))
            }
            other => other,
        })
    }

    /// Whether an endpoint called `name` is registered here.
    pub fn has_endpoint(&self, name: &str) -> bool {
        self.shared.dispatcher.verify(name)
    }

    /// The protocol fingerprint (name and version) of this env's endpoint `name`.
    pub(crate) fn protocol_of(&self, name: &str) -> Option<(&'static str, u32)> {
        self.shared.dispatcher.protocol_of(name)
    }

    /// Asks the env at `address` whether it has an endpoint `name`, without waiting: the
    /// answer (within `ember.rpc.lookupTimeout`) is `true` or `false`, or the error that
    /// stopped the question, such as a refused connection. What
    /// [`setup_endpoint_ref`](Self::setup_endpoint_ref) waits for, for a caller that must not
    /// block (an endpoint's handler learning at once that a peer cannot be reached).
    pub fn check_endpoint(&self, address: &RpcAddress, name: &str) -> AskHandle<bool> {
        self.verifier_at(address).ask_with_rpc_timeout(
            |reply| VerifierAsk::CheckExistence {
                name: name.to_string(),
                reply,
            },
            &self.shared.lookup_timeout,
        )
    }

    /// The `endpoint-verifier` of the env at `address`.
    fn verifier_at(&self, address: &RpcAddress) -> EndpointRef<VerifierProtocol> {
        EndpointRef::bind(
            Arc::clone(&self.shared),
            EndpointAddress::new(Some(address.clone()), VERIFIER_NAME.to_string()),
            None,
        )
    }

    /// Looks up the endpoint `name` of the env at `address` through its `endpoint-verifier`,
    /// waiting up to `ember.rpc.lookupTimeout`. The endpoint must speak `P`: the lookup
    /// carries `P`'s fingerprint ([`Protocol::protocol_name`] and
    /// [`Protocol::PROTOCOL_VERSION`]), and an endpoint of another protocol fails it with
    /// [`RpcError::ProtocolMismatch`], naming both. A protocol whose messages and asks are
    /// both [`NoMessage`](crate::NoMessage) matches any endpoint: its refs carry nothing.
    pub fn setup_endpoint_ref<P: Protocol>(
        &self,
        address: &RpcAddress,
        name: &str,
    ) -> Result<EndpointRef<P>, RpcError> {
        let target = EndpointAddress::new(Some(address.clone()), name.to_string());
        let (protocol, version) = crate::endpoint::fingerprint::<P>();
        let check = self
            .verifier_at(address)
            .ask_with_rpc_timeout(
                |reply| VerifierAsk::CheckProtocol {
                    name: name.to_string(),
                    protocol: protocol.to_string(),
                    version,
                    reply,
                },
                &self.shared.lookup_timeout,
            )
            .wait()?;
        match check {
            ProtocolCheck::Matches => Ok(EndpointRef::bind(Arc::clone(&self.shared), target, None)),
            // A ref that can carry nothing cannot be misread: such a protocol is how a caller
            // looks an endpoint up only to hold its connection (an executor watching its
            // worker), and it matches any endpoint.
            ProtocolCheck::Differs { .. } if crate::endpoint::carries_nothing::<P>() => {
                Ok(EndpointRef::bind(Arc::clone(&self.shared), target, None))
            }
            ProtocolCheck::Missing => Err(RpcError::LookupFailed {
                uri: target.to_string(),
            }),
            ProtocolCheck::Differs {
                protocol: actual,
                version: actual_version,
            } => Err(RpcError::ProtocolMismatch {
                uri: target.to_string(),
                expected: protocol.to_string(),
                expected_version: version,
                actual,
                actual_version,
            }),
        }
    }

    /// Looks up an endpoint by URI, `ember://name@host:port`.
    pub fn setup_endpoint_ref_by_uri<P: Protocol>(
        &self,
        uri: &str,
    ) -> Result<EndpointRef<P>, RpcError> {
        let target = EndpointAddress::parse(uri)?;
        match target.address() {
            Some(address) => self.setup_endpoint_ref(address, target.name()),
            // A client-mode endpoint has no address to look it up at.
            None => Err(RpcError::LookupFailed {
                uri: uri.to_string(),
            }),
        }
    }

    /// Stops the endpoint `endpoint` refers to, if it lives here: the messages it already
    /// has are handled, then its `on_stop` runs. Its name is free at once. Idempotent.
    pub fn stop<P: Protocol>(&self, endpoint: &EndpointRef<P>) {
        if self.shared.is_local(&endpoint.inner) {
            self.shared.dispatcher.unregister(endpoint.name());
        }
    }

    /// Stops everything: outboxes, pending asks (they fail with `RpcEnv already stopped.`),
    /// every endpoint (each handles what it has queued, then `on_stop`), and the network.
    /// Its own endpoints see no `on_disconnected`. Idempotent. Called from one of the env's
    /// own threads (inside a handler, say), it returns before the endpoints have stopped;
    /// [`await_termination`](Self::await_termination) waits for that.
    pub fn shutdown(&self) {
        let shared = &self.shared;
        if shared.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let outboxes: Vec<Arc<Outbox>> = shared.outboxes.write().drain().map(|(_, o)| o).collect();
        for outbox in &outboxes {
            // Asks still queued for a connection never left: they fail as dropped.
            for id in outbox.stop() {
                shared.registry.fail(id, RpcError::OutboxStopped);
            }
        }
        shared.registry.stop();
        shared.dispatcher.stop();
        // From one of the env's own threads (a handler, a callback), the rest must wait for
        // that very thread to finish, so it happens on a thread of its own.
        if crate::thread_role::on_rpc_thread() {
            let for_thread = Arc::clone(shared);
            let spawned = std::thread::Builder::new()
                .name(format!("{}-shutdown", shared.name))
                .spawn(move || finish_shutdown(&for_thread));
            if let Err(e) = spawned {
                log::error!("Could not start the shutdown thread: {e}; finishing here");
                finish_shutdown(shared);
            }
        } else {
            finish_shutdown(shared);
        }
    }

    /// Blocks until [`shutdown`](Self::shutdown) has finished.
    pub fn await_termination(&self) {
        let mut terminated = self.shared.terminated.lock();
        while !*terminated {
            self.shared.terminated_signal.wait(&mut terminated);
        }
    }

    /// Whether [`shutdown`](Self::shutdown) has been called.
    pub fn is_stopped(&self) -> bool {
        self.shared.is_stopped()
    }

    /// What the network did to this env so far: its traffic, refused peers, bad traffic,
    /// caps reached; and its open connections and queued messages now. The log lines about
    /// these are rate-limited; these counts are exact. Cheap enough to read every second:
    /// it locks each endpoint's inbox once, briefly.
    pub fn network_stats(&self) -> NetworkStats {
        let shared = &self.shared;
        NetworkStats {
            open_connections: shared.open_connections.load(Ordering::Acquire) as u64,
            inbox_messages: shared.dispatcher.queued_messages() as u64,
            ..shared.counters.snapshot()
        }
    }
}

impl std::fmt::Debug for RpcEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcEnv")
            .field("name", &self.shared.name)
            .field("address", &self.shared.address)
            .finish()
    }
}

/// Waits for the loops to drain and stop, closes the network, and signals termination.
fn finish_shutdown(shared: &Arc<EnvShared>) {
    shared.dispatcher.join();
    shared.io.stop_and_join();
    *shared.terminated.lock() = true;
    shared.terminated_signal.notify_all();
    log::debug!("RpcEnv {} stopped", shared.name);
}

/// Gives a bound listener the system's largest listen backlog (`SOMAXCONN`, itself capped
/// by `net.core.somaxconn`) instead of std's 128. A burst of connects beyond the backlog
/// overflows it (`TcpExtListenOverflows`), and each SYN dropped waits a second for its retry:
/// 1,000 workers dialling a master at once took 1.1 s to register instead of 0.1 s (issue 15).
/// listen(2) on a listening socket only changes its backlog; a failure keeps std's, logged.
fn raise_backlog(listener: &TcpListener) {
    if let Err(e) = nix::sys::socket::listen(listener, nix::sys::socket::Backlog::MAXCONN) {
        log::debug!("Could not raise the listen backlog: {e}");
    }
}

/// Binds `host:port`, trying the next ports up to `max_retries` times when it is taken (Spark's
/// rule). Binding another port than the one asked for is a warning naming both, under the
/// env's `name` (Spark's "Service 'sparkMaster' could not bind on port 7077"): whoever points
/// workers or drivers at the asked-for port must learn that nothing of ours listens there.
fn bind(name: &str, host: &str, port: u16, max_retries: u32) -> Result<TcpListener, RpcError> {
    let attempts = if port == 0 { 1 } else { max_retries + 1 };
    let mut last_error = String::new();
    for attempt in 0..attempts {
        // Past 65535, wrap to the first unprivileged port, as Spark does.
        let candidate = if port == 0 {
            0
        } else {
            let p = u32::from(port) + attempt;
            if p > 65535 {
                (p - 65535 + 1023) as u16
            } else {
                p as u16
            }
        };
        match TcpListener::bind((host, candidate)) {
            Ok(listener) => {
                raise_backlog(&listener);
                if attempt > 0 {
                    log::warn!(
                        "Service '{name}' could not bind on port {port} ({last_error}); \
                         bound port {candidate} instead"
                    );
                }
                return Ok(listener);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                log::debug!("Service '{name}' could not bind on port {candidate}: {e}");
                last_error = e.to_string();
            }
            Err(e) => {
                return Err(RpcError::Bind {
                    address: format!("{host}:{candidate}"),
                    reason: e.to_string(),
                })
            }
        }
    }
    Err(RpcError::Bind {
        address: format!("{host}:{port}"),
        reason: format!(
            "{last_error}; failed after {max_retries} retries. \
             Consider setting another port or raising ember.port.maxRetries"
        ),
    })
}
