//! `ExecutorRunner`: one executor process of an application, launched from the command in
//! the application's description (Spark's `ExecutorRunner`).
//!
//! The process runs in `<work>/<app-id>/<exec-id>/` with its output in the `stdout` and
//! `stderr` files there. When the program is at the description's path (or the description
//! names no digest), it is started at once and the worker reports RUNNING; otherwise the
//! runner's thread first gets it from the worker's program cache (fetching it from the
//! driver if need be, `program_cache.rs`), then starts it and reports RUNNING itself. The
//! thread waits for the process and reports how it ended: EXITED with its code, or KILLED
//! when the worker killed it. A program that cannot be fetched or started is FAILED.
//!
//! ```text
//!   LAUNCHING ──spawned──────────────────────► RUNNING ──exits──► EXITED(code)
//!       │  └──fetching ──fetched, spawned──────┘   └──kill()───► KILLED
//!       │        ├──kill()─────────────► KILLED (no process is started)
//!       │        └──cannot fetch──► FAILED
//!       └──cannot start──► FAILED
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rpc_env::RpcEnv;

use crate::messages::{placeholders, Command, ExecutorDescription, ExecutorState};
use crate::program::ProgramDigest;
use crate::AppId;

use super::process::{self, Launch, ProcessHandle};
use super::program_cache::ProgramCache;

/// The environment variable naming the executor's stdout file (Spark's `SPARK_LOG_URL_STDOUT`).
pub(crate) const LOG_URL_STDOUT: &str = "EMBER_LOG_URL_STDOUT";
/// The environment variable naming the executor's stderr file.
pub(crate) const LOG_URL_STDERR: &str = "EMBER_LOG_URL_STDERR";

/// The values of the placeholders a worker fills in a command's arguments.
#[derive(Debug, Clone)]
pub(crate) struct Placeholders {
    /// `{{EXECUTOR_ID}}`.
    pub(crate) executor_id: String,
    /// `{{HOSTNAME}}`.
    pub(crate) hostname: String,
    /// `{{CORES}}`.
    pub(crate) cores: u32,
    /// `{{APP_ID}}`.
    pub(crate) app_id: String,
    /// `{{WORKER_URL}}`.
    pub(crate) worker_url: String,
}

/// `args` with every placeholder replaced by its value, wherever it appears in an argument
/// (Spark replaces whole arguments only; a substring match also serves shell commands).
pub(crate) fn fill_placeholders(args: &[String], values: &Placeholders) -> Vec<String> {
    let cores = values.cores.to_string();
    let pairs = [
        (placeholders::EXECUTOR_ID, values.executor_id.as_str()),
        (placeholders::HOSTNAME, values.hostname.as_str()),
        (placeholders::CORES, cores.as_str()),
        (placeholders::APP_ID, values.app_id.as_str()),
        (placeholders::WORKER_URL, values.worker_url.as_str()),
    ];
    args.iter()
        .map(|arg| {
            pairs
                .iter()
                .fold(arg.clone(), |a, (name, value)| a.replace(name, value))
        })
        .collect()
}

/// What an executor is and where it runs.
#[derive(Debug, Clone)]
pub(crate) struct ExecutorSpec {
    /// The application.
    pub(crate) app_id: AppId,
    /// The executor's id in the application.
    pub(crate) exec_id: u32,
    /// The application's executor command, placeholders not yet filled.
    pub(crate) command: Command,
    /// Its cores.
    pub(crate) cores: u32,
    /// Its memory, MiB.
    pub(crate) memory_mib: u32,
    /// The worker's advertised host (`{{HOSTNAME}}`).
    pub(crate) host: String,
    /// The worker endpoint's URI (`{{WORKER_URL}}`).
    pub(crate) worker_url: String,
    /// The worker's work directory (absolute).
    pub(crate) work_dir: PathBuf,
    /// The grace between SIGTERM and SIGKILL.
    pub(crate) kill_grace: Duration,
    /// The command prefix children start through (`WorkerConfig::launcher`).
    pub(crate) launcher: Vec<String>,
    /// The worker's security for the child's environment (see [`Launch::security_env`]).
    pub(crate) security_env: Vec<(&'static str, std::ffi::OsString)>,
    /// Where the program comes from when it is not at the command's path: the
    /// application's digest of it, the worker's cache and its env to fetch through.
    pub(crate) fetch: Option<Fetch>,
}

/// How a runner gets a program that may not be on this worker's disk.
#[derive(Debug, Clone)]
pub(crate) struct Fetch {
    /// The application's description of its program.
    pub(crate) digest: ProgramDigest,
    /// The worker's cache.
    pub(crate) cache: Arc<ProgramCache>,
    /// The worker's env, to stream the program from the driver.
    pub(crate) env: RpcEnv,
}

/// Whether [`ExecutorRunner::start`] started the process itself or left it to its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Started {
    /// The process runs: the caller reports RUNNING.
    Now,
    /// The thread fetches the program first and reports RUNNING (or FAILED, or KILLED).
    Later,
}

