//! The TCP floor: how fast a 64-byte ping-pong over loopback TCP can go with
//! no RPC layer at all, so rpc-env's numbers have a baseline to be read
//! against.
//!
//! Two variants, each against a child server process (see [`crate::child`]),
//! with `TCP_NODELAY` on both ends so Nagle's algorithm never holds a frame:
//!
//! - `tcp.pingpong_p50_us`: plain blocking sockets (`read_exact`), i.e. what
//!   a thread-per-connection design pays, wake-ups included.
//! - `tcp.pingpong_spin_p50_us`: non-blocking sockets that busy-poll `read`
//!   until data arrives, never sleeping or yielding — the physical limit when
//!   nobody pays for a wake-up. It burns a core on each side while it runs.
//!
//! Each warms up for [`WARMUP_ROUNDS`] round trips, then times every round
//! trip with `Instant` and reports the median in microseconds.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::child::{self, ChildServer};
use crate::cli::Options;
use crate::error::BenchError;
use crate::report::Metric;
use crate::stats;

/// `__serve` mode of the blocking echo server.
pub(crate) const BLOCKING_ECHO_MODE: &str = "tcp-echo";
/// `__serve` mode of the busy-polling echo server.
pub(crate) const SPIN_ECHO_MODE: &str = "tcp-spin-echo";

/// Bytes per frame, each way.
const FRAME_LEN: usize = 64;
/// Untimed round trips first, so caches, the branch predictor and the
/// kernel's socket state are warm before timing starts.
const WARMUP_ROUNDS: usize = 2_000;
/// Timed round trips in a normal run.
const ROUNDS: usize = 20_000;
/// Timed round trips under `--quick`.
const QUICK_ROUNDS: usize = 2_000;
/// The spin server exits after this long whatever happens: it burns a whole
/// core, so it must never outlive a run that went wrong. A full run takes
/// about a second.
const SPIN_SERVER_CAP: Duration = Duration::from_secs(60);
/// The client gives up on a silent server after this long (under the
/// server's cap, so a hang is reported as a timeout rather than a reset).
const CLIENT_DEADLINE: Duration = Duration::from_secs(50);
/// How many idle polls pass between clock reads in a spin loop: reading the
/// clock on every poll would slow the very loop being measured, and the
/// deadlines are tens of seconds.
const POLLS_PER_CLOCK_CHECK: u32 = 4096;

/// One of the two ways to ping-pong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Floor {
    /// Blocking reads: the reader sleeps in the kernel until data arrives.
    Blocking,
    /// Non-blocking reads in a busy loop: nobody ever sleeps.
    Spin,
}

impl Floor {
    /// The child-server mode that echoes in this style.
    fn mode(self) -> &'static str {
        match self {
            Floor::Blocking => BLOCKING_ECHO_MODE,
            Floor::Spin => SPIN_ECHO_MODE,
        }
    }

    /// The metric this style reports.
    fn metric(self) -> &'static str {
        match self {
            Floor::Blocking => "tcp.pingpong_p50_us",
            Floor::Spin => "tcp.pingpong_spin_p50_us",
        }
    }

    /// Puts a freshly connected socket into this style.
    fn configure(self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        match self {
            // A timeout turns a hung peer into an error instead of a hang.
            Floor::Blocking => stream.set_read_timeout(Some(CLIENT_DEADLINE)),
            Floor::Spin => stream.set_nonblocking(true),
        }
    }

    /// Reads one whole frame. `Ok(false)` means the peer closed the
    /// connection cleanly, before the frame's first byte.
    fn read_frame(
        self,
        stream: &mut TcpStream,
        frame: &mut [u8],
        deadline: Instant,
    ) -> io::Result<bool> {
        match self {
            Floor::Blocking => match stream.read_exact(frame) {
                Ok(()) => Ok(true),
                // read_exact cannot tell "closed between frames" from
                // "closed mid-frame"; for an echo loop both mean "done".
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
                Err(e) => Err(e),
            },
            Floor::Spin => spin_read_exact(stream, frame, deadline),
        }
    }

    /// Writes one whole frame.
    fn write_frame(
        self,
        stream: &mut TcpStream,
        frame: &[u8],
        deadline: Instant,
    ) -> io::Result<()> {
        match self {
            Floor::Blocking => stream.write_all(frame),
            Floor::Spin => spin_write_all(stream, frame, deadline),
        }
    }
}

/// Measures `tcp.pingpong_p50_us` (blocking reads on both sides).
pub(crate) fn measure_blocking(opts: &Options) -> Result<Metric, BenchError> {
    measure(Floor::Blocking, opts)
}

