//! The master under many workers: a real master in a child process of its own (so its CPU
//! time and memory are its own), and N simulated workers ([`Fleet`]) in this one.
//!
//! For each N, a fresh master, then:
//!
//! - `scale.master_register_s_<N>`: from the first worker's connect to the last
//!   `RegisteredWorker` (goal at 10,000: ≤ 5 s);
//! - `scale.master_place_ms_<N>`: an application asking for one executor on every worker
//!   (4 cores each, as many as the workers have, spread out) registers through a real app
//!   client; from its start to the last `LaunchExecutor` a worker receives (goal ≤ 100 ms);
//! - `scale.master_cpu_pct_<N>`: the master's CPU share of one core while the workers
//!   heartbeat at the default interval (`ember.worker.timeout` 60 s / 4 = 15 s) with their
//!   executors running (goal ≤ 2 %);
//! - `scale.master_rss_mib_<N>`: its resident memory then (goal ≤ 200 MiB);
//! - `scale.master_json_ms_<N>`: the median time to serve its status UI's `/json`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use ember_deploy::client::{AppClient, AppClientConfig, AppClientListener};
use ember_deploy::messages::{ApplicationDescription, Command, APP_CLIENT_ENDPOINT_NAME};
use ember_deploy::{AppId, WorkerId};
use rpc_env::{keys, RpcAddress, RpcConf, RpcEnv, RpcEnvConfig};

use crate::child::ChildServer;
use crate::error::BenchError;
use crate::suites::flood::rss;
use crate::suites::ui;

use super::fleet::{Fleet, WORKER_CORES};

/// The child mode: a master for many workers, announcing its UI's port.
pub(crate) const MASTER_MODE: &str = "scale-master";
/// Connections the master may hold: above the largest fleet (rpc-env's default, 4,096, is
/// a guard for a master of a few hundred workers; a cluster of 10,000 must raise it).
const MAX_CONNECTIONS: &str = "30000";
/// The default worker heartbeat: `ember.worker.timeout` (60 s) / 4.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// How long registration or placement may take before the run fails: far above the goals,
/// so that a slow master is a figure, not an error.
const PHASE_DEADLINE: Duration = Duration::from_secs(180);
/// `/json` requests timed per size.
const JSON_REQUESTS: usize = 5;

/// What one fleet size measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MasterRun {
    pub(crate) register_s: f64,
    pub(crate) place_ms: f64,
    pub(crate) cpu_pct: f64,
    pub(crate) rss_mib: f64,
    pub(crate) json_ms: f64,
}

/// The child side: an unauthenticated master on loopback (it then listens on loopback
/// only) that may hold [`MAX_CONNECTIONS`] connections, with its open-file limit raised.
pub(crate) fn serve_master(_args: &[String]) -> Result<(), BenchError> {
    ember_deploy::raise_open_file_limit();
    let conf = RpcConf::new()
        .with(keys::AUTHENTICATE, "false")
        .with(keys::MAX_CONNECTIONS, MAX_CONNECTIONS);
    crate::suites::ui::serve_master_with(conf)
}

/// The app client's listener: the fleet times placement, so this only logs.
struct Quiet;

impl AppClientListener for Quiet {
    fn connected(&mut self, app_id: &AppId) {
        log::info!("scale app registered as {app_id}");
    }
    fn disconnected(&mut self) {}
    fn dead(&mut self, reason: &str) {
        log::warn!("scale app dead: {reason}");
    }
    fn executor_added(&mut self, _id: u32, _worker: &WorkerId, _host_port: &str, _cores: u32) {}
    fn executor_removed(&mut self, _: u32, _: &str, _: Option<i32>, _: Option<&str>) {}
    fn worker_removed(&mut self, _: &WorkerId, _: &str, _: &str) {}
}

/// Checks that this process may open `n` more sockets, raising its soft limit first.
fn check_open_files(n: usize) -> Result<(), BenchError> {
    ember_deploy::raise_open_file_limit();
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(|e| BenchError::new(format!("reading the open-file limit: {e}")))?;
    let needed = n as u64 + 256;
    if soft < needed {
        return Err(BenchError::new(format!(
            "simulating {n} workers needs {needed} open files, and the limit is {soft}: \
             raise it (ulimit -n {needed}, or the hard limit in limits.conf)"
        )));
    }
    Ok(())
}

/// Runs the master with `n` simulated workers; `window` is the steady-heartbeat window.
pub(crate) fn measure(n: usize, window: Duration) -> Result<MasterRun, BenchError> {
    check_open_files(n)?;
    let server = ChildServer::spawn(MASTER_MODE, &[])?;
    let ui_addr = server.addr();
    let url = ui::json_field(&ui::get(ui_addr, "/json/url")?, "url")?;
    let master = RpcAddress::from_ember_url(&url)
        .map_err(|e| BenchError::new(format!("the master's URL {url}: {e}")))?;
    let socket: SocketAddr = (master.host(), master.port())
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| BenchError::new(format!("cannot resolve the master at {url}")))?;

    let mut fleet = Fleet::new(n, socket, master.clone(), HEARTBEAT_INTERVAL)?;
    let start = Instant::now();
    let all = fleet.run_until(start + PHASE_DEADLINE, |c| c.registered + c.failed >= n)?;
    let counts = fleet.counts();
    if !all || counts.registered < n {
        return Err(BenchError::new(format!(
            "{} of {n} simulated workers registered ({} failed) within {PHASE_DEADLINE:?}",
            counts.registered, counts.failed
        )));
    }
    let register_s = counts
        .last_registered
        .map_or(f64::NAN, |t| (t - start).as_secs_f64());
    eprintln!("[scale] master: {n} workers registered in {register_s:.2} s");

    let env = RpcEnv::create(
        RpcEnvConfig::client("ember-bench-scale-app")
            .with_conf(RpcConf::new().with(keys::AUTHENTICATE, "false")),
    )
    .map_err(|e| BenchError::new(format!("starting the app's env: {e}")))?;
    let result = place_and_watch(&env, &mut fleet, &master, &server, ui_addr, n, window);
    env.shutdown();
    let (place_ms, cpu_pct, rss_mib, json_ms) = result?;
    Ok(MasterRun {
        register_s,
        place_ms,
        cpu_pct,
        rss_mib,
        json_ms,
    })
}