/// Where the executor's process is in its life.
enum Stage {
    /// Its program is being fetched: no process yet.
    Fetching,
    /// Its process was started (it may have ended since).
    Started(ProcessHandle),
    /// Killed while its program was being fetched: no process will be started.
    KilledBeforeStart,
}

/// How an executor's state changed, as the runner reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StateUpdate {
    /// The new state.
    pub(crate) state: ExecutorState,
    /// What happened.
    pub(crate) message: Option<String>,
    /// The exit code, once exited.
    pub(crate) exit_status: Option<i32>,
}

/// A running executor process and the thread that waits for it.
pub(crate) struct ExecutorRunner {
    app_id: AppId,
    exec_id: u32,
    cores: u32,
    memory_mib: u32,
    stage: Arc<Mutex<Stage>>,
    killed: Arc<AtomicBool>,
    kill_grace: Duration,
}

/// What the runner's thread needs to start the process once its program is there.
struct Prepared {
    full_id: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    dir: PathBuf,
}

impl ExecutorRunner {
    /// Creates the executor's directory and starts its process, at once or, when its
    /// program must be fetched first, on its thread ([`Started`] says which). The thread
    /// hands `report` what follows: RUNNING (when it started the process), then EXITED or
    /// KILLED, or FAILED. An error is the FAILED message of a launch that failed at once.
    pub(crate) fn start(
        spec: ExecutorSpec,
        report: impl Fn(StateUpdate) + Send + 'static,
    ) -> Result<(ExecutorRunner, Started), String> {
        let full_id = format!("{}/{}", spec.app_id, spec.exec_id);
        let app_dir = process::dir_name(&spec.app_id.0)?;
        let dir = spec.work_dir.join(app_dir).join(spec.exec_id.to_string());
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("Failed to create directory {}: {e}", dir.display()))?;
        let args = fill_placeholders(
            &spec.command.args,
            &Placeholders {
                executor_id: spec.exec_id.to_string(),
                hostname: spec.host.clone(),
                cores: spec.cores,
                app_id: spec.app_id.0.clone(),
                worker_url: spec.worker_url.clone(),
            },
        );
        let prepared = Prepared {
            full_id: full_id.clone(),
            env: executor_env(&spec.command.env, &dir),
            args,
            dir,
        };
        let killed = Arc::new(AtomicBool::new(false));
        let runner = |stage: Stage| ExecutorRunner {
            app_id: spec.app_id.clone(),
            exec_id: spec.exec_id,
            cores: spec.cores,
            memory_mib: spec.memory_mib,
            stage: Arc::new(Mutex::new(stage)),
            killed: Arc::clone(&killed),
            kill_grace: spec.kill_grace,
        };
        let thread = std::thread::Builder::new().name(format!("ExecutorRunner for {full_id}"));
        let Some(fetch) = spec.fetch.clone() else {
            let spawned = spawn(&spec, &prepared, &spec.command.program)?;
            let process = spawned.handle();
            let killed_seen = Arc::clone(&killed);
            let waiter = thread.spawn(move || {
                let outcome = spawned.wait();
                report(final_update(outcome, killed_seen.load(Ordering::SeqCst)));
            });
            if let Err(e) = waiter {
                // Without its waiter nobody would reap or report it: take it down now.
                process.terminate(Duration::ZERO);
                return Err(format!(
                    "Failed to start the runner thread of {full_id}: {e}"
                ));
            }
            return Ok((runner(Stage::Started(process)), Started::Now));
        };
        let runner = runner(Stage::Fetching);
        let stage = Arc::clone(&runner.stage);
        let killed_seen = Arc::clone(&killed);
        let local = spec.command.program.clone();
        thread
            .spawn(move || {
                let program = fetch.cache.program_for(&fetch.env, &local, &fetch.digest);
                let started = program.and_then(|program| {
                    let mut stage = stage.lock();
                    if matches!(*stage, Stage::KilledBeforeStart) {
                        return Ok(None);
                    }
                    let spawned = spawn(&spec, &prepared, &program.to_string_lossy())?;
                    *stage = Stage::Started(spawned.handle());
                    Ok(Some(spawned))
                });
                match started {
                    Ok(Some(spawned)) => {
                        report(StateUpdate {
                            state: ExecutorState::Running,
                            message: None,
                            exit_status: None,
                        });
                        let outcome = spawned.wait();
                        report(final_update(outcome, killed_seen.load(Ordering::SeqCst)));
                    }
                    Ok(None) => report(killed_before_start()),
                    Err(message) if matches!(*stage.lock(), Stage::KilledBeforeStart) => {
                        log::info!("Executor {}: {message} (it was killed)", prepared.full_id);
                        report(killed_before_start());
                    }
                    Err(message) => {
                        log::error!("{message}");
                        report(StateUpdate {
                            state: ExecutorState::Failed,
                            message: Some(message),
                            exit_status: None,
                        });
                    }
                }
            })
            .map_err(|e| format!("Failed to start the runner thread of {full_id}: {e}"))?;
        Ok((runner, Started::Later))
    }

    /// Kills the executor without waiting: SIGTERM now, SIGKILL after the grace period.
    /// Its thread then reports KILLED.
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let mut stage = self.stage.lock();
        match &*stage {
            Stage::Started(process) => {
                let what = format!("executor {}/{}", self.app_id, self.exec_id);
                process.terminate_in_background(self.kill_grace, &what);
            }
            // The thread sees it before it would start the process.
            Stage::Fetching => *stage = Stage::KilledBeforeStart,
            Stage::KilledBeforeStart => {}
        }
    }

    /// Waits up to `timeout` for the process to end; its exit code if it did. One killed
    /// before it started has nothing to wait for (`Some(-1)`); one still fetching, `None`.
    pub(crate) fn wait_exit(&self, timeout: Duration) -> Option<i32> {
        let process = match &*self.stage.lock() {
            Stage::Started(process) => process.clone(),
            Stage::KilledBeforeStart => return Some(-1),
            Stage::Fetching => return None,
        };
        process.wait_exit(timeout)
    }

    /// The process id, once there is a process.
    pub(crate) fn pid(&self) -> Option<u32> {
        match &*self.stage.lock() {
            Stage::Started(process) => Some(process.pid()),
            Stage::Fetching | Stage::KilledBeforeStart => None,
        }
    }

    /// The cores it holds.
    pub(crate) fn cores(&self) -> u32 {
        self.cores
    }

    /// The memory it holds, MiB.
    pub(crate) fn memory_mib(&self) -> u32 {
        self.memory_mib
    }

    /// Its description for the master, in `state`.
    pub(crate) fn description(&self, state: ExecutorState) -> ExecutorDescription {
        ExecutorDescription {
            app_id: self.app_id.clone(),
            exec_id: self.exec_id,
            cores: self.cores,
            memory_mib: self.memory_mib,
            state,
        }
    }
}

