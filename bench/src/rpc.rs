//! rpc-env measurements for the `rpc` suite, against an echo server in a child process.
//!
//! - `rpc.ask_p50_us`, `rpc.ask_p99_us`: sequential asks of a 64-byte payload to an echo
//!   endpoint, each timed from `ask` to the answer in hand;
//! - `rpc.send_msgs_per_s`: one-way 64-byte sends, counted when the receiving endpoint has
//!   handled the last one (an ask queued behind them on the same connection answers only
//!   then, because per-peer order is FIFO and the endpoint is serial);
//! - `rpc.ask_pipelined_per_s`: asks with 256 in flight;
//! - `rpc.ask_cpu_us`: CPU time both processes spent per sequential ask (user + system), so
//!   latency bought with spinning shows its price;
//! - `rpc.paced_ask_cpu_us`: CPU time per ask when asks come 500 us apart, so that every
//!   spin window closes unanswered (what a spin costs a cluster at rest);
//! - `rpc.idle_cpu_pct`: CPU both processes use while connected and idle, in % of one core;
//! - the same again as `rpc.spin.*`, with `ember.rpc.io.spinWait` on both sides: askers and
//!   IO threads poll a while before they park;
//! - the same again as `rpc.secure.*`, with both envs authenticated and encrypted
//!   (`ember.authenticate=true`, the secret in a 0600 file): the price of the Noise handshake's
//!   AES-256-GCM records on every byte.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rpc_env::{
    keys, message, EndpointContext, EndpointRef, HandlerResult, Protocol, Reply, RpcAddress,
    RpcConf, RpcEndpoint, RpcEnv, RpcEnvConfig, Threading,
};

use crate::child::{self, ChildServer};
use crate::cli::Options;
use crate::error::BenchError;
use crate::report::Metric;
use crate::stats;

/// The child mode that serves the echo endpoint.
pub(crate) const ECHO_MODE: &str = "rpc-echo";
pub(crate) const ECHO_NAME: &str = "echo";
const PAYLOAD: usize = 64;
const IN_FLIGHT: usize = 256;
/// The pause between paced asks: past the spin of `rpc.spin.*`, as between the heartbeats
/// and status updates of a cluster at rest.
const PACE: Duration = Duration::from_micros(500);

message! {
    /// One-way messages to the echo endpoint.
    pub(crate) enum BenchMessage {
        /// Counted and dropped.
        Payload { data: Bytes },
    }
}

message! {
    /// Asks of the echo endpoint.
    pub(crate) enum BenchAsk {
        /// Answers with `data`.
        Echo { data: Bytes, reply: Reply<Bytes> },
        /// Answers with how many payloads were received so far.
        Count { reply: Reply<u64> },
    }
}

/// The echo endpoint's protocol.
pub(crate) struct BenchProtocol;

impl Protocol for BenchProtocol {
    type Message = BenchMessage;
    type Ask = BenchAsk;
    type Control = rpc_env::NoMessage;
}

/// The echo endpoint: answers `Echo` with its data and counts payloads.
pub(crate) struct Echo {
    received: u64,
}

impl Echo {
    /// An echo endpoint that has counted nothing yet.
    pub(crate) fn new() -> Echo {
        Echo { received: 0 }
    }
}

impl RpcEndpoint for Echo {
    type Protocol = BenchProtocol;

    /// The echo handlers answer at once and never block, so the IO thread may run them.
    fn threading(&self) -> Threading {
        if std::env::var_os("EMBER_BENCH_SHARED").is_some() {
            return Threading::Shared;
        }
        Threading::Inline
    }

    fn receive(
        &mut self,
        _: &EndpointContext<'_, BenchProtocol>,
        msg: BenchMessage,
    ) -> HandlerResult {
        let BenchMessage::Payload { data } = msg;
        self.received += 1;
        drop(data);
        Ok(())
    }

    fn receive_and_reply(
        &mut self,
        _: &EndpointContext<'_, BenchProtocol>,
        ask: BenchAsk,
    ) -> HandlerResult {
        match ask {
            BenchAsk::Echo { data, reply } => reply.send(data),
            BenchAsk::Count { reply } => reply.send(self.received),
        }
        Ok(())
    }
}

pub(crate) fn rpc_error(context: &str) -> impl Fn(rpc_env::RpcError) -> BenchError + '_ {
    move |e| BenchError::new(format!("{context}: {e}"))
}

/// The child's argument that turns authentication on, followed by the secret file's path.
const SECRET_FILE_ARG: &str = "--secret-file";

/// Settings that authenticate and encrypt with the secret in `file`.
pub(crate) fn secure_conf(file: &str) -> RpcConf {
    RpcConf::new()
        .with(keys::AUTHENTICATE, "true")
        .with(keys::AUTHENTICATE_SECRET_FILE, file)
}

