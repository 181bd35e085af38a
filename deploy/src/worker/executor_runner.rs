//! `ExecutorRunner`: one executor process of an application, launched from the command in
//! the application's description (Spark's `ExecutorRunner`).
//!
//! The process is started at once, in `<work>/<app-id>/<exec-id>/` with its output in the
//! `stdout` and `stderr` files there; the worker reports RUNNING as soon as it is started.
//! A thread waits for it and reports how it ended: EXITED with its code, or KILLED when the
//! worker killed it. A process that cannot be started is FAILED.
//!
//! ```text
//!   LAUNCHING ──spawned──► RUNNING ──exits──► EXITED(code)
//!       │                     └──kill()───► KILLED
//!       └──cannot start──► FAILED
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::messages::{placeholders, Command, ExecutorDescription, ExecutorState};
use crate::AppId;

use super::process::{self, Launch, ProcessHandle};

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
    process: ProcessHandle,
    killed: Arc<AtomicBool>,
    kill_grace: Duration,
}

impl ExecutorRunner {
    /// Creates the executor's directory and starts its process. Once it has started, a
    /// thread waits for it and hands `report` the final update (EXITED or KILLED); the
    /// caller reports RUNNING itself. An error is the FAILED message.
    pub(crate) fn start(
        spec: ExecutorSpec,
        report: impl FnOnce(StateUpdate) + Send + 'static,
    ) -> Result<ExecutorRunner, String> {
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
        let env = executor_env(&spec.command.env, &dir);
        let spawned = process::spawn(&Launch {
            program: &spec.command.program,
            args: &args,
            env: &env,
            dir: &dir,
            title: "Ember Executor Command",
            launcher: &spec.launcher,
            security_env: &spec.security_env,
        })
        .map_err(|e| {
            format!(
                "Failed to launch executor {full_id}: cannot run program \"{}\": {e}",
                spec.command.program
            )
        })?;
        let process = spawned.handle();
        let killed = Arc::new(AtomicBool::new(false));
        let killed_seen = Arc::clone(&killed);
        let waiter = std::thread::Builder::new()
            .name(format!("ExecutorRunner for {full_id}"))
            .spawn(move || {
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
        log::info!(
            "Launched executor {full_id} (pid {}) in {}",
            process.pid(),
            dir.display()
        );
        Ok(ExecutorRunner {
            app_id: spec.app_id,
            exec_id: spec.exec_id,
            cores: spec.cores,
            memory_mib: spec.memory_mib,
            process,
            killed,
            kill_grace: spec.kill_grace,
        })
    }

    /// Kills the executor without waiting: SIGTERM now, SIGKILL after the grace period.
    /// Its thread then reports KILLED.
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let what = format!("executor {}/{}", self.app_id, self.exec_id);
        self.process.terminate_in_background(self.kill_grace, &what);
    }

    /// Waits up to `timeout` for the process to end; its exit code if it did.
    pub(crate) fn wait_exit(&self, timeout: Duration) -> Option<i32> {
        self.process.wait_exit(timeout)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
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