fn place_and_watch(
    env: &RpcEnv,
    fleet: &mut Fleet,
    master: &RpcAddress,
    server: &ChildServer,
    ui_addr: SocketAddr,
    n: usize,
    window: Duration,
) -> Result<(f64, f64, f64, f64), BenchError> {
    let cores = WORKER_CORES * n as u32;
    let description = ApplicationDescription {
        name: "ember-bench-scale".into(),
        max_cores: Some(cores),
        memory_per_executor_mib: 1024,
        cores_per_executor: Some(WORKER_CORES),
        command: Command {
            program: "true".into(),
            args: Vec::new(),
            env: BTreeMap::new(),
        },
        user: "ember-bench".into(),
        program_digest: None,
    };
    let config = AppClientConfig {
        masters: vec![master.clone()],
        description,
        registration_timeout: Duration::from_secs(20),
        registration_retries: 3,
        starvation_timeout: Duration::ZERO,
    };
    let pid = server.pid();
    let ticks_before = (ui::cpu_ticks(pid)?, ui::cpu_ticks(std::process::id())?);
    let start = Instant::now();
    env.setup_endpoint(
        APP_CLIENT_ENDPOINT_NAME,
        AppClient::new(config, Box::new(Quiet)),
    )
    .map_err(|e| BenchError::new(format!("starting the app client: {e}")))?;
    let placed = fleet.run_until(start + PHASE_DEADLINE, |c| c.launches >= n)?;
    let counts = fleet.counts();
    if !placed {
        return Err(BenchError::new(format!(
            "{} of {n} executors launched within {PHASE_DEADLINE:?}",
            counts.launches
        )));
    }
    let place_ms = counts.last_launch.map_or(f64::NAN, |t| {
        t.saturating_duration_since(start).as_secs_f64() * 1e3
    });
    // Where the time went: the master's CPU, or this process's (the simulated workers
    // read and answer every launch on one thread).
    let ms = |ticks: f64| ticks / ui::TICKS_PER_SECOND * 1e3;
    let master_cpu = ms(ui::cpu_ticks(pid)? - ticks_before.0);
    let fleet_cpu = ms(ui::cpu_ticks(std::process::id())? - ticks_before.1);
    eprintln!(
        "[scale] master: {n} executors placed in {place_ms:.1} ms (CPU meanwhile: master \
         {master_cpu:.0} ms, simulator {fleet_cpu:.0} ms)"
    );

    // The steady window starts once the master has handled every executor's RUNNING
    // report (answered its ask), so that it times heartbeats, not a backlog.
    let settled = fleet.run_until(Instant::now() + PHASE_DEADLINE, |c| c.answers >= n)?;
    if !settled {
        return Err(BenchError::new(format!(
            "the master answered {} of {n} executor state reports within {PHASE_DEADLINE:?}",
            fleet.counts().answers
        )));
    }
    let master_cpu = ms(ui::cpu_ticks(pid)? - ticks_before.0);
    eprintln!(
        "[scale] master: every RUNNING report handled {:.1} ms after placement began (master \
         CPU since then {master_cpu:.0} ms)",
        start.elapsed().as_secs_f64() * 1e3
    );
    let before = ui::cpu_ticks(pid)?;
    let beats = fleet.counts().heartbeats;
    let window_start = Instant::now();
    fleet.run_until(window_start + window, |_| false)?;
    let ticks = ui::cpu_ticks(pid)? - before;
    let took = window_start.elapsed().as_secs_f64();
    let cpu_pct = ticks / ui::TICKS_PER_SECOND / took * 100.0;
    eprintln!(
        "[scale] master: {n} workers, {} heartbeats in {took:.1} s: {cpu_pct:.2} % of a core",
        fleet.counts().heartbeats - beats
    );
    let rss_mib = rss::mib(rss::status_kib(pid, "VmRSS")?);

    let mut samples = Vec::with_capacity(JSON_REQUESTS);
    for _ in 0..JSON_REQUESTS {
        let t = Instant::now();
        let body = ui::get(ui_addr, "/json")?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        if body.len() < 2 {
            return Err(BenchError::new("the master's /json is empty"));
        }
        // The workers keep heartbeating between requests.
        fleet.run_until(Instant::now() + Duration::from_millis(50), |_| false)?;
    }
    crate::stats::sort_samples(&mut samples);
    let json_ms = crate::stats::percentile(&samples, 50.0);
    eprintln!("[scale] master: {n} workers, /json in {json_ms:.1} ms (median of {JSON_REQUESTS})");
    Ok((place_ms, cpu_pct, rss_mib, json_ms))
}
