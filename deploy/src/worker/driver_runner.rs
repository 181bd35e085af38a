//! `DriverRunner`: a driver submitted to run inside the cluster (Spark's `DriverRunner`).
//!
//! A thread runs the driver's command in `<work>/<driver-id>/` (output in `stdout` and
//! `stderr` there) and, when the driver is supervised, runs it again after a non-zero exit,
//! waiting 1 s, 2 s, 4 s, ... in between (back to 1 s after a run that lasted over 5 s).
//! A driver `ember-submit` uploaded is first got from the worker's program cache (fetched
//! from the master when this machine does not have the file), as executors' programs are.
//! The final state goes to the worker: FINISHED (exit 0), FAILED, KILLED, or ERROR when the
//! program could not be fetched or the command could not be started. The relaunch decision is [`Relauncher`], a pure function of
//! exit codes and run times.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::messages::{placeholders, DriverDescription, DriverState};
use crate::DriverId;

use super::executor_runner::Fetch;
use super::process::{self, Launch, ProcessHandle};
use crate::LOCAL_IP_ENV;

/// A run longer than this resets the back-off (Spark's `successfulRunDuration`, 5 s).
pub(crate) const SUCCESSFUL_RUN: Duration = Duration::from_secs(5);
/// The first wait before a relaunch (Spark: 1 s, doubling).
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// What to do after a run of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterRun {
    /// Run it again after this wait.
    Relaunch(Duration),
    /// It is done, in this state.
    Finish(DriverState),
}

/// The supervise loop's decisions (Spark's `runCommandWithRetry`), without processes or
/// clocks: feed it each run's exit code and duration.
#[derive(Debug, Clone)]
pub(crate) struct Relauncher {
    supervise: bool,
    first_wait: Duration,
    next_wait: Duration,
    successful_run: Duration,
}

impl Relauncher {
    /// Relaunches failed runs when `supervise`, waiting `first_wait`, then twice as long
    /// each time, back to `first_wait` after a run longer than `successful_run`.
    pub(crate) fn new(supervise: bool, first_wait: Duration, successful_run: Duration) -> Self {
        Relauncher {
            supervise,
            first_wait,
            next_wait: first_wait,
            successful_run,
        }
    }

    /// The decision after a run that exited with `code` after `ran_for`; `killed` when the
    /// worker killed it.
    pub(crate) fn after_run(&mut self, code: i32, ran_for: Duration, killed: bool) -> AfterRun {
        if self.supervise && code != 0 && !killed {
            if ran_for > self.successful_run {
                self.next_wait = self.first_wait;
            }
            let wait = self.next_wait;
            self.next_wait = wait.saturating_mul(2);
            log::info!("Command exited with status {code}, re-launching after {wait:?}.");
            return AfterRun::Relaunch(wait);
        }
        AfterRun::Finish(final_state(code, killed))
    }
}

/// KILLED if the worker killed it, FINISHED for exit 0, FAILED otherwise.
fn final_state(code: i32, killed: bool) -> DriverState {
    if killed {
        DriverState::Killed
    } else if code == 0 {
        DriverState::Finished
    } else {
        DriverState::Failed
    }
}