/// The flag that gives the echo server its spin (`ember.rpc.io.spinWait`).
const SPIN_WAIT_ARG: &str = "--spin-wait";

/// The spin of the `rpc.spin.*` measurements: longer than the gap between one answer and
/// the next ask of a sequential loop, short enough that a thread left waiting longer
/// parks soon.
const SPIN_WAIT: &str = "50us";

/// The settings of one family of measurements, the same on both sides.
struct Setting<'a> {
    /// The family: `rpc`, `rpc.spin` or `rpc.secure`.
    prefix: &'static str,
    /// Authenticated and encrypted with the secret in this file.
    secret_file: Option<&'a str>,
    /// `ember.rpc.io.spinWait`, if set.
    spin_wait: Option<&'static str>,
}

impl Setting<'_> {
    /// The echo server's arguments.
    fn server_args(&self) -> Vec<&str> {
        let mut args = Vec::new();
        if let Some(file) = self.secret_file {
            args.extend([SECRET_FILE_ARG, file]);
        }
        if let Some(spin) = self.spin_wait {
            args.extend([SPIN_WAIT_ARG, spin]);
        }
        args
    }

    /// The client env's settings.
    fn conf(&self) -> RpcConf {
        let conf = match self.secret_file {
            Some(file) => secure_conf(file),
            None => RpcConf::new(),
        };
        match self.spin_wait {
            Some(spin) => conf.with(keys::SPIN_WAIT, spin),
            None => conf,
        }
    }
}

/// The child side: a server env with the echo endpoint, until the parent goes away;
/// authenticated with `--secret-file PATH`, spinning with `--spin-wait DURATION`.
pub(crate) fn serve_echo(args: &[String]) -> Result<(), BenchError> {
    let mut conf = RpcConf::new();
    for pair in args.chunks(2) {
        match pair {
            [flag, file] if flag == SECRET_FILE_ARG => {
                for (key, value) in secure_conf(file).iter() {
                    conf.set(key, value);
                }
            }
            [flag, spin] if flag == SPIN_WAIT_ARG => {
                conf.set(keys::SPIN_WAIT, spin.as_str());
            }
            other => {
                return Err(BenchError::new(format!(
                    "unexpected echo server arguments: {other:?}"
                )))
            }
        }
    }
    let env = RpcEnv::create(RpcEnvConfig::server("bench-server", "127.0.0.1", 0).with_conf(conf))
        .map_err(rpc_error("starting the server env"))?;
    env.setup_endpoint(ECHO_NAME, Echo { received: 0 })
        .map_err(rpc_error("registering the echo endpoint"))?;
    let port = env.address().map(|a| a.port()).unwrap_or(0);
    child::announce(port)?;
    // The stdin watcher ends the process when the parent is gone.
    loop {
        std::thread::park();
    }
}

/// Measures rpc-env's ask and send paths: in the clear, with the spin on, and then
/// authenticated.
pub(crate) fn measure(opts: &Options) -> Result<Vec<Metric>, BenchError> {
    let plain = Setting {
        prefix: "rpc",
        secret_file: None,
        spin_wait: None,
    };
    let mut metrics = measure_one(opts, &plain)?;
    eprintln!("[rpc] again with {} = {SPIN_WAIT} ...", keys::SPIN_WAIT);
    let spin = Setting {
        prefix: "rpc.spin",
        secret_file: None,
        spin_wait: Some(SPIN_WAIT),
    };
    metrics.extend(measure_one(opts, &spin)?);
    let secret = SecretFile::create()?;
    eprintln!("[rpc] again with authentication and encryption ...");
    let secure = Setting {
        prefix: "rpc.secure",
        secret_file: Some(&secret.path),
        spin_wait: None,
    };
    metrics.extend(measure_one(opts, &secure)?);
    Ok(metrics)
}

/// One run of every measurement against a fresh server, metrics named `<prefix>.<name>`.
fn measure_one(opts: &Options, setting: &Setting<'_>) -> Result<Vec<Metric>, BenchError> {
    let server = ChildServer::spawn(ECHO_MODE, &setting.server_args())?;
    let env = RpcEnv::create(RpcEnvConfig::client("bench-client").with_conf(setting.conf()))
        .map_err(rpc_error("starting the client env"))?;
    let result = measure_with(
        &env,
        &RpcAddress::new("127.0.0.1", server.port()),
        server.pid(),
        opts,
        setting.prefix,
    );
    env.shutdown();
    result
}

/// A fresh random secret in a file only this user can read, removed when dropped.
pub(crate) struct SecretFile {
    /// Where the secret is.
    pub(crate) path: String,
}

