//! A fleet of simulated workers in one process: each its own TCP connection to the master
//! (so its own socket address, which is what the master keys a worker's address on),
//! speaking rpc-env's wire format (`rpc-env/WIRE.md`) as a client-mode worker would:
//! `RegisterWorker`, then `WorkerLatestState`, a `Heartbeat` every interval, and an
//! `ExecutorStateChanged` ask (RUNNING) for every `LaunchExecutor` it is sent.
//!
//! Why raw frames and not one `RpcEnv` per worker: an env has threads of its own (IO,
//! timers, loops), and ten thousand of them do not fit one process; one env with many
//! endpoints would share one connection and one address. One mio loop over N sockets is
//! what makes the master see N peers from one process.
//!
//! Bounded memory: a frame longer than [`MAX_FRAME`] from the master closes that worker's
//! connection (counted as a failure), and nothing else is kept per frame.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use ember_deploy::messages::{MASTER_ENDPOINT_NAME, WORKER_ENDPOINT_NAME};
use rpc_env::{Encode, EndpointAddress, RpcAddress};

use crate::error::BenchError;

/// The largest frame accepted from the master; `LaunchExecutor` and the registration
/// answer are a few hundred bytes.
const MAX_FRAME: usize = 1 << 20;
/// Connections being opened or waiting for their registration answer at once: a burst, as
/// workers starting together make, but within the master's listen backlog (rpc-env asks for
/// `SOMAXCONN`). With std's backlog of 128, 256 in flight overflowed it
/// (`TcpExtListenOverflows`) and dropped SYNs waited a second for their retry: 1,000 workers
/// took 1.1 s to register instead of 0.1 s.
const REGISTRATION_WINDOW: usize = 256;

/// Frame kinds (`rpc-env/WIRE.md`, "Frame").
const REQUEST: u8 = 1;
const RESPONSE: u8 = 2;
const ONE_WAY: u8 = 4;

/// `MasterMessage` tags (declaration order).
const REGISTER_WORKER: u16 = 0;
const HEARTBEAT: u16 = 1;
const WORKER_LATEST_STATE: u16 = 2;
/// `MasterAsk::ExecutorStateChanged`'s tag.
const EXECUTOR_STATE_CHANGED: u16 = 0;
/// `ExecutorState::Running`'s tag.
const RUNNING: u16 = 1;
/// `WorkerMessage` tags.
const REGISTERED_WORKER: u16 = 0;
const REGISTER_WORKER_FAILED: u16 = 1;
const MASTER_IN_STANDBY: u16 = 2;
const RECONNECT_WORKER: u16 = 3;
const LAUNCH_EXECUTOR: u16 = 4;

/// Each simulated worker's resources.
pub(crate) const WORKER_CORES: u32 = 4;
/// Memory of each simulated worker, in MiB.
const WORKER_MEMORY_MIB: u32 = 8_192;

/// One simulated worker's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Not yet dialled (outside the registration window).
    Idle,
    /// Its connect is under way.
    Connecting,
    /// Registration sent, no answer yet.
    Registering,
    /// The master registered it.
    Registered,
    /// Refused, or its connection failed.
    Failed,
}

struct Worker {
    stream: Option<TcpStream>,
    stage: Stage,
    id: String,
    /// Frames not yet written (the socket was full).
    out: Vec<u8>,
    /// Bytes read, not yet a whole frame.
    input: Vec<u8>,
    next_request: u64,
}

/// What the fleet has seen so far.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    /// Workers the master registered.
    pub(crate) registered: usize,
    /// Workers refused or disconnected.
    pub(crate) failed: usize,
    /// `LaunchExecutor`s received.
    pub(crate) launches: usize,
    /// When the last of them came.
    pub(crate) last_launch: Option<Instant>,
    /// When the last registration answer came.
    pub(crate) last_registered: Option<Instant>,
    /// Answers to our `ExecutorStateChanged` asks: the master has handled that many.
    pub(crate) answers: usize,
    /// Heartbeats sent.
    pub(crate) heartbeats: u64,
}

