//! The `flood` suite: the master's memory and a real worker's registration while peers
//! flood it on loopback (Ember issue 11), each flood against a fresh master process so its
//! RSS is its own:
//!
//! - `flood.idle_rss_mib`: the masters' resident memory before their floods (the largest);
//! - `flood.F.peak_rss_mib`: the master's peak resident memory during flood F (the larger of
//!   `VmRSS` sampled every 10 ms and `VmHWM` at the end); the goal is within 64 MiB of idle;
//! - `flood.F.register_ms`: a worker process started during flood F until the master lists
//!   it ALIVE; the goal is under 1 s. The state asks that find it out may themselves wait
//!   behind the flood, so a progress line also gives the worker's own view (when it logged
//!   its registration);
//! - `flood.unknown_endpoint.log_kib`: what the master logged (at `info`, the daemon's
//!   default) from the start of that flood to its end.
//!
//! The floods F:
//!
//! - `idle_sockets`: 1,000 connections to an authenticated master, each with half a
//!   handshake message sent; the master closes the oldest beyond its 64 handshake slots, and
//!   the flooder opens new ones in their place (500 a second);
//! - `slow_endpoint`: one-way messages (`KillExecutors` of no executors of an unknown
//!   application) to the `Master` endpoint, which handles one at a time, from 4 connections
//!   as fast as they take them;
//! - `unread_asks`: `RequestMasterState` asks on one connection that never reads the answers:
//!   the master must close it at `ember.rpc.outbox.maxBytes` (16 MiB); the flooder then opens
//!   another;
//! - `unknown_endpoint`: one-way messages to an endpoint name the master does not have.
//!
//! Floods 2 to 4 use frames any peer may send, so their master has `ember.authenticate=false`
//! (the setting, the worst case); the frames are recorded from a real client-mode env
//! through a relay ([`record`]). Progress lines on stderr say what each flood did as the
//! flooder saw it (connections, closes, bytes) and as the master counted it
//! (`RpcEnv::network_stats`, asked of a small endpoint beside the master). Each flood lasts 10 s (2 s with `--quick`), or longer if the
//! worker takes longer to register; the worker starts once the flood is under way.

mod floods;
mod master;
mod record;
pub(crate) mod rss;

use std::time::Duration;

use ember_deploy::messages::{MasterAsk, MasterMessage, MasterProtocol, MASTER_ENDPOINT_NAME};
use rpc_env::{EndpointRef, NetworkStats};

use crate::cli::Options;
use crate::error::BenchError;
use crate::report::Metric;
use crate::rpc::SecretFile;

use floods::{Counters, Flood};
use master::{flood_conf, poll_until, MasterChild};
use record::{record_frame, Traffic};

pub(crate) use master::{serve_master, MASTER_MODE};

/// Connections the idle-socket flood keeps open.
const IDLE_SOCKETS: usize = 1_000;
/// Connections the slow-endpoint and unknown-endpoint floods write on.
const REPLAY_CONNECTIONS: usize = 4;
/// An endpoint name the master does not have.
const UNKNOWN_ENDPOINT: &str = "NoSuchEndpoint";
/// How long the slow-endpoint flood may take to fill the master's inbox before the worker
/// starts anyway (it need not: a master that keeps up is no failure).
const FULL_INBOX_WAIT: Duration = Duration::from_secs(3);
/// The memory growth the issue allows a flood, in MiB.
const RSS_GOAL_MIB: f64 = 64.0;
/// The registration time the issue allows, in ms.
const REGISTER_GOAL_MS: f64 = 1_000.0;

/// The four floods, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    IdleSockets,
    SlowEndpoint,
    UnreadAsks,
    UnknownEndpoint,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::IdleSockets,
        Kind::SlowEndpoint,
        Kind::UnreadAsks,
        Kind::UnknownEndpoint,
    ];

    /// The flood's name in its metrics.
    fn name(self) -> &'static str {
        match self {
            Kind::IdleSockets => "idle_sockets",
            Kind::SlowEndpoint => "slow_endpoint",
            Kind::UnreadAsks => "unread_asks",
            Kind::UnknownEndpoint => "unknown_endpoint",
        }
    }

    /// Its metric names: peak RSS and registration time (spelled out: scripts key on them).
    fn metric_names(self) -> (&'static str, &'static str) {
        match self {
            Kind::IdleSockets => (
                "flood.idle_sockets.peak_rss_mib",
                "flood.idle_sockets.register_ms",
            ),
            Kind::SlowEndpoint => (
                "flood.slow_endpoint.peak_rss_mib",
                "flood.slow_endpoint.register_ms",
            ),
            Kind::UnreadAsks => (
                "flood.unread_asks.peak_rss_mib",
                "flood.unread_asks.register_ms",
            ),
            Kind::UnknownEndpoint => (
                "flood.unknown_endpoint.peak_rss_mib",
                "flood.unknown_endpoint.register_ms",
            ),
        }
    }

    /// Only the idle-socket flood needs the master to authenticate: the others send frames
    /// only an unauthenticated master would take from a stranger.
    fn authenticated(self) -> bool {
        self == Kind::IdleSockets
    }
}

