//! The master under flood: the `__serve flood-master` child (a real `start_master` with a
//! small stats endpoint beside it), the parent's handle on it (state, network counters, log
//! bytes) and the timing of a real worker process's registration.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ember_deploy::messages::{MasterAsk, MasterProtocol, MASTER_ENDPOINT_NAME};
use ember_deploy::{start_master, MasterConfig};
use rpc_env::{
    keys, message, EndpointContext, EndpointRef, HandlerResult, NetworkStats, NoMessage, Protocol,
    Reply, RpcAddress, RpcConf, RpcEndpoint, RpcEnv, RpcEnvConfig, Threading,
};

use crate::child::{self, ChildServer, SpawnOptions, DEFAULT_STARTUP_DEADLINE};
use crate::cli::SERVE_ARG;
use crate::error::BenchError;
use crate::rpc::secure_conf;
use crate::suites::cluster::WORKER_MODE;

/// The child mode that runs the master under flood.
pub(crate) const MASTER_MODE: &str = "flood-master";
/// The child's argument that authenticates the master, followed by the secret file's path.
const SECRET_FILE_ARG: &str = "--secret-file";
/// How long after the master lists a worker ALIVE the worker's own log line is waited for.
const WORKER_LOG_GRACE: Duration = Duration::from_secs(5);
/// The name of the stats endpoint that sits beside the `Master` endpoint in the child.
const STATS_NAME: &str = "flood-stats";
/// How long a worker may take to register before the run fails: far above the goal (1 s),
/// so a slow registration is reported as a figure, not as an error.
const REGISTER_DEADLINE: Duration = Duration::from_secs(60);

message! {
    /// Asks of the child's stats endpoint.
    pub(crate) enum StatsAsk {
        /// Answers with the master env's network counters (see [`counters_of`]).
        Get { reply: Reply<Vec<u64>> },
    }
}

/// The stats endpoint's protocol.
pub(crate) struct StatsProtocol;

impl Protocol for StatsProtocol {
    type Message = NoMessage;
    type Ask = StatsAsk;
    type Control = rpc_env::NoMessage;
}

/// Answers with the env's `network_stats`: the master's own view of what each flood did
/// (evictions, overflows, unroutable messages), which the flooder cannot see from outside.
struct Stats;

impl RpcEndpoint for Stats {
    type Protocol = StatsProtocol;

    /// Reading the counters takes atomics and brief inbox locks, never a wait, so the IO
    /// thread may run it.
    fn threading(&self) -> Threading {
        Threading::Inline
    }

    fn receive_and_reply(
        &mut self,
        ctx: &EndpointContext<'_, StatsProtocol>,
        ask: StatsAsk,
    ) -> HandlerResult {
        let StatsAsk::Get { reply } = ask;
        reply.send(counters_of(&ctx.env().network_stats()));
        Ok(())
    }
}

/// `stats` as a list, in [`NetworkStats`]'s field order (the wire carries a `Vec<u64>`).
fn counters_of(stats: &NetworkStats) -> Vec<u64> {
    vec![
        stats.auth_failures,
        stats.unroutable_messages,
        stats.protocol_errors,
        stats.outbox_overflows,
        stats.connections_refused,
        stats.accept_failures,
        stats.read_pauses,
        stats.bytes_read,
        stats.bytes_written,
        stats.frames_read,
        stats.open_connections,
        stats.inbox_messages,
        stats.frames_written,
    ]
}

/// The inverse of [`counters_of`]; missing values read as 0.
fn stats_of(counters: &[u64]) -> NetworkStats {
    let at = |i: usize| counters.get(i).copied().unwrap_or(0);
    NetworkStats {
        auth_failures: at(0),
        unroutable_messages: at(1),
        protocol_errors: at(2),
        outbox_overflows: at(3),
        connections_refused: at(4),
        accept_failures: at(5),
        read_pauses: at(6),
        bytes_read: at(7),
        bytes_written: at(8),
        frames_read: at(9),
        open_connections: at(10),
        inbox_messages: at(11),
        frames_written: at(12),
    }
}

/// The RPC settings of a flood run: authenticated with the secret in `secret_file`, or
/// explicitly unauthenticated (the original attack setting).
pub(crate) fn flood_conf(secret_file: Option<&str>) -> RpcConf {
    match secret_file {
        Some(file) => secure_conf(file),
        None => RpcConf::new().with(keys::AUTHENTICATE, "false"),
    }
}