impl SecretFile {
    /// Writes a fresh 32-byte random secret (hex) to a new 0600 file in the temp directory.
    pub(crate) fn create() -> Result<SecretFile, BenchError> {
        use std::io::{Read, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let mut random = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut random))
            .map_err(|e| BenchError::io("/dev/urandom", e))?;
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let path = std::env::temp_dir().join(format!("ember-bench-secret-{}", std::process::id()));
        let path_text = path.display().to_string();
        let _ = std::fs::remove_file(&path);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(hex.as_bytes()))
            .map_err(|e| BenchError::io(&path_text, e))?;
        Ok(SecretFile { path: path_text })
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn measure_with(
    env: &RpcEnv,
    server: &RpcAddress,
    server_pid: u32,
    opts: &Options,
    prefix: &str,
) -> Result<Vec<Metric>, BenchError> {
    let name = |metric: &str| metric_name(prefix, metric);
    let echo: EndpointRef<BenchProtocol> = env
        .setup_endpoint_ref(server, ECHO_NAME)
        .map_err(rpc_error("looking up the echo endpoint"))?;
    let data = Bytes::from(vec![7u8; PAYLOAD]);
    let mut metrics = Vec::new();

    eprintln!("[rpc] measuring {prefix}.ask latency ...");
    let asks = opts.iterations(20_000, 2_000);
    let mut samples = Vec::with_capacity(asks);
    let mut cpu_before = None;
    for i in 0..(asks + asks / 10) {
        if i == asks / 10 {
            cpu_before = Some(cpu_time(std::process::id())? + cpu_time(server_pid)?);
        }
        let start = Instant::now();
        let answer = echo
            .ask_sync(|reply| BenchAsk::Echo {
                data: data.clone(),
                reply,
            })
            .map_err(rpc_error("asking the echo endpoint"))?;
        let took = start.elapsed();
        if answer.len() != PAYLOAD {
            return Err(BenchError::new(
                "the echo endpoint answered with the wrong payload",
            ));
        }
        // The first tenth warms up connections, caches and allocators.
        if i >= asks / 10 {
            samples.push(took.as_secs_f64() * 1e6);
        }
    }
    let cpu_after = cpu_time(std::process::id())? + cpu_time(server_pid)?;
    let cpu_per_ask =
        (cpu_after - cpu_before.unwrap_or(cpu_after)).as_secs_f64() * 1e6 / asks as f64;
    stats::sort_samples(&mut samples);
    metrics.push(Metric::new(
        name("ask_p50_us"),
        stats::percentile(&samples, 50.0),
        "us",
    ));
    metrics.push(Metric::new(
        name("ask_p99_us"),
        stats::percentile(&samples, 99.0),
        "us",
    ));
    metrics.push(Metric::new(name("ask_cpu_us"), cpu_per_ask, "us"));

    eprintln!("[rpc] measuring {prefix}.send throughput ...");
    let sends = opts.iterations(1_000_000, 100_000) as u64;
    let before = count(&echo)?;
    let start = Instant::now();
    for _ in 0..sends {
        echo.send(BenchMessage::Payload { data: data.clone() })
            .map_err(rpc_error("sending to the echo endpoint"))?;
    }
    let after = count(&echo)?;
    let took = start.elapsed();
    if after - before != sends {
        return Err(BenchError::new(format!(
            "the echo endpoint handled {} of {sends} sends",
            after - before
        )));
    }
    metrics.push(Metric::new(
        name("send_msgs_per_s"),
        per_second(sends, took),
        "msgs/s",
    ));

    eprintln!("[rpc] measuring {prefix}.ask pipelined throughput ...");
    let pipelined = opts.iterations(500_000, 50_000) as u64;
    let start = Instant::now();
    let mut window = VecDeque::with_capacity(IN_FLIGHT);
    for _ in 0..pipelined {
        if window.len() == IN_FLIGHT {
            wait_echo(window.pop_front())?;
        }
        window.push_back(echo.ask(|reply| BenchAsk::Echo {
            data: data.clone(),
            reply,
        }));
    }
    while let Some(handle) = window.pop_front() {
        wait_echo(Some(handle))?;
    }
    let took = start.elapsed();
    metrics.push(Metric::new(
        name("ask_pipelined_per_s"),
        per_second(pipelined, took),
        "asks/s",
    ));

    // Paced: asks with a pause between them longer than any spin window, so a spin
    // that outlives each answer is paid in full on every ask, and no wakeup is saved.
    eprintln!("[rpc] measuring {prefix}.paced ask CPU ...");
    let paced = opts.iterations(4_000, 500);
    let cpu_before = cpu_time(std::process::id())? + cpu_time(server_pid)?;
    for _ in 0..paced {
        std::thread::sleep(PACE);
        echo.ask_sync(|reply| BenchAsk::Echo {
            data: data.clone(),
            reply,
        })
        .map_err(rpc_error("asking the echo endpoint"))?;
    }
    let cpu_after = cpu_time(std::process::id())? + cpu_time(server_pid)?;
    let cpu_per_paced = (cpu_after - cpu_before).as_secs_f64() * 1e6 / paced as f64;
    metrics.push(Metric::new(name("paced_ask_cpu_us"), cpu_per_paced, "us"));

    // Idle: both envs connected, nothing sent. A spin that outlived its activity would
    // show here.
    eprintln!("[rpc] measuring {prefix}.idle CPU ...");
    let idle = if opts.quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(3)
    };
    // Past any spin window of the last measurement.
    std::thread::sleep(Duration::from_millis(50));
    let cpu_before = cpu_time(std::process::id())? + cpu_time(server_pid)?;
    let start = Instant::now();
    std::thread::sleep(idle);
    let cpu_after = cpu_time(std::process::id())? + cpu_time(server_pid)?;
    let idle_pct = (cpu_after - cpu_before).as_secs_f64() * 100.0 / start.elapsed().as_secs_f64();
    metrics.push(Metric::new(name("idle_cpu_pct"), idle_pct, "%"));
    Ok(metrics)
}

