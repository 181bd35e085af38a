//! IO threads: each runs a mio `Poll` over its share of the connections.
//!
//! An IO thread owns reading: it reads into its connection's buffer, splits frames off it
//! without copying, and routes each one (requests and one-way messages to inboxes,
//! responses and failures to the asks waiting in the registry). It writes only when a
//! socket that was full becomes writable again, or when a sender hands writing over.
//! Other threads talk to it through commands and its `Waker`.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use parking_lot::Mutex;

use crate::connection::{Connection, Cork, Direction, IoThread};
use crate::env::EnvShared;
use crate::error::RpcError;
use crate::fast_hash::FastMap;
use crate::inbox::InlineBatch;
use crate::spin::SpinWindow;

mod deliver;
mod handshake;
mod listener;
mod routing;

use deliver::{route_frames, ConnState};
use handshake::{absorb, Absorbed};
use listener::{Accepted, Listener};

const WAKER: Token = Token(usize::MAX);
const LISTENER: Token = Token(usize::MAX - 1);
/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;
/// Reads per connection per wakeup before the others get a turn.
const READS_PER_TURN: usize = 16;

/// What other threads ask of an IO thread.
pub(crate) enum Command {
    /// Start watching this connection.
    Add(Arc<Connection>),
    /// Take over writing this connection's queue.
    Flush(Token),
    /// Close this connection, reporting `reason` as a network error if there is one.
    Close(Token, Option<RpcError>),
    /// Read this connection again (an inbox it filled has drained).
    Resume(Token),
    /// Close everything and exit.
    Stop,
}

/// The way into one IO thread.
pub(crate) struct IoHandle {
    index: usize,
    waker: Waker,
    commands: Mutex<Vec<Command>>,
}

impl IoThread for IoHandle {
    fn request_flush(&self, token: Token) {
        self.push(Command::Flush(token));
    }

    fn request_close(&self, token: Token, reason: Option<RpcError>) {
        self.push(Command::Close(token, reason));
    }

    fn request_resume(&self, token: Token) {
        self.push(Command::Resume(token));
    }
}

impl IoHandle {
    fn push(&self, command: Command) {
        self.commands.lock().push(command);
        if let Err(e) = self.waker.wake() {
            log::error!("Could not wake IO thread {}: {e}", self.index);
        }
    }

    /// Gives this thread a new connection to watch.
    pub(crate) fn add(&self, conn: Arc<Connection>) {
        self.push(Command::Add(conn));
    }
}

/// The env's IO threads.
pub(crate) struct IoThreads {
    handles: Vec<Arc<IoHandle>>,
    next: AtomicUsize,
    joins: Mutex<Vec<JoinHandle<()>>>,
}