/// What one flood measured.
struct Outcome {
    idle_kib: f64,
    peak_kib: f64,
    register_ms: f64,
    log_bytes: u64,
}

/// Runs the suite.
pub(crate) fn run(opts: &Options) -> Result<Vec<Metric>, BenchError> {
    let duration = if opts.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    };
    raise_fd_limit(IDLE_SOCKETS as u64 * 2 + 512);
    let secret = SecretFile::create()?;
    let work = Scratch::create()?;
    let mut outcomes = Vec::new();
    for kind in Kind::ALL {
        let secret_file = kind.authenticated().then_some(secret.path.as_str());
        let properties = work.worker_properties(secret_file)?;
        eprintln!("[flood] measuring flood.{} ({duration:?}) ...", kind.name());
        outcomes.push((kind, measure(kind, secret_file, &properties, duration)?));
    }

    let idle = outcomes.iter().map(|(_, o)| o.idle_kib).fold(0.0, f64::max);
    let mut metrics = vec![Metric::new(
        "flood.idle_rss_mib",
        round1(rss::mib(idle)),
        "MiB",
    )];
    for (kind, outcome) in &outcomes {
        let (peak_name, register_name) = kind.metric_names();
        let growth = rss::mib(outcome.peak_kib - outcome.idle_kib);
        if growth > RSS_GOAL_MIB {
            eprintln!(
                "[flood] WARNING: flood.{} grew the master by {growth:.1} MiB (goal: {RSS_GOAL_MIB} MiB)",
                kind.name()
            );
        }
        if outcome.register_ms > REGISTER_GOAL_MS {
            eprintln!(
                "[flood] WARNING: flood.{}: the worker took {:.0} ms to register (goal: {REGISTER_GOAL_MS} ms)",
                kind.name(),
                outcome.register_ms
            );
        }
        metrics.push(Metric::new(
            peak_name,
            round1(rss::mib(outcome.peak_kib)),
            "MiB",
        ));
        metrics.push(Metric::new(
            register_name,
            round1(outcome.register_ms),
            "ms",
        ));
        if *kind == Kind::UnknownEndpoint {
            let kib = outcome.log_bytes as f64 / 1024.0;
            metrics.push(Metric::new(
                "flood.unknown_endpoint.log_kib",
                round1(kib),
                "KiB",
            ));
        }
    }
    Ok(metrics)
}

/// One flood against a fresh master.
fn measure(
    kind: Kind,
    secret_file: Option<&str>,
    properties: &str,
    duration: Duration,
) -> Result<Outcome, BenchError> {
    let master = MasterChild::start(secret_file)?;
    let measured = measure_on(&master, kind, secret_file, properties, duration);
    let log_total = master.stop();
    measured.map(|(mut outcome, log_before)| {
        outcome.log_bytes = log_total.saturating_sub(log_before);
        outcome
    })
}

