//! What the status UI costs its master: a real master in a child process with workers
//! registered, its CPU time (from `/proc/<pid>/stat`) idle, and while `/json` and
//! `/metrics/prometheus` are each scraped once a second, as a monitoring system would; then
//! the CPU and the latency of single requests, back to back.
//!
//! Metrics:
//! - `ui.master_idle_cpu_pct`, `ui.master_scraped_cpu_pct`: the master's CPU share of one
//!   core, without and with the scrapes (clock ticks are 10 ms, so a window of ten seconds
//!   resolves 0.1 %);
//! - `ui.json_cpu_us`, `ui.metrics_cpu_us`, `ui.page_cpu_us`: the master's CPU per request
//!   of `/json`, `/metrics/prometheus` and the HTML page `/`;
//! - `ui.json_p50_us`: the time from sending a `/json` request to its last byte.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use ember_deploy::{start_master, start_worker, MasterConfig, WorkerConfig, WorkerHandle};
use rpc_env::{keys, RpcAddress, RpcConf};

use crate::child::{self, ChildServer};
use crate::cli::Options;
use crate::error::BenchError;
use crate::report::Metric;
use crate::stats::percentile;

/// The child mode: a master whose announced port is its UI's.
pub(crate) const MASTER_MODE: &str = "ui-master";

/// Linux's `USER_HZ`: `/proc/<pid>/stat` counts CPU time in hundredths of a second.
pub(crate) const TICKS_PER_SECOND: f64 = 100.0;

/// The child side: a master on loopback (free RPC and UI ports), unauthenticated (it
/// binds loopback only), until the parent goes away.
pub(crate) fn serve_master(_args: &[String]) -> Result<(), BenchError> {
    serve_master_with(RpcConf::new().with(keys::AUTHENTICATE, "false"))
}

/// A master on loopback with `conf`, its UI port announced, until the parent goes away.
pub(crate) fn serve_master_with(conf: RpcConf) -> Result<(), BenchError> {
    let master = start_master(MasterConfig::local().with_conf(conf))
        .map_err(|e| BenchError::new(format!("starting the master: {e}")))?;
    let ui = master
        .ui_address()
        .ok_or_else(|| BenchError::new("the master has no UI"))?;
    child::announce(ui.port())?;
    loop {
        thread::park();
    }
}