/// The fixed name of `metric` in the `prefix` family (names are `&'static`: scripts key on
/// them, so they are spelled out here rather than built).
fn metric_name(prefix: &str, metric: &str) -> &'static str {
    const NAMES: [(&str, &str, &str); 21] = [
        ("rpc", "ask_p50_us", "rpc.ask_p50_us"),
        ("rpc", "ask_p99_us", "rpc.ask_p99_us"),
        ("rpc", "ask_cpu_us", "rpc.ask_cpu_us"),
        ("rpc", "send_msgs_per_s", "rpc.send_msgs_per_s"),
        ("rpc", "ask_pipelined_per_s", "rpc.ask_pipelined_per_s"),
        ("rpc", "idle_cpu_pct", "rpc.idle_cpu_pct"),
        ("rpc", "paced_ask_cpu_us", "rpc.paced_ask_cpu_us"),
        ("rpc.spin", "ask_p50_us", "rpc.spin.ask_p50_us"),
        ("rpc.spin", "ask_p99_us", "rpc.spin.ask_p99_us"),
        ("rpc.spin", "ask_cpu_us", "rpc.spin.ask_cpu_us"),
        ("rpc.spin", "send_msgs_per_s", "rpc.spin.send_msgs_per_s"),
        (
            "rpc.spin",
            "ask_pipelined_per_s",
            "rpc.spin.ask_pipelined_per_s",
        ),
        ("rpc.spin", "idle_cpu_pct", "rpc.spin.idle_cpu_pct"),
        ("rpc.spin", "paced_ask_cpu_us", "rpc.spin.paced_ask_cpu_us"),
        ("rpc.secure", "ask_p50_us", "rpc.secure.ask_p50_us"),
        ("rpc.secure", "ask_p99_us", "rpc.secure.ask_p99_us"),
        ("rpc.secure", "ask_cpu_us", "rpc.secure.ask_cpu_us"),
        (
            "rpc.secure",
            "send_msgs_per_s",
            "rpc.secure.send_msgs_per_s",
        ),
        (
            "rpc.secure",
            "ask_pipelined_per_s",
            "rpc.secure.ask_pipelined_per_s",
        ),
        ("rpc.secure", "idle_cpu_pct", "rpc.secure.idle_cpu_pct"),
        (
            "rpc.secure",
            "paced_ask_cpu_us",
            "rpc.secure.paced_ask_cpu_us",
        ),
    ];
    NAMES
        .iter()
        .find(|(p, m, _)| *p == prefix && *m == metric)
        .map_or("rpc.unnamed", |(_, _, full)| full)
}

fn wait_echo(handle: Option<rpc_env::AskHandle<Bytes>>) -> Result<(), BenchError> {
    if let Some(handle) = handle {
        handle.wait().map_err(rpc_error("a pipelined ask"))?;
    }
    Ok(())
}

fn count(echo: &EndpointRef<BenchProtocol>) -> Result<u64, BenchError> {
    echo.ask_sync(|reply| BenchAsk::Count { reply })
        .map_err(rpc_error("asking the echo endpoint for its count"))
}

fn per_second(count: u64, took: Duration) -> f64 {
    (count as f64 / took.as_secs_f64()).round()
}

/// User plus system CPU time of process `pid`, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Result<Duration, BenchError> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name.
    let ticks = |i: usize| -> Result<u64, BenchError> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| BenchError::new(format!("cannot read the CPU time in {path}")))
    };
    let total = ticks(11)? + ticks(12)?;
    // Linux reports these in clock ticks of USER_HZ, which is 100 on every supported target.
    Ok(Duration::from_millis(total * 10))
}