impl IoThreads {
    /// Creates `count` polls and their handles; threads start with [`spawn`](Self::spawn).
    pub(crate) fn prepare(count: usize) -> io::Result<(IoThreads, Vec<Poll>)> {
        let mut handles = Vec::new();
        let mut polls = Vec::new();
        for index in 0..count.max(1) {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), WAKER)?;
            handles.push(Arc::new(IoHandle {
                index,
                waker,
                commands: Mutex::new(Vec::new()),
            }));
            polls.push(poll);
        }
        Ok((
            IoThreads {
                handles,
                next: AtomicUsize::new(0),
                joins: Mutex::new(Vec::new()),
            },
            polls,
        ))
    }

    /// Starts one thread per poll; the first also accepts on `listener`.
    pub(crate) fn spawn(
        &self,
        env: &Arc<EnvShared>,
        polls: Vec<Poll>,
        listener: Option<std::net::TcpListener>,
    ) -> Result<(), RpcError> {
        let io_error = |context: &str, e: io::Error| RpcError::Io {
            context: context.to_string(),
            reason: e.to_string(),
        };
        let mut listener = match listener {
            Some(l) => {
                l.set_nonblocking(true)
                    .map_err(|e| io_error("configuring the listener", e))?;
                Some(TcpListener::from_std(l))
            }
            None => None,
        };
        for (index, poll) in polls.into_iter().enumerate() {
            let mut own_listener = if index == 0 { listener.take() } else { None };
            if let Some(l) = &mut own_listener {
                poll.registry()
                    .register(l, LISTENER, Interest::READABLE)
                    .map_err(|e| io_error("registering the listener", e))?;
            }
            let own_listener = own_listener.map(Listener::new);
            let io_loop = IoLoop {
                poll,
                handle: Arc::clone(&self.handles[index]),
                env: Arc::clone(env),
                conns: FastMap::default(),
                listener: own_listener,
                scratch: vec![0u8; READ_CHUNK],
                unfinished_reads: Vec::new(),
                handshake_deadlines: VecDeque::new(),
                spin: SpinWindow::new(env.spin_wait),
            };
            let join = std::thread::Builder::new()
                .name(format!("{}-rpc-io-{index}", env.name))
                .spawn(move || io_loop.run())
                .map_err(|e| io_error("starting an IO thread", e))?;
            self.joins.lock().push(join);
        }
        Ok(())
    }

    /// The IO thread for the next new connection (round robin).
    pub(crate) fn pick(&self) -> Arc<IoHandle> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        Arc::clone(&self.handles[i])
    }

    /// Closes every connection and stops the threads, then waits for them.
    pub(crate) fn stop_and_join(&self) {
        for handle in &self.handles {
            handle.push(Command::Stop);
        }
        let joins: Vec<JoinHandle<()>> = std::mem::take(&mut *self.joins.lock());
        let me = std::thread::current().id();
        for join in joins {
            if join.thread().id() != me {
                let _ = join.join();
            }
        }
    }
}

struct IoLoop {
    poll: Poll,
    handle: Arc<IoHandle>,
    env: Arc<EnvShared>,
    conns: FastMap<Token, ConnState>,
    listener: Option<Listener>,
    scratch: Vec<u8>,
    /// Connections that still had bytes to read when their turn ended.
    unfinished_reads: Vec<Token>,
    /// When each connection still in its handshake must be done, oldest first (they are
    /// added in time order with one timeout, so the front is always the next due).
    handshake_deadlines: VecDeque<(Instant, Token)>,
    /// `ember.rpc.io.spinWait`: after events, the thread polls rather than parks for a
    /// while, as the answer to what it just handled is likely to come soon.
    spin: SpinWindow,
}