/// N simulated workers of one master.
pub(crate) struct Fleet {
    poll: Poll,
    events: Events,
    master: SocketAddr,
    master_address: RpcAddress,
    workers: Vec<Worker>,
    next_to_dial: usize,
    in_flight: usize,
    counts: Counts,
    heartbeat_interval: Duration,
    /// Heartbeats are spread evenly over the interval, worker by worker: the `k`-th since
    /// the fleet started is due at `heartbeat_start + k * interval / N`.
    heartbeat_start: Instant,
    heartbeats_due_sent: u64,
}

impl Fleet {
    /// A fleet of `n` workers for the master at `master` (its RPC address, which
    /// registrations echo), heartbeating every `heartbeat_interval`. Nothing is dialled
    /// until [`Fleet::run_until`].
    pub(crate) fn new(
        n: usize,
        master: SocketAddr,
        master_address: RpcAddress,
        heartbeat_interval: Duration,
    ) -> Result<Fleet, BenchError> {
        let poll = Poll::new().map_err(|e| BenchError::io("creating a mio poll", e))?;
        let workers = (0..n)
            .map(|_| Worker {
                stream: None,
                stage: Stage::Idle,
                id: String::new(),
                out: Vec::new(),
                input: Vec::new(),
                next_request: 1,
            })
            .collect();
        Ok(Fleet {
            poll,
            events: Events::with_capacity(1024),
            master,
            master_address,
            workers,
            next_to_dial: 0,
            in_flight: 0,
            counts: Counts::default(),
            heartbeat_interval,
            heartbeat_start: Instant::now(),
            heartbeats_due_sent: 0,
        })
    }