/// One flood against `master`; returns the outcome (its log bytes still 0) and how many
/// bytes the master had logged when the flood began.
fn measure_on(
    master: &MasterChild,
    kind: Kind,
    secret_file: Option<&str>,
    properties: &str,
    duration: Duration,
) -> Result<(Outcome, u64), BenchError> {
    let frame = match kind {
        Kind::IdleSockets => Vec::new(),
        _ => recorded_frame(master, kind, secret_file)?,
    };
    // Settled: the parent's connection, the stats endpoint and one recording are in.
    master.alive_workers()?;
    let idle_kib = rss::status_kib(master.pid(), "VmRSS")?;
    let before = master.network_stats()?;
    let log_before = master.log_bytes();

    let overflows_before = kernel_listen_overflows();
    let sampler = rss::Sampler::start(master.pid())?;
    let flood = start(kind, master, frame)?;
    let outcome = (|| {
        if kind == Kind::IdleSockets {
            // The flood's opening burst is its hardest moment for a newcomer: a figure for
            // it too (on stderr only; the metric is the steady state, as for the others).
            match master.time_registration(properties) {
                Ok((ms, _)) => eprintln!(
                    "[flood]   during the opening burst, the master listed a worker ALIVE after {ms:.1} ms"
                ),
                Err(e) => eprintln!("[flood]   during the opening burst: {e}"),
            }
        }
        wait_under_way(kind, &flood, master, &before)?;
        eprintln!(
            "[flood]   under way after {} ms; starting a worker",
            flood.started().elapsed().as_millis()
        );
        let (register_ms, worker_saw) = master.time_registration(properties)?;
        let worker_saw = worker_saw.map_or("not yet".to_owned(), |ms| format!("after {ms:.1} ms"));
        eprintln!(
            "[flood]   the master listed the worker ALIVE after {register_ms:.1} ms (the worker logged its registration {worker_saw})"
        );
        // Keep flooding for the rest of the duration: the memory figure is for all of it.
        let remaining = duration.saturating_sub(flood.started().elapsed());
        std::thread::sleep(remaining);
        if kind == Kind::UnreadAsks {
            // The point of this flood: the master closes the connection at the cap.
            poll_until(
                Duration::from_secs(60),
                "the master to close an unread connection",
                || Ok(Counters::get(&flood.counters().closed) > 0),
            )?;
        }
        Ok(register_ms)
    })();
    let ran_for = flood.started().elapsed();
    let counters = flood.stop();
    let sampled_kib = sampler.stop();
    let register_ms = outcome?;
    let hwm_kib = rss::status_kib(master.pid(), "VmHWM")?;
    let end_kib = rss::status_kib(master.pid(), "VmRSS")?;
    let after = master.network_stats()?;
    report_flood(kind, &counters, ran_for, &before, &after);
    if let (Some(before), Some(after)) = (overflows_before, kernel_listen_overflows()) {
        // Machine-wide, but on a quiet loopback they are ours: each is a SYN dropped at a full
        // accept queue, which costs the connecting peer a retransmit (1 s, then 2 s...).
        eprintln!(
            "[flood]   kernel: ListenOverflows +{} (whole machine)",
            after.saturating_sub(before)
        );
    }
    eprintln!(
        "[flood]   master RSS: idle {:.1} MiB, peak sampled {:.1} MiB, VmHWM {:.1} MiB, {:.1} MiB once the flood stopped",
        rss::mib(idle_kib),
        rss::mib(sampled_kib),
        rss::mib(hwm_kib),
        rss::mib(end_kib)
    );
    let outcome = Outcome {
        idle_kib,
        peak_kib: sampled_kib.max(hwm_kib),
        register_ms,
        log_bytes: 0,
    };
    Ok((outcome, log_before))
}

/// A valid message the master handles and ignores: kill no executors of an application it
/// does not know (its warning is rate-limited).
fn kill_no_executors() -> MasterMessage {
    MasterMessage::KillExecutors {
        app_id: ember_deploy::AppId("app-00000000000000-0000".to_string()),
        exec_ids: Vec::new(),
    }
}

/// The frame flood `kind` replays, recorded from a real env talking to `master`.
fn recorded_frame(
    master: &MasterChild,
    kind: Kind,
    secret_file: Option<&str>,
) -> Result<Vec<u8>, BenchError> {
    let conf = flood_conf(secret_file);
    let traffic: Traffic<'_, MasterProtocol> = match kind {
        Kind::IdleSockets | Kind::SlowEndpoint => Traffic::Send {
            name: MASTER_ENDPOINT_NAME,
            message: kill_no_executors,
        },
        Kind::UnreadAsks => Traffic::Ask {
            name: MASTER_ENDPOINT_NAME,
            ask: ask_state,
        },
        Kind::UnknownEndpoint => Traffic::Send {
            name: UNKNOWN_ENDPOINT,
            message: kill_no_executors,
        },
    };
    let frame = record_frame(master.addr(), conf, traffic)?;
    log::info!(
        "recorded a {}-byte frame for flood.{}",
        frame.len(),
        kind.name()
    );
    Ok(frame)
}