impl IoLoop {
    fn run(mut self) {
        crate::thread_role::mark_io_thread();
        let mut events = Events::with_capacity(1024);
        loop {
            let spinning = self.unfinished_reads.is_empty() && self.spin.is_open();
            let timeout = if !self.unfinished_reads.is_empty() || spinning {
                Some(Duration::ZERO)
            } else {
                self.next_wakeup()
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("IO thread {} cannot poll: {e}", self.handle.index);
                self.close_all();
                return;
            }
            if !events.is_empty() {
                self.spin.activity();
            } else if spinning {
                // Nothing yet: let another thread on this core (the asker, say) run.
                std::thread::yield_now();
            }
            if !self.run_commands() {
                self.close_all();
                return;
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    LISTENER => self.accept(),
                    token => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            // When the peer's close came with the data, the short-read
                            // shortcut would miss it: no later edge announces it.
                            let drain = event.is_read_closed() || event.is_error();
                            self.read(token, drain);
                        }
                        if event.is_writable() {
                            if let Some(state) = self.conns.get(&token) {
                                let conn = Arc::clone(&state.conn);
                                conn.on_writable();
                            }
                        }
                    }
                }
            }
            for token in std::mem::take(&mut self.unfinished_reads) {
                self.read(token, true);
            }
            let now = Instant::now();
            self.expire_handshakes(now);
            if self
                .listener
                .as_ref()
                .and_then(Listener::retry_at)
                .is_some_and(|at| at <= now)
            {
                self.accept();
            }
        }
    }

    /// How long the poll may sleep: until the next handshake deadline or the listener's
    /// retry, whichever is first; for ever if neither.
    fn next_wakeup(&self) -> Option<Duration> {
        let handshake = self.handshake_deadlines.front().map(|(due, _)| *due);
        let listener = self.listener.as_ref().and_then(Listener::retry_at);
        let due = match (handshake, listener) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        // Rounded up: a poll that wakes a hair early would find nothing due and spin.
        Some(due.saturating_duration_since(Instant::now()) + Duration::from_millis(1))
    }

    /// Closes the connections whose handshake is overdue.
    fn expire_handshakes(&mut self, now: Instant) {
        while let Some(&(due, token)) = self.handshake_deadlines.front() {
            if due > now {
                return;
            }
            self.handshake_deadlines.pop_front();
            let Some(state) = self.conns.get(&token) else {
                continue;
            };
            if state.is_handshaking() {
                let error = handshake::auth_failed(
                    &state.conn,
                    &format!(
                        "no handshake within {} ms ({})",
                        self.handshake_timeout().as_millis(),
                        crate::conf::keys::AUTH_TIMEOUT
                    ),
                );
                self.close(token, Some(error));
            }
        }
    }

    fn handshake_timeout(&self) -> Duration {
        match &self.env.security {
            crate::security::Security::Authenticated {
                handshake_timeout, ..
            } => *handshake_timeout,
            crate::security::Security::Off => Duration::ZERO,
        }
    }

    /// Runs queued commands; `false` when told to stop.
    fn run_commands(&mut self) -> bool {
        let commands = std::mem::take(&mut *self.handle.commands.lock());
        for command in commands {
            match command {
                Command::Add(conn) => self.register(conn),
                Command::Flush(token) => {
                    if let Some(state) = self.conns.get(&token) {
                        let conn = Arc::clone(&state.conn);
                        conn.on_writable();
                    }
                }
                Command::Close(token, reason) => self.close(token, reason),
                // Whatever arrived while paused raised no new edge: read until it blocks.
                Command::Resume(token) => self.unfinished_reads.push(token),
                Command::Stop => return false,
            }
        }
        true
    }

    fn register(&mut self, conn: Arc<Connection>) {
        let fd = conn.stream().as_raw_fd();
        let registered = self.poll.registry().register(
            &mut SourceFd(&fd),
            conn.token,
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = registered {
            log::warn!("Could not watch the connection to {}: {e}", conn.peer);
            conn.mark_closed();
            self.env.connection_closed(&conn, None);
            return;
        }
        let phase = match handshake::start(&self.env, &conn) {
            Ok(phase) => phase,
            Err(e) => {
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                conn.mark_closed();
                self.env.connection_closed(&conn, Some(e));
                return;
            }
        };
        let state = ConnState::new(conn, self.env.max_frame, phase);
        if state.is_handshaking() {
            let due = Instant::now() + self.handshake_timeout();
            self.handshake_deadlines.push_back((due, state.conn.token));
        }
        self.conns.insert(state.conn.token, state);
    }

    fn accept(&mut self) {
        loop {
            let Some(listener) = &mut self.listener else {
                return;
            };
            match listener.accept(Instant::now()) {
                Accepted::Stream(stream, peer) => {
                    if !self.env.admit_inbound() {
                        // Dropped: closed at once, so the peer learns and the descriptor
                        // is free again.
                        crate::stats::bump(&self.env.counters.connections_refused);
                        crate::limited_log!(
                            log::Level::Warn,
                            "Refused a connection from {peer}: {} connections are open ({})",
                            self.env.limits.max_connections,
                            crate::conf::keys::MAX_CONNECTIONS
                        );
                        continue;
                    }
                    if let Err(e) = stream.set_nodelay(true) {
                        log::debug!("Could not set TCP_NODELAY for {peer}: {e}");
                    }
                    let (conn, io) =
                        self.env
                            .new_connection(stream, peer, Direction::Inbound, None);
                    if io.index == self.handle.index {
                        self.register(conn);
                    } else {
                        io.add(conn);
                    }
                }
                Accepted::Nothing => return,
                Accepted::Failed(e) => {
                    crate::stats::bump(&self.env.counters.accept_failures);
                    crate::limited_log!(
                        log::Level::Warn,
                        "Accepting a connection failed: {e}; trying again in {} ms",
                        listener::ACCEPT_BACKOFF.as_millis()
                    );
                    return;
                }
            }
        }
    }

    /// Reads what the connection has; with `drain`, until it would block or ends, else it
    /// may stop after a short read.
    fn read(&mut self, token: Token, drain: bool) {
        for _ in 0..READS_PER_TURN {
            let Some(state) = self.conns.get_mut(&token) else {
                return;
            };
            if state.conn.is_read_paused() {
                // An inbox is full with what this peer sent: leave the rest in the socket
                // (TCP pushes back) until the inbox drains and resumes it.
                return;
            }
            let n = match state.conn.stream().read(&mut self.scratch) {
                Ok(0) => {
                    self.close(token, None);
                    return;
                }
                Ok(n) => {
                    crate::stats::add(&self.env.counters.bytes_read, n as u64);
                    n
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let peer = state.conn.peer_name();
                    let reason = RpcError::Io {
                        context: format!("Connection from {peer} failed"),
                        reason: e.to_string(),
                    };
                    self.close(token, Some(reason));
                    return;
                }
            };
            let ConnState {
                conn,
                buf,
                routes,
                phase,
                ..
            } = &mut *state;
            let mut pin = |listen| routes.pin(listen);
            match absorb(&self.env, conn, phase, &mut pin, &self.scratch[..n], buf) {
                Ok(Absorbed::Frames) => {}
                Ok(Absorbed::Nothing) => continue,
                Err(problem) => {
                    if !conn.is_authenticating() {
                        // A failed handshake is logged (and counted) when its connection
                        // closes.
                        crate::stats::bump(&self.env.counters.protocol_errors);
                        crate::limited_log!(
                            log::Level::Warn,
                            "Closing the connection to {}: {problem}",
                            conn.peer_name()
                        );
                    }
                    self.close(token, Some(problem));
                    return;
                }
            }
            // Answers written while these frames are handled (inline endpoints, failures)
            // leave together once the chunk is done.
            let cork = Cork::new();
            // Inline endpoints run once per chunk, each over all its messages in it.
            let batch = InlineBatch::new();
            state.conn.begin_read_chunk();
            let routed = route_frames(&self.env, state);
            drop(batch);
            drop(cork);
            state.conn.end_read_chunk();
            if let Err(problem) = routed {
                crate::stats::bump(&self.env.counters.protocol_errors);
                crate::limited_log!(
                    log::Level::Warn,
                    "Closing the connection to {}: {problem}",
                    state.conn.peer_name()
                );
                self.close(token, Some(problem));
                return;
            }
            if n < self.scratch.len() && !drain {
                // A short read emptied the socket's receive queue; with edge-triggered
                // polling, bytes that arrive later raise a new event, so there is no need
                // to spend a system call learning that the next read would block.
                return;
            }
        }
        self.unfinished_reads.push(token);
    }

    fn close(&mut self, token: Token, reason: Option<RpcError>) {
        let Some(state) = self.conns.remove(&token) else {
            return;
        };
        let conn = state.conn;
        let fd = conn.stream().as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        let _ = conn.stream().shutdown(std::net::Shutdown::Both);
        conn.mark_closed();
        self.env.connection_closed(&conn, reason);
    }

    fn close_all(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(listener.socket());
        }
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            self.close(token, None);
        }
    }
}