    /// What has happened so far.
    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }

    /// Runs the fleet until `done` says so or `deadline` passes; `Ok(false)` on the
    /// deadline.
    pub(crate) fn run_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&Counts) -> bool,
    ) -> Result<bool, BenchError> {
        loop {
            self.dial()?;
            self.send_heartbeats();
            if done(&self.counts) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let timeout = (deadline - now).min(Duration::from_millis(20));
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(BenchError::io("polling the fleet's sockets", e)),
            }
            let ready: Vec<(usize, bool, bool)> = self
                .events
                .iter()
                .map(|e| (e.token().0, e.is_readable(), e.is_writable()))
                .collect();
            for (i, readable, writable) in ready {
                if writable {
                    self.on_writable(i);
                }
                if readable {
                    self.on_readable(i);
                }
            }
        }
    }

    /// Dials more workers while the registration window has room.
    fn dial(&mut self) -> Result<(), BenchError> {
        while self.in_flight < REGISTRATION_WINDOW && self.next_to_dial < self.workers.len() {
            let i = self.next_to_dial;
            self.next_to_dial += 1;
            let mut stream = TcpStream::connect(self.master).map_err(|e| {
                BenchError::io(format!("connecting to the master at {}", self.master), e)
            })?;
            self.poll
                .registry()
                .register(
                    &mut stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(|e| BenchError::io("registering a socket with mio", e))?;
            let w = &mut self.workers[i];
            w.stream = Some(stream);
            w.stage = Stage::Connecting;
            self.in_flight += 1;
        }
        Ok(())
    }

    /// Sends the heartbeats due by now, oldest first, to registered workers.
    fn send_heartbeats(&mut self) {
        let n = self.workers.len() as u64;
        if n == 0 {
            return;
        }
        let elapsed = self.heartbeat_start.elapsed().as_secs_f64();
        let due = (elapsed / self.heartbeat_interval.as_secs_f64() * n as f64) as u64;
        while self.heartbeats_due_sent < due {
            let i = (self.heartbeats_due_sent % n) as usize;
            self.heartbeats_due_sent += 1;
            if self.workers[i].stage == Stage::Registered {
                let mut body = BytesMut::new();
                HEARTBEAT.encode(&mut body);
                self.workers[i].id.encode(&mut body);
                worker_ref().encode(&mut body);
                self.send(i, ONE_WAY, 0, &body);
                self.counts.heartbeats += 1;
            }
        }
    }

    fn on_writable(&mut self, i: usize) {
        if self.workers[i].stage == Stage::Connecting {
            let Some(stream) = &self.workers[i].stream else {
                return;
            };
            // A connect in progress reports writable once done; `peer_addr` says whether
            // it succeeded (`NotConnected` while still under way).
            match stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(_) => return self.fail(i),
            }
            let Ok(local) = stream.local_addr() else {
                return self.fail(i);
            };
            self.workers[i].stage = Stage::Registering;
            self.register(i, local);
        }
        self.flush(i);
    }

    /// Sends `RegisterWorker` for worker `i`, whose socket is bound to `local`.
    fn register(&mut self, i: usize, local: SocketAddr) {
        let host = local.ip().to_string();
        let id = format!("worker-20261207000000-{host}-{}", local.port());
        let mut body = BytesMut::new();
        REGISTER_WORKER.encode(&mut body);
        id.encode(&mut body);
        host.encode(&mut body);
        local.port().encode(&mut body);
        worker_ref().encode(&mut body);
        WORKER_CORES.encode(&mut body);
        WORKER_MEMORY_MIB.encode(&mut body);
        format!("http://{host}:{}", local.port()).encode(&mut body);
        self.master_address.encode(&mut body);
        self.workers[i].id = id;
        self.send(i, ONE_WAY, 0, &body);
    }

    fn on_readable(&mut self, i: usize) {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let Some(stream) = self.workers[i].stream.as_mut() else {
                return;
            };
            match stream.read(&mut chunk) {
                Ok(0) => return self.fail(i),
                Ok(n) => self.workers[i].input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.fail(i),
            }
        }
        loop {
            let input = &self.workers[i].input;
            if input.len() < 4 {
                return;
            }
            let len = u32::from_be_bytes([input[0], input[1], input[2], input[3]]) as usize;
            if !(9..=MAX_FRAME).contains(&len) {
                return self.fail(i);
            }
            if input.len() < 4 + len {
                return;
            }
            let frame: Vec<u8> = self.workers[i].input.drain(..4 + len).collect();
            if self.on_frame(i, &frame[4..]).is_none() {
                return self.fail(i);
            }
        }
    }

    /// Acts on one frame (after its length); `None` if it does not parse.
    fn on_frame(&mut self, i: usize, frame: &[u8]) -> Option<()> {
        let mut r = Cursor(frame);
        let kind = r.u8()?;
        let _request_id = r.u64()?;
        if kind == RESPONSE {
            // The master answers `ExecutorStateChanged` once it has handled it.
            self.counts.answers += 1;
            return Some(());
        }
        if kind != ONE_WAY {
            // Failures of our asks, and asks of the master's (it asks workers nothing).
            log::debug!("simulated worker {i}: a frame of kind {kind} ignored");
            return Some(());
        }
        if r.u8()? == 1 {
            r.string()?;
            r.u16()?;
        }
        if r.string()? != WORKER_ENDPOINT_NAME.as_bytes() {
            return Some(());
        }
        match r.u16()? {
            REGISTERED_WORKER if self.workers[i].stage == Stage::Registering => {
                self.workers[i].stage = Stage::Registered;
                self.in_flight -= 1;
                self.counts.registered += 1;
                self.counts.last_registered = Some(Instant::now());
                let mut body = BytesMut::new();
                WORKER_LATEST_STATE.encode(&mut body);
                self.workers[i].id.encode(&mut body);
                0u32.encode(&mut body);
                0u32.encode(&mut body);
                self.send(i, ONE_WAY, 0, &body);
            }
            REGISTER_WORKER_FAILED | MASTER_IN_STANDBY => return None,
            RECONNECT_WORKER => {
                log::info!("simulated worker {i}: the master asks it to register again");
                if let Some(local) = self.workers[i]
                    .stream
                    .as_ref()
                    .and_then(|s| s.local_addr().ok())
                {
                    self.register(i, local);
                }
            }
            LAUNCH_EXECUTOR => {
                let _master_url = r.string()?;
                let app_id = r.string()?.to_vec();
                let exec_id = r.u32()?;
                self.counts.launches += 1;
                self.counts.last_launch = Some(Instant::now());
                let mut body = BytesMut::new();
                EXECUTOR_STATE_CHANGED.encode(&mut body);
                String::from_utf8_lossy(&app_id)
                    .into_owned()
                    .encode(&mut body);
                exec_id.encode(&mut body);
                RUNNING.encode(&mut body);
                None::<String>.encode(&mut body);
                None::<i32>.encode(&mut body);
                let id = self.workers[i].next_request;
                self.workers[i].next_request += 1;
                self.send(i, REQUEST, id, &body);
            }
            _ => {}
        }
        Some(())
    }

    /// Frames `body` to the master endpoint and writes it (or queues what does not fit).
    fn send(&mut self, i: usize, kind: u8, request_id: u64, body: &[u8]) {
        let mut header = BytesMut::new();
        // The sender: none, as a client-mode env says; then the endpoint's name.
        0u8.encode(&mut header);
        MASTER_ENDPOINT_NAME.encode(&mut header);
        let len = 9 + header.len() + body.len();
        let w = &mut self.workers[i];
        w.out.extend_from_slice(&(len as u32).to_be_bytes());
        w.out.push(kind);
        w.out.extend_from_slice(&request_id.to_be_bytes());
        w.out.extend_from_slice(&header);
        w.out.extend_from_slice(body);
        self.flush(i);
    }

    /// Writes what is queued until the socket is full.
    fn flush(&mut self, i: usize) {
        let w = &mut self.workers[i];
        if matches!(w.stage, Stage::Connecting | Stage::Idle | Stage::Failed) {
            return;
        }
        let Some(stream) = w.stream.as_mut() else {
            return;
        };
        while !w.out.is_empty() {
            match stream.write(&w.out) {
                Ok(0) => break,
                Ok(n) => {
                    w.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.fail(i),
            }
        }
    }

    fn fail(&mut self, i: usize) {
        let w = &mut self.workers[i];
        if matches!(w.stage, Stage::Connecting | Stage::Registering) {
            self.in_flight -= 1;
        }
        if w.stage != Stage::Failed {
            self.counts.failed += 1;
            log::info!("simulated worker {i} failed in stage {:?}", w.stage);
        }
        w.stage = Stage::Failed;
        if let Some(mut stream) = w.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        w.out = Vec::new();
        w.input = Vec::new();
    }
}

/// The simulated worker's own endpoint, as a client-mode ref (`00` + name): the master's
/// messages to it come back over the connection it arrived on.
fn worker_ref() -> EndpointAddress {
    EndpointAddress::new(None, WORKER_ENDPOINT_NAME)
}

/// Reads big-endian fields off a frame.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_be_bytes(a))
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_reads_fields_and_stops_at_the_end() {
        let mut bytes = BytesMut::new();
        7u16.encode(&mut bytes);
        "ab".encode(&mut bytes);
        9u32.encode(&mut bytes);
        let mut r = Cursor(&bytes);
        assert_eq!(r.u16(), Some(7));
        assert_eq!(r.string(), Some(&b"ab"[..]));
        assert_eq!(r.u32(), Some(9));
        assert_eq!(r.u8(), None);
        // A length past the end is refused, not trusted.
        let mut r = Cursor(&[0, 0, 0, 200, 1]);
        assert_eq!(r.string(), None);
    }
}