/// `RequestMasterState`, waited for.
fn ask_state(master: &EndpointRef<MasterProtocol>) -> Result<(), String> {
    master
        .ask_sync(|reply| MasterAsk::RequestMasterState { reply })
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Starts flood `kind` against `master`.
fn start(kind: Kind, master: &MasterChild, frame: Vec<u8>) -> Result<Flood, BenchError> {
    match kind {
        Kind::IdleSockets => floods::idle_sockets(master.addr(), IDLE_SOCKETS),
        Kind::SlowEndpoint | Kind::UnknownEndpoint => {
            floods::replay(master.addr(), frame, REPLAY_CONNECTIONS, true)
        }
        Kind::UnreadAsks => floods::replay(master.addr(), frame, 1, false),
    }
}

/// Waits until the flood is in full swing: every idle socket opened once, or a few MiB of
/// frames written; for the slow endpoint, also until its inbox has reached its cap (the
/// master paused reading a connection), which is when a worker's message waits longest.
fn wait_under_way(
    kind: Kind,
    flood: &Flood,
    master: &MasterChild,
    before: &NetworkStats,
) -> Result<(), BenchError> {
    let counters = flood.counters();
    poll_until(
        Duration::from_secs(30),
        "the flood to get under way",
        || {
            Ok(match kind {
                Kind::IdleSockets => {
                    Counters::get(&counters.connects) + Counters::get(&counters.connect_errors)
                        >= IDLE_SOCKETS as u64
                }
                _ => Counters::get(&counters.bytes) >= 4 << 20,
            })
        },
    )?;
    if kind == Kind::SlowEndpoint {
        let full = poll_until(FULL_INBOX_WAIT, "the inbox to fill", || {
            Ok(master.network_stats()?.read_pauses > before.read_pauses)
        });
        if full.is_err() {
            eprintln!("[flood]   the master's inbox never reached its cap; going on anyway");
        }
    }
    Ok(())
}

/// One progress line on what the flood did, as the flooder and the master saw it.
fn report_flood(
    kind: Kind,
    counters: &Counters,
    ran_for: Duration,
    before: &NetworkStats,
    after: &NetworkStats,
) {
    let secs = ran_for.as_secs_f64();
    let get = Counters::get;
    eprintln!(
        "[flood]   {}: {:.1} s, {} connections opened ({} failed), {} closed by the master, {:.1} MiB written ({:.0} MiB/s)",
        kind.name(),
        secs,
        get(&counters.connects),
        get(&counters.connect_errors),
        get(&counters.closed),
        get(&counters.bytes) as f64 / f64::from(1 << 20),
        get(&counters.bytes) as f64 / f64::from(1 << 20) / secs
    );
    eprintln!(
        "[flood]   master counters: auth_failures +{}, unroutable +{}, protocol_errors +{}, outbox_overflows +{}, refused +{}, accept_failures +{}, read_pauses +{}",
        after.auth_failures - before.auth_failures,
        after.unroutable_messages - before.unroutable_messages,
        after.protocol_errors - before.protocol_errors,
        after.outbox_overflows - before.outbox_overflows,
        after.connections_refused - before.connections_refused,
        after.accept_failures - before.accept_failures,
        after.read_pauses - before.read_pauses,
    );
}

/// The kernel's count of SYNs dropped because a listener's accept queue was full
/// (`TcpExt: ListenOverflows` in /proc/net/netstat), if it can be read.
fn kernel_listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut rows = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (rows.next()?, rows.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// `value` to one decimal, as the metric prints it anyway.
fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Raises this process's soft limit on open files to `wanted` (within the hard limit), so
/// the idle-socket flood fits; the master child inherits it. A failure only costs sockets.
fn raise_fd_limit(wanted: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < wanted => {
            let new = wanted.min(hard);
            match setrlimit(Resource::RLIMIT_NOFILE, new, hard) {
                Ok(()) => log::info!("raised the open-file limit from {soft} to {new}"),
                Err(e) => log::warn!("could not raise the open-file limit from {soft}: {e}"),
            }
        }
        Ok(_) => {}
        Err(e) => log::warn!("could not read the open-file limit: {e}"),
    }
}

/// A scratch directory for the workers' properties files, removed when dropped.
struct Scratch {
    dir: std::path::PathBuf,
}

impl Scratch {
    fn create() -> Result<Scratch, BenchError> {
        let dir = std::env::temp_dir().join(format!("ember-bench-flood-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| BenchError::io(dir.display().to_string(), e))?;
        Ok(Scratch { dir })
    }

    /// A worker properties file that authenticates with `secret_file`, or turns
    /// authentication off; returns its path.
    fn worker_properties(&self, secret_file: Option<&str>) -> Result<String, BenchError> {
        let (name, text) = match secret_file {
            Some(file) => (
                "secure.conf",
                format!("ember.authenticate=true\nember.authenticate.secret.file={file}\n"),
            ),
            None => ("plain.conf", "ember.authenticate=false\n".to_string()),
        };
        let path = self.dir.join(name);
        std::fs::write(&path, text).map_err(|e| BenchError::io(path.display().to_string(), e))?;
        Ok(path.display().to_string())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