/// Measures `tcp.pingpong_spin_p50_us` (busy-polling on both sides).
pub(crate) fn measure_spin(opts: &Options) -> Result<Metric, BenchError> {
    measure(Floor::Spin, opts)
}

/// Starts the matching child server, ping-pongs with it and reports p50.
fn measure(floor: Floor, opts: &Options) -> Result<Metric, BenchError> {
    let rounds = opts.iterations(ROUNDS, QUICK_ROUNDS);
    let server = ChildServer::spawn(floor.mode(), &[])?;
    let mut stream = connect(server.addr(), floor)?;
    let mut samples = pingpong(&mut stream, floor, WARMUP_ROUNDS, rounds)?;
    // Close our end first so the child sees EOF and exits by itself; the
    // guard's kill is then only a backstop.
    drop(stream);
    drop(server);

    stats::sort_samples(&mut samples);
    let p = |q| stats::percentile(&samples, q);
    log::info!(
        "{}: {rounds} round trips: min {:.1} p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} us",
        floor.metric(),
        p(0.0),
        p(50.0),
        p(90.0),
        p(99.0),
        p(100.0)
    );
    Ok(Metric::new(floor.metric(), p(50.0), "us"))
}

/// Connects to the child and configures the socket for `floor`.
fn connect(addr: SocketAddr, floor: Floor) -> Result<TcpStream, BenchError> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| BenchError::io(format!("connecting to {addr}"), e))?;
    floor
        .configure(&stream)
        .map_err(|e| BenchError::io(format!("configuring the connection to {addr}"), e))?;
    Ok(stream)
}

/// Client side: `warmup` untimed then `rounds` timed round trips of one
/// frame each. Returns each timed round trip in microseconds, unsorted.
fn pingpong(
    stream: &mut TcpStream,
    floor: Floor,
    warmup: usize,
    rounds: usize,
) -> Result<Vec<f64>, BenchError> {
    let deadline = Instant::now() + CLIENT_DEADLINE;
    let mut samples = Vec::with_capacity(rounds);
    let mut out = [0xA5u8; FRAME_LEN];
    let mut back = [0u8; FRAME_LEN];
    for i in 0..warmup + rounds {
        // A different frame each round, so a stale or misaligned echo is
        // caught by the check below instead of passing silently.
        out[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let start = Instant::now();
        floor
            .write_frame(stream, &out, deadline)
            .map_err(|e| BenchError::io(format!("{}: sending round {i}", floor.metric()), e))?;
        let got = floor
            .read_frame(stream, &mut back, deadline)
            .map_err(|e| BenchError::io(format!("{}: receiving round {i}", floor.metric()), e))?;
        let elapsed = start.elapsed();
        if !got {
            return Err(BenchError::new(format!(
                "{}: the echo server closed the connection at round {i}",
                floor.metric()
            )));
        }
        if back != out {
            return Err(BenchError::new(format!(
                "{}: echo mismatch at round {i}",
                floor.metric()
            )));
        }
        if i >= warmup {
            samples.push(elapsed.as_secs_f64() * 1e6);
        }
    }
    Ok(samples)
}

/// Child side of `__serve tcp-echo`: a blocking echo server for one
/// connection; it returns when the parent disconnects.
pub(crate) fn serve_blocking_echo(args: &[String]) -> Result<(), BenchError> {
    serve(Floor::Blocking, args)
}

/// Child side of `__serve tcp-spin-echo`: a busy-polling echo server for one
/// connection; it returns when the parent disconnects, and the process exits
/// after [`SPIN_SERVER_CAP`] regardless.
pub(crate) fn serve_spin_echo(args: &[String]) -> Result<(), BenchError> {
    // Armed before binding, so the cap also covers waiting in accept().
    child::exit_after(SPIN_SERVER_CAP);
    serve(Floor::Spin, args)
}

/// Binds, announces, accepts one connection and echoes frames until it ends.
fn serve(floor: Floor, args: &[String]) -> Result<(), BenchError> {
    if !args.is_empty() {
        return Err(BenchError::new(format!(
            "{} takes no arguments, got {args:?}",
            floor.mode()
        )));
    }
    let listener = child::listen_and_announce()?;
    let stream = accept(&listener, floor)?;
    echo(stream, floor, Instant::now() + SPIN_SERVER_CAP)
}

/// Accepts one connection and configures it for `floor`.
fn accept(listener: &TcpListener, floor: Floor) -> Result<TcpStream, BenchError> {
    let (stream, peer) = listener
        .accept()
        .map_err(|e| BenchError::io("accepting a connection", e))?;
    stream
        .set_nodelay(true)
        .and_then(|()| match floor {
            // The server waits as long as the parent likes between frames;
            // it exits when the parent closes the connection or stdin.
            Floor::Blocking => Ok(()),
            Floor::Spin => stream.set_nonblocking(true),
        })
        .map_err(|e| BenchError::io(format!("configuring the connection from {peer}"), e))?;
    log::debug!("{}: serving {peer}", floor.mode());
    Ok(stream)
}

/// Echoes every frame back until the peer disconnects (which is success).
fn echo(mut stream: TcpStream, floor: Floor, deadline: Instant) -> Result<(), BenchError> {
    let mut frame = [0u8; FRAME_LEN];
    let mut frames: u64 = 0;
    loop {
        match floor.read_frame(&mut stream, &mut frame, deadline) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) if is_disconnect(&e) => break,
            Err(e) => {
                return Err(BenchError::io(
                    format!("{}: reading a frame", floor.mode()),
                    e,
                ))
            }
        }
        match floor.write_frame(&mut stream, &frame, deadline) {
            Ok(()) => frames += 1,
            Err(e) if is_disconnect(&e) => break,
            Err(e) => {
                return Err(BenchError::io(
                    format!("{}: echoing a frame", floor.mode()),
                    e,
                ))
            }
        }
    }
    log::debug!("{}: peer gone after {frames} frames", floor.mode());
    Ok(())
}

