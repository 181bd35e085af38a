//! The `cluster` suite: Ember's standalone mode, from start-up to jobs.
//!
//! - `startup.local_cluster_ms`: `Context` creation on `local-cluster[2,1,1024]` until both
//!   executors have registered;
//! - `startup.worker_ms`: a worker process started until the master has registered it;
//! - `tasks.cluster_per_s`: 100,000 no-op tasks on `local-cluster[2,1,1024]`;
//! - `tasks.cluster_job_p50_us`: 1,000 sequential one-task jobs there;
//! - `mem.executor_rss_kib`: an idle executor process's resident memory;
//! - `cluster.executor_start_ms`: a worker process started until an application's executor
//!   on it has registered with the driver, the program on the worker's disk;
//! - `cluster.binary_fetch_ms`: the same when the program is not on the worker's disk, so
//!   the worker fetches it from the driver into its cache first (the difference is the
//!   fetch).
//! - `cluster.program_upload_mib_per_s`: cluster deploy mode's upload of this binary to a
//!   fresh master's program store (`ember-submit`'s client, up to the submission's answer),
//!   the median of three.
//!
//! Executors and the worker are this binary in other roles (`__serve executor`,
//! `__serve worker`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ember::{Context, RpcConf};
use ember_deploy::{parse_worker_args, start_master, start_worker, MasterConfig};
use ember_executor::builtin;

use crate::cli::{Options, SERVE_ARG};
use crate::error::BenchError;
use crate::report::Metric;
use crate::stats;
use crate::suites::tasks::{failed, registry, throughput, EXECUTOR_MODE};

/// The child mode that runs a worker process (the `ember-worker` command line).
pub(crate) const WORKER_MODE: &str = "worker";

/// The child side: a worker with these arguments, until it stops.
pub(crate) fn serve_worker(args: &[String]) -> Result<(), BenchError> {
    let config = parse_worker_args(args.iter().map(Into::into), |k| std::env::var(k).ok())
        .map_err(|e| BenchError::new(format!("bad worker arguments: {e:?}")))?;
    let worker = start_worker(config).map_err(|e| BenchError::new(e.to_string()))?;
    worker.await_termination();
    Ok(())
}

fn local_cluster_conf() -> Result<RpcConf, BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::io("finding ember-bench", e))?;
    Ok(RpcConf::new()
        .with(ember::MASTER, "local-cluster[2,1,1024]")
        .with(ember::APP_NAME, "ember-bench-cluster")
        .with(ember::EXECUTOR_PROGRAM, exe.to_string_lossy())
        .with(
            ember::EXECUTOR_PROGRAM_ARGS,
            format!("{SERVE_ARG} {EXECUTOR_MODE}"),
        ))
}

/// The resident memory of `pid`, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> Result<f64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| BenchError::new(format!("no VmRSS in {path}")))
}

/// The pids of this process's children running as executors.
pub(crate) fn executor_pids() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            parent == Some(me)
                && cmdline
                    .windows(EXECUTOR_MODE.len())
                    .any(|w| w == EXECUTOR_MODE.as_bytes())
        })
        .collect()
}

/// A worker process; killed and reaped when dropped.
struct WorkerProcess(Child);

