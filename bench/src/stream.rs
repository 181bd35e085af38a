//! File streams for the `rpc` suite: the loopback one-way floor, and rpc-env's file
//! server against it, each in a child process.
//!
//! - `tcp.stream_mib_per_s`: one TCP connection, 1 MiB writes, no RPC layer: the floor;
//! - `rpc.stream_mib_per_s`: one file streamed with `RpcEnv::open_stream` from a file
//!   server in a child process, counted when the last byte is read;
//! - `rpc.stream_server_rss_growth_mib`: how much the serving process's peak RSS grew
//!   while it served (the file is never held whole);
//! - `rpc.stream_ask_p99_us` and `rpc.stream_ask_p99_ratio`: sequential asks on the same
//!   connection while a file streams, and their p99 over that of the same asks alone. The
//!   goal is a ratio of at most 2: a stream holds other frames up by a chunk or two, not
//!   by the file.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rpc_env::{EndpointRef, RpcAddress, RpcEnv, RpcEnvConfig};

use crate::child::{self, ChildServer};
use crate::cli::Options;
use crate::error::BenchError;
use crate::report::Metric;
use crate::rpc::{rpc_error, BenchAsk, BenchProtocol, Echo, ECHO_NAME};
use crate::stats;

/// `__serve` mode of the TCP sink: reads everything, answers one byte at the end.
pub(crate) const TCP_SINK_MODE: &str = "tcp-sink";
/// `__serve` mode of the file server: serves the file given as its argument.
pub(crate) const FILE_SERVER_MODE: &str = "file-server";

const MIB: usize = 1 << 20;

/// Measures the floor, the stream, the server's memory and the asks beside a stream.
pub(crate) fn measure(opts: &Options) -> Result<Vec<Metric>, BenchError> {
    let mib = opts.iterations(256, 32);
    let mut metrics = vec![tcp_floor(mib)?];
    let file = TempFile::create(mib * MIB)?;
    let server = ChildServer::spawn(FILE_SERVER_MODE, &[&file.path.display().to_string()])?;
    let address = RpcAddress::new("127.0.0.1", server.port());
    let uri = format!("ember://{address}/files/{}", file.name());
    let env = RpcEnv::create(RpcEnvConfig::client("bench-stream"))
        .map_err(rpc_error("starting the client env"))?;
    let result = measure_streams(&env, &address, &uri, server.pid(), mib, opts);
    env.shutdown();
    metrics.extend(result?);
    Ok(metrics)
}

fn measure_streams(
    env: &RpcEnv,
    address: &RpcAddress,
    uri: &str,
    server_pid: u32,
    mib: usize,
    opts: &Options,
) -> Result<Vec<Metric>, BenchError> {
    let echo: EndpointRef<BenchProtocol> = env
        .setup_endpoint_ref(address, ECHO_NAME)
        .map_err(rpc_error("looking up the echo endpoint"))?;
    let mut metrics = Vec::new();

    eprintln!("[rpc] measuring rpc.stream ({mib} MiB) ...");
    let rss_before = peak_rss_kib(server_pid)?;
    let start = Instant::now();
    let read = drain(env, uri)?;
    let took = start.elapsed();
    if read != (mib * MIB) as u64 {
        return Err(BenchError::new(format!(
            "the stream yielded {read} of {} bytes",
            mib * MIB
        )));
    }
    metrics.push(Metric::new(
        "rpc.stream_mib_per_s",
        mib as f64 / took.as_secs_f64(),
        "MiB/s",
    ));
    let growth = peak_rss_kib(server_pid)?.saturating_sub(rss_before);
    metrics.push(Metric::new(
        "rpc.stream_server_rss_growth_mib",
        growth as f64 / 1024.0,
        "MiB",
    ));

    eprintln!("[rpc] measuring asks beside a stream ...");
    let asks = opts.iterations(5_000, 1_000);
    let alone = ask_p99(&echo, asks)?;
    let streaming = Arc::new(AtomicBool::new(true));
    let reader = {
        let (env, uri, streaming) = (env.clone(), uri.to_string(), Arc::clone(&streaming));
        std::thread::spawn(move || {
            // Streams again and again until the asks are done, so every ask has one beside it.
            let mut outcome = Ok(0);
            while streaming.load(Ordering::Acquire) && outcome.is_ok() {
                outcome = drain(&env, &uri);
            }
            outcome
        })
    };
    let beside = ask_p99(&echo, asks);
    streaming.store(false, Ordering::Release);
    let streamed = reader
        .join()
        .map_err(|_| BenchError::new("the stream reader panicked"))?;
    let beside = beside?;
    streamed?;
    metrics.push(Metric::new("rpc.stream_ask_p99_us", beside, "us"));
    let ratio = beside / alone;
    metrics.push(Metric::new("rpc.stream_ask_p99_ratio", ratio, "x"));
    if ratio > 2.0 {
        log::warn!(
            "asks beside a stream: p99 {beside:.1} us, {ratio:.2}x the {alone:.1} us alone (goal 2x)"
        );
    }
    Ok(metrics)
}