/// The child side: a master on loopback (a free port) with the stats endpoint, until the
/// parent goes away; authenticated with `--secret-file PATH`.
pub(crate) fn serve_master(args: &[String]) -> Result<(), BenchError> {
    let conf = match args {
        [flag, file] if flag == SECRET_FILE_ARG => flood_conf(Some(file)),
        [] => flood_conf(None),
        _ => return Err(BenchError::new(format!("bad {MASTER_MODE} arguments"))),
    };
    let master = start_master(MasterConfig::local().with_conf(conf))
        .map_err(|e| BenchError::new(format!("starting the master: {e}")))?;
    master
        .env()
        .setup_endpoint(STATS_NAME, Stats)
        .map_err(|e| BenchError::new(format!("registering the stats endpoint: {e}")))?;
    child::announce(master.address().port())?;
    // The stdin watcher ends the process when the parent is gone.
    loop {
        thread::park();
    }
}

/// A master child process and the parent's connection to it.
pub(crate) struct MasterChild {
    /// The child; dropping it kills the master.
    server: ChildServer,
    /// The parent's client env, authenticated like the master.
    env: RpcEnv,
    /// The master endpoint, for its state.
    master: EndpointRef<MasterProtocol>,
    /// The stats endpoint beside it.
    stats: EndpointRef<StatsProtocol>,
    /// Bytes the master has written to its stderr (its log) so far.
    log_bytes: Arc<AtomicU64>,
    /// Drains the master's stderr, counting; ends when the master does.
    log_reader: JoinHandle<()>,
}