/// What a driver is and where it runs.
#[derive(Debug, Clone)]
pub(crate) struct DriverSpec {
    /// The driver.
    pub(crate) driver_id: DriverId,
    /// What to run, how big, whether to supervise.
    pub(crate) description: DriverDescription,
    /// The worker endpoint's URI (`{{WORKER_URL}}`).
    pub(crate) worker_url: String,
    /// The worker's host, which the driver binds unless told otherwise ([`LOCAL_IP_ENV`]).
    pub(crate) host: String,
    /// The worker's work directory (absolute).
    pub(crate) work_dir: PathBuf,
    /// The grace between SIGTERM and SIGKILL (`ember.worker.driverTerminateTimeout`).
    pub(crate) kill_grace: Duration,
    /// The first relaunch wait (1 s; tests use less).
    pub(crate) first_backoff: Duration,
    /// The command prefix children start through (`WorkerConfig::launcher`).
    pub(crate) launcher: Vec<String>,
    /// The worker's security for the child's environment (see [`Launch::security_env`]).
    ///
    /// [`Launch::security_env`]: super::process::Launch::security_env
    pub(crate) security_env: Vec<(&'static str, std::ffi::OsString)>,
    /// Where the program comes from when it is not at the command's path (uploaded by
    /// `ember-submit`, served by the master).
    pub(crate) fetch: Option<Fetch>,
}

/// A supervised driver: its thread, and what `kill` needs.
pub(crate) struct DriverRunner {
    driver_id: DriverId,
    program: String,
    cores: u32,
    memory_mib: u32,
    shared: Arc<Shared>,
    kill_grace: Duration,
}

struct Shared {
    state: Mutex<RunState>,
    changed: Condvar,
}

/// Where the supervise loop is, as [`DriverRunner::kill`] and [`DriverRunner::wait_done`]
/// see it.
enum RunState {
    /// Between runs: before the first, or backing off before a relaunch.
    Between,
    /// A run in progress, which a kill terminates.
    Running(ProcessHandle),
    /// Killed: no more runs. A run in progress when the kill came was told to terminate.
    Killed,
    /// The supervise loop has ended.
    Done,
}

impl RunState {
    /// A kill: the process it must terminate, if one runs. Once killed or done, a kill
    /// changes nothing.
    fn kill(&mut self) -> Option<ProcessHandle> {
        match std::mem::replace(self, RunState::Killed) {
            RunState::Running(process) => Some(process),
            RunState::Between | RunState::Killed => None,
            RunState::Done => {
                *self = RunState::Done;
                None
            }
        }
    }

    /// The run in progress ended; whether it was killed.
    fn run_ended(&mut self) -> bool {
        match self {
            RunState::Running(_) => {
                *self = RunState::Between;
                false
            }
            RunState::Killed => true,
            // Only the supervise loop leaves Running or reaches Done, and it is here.
            RunState::Between | RunState::Done => false,
        }
    }

    fn is_killed(&self) -> bool {
        matches!(self, RunState::Killed)
    }
}

impl DriverRunner {
    /// Starts the supervise loop on a thread of its own; `report` gets the final state and,
    /// for ERROR, why.
    pub(crate) fn start(
        spec: DriverSpec,
        report: impl FnOnce(DriverState, Option<String>) + Send + 'static,
    ) -> Result<DriverRunner, String> {
        let shared = Arc::new(Shared {
            state: Mutex::new(RunState::Between),
            changed: Condvar::new(),
        });
        let runner = DriverRunner {
            driver_id: spec.driver_id.clone(),
            program: spec.description.command.program.clone(),
            cores: spec.description.cores,
            memory_mib: spec.description.memory_mib,
            shared: Arc::clone(&shared),
            kill_grace: spec.kill_grace,
        };
        std::thread::Builder::new()
            .name(format!("DriverRunner for {}", spec.driver_id))
            .spawn(move || {
                let (state, exception) = supervise(&spec, &shared);
                *shared.state.lock() = RunState::Done;
                shared.changed.notify_all();
                report(state, exception);
            })
            .map_err(|e| {
                format!(
                    "Failed to start the runner thread of {}: {e}",
                    runner.driver_id
                )
            })?;
        Ok(runner)
    }

    /// Kills the driver without waiting: no more relaunches, SIGTERM to the running one
    /// now and SIGKILL after the grace period.
    pub(crate) fn kill(&self) {
        let mut run = self.shared.state.lock();
        if let Some(process) = run.kill() {
            process.terminate_in_background(self.kill_grace, &format!("driver {}", self.driver_id));
        }
        drop(run);
        // Wakes a back-off wait.
        self.shared.changed.notify_all();
    }

    /// Waits up to `timeout` for the supervise loop to end; whether it did.
    pub(crate) fn wait_done(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut run = self.shared.state.lock();
        while !matches!(*run, RunState::Done) {
            if self
                .shared
                .changed
                .wait_until(&mut run, deadline)
                .timed_out()
            {
                break;
            }
        }
        matches!(*run, RunState::Done)
    }

    /// The cores it holds.
    pub(crate) fn cores(&self) -> u32 {
        self.cores
    }