/// Reads the whole stream at `uri` and returns how many bytes it yielded.
fn drain(env: &RpcEnv, uri: &str) -> Result<u64, BenchError> {
    let mut stream = env
        .open_stream(uri)
        .map_err(rpc_error("opening the stream"))?;
    let mut buf = vec![0u8; MIB];
    let mut read = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(read),
            Ok(n) => read += n as u64,
            Err(e) => return Err(BenchError::io("reading the stream", e)),
        }
    }
}

/// The p99 of `asks` sequential 64-byte asks, in microseconds.
fn ask_p99(echo: &EndpointRef<BenchProtocol>, asks: usize) -> Result<f64, BenchError> {
    let data = Bytes::from(vec![7u8; 64]);
    let mut samples = Vec::with_capacity(asks);
    for _ in 0..asks {
        let start = Instant::now();
        echo.ask_sync(|reply| BenchAsk::Echo {
            data: data.clone(),
            reply,
        })
        .map_err(rpc_error("asking beside the stream"))?;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    stats::sort_samples(&mut samples);
    Ok(stats::percentile(&samples, 99.0))
}

/// `tcp.stream_mib_per_s`: `mib` MiB written in 1 MiB writes to a child that reads them
/// all and then answers one byte.
fn tcp_floor(mib: usize) -> Result<Metric, BenchError> {
    eprintln!("[rpc] measuring tcp.stream ({mib} MiB) ...");
    let server = ChildServer::spawn(TCP_SINK_MODE, &[&(mib * MIB).to_string()])?;
    let mut stream = TcpStream::connect_timeout(&server.addr(), Duration::from_secs(5))
        .map_err(|e| BenchError::io("connecting to the TCP sink", e))?;
    let chunk = vec![0x5au8; MIB];
    let start = Instant::now();
    for _ in 0..mib {
        stream
            .write_all(&chunk)
            .map_err(|e| BenchError::io("writing to the TCP sink", e))?;
    }
    let mut done = [0u8; 1];
    stream
        .read_exact(&mut done)
        .map_err(|e| BenchError::io("waiting for the TCP sink", e))?;
    let took = start.elapsed();
    Ok(Metric::new(
        "tcp.stream_mib_per_s",
        mib as f64 / took.as_secs_f64(),
        "MiB/s",
    ))
}

/// Child side of `__serve tcp-sink <bytes>`: reads that many bytes from one connection,
/// then writes one byte back.
pub(crate) fn serve_tcp_sink(args: &[String]) -> Result<(), BenchError> {
    let [total] = args else {
        return Err(BenchError::new("tcp-sink takes the byte count"));
    };
    let total: u64 = total
        .parse()
        .map_err(|_| BenchError::new(format!("tcp-sink: not a byte count: {total}")))?;
    let listener = child::listen_and_announce()?;
    let (mut stream, _) = listener
        .accept()
        .map_err(|e| BenchError::io("accepting a connection", e))?;
    let mut buf = vec![0u8; MIB];
    let mut read = 0u64;
    while read < total {
        match stream.read(&mut buf) {
            Ok(0) => return Err(BenchError::new("the parent closed the stream early")),
            Ok(n) => read += n as u64,
            Err(e) => return Err(BenchError::io("reading the stream", e)),
        }
    }
    stream
        .write_all(b"!")
        .map_err(|e| BenchError::io("answering the parent", e))
}

/// Child side of `__serve file-server <path>`: a server env that serves the file and has
/// the echo endpoint, until the parent goes away.
pub(crate) fn serve_file_server(args: &[String]) -> Result<(), BenchError> {
    let [path] = args else {
        return Err(BenchError::new("file-server takes the file's path"));
    };
    let env = RpcEnv::create(RpcEnvConfig::server("bench-files", "127.0.0.1", 0))
        .map_err(rpc_error("starting the server env"))?;
    env.setup_endpoint(ECHO_NAME, Echo::new())
        .map_err(rpc_error("registering the echo endpoint"))?;
    env.file_server()
        .and_then(|files| files.add_file(Path::new(path)))
        .map_err(rpc_error("serving the file"))?;
    child::announce(env.address().map(|a| a.port()).unwrap_or(0))?;
    loop {
        std::thread::park();
    }
}

/// The serving process's peak resident memory so far (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| BenchError::new(format!("no VmHWM in {path}")))
}

/// A file of `len` bytes in the temp directory, removed when dropped.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn create(len: usize) -> Result<TempFile, BenchError> {
        let path = std::env::temp_dir().join(format!("ember-bench-stream-{}", std::process::id()));
        let mut file = std::fs::File::create(&path)
            .map_err(|e| BenchError::io(path.display().to_string(), e))?;
        let chunk: Vec<u8> = (0..MIB).map(|i| (i * 31 % 251) as u8).collect();
        for _ in 0..len / MIB {
            file.write_all(&chunk)
                .map_err(|e| BenchError::io(path.display().to_string(), e))?;
        }
        Ok(TempFile { path })
    }

    fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