impl MasterChild {
    /// Starts a master (authenticated when `secret_file` is given) logging at `info`, as the
    /// `ember-master` daemon does by default, and connects to it.
    pub(crate) fn start(secret_file: Option<&str>) -> Result<MasterChild, BenchError> {
        let args: Vec<&str> = match secret_file {
            Some(file) => vec![SECRET_FILE_ARG, file],
            None => Vec::new(),
        };
        let options = SpawnOptions {
            env: &[("RUST_LOG", "info")],
            capture_stderr: true,
        };
        let mut server =
            ChildServer::spawn_with(MASTER_MODE, &args, &options, DEFAULT_STARTUP_DEADLINE)?;
        let stderr = server
            .take_stderr()
            .ok_or_else(|| BenchError::new("the master's stderr was not captured"))?;
        let log_bytes = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&log_bytes);
        let log_reader = thread::Builder::new()
            .name("master-log".into())
            .spawn(move || count_bytes(stderr, &counter))
            .map_err(|e| BenchError::io("starting the master-log thread", e))?;
        let env =
            RpcEnv::create(RpcEnvConfig::client("flood-bench").with_conf(flood_conf(secret_file)))
                .map_err(|e| BenchError::new(format!("starting the client env: {e}")))?;
        let address = RpcAddress::new("127.0.0.1", server.port());
        let refs = env
            .setup_endpoint_ref(&address, MASTER_ENDPOINT_NAME)
            .and_then(|master| Ok((master, env.setup_endpoint_ref(&address, STATS_NAME)?)));
        let (master, stats) = match refs {
            Ok(refs) => refs,
            Err(e) => {
                env.shutdown();
                return Err(BenchError::new(format!("looking up the master: {e}")));
            }
        };
        Ok(MasterChild {
            server,
            env,
            master,
            stats,
            log_bytes,
            log_reader,
        })
    }

    /// The master's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// The master's address.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// The master URL, `ember://127.0.0.1:port`, as a worker is given it.
    pub(crate) fn url(&self) -> String {
        format!("ember://127.0.0.1:{}", self.server.port())
    }

    /// Bytes of log the master has written so far.
    pub(crate) fn log_bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed)
    }

    /// The master env's network counters.
    pub(crate) fn network_stats(&self) -> Result<NetworkStats, BenchError> {
        self.stats
            .ask_sync(|reply| StatsAsk::Get { reply })
            .map(|counters| stats_of(&counters))
            .map_err(|e| BenchError::new(format!("asking the master for its counters: {e}")))
    }

    /// How many workers the master lists as ALIVE.
    pub(crate) fn alive_workers(&self) -> Result<usize, BenchError> {
        let state = self
            .master
            .ask_sync(|reply| MasterAsk::RequestMasterState { reply })
            .map_err(|e| BenchError::new(format!("asking the master for its state: {e}")))?;
        Ok(state.workers.iter().filter(|w| w.state == "ALIVE").count())
    }

    /// Starts a worker process (settings from `properties`) and times it from its start
    /// until the master lists it ALIVE, in ms. Waits first until no worker is ALIVE, so a
    /// worker of an earlier measurement cannot be taken for this one.
    ///
    /// Also returns when the worker logged that the master had registered it, if it did by
    /// then: the master's state is itself an ask that may wait behind a flood, so the two
    /// together say how much of the time was the registration.
    pub(crate) fn time_registration(
        &self,
        properties: &str,
    ) -> Result<(f64, Option<f64>), BenchError> {
        poll_until(Duration::from_secs(30), "no worker to be ALIVE", || {
            Ok(self.alive_workers()? == 0)
        })?;
        let exe = std::env::current_exe().map_err(|e| BenchError::io("finding ember-bench", e))?;
        let work = std::env::temp_dir().join(format!(
            "ember-bench-flood-worker-{}-{}",
            std::process::id(),
            self.server.port()
        ));
        let start = Instant::now();
        let mut worker = WorkerProcess(
            Command::new(&exe)
                .args([SERVE_ARG, WORKER_MODE, &self.url(), "--cores", "1"])
                .args(["--memory", "1g", "--properties-file", properties])
                .arg("--work-dir")
                .arg(&work)
                // At `info` the worker says when it is registered.
                .env("RUST_LOG", "info")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| BenchError::io("starting a worker process", e))?,
        );
        let worker_saw = worker
            .0
            .stderr
            .take()
            .map(|stderr| watch_worker_log(stderr, start));
        let registered = poll_until(REGISTER_DEADLINE, "the worker to be ALIVE", || {
            Ok(self.alive_workers()? > 0)
        });
        let took = start.elapsed();
        // The worker hears of its registration after the master has it, maybe well after:
        // give its line a little while, without holding up the run for long.
        let saw = worker_saw.and_then(|rx| rx.recv_timeout(WORKER_LOG_GRACE).ok());
        drop(worker);
        let _ = std::fs::remove_dir_all(&work);
        registered.map(|()| (ms(took), saw.map(ms)))
    }

    /// Kills the master and returns how many bytes it logged in all.
    pub(crate) fn stop(self) -> u64 {
        self.env.shutdown();
        self.server.stop();
        // The master is gone, so its stderr reaches end-of-file and the reader ends.
        let _ = self.log_reader.join();
        self.log_bytes.load(Ordering::Relaxed)
    }
}

/// Milliseconds in `d`.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The worker's log line that says a master registered it.
const REGISTERED_LINE: &str = "Successfully registered with master";

/// Reads a worker's log on a thread of its own (to its end, so the worker never blocks on
/// it) and sends how long after `start` it said it was registered. Other lines at `warn`
/// or above are passed on to our stderr.
fn watch_worker_log(
    stderr: impl Read + Send + 'static,
    start: Instant,
) -> mpsc::Receiver<Duration> {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("worker-log".into())
        .spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if line.contains(REGISTERED_LINE) {
                    let _ = tx.send(start.elapsed());
                } else if line.contains(" WARN ") || line.contains(" ERROR ") {
                    eprintln!("[flood worker] {line}");
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("could not start the worker-log thread: {e}");
    }
    rx
}

/// Reads `from` to its end, adding the bytes to `counter`.
fn count_bytes(mut from: impl Read, counter: &AtomicU64) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                counter.fetch_add(n as u64, Ordering::Relaxed);
                if log::log_enabled!(log::Level::Trace) {
                    log::trace!("master: {}", String::from_utf8_lossy(&buf[..n]).trim_end());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Calls `done` every millisecond until it says yes, failing after `limit`.
pub(crate) fn poll_until(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> Result<bool, BenchError>,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + limit;
    loop {
        if done()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::new(format!(
                "gave up waiting for {what} after {limit:?}"
            )));
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// A worker process; killed and reaped when dropped.
struct WorkerProcess(Child);

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