impl WorkerProcess {
    /// A 1-core, 1 GiB worker process of the master at `master_url`, in `work`.
    fn start(
        exe: &std::path::Path,
        master_url: &str,
        work: &std::path::Path,
    ) -> Result<WorkerProcess, BenchError> {
        Command::new(exe)
            .args([
                SERVE_ARG,
                WORKER_MODE,
                master_url,
                "--cores",
                "1",
                "--memory",
                "1g",
            ])
            .arg("--work-dir")
            .arg(work)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map(WorkerProcess)
            .map_err(|e| BenchError::io("starting a worker process", e))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a master here and a worker process, timing the worker's registration.
fn worker_startup_ms() -> Result<f64, BenchError> {
    let master = start_master(MasterConfig::local()).map_err(|e| BenchError::new(e.to_string()))?;
    let result = (|| {
        let exe = std::env::current_exe().map_err(|e| BenchError::io("finding ember-bench", e))?;
        let work = std::env::temp_dir().join(format!("ember-bench-worker-{}", std::process::id()));
        let start = Instant::now();
        let _worker = WorkerProcess::start(&exe, &master.url(), &work)?;
        let deadline = start + Duration::from_secs(30);
        loop {
            let state = master.state().map_err(|e| BenchError::new(e.to_string()))?;
            if state.workers.iter().any(|w| w.state == "ALIVE") {
                let took = start.elapsed();
                let _ = std::fs::remove_dir_all(&work);
                return Ok(took.as_secs_f64() * 1e3);
            }
            if Instant::now() > deadline {
                return Err(BenchError::new("the worker did not register within 30 s"));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    })();
    master.shutdown();
    master.await_termination();
    result
}

/// Starts a master here, registers an application whose executor program is `program`,
/// then starts a worker process and times it until the application's executor has
/// registered. With `fetch`, `program` is removed first, so the worker must fetch the
/// binary from the driver into its (empty) cache.
/// This binary submitted in cluster deploy mode to a fresh master (no worker: the driver
/// only waits), three times; the median MiB/s from the submission's start to its answer.
fn program_upload_mib_per_s() -> Result<f64, BenchError> {
    use ember_deploy::messages::{Command, DriverDescription};
    use ember_deploy::program::{digest_file, ProgramDigest};
    use ember_deploy::submit::MasterClient;

    let exe = std::env::current_exe().map_err(|e| BenchError::io("finding ember-bench", e))?;
    let (size, sha256) = digest_file(&exe).map_err(|e| BenchError::io("hashing ember-bench", e))?;
    let description = DriverDescription {
        memory_mib: 128,
        cores: 1,
        supervise: false,
        command: Command {
            program: exe.to_string_lossy().into_owned(),
            args: Vec::new(),
            env: Default::default(),
        },
        program_digest: Some(ProgramDigest {
            uri: String::new(),
            size,
            sha256,
        }),
    };
    let mut rates = Vec::new();
    for _ in 0..3 {
        let master =
            start_master(MasterConfig::local()).map_err(|e| BenchError::new(e.to_string()))?;
        let submitted = MasterClient::new(&[master.address()], &RpcConf::new())
            .and_then(|client| {
                let start = Instant::now();
                let response = client.submit(&description)?;
                Ok((start.elapsed(), response))
            })
            .map_err(|e| BenchError::new(format!("submitting: {e}")));
        master.shutdown();
        let (took, response) = submitted?;
        if !response.success {
            return Err(BenchError::new(format!(
                "not submitted: {}",
                response.message
            )));
        }
        rates.push(size as f64 / (1 << 20) as f64 / took.as_secs_f64());
    }
    stats::sort_samples(&mut rates);
    Ok(stats::percentile(&rates, 50.0))
}

fn executor_start_ms(program: &std::path::Path, fetch: bool) -> Result<f64, BenchError> {
    let master = start_master(MasterConfig::local()).map_err(|e| BenchError::new(e.to_string()))?;
    let result = (|| {
        let exe = std::env::current_exe().map_err(|e| BenchError::io("finding ember-bench", e))?;
        let _ = std::fs::remove_file(program);
        std::os::unix::fs::symlink(&exe, program)
            .map_err(|e| BenchError::io(program.display().to_string(), e))?;
        let conf = RpcConf::new()
            .with(ember::MASTER, master.url())
            .with(ember::APP_NAME, "ember-bench-fetch")
            .with(ember::EXECUTOR_PROGRAM, program.to_string_lossy())
            .with(
                ember::EXECUTOR_PROGRAM_ARGS,
                format!("{SERVE_ARG} {EXECUTOR_MODE}"),
            )
            .with("ember.scheduler.starvationTimeout", "1h");
        let ctx = Context::new(conf, registry()).map_err(failed("registering the application"))?;
        if fetch {
            // The description names a path the worker will not find.
            let _ = std::fs::remove_file(program);
        }
        let work = std::env::temp_dir().join(format!("ember-bench-fetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let start = Instant::now();
        let worker = WorkerProcess::start(&exe, &master.url(), &work)?;
        let registered = ctx.wait_for_executors(1, Duration::from_secs(60));
        let took = start.elapsed();
        let fetched = work.join("cache").is_dir();
        ctx.stop();
        drop(worker);
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::remove_file(program);
        registered.map_err(failed("waiting for the executor"))?;
        if fetched != fetch {
            return Err(BenchError::new(format!(
                "the worker {} the program",
                if fetched { "fetched" } else { "did not fetch" }
            )));
        }
        Ok(took.as_secs_f64() * 1e3)
    })();
    master.shutdown();
    master.await_termination();
    result
}

/// Runs the suite.
pub(crate) fn run(opts: &Options) -> Result<Vec<Metric>, BenchError> {
    let mut metrics = Vec::new();

    eprintln!("[cluster] measuring startup.local_cluster_ms ...");
    let start = Instant::now();
    let ctx = Context::new(local_cluster_conf()?, registry())
        .map_err(failed("starting local-cluster[2,1,1024]"))?;
    let measured = (|| {
        ctx.wait_for_executors(2, Duration::from_secs(30))
            .map_err(failed("waiting for the executors"))?;
        metrics.push(Metric::new(
            "startup.local_cluster_ms",
            start.elapsed().as_secs_f64() * 1e3,
            "ms",
        ));

        let count = opts.iterations(100_000, 10_000);
        eprintln!("[cluster] measuring tasks.cluster_per_s ({count} tasks) ...");
        let per_s = throughput(&ctx, count / 10).and_then(|_| throughput(&ctx, count))?;
        metrics.push(Metric::new("tasks.cluster_per_s", per_s, "tasks/s"));

        let jobs = opts.iterations(1_000, 200);
        eprintln!("[cluster] measuring tasks.cluster_job_p50_us ({jobs} one-task jobs) ...");
        let mut samples = Vec::with_capacity(jobs);
        for i in 0..(jobs + jobs / 10) {
            let begun = Instant::now();
            let out: Vec<u64> = ctx
                .run_job(builtin::NOOP, vec![i as u64])
                .map_err(failed("running a one-task job"))?;
            if out != [i as u64] {
                return Err(BenchError::new("a one-task job returned the wrong result"));
            }
            if i >= jobs / 10 {
                samples.push(begun.elapsed().as_secs_f64() * 1e6);
            }
        }
        stats::sort_samples(&mut samples);
        metrics.push(Metric::new(
            "tasks.cluster_job_p50_us",
            stats::percentile(&samples, 50.0),
            "us",
        ));

        eprintln!("[cluster] measuring mem.executor_rss_kib ...");
        let pids = executor_pids();
        let Some(pid) = pids.first() else {
            return Err(BenchError::new("found no executor process"));
        };
        metrics.push(Metric::new("mem.executor_rss_kib", rss_kib(*pid)?, "KiB"));
        Ok(())
    })();
    ctx.stop();
    measured?;

    eprintln!("[cluster] measuring startup.worker_ms ...");
    metrics.push(Metric::new("startup.worker_ms", worker_startup_ms()?, "ms"));

    let program = std::env::temp_dir().join(format!("ember-bench-app-{}", std::process::id()));
    eprintln!("[cluster] measuring cluster.executor_start_ms (the program on disk) ...");
    metrics.push(Metric::new(
        "cluster.executor_start_ms",
        executor_start_ms(&program, false)?,
        "ms",
    ));
    eprintln!("[cluster] measuring cluster.binary_fetch_ms (the program fetched) ...");
    metrics.push(Metric::new(
        "cluster.binary_fetch_ms",
        executor_start_ms(&program, true)?,
        "ms",
    ));
    eprintln!("[cluster] measuring cluster.program_upload_mib_per_s ...");
    metrics.push(Metric::new(
        "cluster.program_upload_mib_per_s",
        program_upload_mib_per_s()?,
        "MiB/s",
    ));
    Ok(metrics)
}