/// The update for an executor killed while its program was being fetched.
fn killed_before_start() -> StateUpdate {
    StateUpdate {
        state: ExecutorState::Killed,
        message: Some("Killed by the worker before it started".to_string()),
        exit_status: None,
    }
}

/// Starts the executor's process with `program`.
fn spawn(
    spec: &ExecutorSpec,
    prepared: &Prepared,
    program: &str,
) -> Result<process::Spawned, String> {
    let spawned = process::spawn(&Launch {
        program,
        args: &prepared.args,
        env: &prepared.env,
        dir: &prepared.dir,
        title: "Ember Executor Command",
        launcher: &spec.launcher,
        security_env: &spec.security_env,
    })
    .map_err(|e| {
        format!(
            "Failed to launch executor {}: cannot run program \"{program}\": {e}",
            prepared.full_id
        )
    })?;
    log::info!(
        "Launched executor {} (pid {}) in {}",
        prepared.full_id,
        spawned.handle().pid(),
        prepared.dir.display()
    );
    Ok(spawned)
}

/// The command's environment plus where its logs are.
fn executor_env(command_env: &BTreeMap<String, String>, dir: &Path) -> BTreeMap<String, String> {
    let mut env = command_env.clone();
    for (key, file) in [(LOG_URL_STDOUT, "stdout"), (LOG_URL_STDERR, "stderr")] {
        env.insert(key.to_string(), dir.join(file).display().to_string());
    }
    env
}

/// The update for a process that ended: KILLED if the worker killed it, EXITED otherwise.
fn final_update(outcome: std::io::Result<i32>, killed: bool) -> StateUpdate {
    match (outcome, killed) {
        (Ok(code), true) => StateUpdate {
            state: ExecutorState::Killed,
            message: Some("Killed by the worker".to_string()),
            exit_status: Some(code),
        },
        (Ok(code), false) => StateUpdate {
            state: ExecutorState::Exited,
            message: Some(format!("Command exited with code {code}")),
            exit_status: Some(code),
        },
        (Err(e), _) => StateUpdate {
            state: ExecutorState::Failed,
            message: Some(format!("Error running executor: {e}")),
            exit_status: None,
        },
    }
}

#[cfg(test)]
#[path = "executor_runner_tests.rs"]
mod tests;