/// Whether an I/O error just means the peer went away.
fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Fills `buf` from a non-blocking stream by polling `read` in a tight loop
/// (no sleep, no yield). `Ok(false)` if the peer closed before the first
/// byte; an `UnexpectedEof` error if it closed mid-frame; `TimedOut` once
/// `deadline` passes.
fn spin_read_exact(stream: &mut impl Read, buf: &mut [u8], deadline: Instant) -> io::Result<bool> {
    let mut filled = 0;
    let mut idle_polls: u32 = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                idle_polls = idle_polls.wrapping_add(1);
                if idle_polls % POLLS_PER_CLOCK_CHECK == 0 && Instant::now() >= deadline {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Writes all of `buf` to a non-blocking stream, polling while the send
/// buffer is full (it never is for one 64-byte frame, but a short write must
/// not lose bytes). `TimedOut` once `deadline` passes.
fn spin_write_all(stream: &mut impl Write, buf: &[u8], deadline: Instant) -> io::Result<()> {
    let mut written = 0;
    let mut idle_polls: u32 = 0;
    while written < buf.len() {
        match stream.write(&buf[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                idle_polls = idle_polls.wrapping_add(1);
                if idle_polls % POLLS_PER_CLOCK_CHECK == 0 && Instant::now() >= deadline {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::thread;

    /// Runs the client and server loops over real loopback sockets, with the
    /// server on a thread instead of a child process.
    fn pingpong_in_process(floor: Floor, rounds: usize) -> Vec<f64> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server = thread::spawn(move || {
            let stream = accept(&listener, floor).expect("accept");
            echo(stream, floor, Instant::now() + Duration::from_secs(30))
        });
        let mut stream = connect(addr, floor).expect("connect");
        let samples = pingpong(&mut stream, floor, 10, rounds).expect("pingpong");
        drop(stream);
        // The server must treat our disconnect as a clean end.
        server.join().expect("server thread").expect("echo loop");
        samples
    }

    #[test]
    fn blocking_pingpong_round_trips() {
        let samples = pingpong_in_process(Floor::Blocking, 50);
        assert_eq!(samples.len(), 50);
        assert!(samples.iter().all(|&us| us > 0.0));
    }

    #[test]
    fn spin_pingpong_round_trips_and_server_exits_on_disconnect() {
        let samples = pingpong_in_process(Floor::Spin, 50);
        assert_eq!(samples.len(), 50);
    }

    #[test]
    fn spin_read_distinguishes_clean_close_from_truncation() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut buf = [0u8; 4];
        assert!(!spin_read_exact(&mut &b""[..], &mut buf, deadline).expect("clean close"));
        assert!(spin_read_exact(&mut &b"abcd"[..], &mut buf, deadline).expect("full frame"));
        assert_eq!(&buf, b"abcd");
        let err = spin_read_exact(&mut &b"ab"[..], &mut buf, deadline).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn spin_read_times_out_on_a_silent_peer() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind loopback");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let _server_side = listener.accept().expect("accept");
        client.set_nonblocking(true).expect("nonblocking");
        let deadline = Instant::now() + Duration::from_millis(20);
        let err = spin_read_exact(&mut client, &mut [0u8; 4], deadline).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