    /// The memory it holds, MiB.
    pub(crate) fn memory_mib(&self) -> u32 {
        self.memory_mib
    }

    /// The program it runs.
    pub(crate) fn program(&self) -> &str {
        &self.program
    }
}

/// The supervise loop: run, decide, wait, run again. Returns the final state and, for
/// ERROR, the reason.
fn supervise(spec: &DriverSpec, shared: &Shared) -> (DriverState, Option<String>) {
    let dir = match process::dir_name(&spec.driver_id.0) {
        Ok(name) => spec.work_dir.join(name),
        Err(reason) => return (DriverState::Error, Some(reason)),
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        let reason = format!("Failed to create directory {}: {e}", dir.display());
        return (DriverState::Error, Some(reason));
    }
    let command = &spec.description.command;
    let program = match resolve_program(spec) {
        Ok(program) => program,
        Err(_) if shared.state.lock().is_killed() => return (DriverState::Killed, None),
        Err(reason) => {
            log::error!("Driver {}: {reason}", spec.driver_id);
            return (DriverState::Error, Some(reason));
        }
    };
    let args: Vec<String> = command
        .args
        .iter()
        .map(|a| a.replace(placeholders::WORKER_URL, &spec.worker_url))
        .collect();
    let mut env = command.env.clone();
    // The driver listens where its executors, on any worker, can reach it: on this
    // worker's host, unless the submitter chose (`ember.driver.host` wins over this).
    env.entry(LOCAL_IP_ENV.to_string())
        .or_insert_with(|| spec.host.clone());
    for (key, file) in [
        ("EMBER_DRIVER_LOG_URL_STDOUT", "stdout"),
        ("EMBER_DRIVER_LOG_URL_STDERR", "stderr"),
    ] {
        env.insert(key.to_string(), dir.join(file).display().to_string());
    }
    let mut relauncher = Relauncher::new(
        spec.description.supervise,
        spec.first_backoff,
        SUCCESSFUL_RUN,
    );
    loop {
        let spawned = {
            let mut run = shared.state.lock();
            if run.is_killed() {
                return (DriverState::Killed, None);
            }
            let launched = process::spawn(&Launch {
                program: &program,
                args: &args,
                env: &env,
                dir: &dir,
                title: "Launch Command",
                launcher: &spec.launcher,
                security_env: &spec.security_env,
            });
            match launched {
                Ok(spawned) => {
                    *run = RunState::Running(spawned.handle());
                    spawned
                }
                Err(e) => {
                    let reason = format!("Cannot run program \"{program}\": {e}");
                    return (DriverState::Error, Some(reason));
                }
            }
        };
        let started = Instant::now();
        let code = match spawned.wait() {
            Ok(code) => code,
            Err(e) => {
                return (
                    DriverState::Error,
                    Some(format!("Error waiting for the driver: {e}")),
                )
            }
        };
        let mut run = shared.state.lock();
        let killed = run.run_ended();
        match relauncher.after_run(code, started.elapsed(), killed) {
            AfterRun::Finish(state) => return (state, None),
            AfterRun::Relaunch(wait) => {
                // Back off, unless a kill comes first.
                let deadline = Instant::now() + wait;
                while !run.is_killed() {
                    if shared.changed.wait_until(&mut run, deadline).timed_out() {
                        break;
                    }
                }
            }
        }
    }
}

/// The program to run: the command's path, or, for an uploaded program, the file with its
/// digest from the worker's cache (fetched from the master first if need be). Blocks for
/// the download, on the runner's thread; a kill meanwhile takes effect once it ends.
fn resolve_program(spec: &DriverSpec) -> Result<String, String> {
    let program = &spec.description.command.program;
    let Some(fetch) = &spec.fetch else {
        return Ok(program.clone());
    };
    let path = fetch
        .cache
        .program_for(&fetch.env, program, &fetch.digest)?;
    path.into_os_string()
        .into_string()
        .map_err(|p| format!("The program's path {} is not UTF-8", p.to_string_lossy()))
}

#[cfg(test)]
#[path = "driver_runner_tests.rs"]
mod tests;
