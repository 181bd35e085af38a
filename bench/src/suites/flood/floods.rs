//! The flooders: raw loopback sockets driven by threads of this process until stopped.
//!
//! - [`idle_sockets`]: many connections that each sent half a handshake message and then say
//!   nothing; those the master closes are opened again, at a bounded rate;
//! - [`replay`]: one recorded frame written back to back, as fast as the sockets take it;
//!   with `read_replies: false` the replies (to asks) are never read.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::BenchError;

/// Half of handshake message 1 (`u16` length 48, then 48 bytes): the length and 23 bytes.
const HALF_HANDSHAKE: [u8; 25] = {
    let mut bytes = [0x5a; 25];
    bytes[0] = 0;
    bytes[1] = 48;
    bytes
};
/// How often the idle-socket flooder looks for sockets the master closed.
const IDLE_PASS: Duration = Duration::from_millis(20);
/// New connections per second the idle-socket flooder opens to replace closed ones: enough
/// to keep the master's 64 handshake slots full of newer sockets than a real peer's, few
/// enough that ten seconds of it leave loopback's ephemeral ports (and the TIME_WAIT
/// entries the master's closes leave behind) far from exhausted.
const RECONNECTS_PER_S: u64 = 500;
/// How long a flooder's write may block before it looks at the stop flag again.
const WRITE_TIMEOUT: Duration = Duration::from_millis(100);
/// Frames per write: large writes, as an attacker would make.
const BATCH_BYTES: usize = 64 << 10;

/// What a flood has done so far.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Connections opened.
    pub(crate) connects: AtomicU64,
    /// Connections the master closed (EOF, reset or broken pipe seen).
    pub(crate) closed: AtomicU64,
    /// Connections that could not be opened.
    pub(crate) connect_errors: AtomicU64,
    /// Bytes written.
    pub(crate) bytes: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The value of `counter` now.
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A running flood; [`Flood::stop`] ends it.
pub(crate) struct Flood {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    threads: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Flood {
    /// What the flood has done so far.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// When the flood started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Stops the flooders, waits for them, and closes their sockets.
    pub(crate) fn stop(self) -> Arc<Counters> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        self.counters
    }

    fn spawn(
        threads: usize,
        name: &str,
        body: impl Fn(&AtomicBool, &Counters) + Send + Sync + 'static,
    ) -> Result<Flood, BenchError> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let body = Arc::new(body);
        let mut flood = Flood {
            stop: Arc::clone(&stop),
            counters: Arc::clone(&counters),
            threads: Vec::new(),
            started: Instant::now(),
        };
        for i in 0..threads {
            let (stop, counters, body) =
                (Arc::clone(&stop), Arc::clone(&counters), Arc::clone(&body));
            let spawned = thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || body(&stop, &counters));
            match spawned {
                Ok(handle) => flood.threads.push(handle),
                Err(e) => {
                    // Stop the threads already running before reporting.
                    flood.stop();
                    return Err(BenchError::io("starting a flooder thread", e));
                }
            }
        }
        Ok(flood)
    }
}

/// Opens `count` connections to `addr`, each sending half a handshake message and then
/// nothing; reopens those the master closes, at most [`RECONNECTS_PER_S`] a second.
pub(crate) fn idle_sockets(addr: SocketAddr, count: usize) -> Result<Flood, BenchError> {
    Flood::spawn(1, "flood-idle", move |stop, counters| {
        let mut sockets: Vec<Option<TcpStream>> = Vec::with_capacity(count);
        for _ in 0..count {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            sockets.push(open_idle(addr, counters));
        }
        let begun = Instant::now();
        let mut reopened = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let budget = (begun.elapsed().as_secs_f64() * RECONNECTS_PER_S as f64) as u64;
            for slot in &mut sockets {
                if slot.as_mut().is_some_and(|s| !is_open(s)) {
                    Counters::add(&counters.closed, 1);
                    *slot = None;
                }
                if slot.is_none() && reopened < budget {
                    reopened += 1;
                    *slot = open_idle(addr, counters);
                }
            }
            // Not synchronisation: the pace of the passes.
            thread::sleep(IDLE_PASS);
        }
    })
}

/// One idle socket: connected, half a handshake message written, non-blocking from then on
/// so [`is_open`] can look at it without waiting.
fn open_idle(addr: SocketAddr, counters: &Counters) -> Option<TcpStream> {
    let opened = TcpStream::connect(addr).and_then(|mut s| {
        s.write_all(&HALF_HANDSHAKE)?;
        s.set_nonblocking(true)?;
        Ok(s)
    });
    match opened {
        Ok(s) => {
            Counters::add(&counters.connects, 1);
            Counters::add(&counters.bytes, HALF_HANDSHAKE.len() as u64);
            Some(s)
        }
        Err(e) => {
            log::debug!("idle socket: {e}");
            Counters::add(&counters.connect_errors, 1);
            None
        }
    }
}

/// Whether the master still holds `socket` open (it never sends anything before our
/// handshake message is whole, so any readable state is a close).
fn is_open(socket: &mut TcpStream) -> bool {
    let mut byte = [0u8; 64];
    matches!(socket.read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

/// Writes `frame` back to back on `connections` connections to `addr` until stopped. A
/// connection the master closes is counted and replaced. With `read_replies`, a thread per
/// connection drains what the master answers; without, nothing is ever read.
pub(crate) fn replay(
    addr: SocketAddr,
    frame: Vec<u8>,
    connections: usize,
    read_replies: bool,
) -> Result<Flood, BenchError> {
    let batch: Vec<u8> = frame.repeat(BATCH_BYTES.div_ceil(frame.len()).max(1));
    Flood::spawn(connections, "flood-replay", move |stop, counters| {
        while !stop.load(Ordering::Relaxed) {
            let Some(socket) = connect_for_replay(addr, counters, read_replies) else {
                // The master refused us; try again shortly rather than spin.
                thread::sleep(WRITE_TIMEOUT);
                continue;
            };
            write_until_closed(socket, &batch, stop, counters);
        }
    })
}

fn connect_for_replay(
    addr: SocketAddr,
    counters: &Counters,
    read_replies: bool,
) -> Option<TcpStream> {
    let connected = TcpStream::connect(addr).and_then(|s| {
        s.set_nodelay(true)?;
        s.set_write_timeout(Some(WRITE_TIMEOUT))?;
        if read_replies {
            let mut reader = s.try_clone()?;
            thread::Builder::new()
                .name("flood-drain".into())
                .spawn(move || {
                    let mut sink = vec![0u8; 64 << 10];
                    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                })?;
        }
        Ok(s)
    });
    match connected {
        Ok(s) => {
            Counters::add(&counters.connects, 1);
            Some(s)
        }
        Err(e) => {
            log::debug!("replay connect: {e}");
            Counters::add(&counters.connect_errors, 1);
            None
        }
    }
}

/// Writes `batch` over and over (resuming mid-batch after a timeout, so frames stay whole)
/// until stopped or the master closes the connection.
fn write_until_closed(mut socket: TcpStream, batch: &[u8], stop: &AtomicBool, counters: &Counters) {
    let mut at = 0;
    while !stop.load(Ordering::Relaxed) {
        match socket.write(&batch[at..]) {
            Ok(0) => break,
            Ok(n) => {
                Counters::add(&counters.bytes, n as u64);
                at = (at + n) % batch.len();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("replay: the master closed the connection: {e}");
                Counters::add(&counters.closed, 1);
                return;
            }
        }
    }
    // Stopped: dropping the socket closes it (and ends its drain thread).
    let _ = socket.shutdown(std::net::Shutdown::Both);
}