pub(crate) fn run(opts: &Options) -> Result<Vec<Metric>, BenchError> {
    let workers = opts.iterations(16, 4);
    let window = Duration::from_secs(opts.iterations(10, 3) as u64);
    let requests = opts.iterations(2_000, 200);
    let server = ChildServer::spawn(MASTER_MODE, &[])?;
    let ui = server.addr();
    let url = json_field(&get(ui, "/json/url")?, "url")?;
    let master = RpcAddress::from_ember_url(&url)
        .map_err(|e| BenchError::new(format!("the master's URL {url}: {e}")))?;
    eprintln!("[ui] registering {workers} workers with the master at {url} ...");
    let work = std::env::temp_dir().join(format!("ember-bench-ui-{}", std::process::id()));
    let started: Result<Vec<WorkerHandle>, BenchError> = (0..workers)
        .map(|i| {
            let mut config = WorkerConfig::new(vec![master.clone()]);
            config.cores = 1;
            config.memory_mib = 1024;
            config.webui_port = 0;
            config.work_dir = work.join(format!("worker-{i}"));
            config.conf = RpcConf::new().with(keys::AUTHENTICATE, "false");
            start_worker(config).map_err(|e| BenchError::new(format!("starting a worker: {e}")))
        })
        .collect();
    let result = started.and_then(|handles| {
        let measured = measure(&server, ui, workers, window, requests);
        for worker in &handles {
            worker.shutdown();
        }
        measured
    });
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn measure(
    server: &ChildServer,
    ui: SocketAddr,
    workers: usize,
    window: Duration,
    requests: usize,
) -> Result<Vec<Metric>, BenchError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while json_field(&get(ui, "/json/aliveworkers")?, "aliveworkers")? != workers.to_string() {
        if Instant::now() > deadline {
            return Err(BenchError::new(format!(
                "{workers} workers did not register"
            )));
        }
        thread::sleep(Duration::from_millis(20));
    }
    let pid = server.pid();
    let mut metrics = Vec::new();

    eprintln!("[ui] the master idle for {window:?} ...");
    let idle = cpu_share(pid, window, || Ok(()))?;
    metrics.push(Metric::new("ui.master_idle_cpu_pct", idle, "%"));

    eprintln!("[ui] the master scraped every second for {window:?} ...");
    let scraped = cpu_share(pid, window, || {
        get(ui, "/json")?;
        get(ui, "/metrics/prometheus").map(drop)
    })?;
    metrics.push(Metric::new("ui.master_scraped_cpu_pct", scraped, "%"));

    for (name, path) in [
        ("ui.json_cpu_us", "/json"),
        ("ui.metrics_cpu_us", "/metrics/prometheus"),
        ("ui.page_cpu_us", "/"),
    ] {
        eprintln!("[ui] {requests} requests of {path} ...");
        let before = cpu_ticks(pid)?;
        let mut took = Vec::with_capacity(requests);
        for _ in 0..requests {
            let start = Instant::now();
            get(ui, path)?;
            took.push(start.elapsed().as_secs_f64() * 1e6);
        }
        let ticks = cpu_ticks(pid)? - before;
        let per_request = ticks / TICKS_PER_SECOND * 1e6 / requests as f64;
        metrics.push(Metric::new(name, per_request, "us"));
        if path == "/json" {
            took.sort_by(f64::total_cmp);
            metrics.push(Metric::new("ui.json_p50_us", percentile(&took, 0.5), "us"));
        }
    }
    Ok(metrics)
}

/// The master's CPU share of one core over `window`, calling `each_second` at its start and
/// then once a second.
fn cpu_share(
    pid: u32,
    window: Duration,
    mut each_second: impl FnMut() -> Result<(), BenchError>,
) -> Result<f64, BenchError> {
    let start = Instant::now();
    let before = cpu_ticks(pid)?;
    let mut next = start;
    while next < start + window {
        each_second()?;
        next += Duration::from_secs(1);
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let ticks = cpu_ticks(pid)? - before;
    Ok(ticks / TICKS_PER_SECOND / start.elapsed().as_secs_f64() * 100.0)
}

/// User plus system CPU time of `pid` so far, in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Result<f64, BenchError> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
    // The fields after the command's closing parenthesis: state is the first, utime the
    // 12th and stime the 13th (fields 14 and 15 of the whole line).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (tick(11), tick(12)) {
        (Some(user), Some(system)) => Ok(user + system),
        _ => Err(BenchError::new(format!("no CPU times in {path}"))),
    }
}

/// `GET path` over HTTP/1.0 (never chunked); the body of a 200, else an error.
pub(crate) fn get(addr: SocketAddr, path: &str) -> Result<String, BenchError> {
    let failed = |e: std::io::Error| BenchError::io(format!("GET {path}"), e);
    let mut stream = TcpStream::connect(addr).map_err(failed)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(failed)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(failed)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(failed)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| BenchError::new(format!("GET {path}: not an HTTP answer")))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        let status = head.lines().next().unwrap_or_default();
        return Err(BenchError::new(format!("GET {path}: {status}")));
    }
    Ok(body.to_string())
}

/// The value of `field` in a `/json/<field>` answer, as text (strings unquoted).
pub(crate) fn json_field(body: &str, field: &str) -> Result<String, BenchError> {
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| BenchError::new(format!("/json/{field} is not JSON: {e}")))?;
    match &value[field] {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Null => Err(BenchError::new(format!("/json/{field} has no {field}"))),
        other => Ok(other.to_string()),
    }
}
