//! The worker daemon (Spark's `Worker`): registers with the masters, heartbeats, and runs
//! the executors and drivers the master places on it.
//!
//! - [`registration`]: the sans-IO registration state machine and retry schedule, and
//!   `on_registration`, what the worker does with it and with the master's answers;
//! - [`executor_runner`] / [`driver_runner`]: the child processes;
//! - [`state_sync`]: executor state reports to the master, retried off the handler;
//! - [`cleanup`]: the periodic work-dir cleanup;
//! - [`config`] / [`cli`]: settings and the `ember-worker` command line;
//! - [`handle`]: [`start_worker`] and [`WorkerHandle`], what the rest of Ember calls;
//! - [`view`]: what the status UI (`crate::ui`) shows, answered to its control ask.
//!
//! The endpoint itself ([`Worker`]) has one method per message; its timers are tickers that
//! send it messages, and nothing in it blocks except killing its children when it stops.

mod cleanup;
mod cli;
mod config;
mod driver_runner;
mod executor_runner;
mod handle;
mod handlers;
mod on_registration;
mod process;
mod program_cache;

use program_cache::ProgramCache;
mod registration;
mod senders;
mod state_sync;
#[cfg(test)]
mod test_util;
mod view;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpc_env::Ticker;
use rpc_env::{
    EndpointContext, EndpointRef, HandlerResult, Refusals, RpcAddress, RpcEndpoint, RpcEnv,
};

use crate::messages::{
    DriverState, ExecutorDescription, ExecutorState, MasterMessage, MasterProtocol, WorkerAsk,
    WorkerControl, WorkerMessage, WorkerProtocol, WorkerState,
};
use crate::ui::view::AppLabel;
use crate::{AppId, DriverId, WorkerId};

use config::WorkerSettings;
use driver_runner::DriverRunner;
use executor_runner::ExecutorRunner;
use handle::ExitSlot;
use registration::Registration;
use state_sync::{Report, StateSync};

pub use cli::{parse_worker_args, worker_usage, WorkerArgsError};
pub use config::{keys, parse_master_urls, parse_memory_mib, WorkerConfig};
pub use handle::{start_worker, WorkerError, WorkerExit, WorkerHandle};
pub(crate) use process::command_line as quoted_command_line;

/// Extra wait, after the kill grace periods, for children to go when the worker stops.
const STOP_MARGIN: Duration = Duration::from_secs(15);

type Ctx<'a> = EndpointContext<'a, WorkerProtocol>;

/// A running executor as the worker tracks it.
struct RunningExecutor {
    runner: ExecutorRunner,
    state: ExecutorState,
    /// Its application, for the status UI.
    app: AppLabel,
}

/// A finished executor, kept for tools and the status UI
/// (`ember.worker.ui.retainedExecutors`).
struct FinishedExecutor {
    description: ExecutorDescription,
    app: AppLabel,
}

/// A finished driver, kept for the status UI (`ember.worker.ui.retainedDrivers`).
struct FinishedDriver {
    id: DriverId,
    state: DriverState,
    cores: u32,
    memory_mib: u32,
    program: String,
}

/// The worker endpoint. Its state is owned here and changed only by its handlers.
pub(crate) struct Worker {
    who: WorkerIdentity,
    settings: WorkerSettings,
    registration: Registration,
    /// The master last registered with (Spark's `master`).
    master: Option<EndpointRef<MasterProtocol>>,
    retry_timer: Option<Ticker>,
    heartbeat_timer: Option<Ticker>,
    cleanup_timer: Option<Ticker>,
    cleanup_running: Arc<AtomicBool>,
    executors: BTreeMap<(AppId, u32), RunningExecutor>,
    finished_executors: VecDeque<FinishedExecutor>,
    drivers: BTreeMap<DriverId, DriverRunner>,
    finished_drivers: VecDeque<FinishedDriver>,
    /// The status page of the master last registered with.
    master_web_ui_url: Option<String>,
    finished_apps: HashSet<AppId>,
    sync: Option<StateSync>,
    exit: Arc<ExitSlot>,
    /// The programs fetched for executors, `<work>/cache/`.
    programs: Arc<ProgramCache>,
    /// Messages refused because their sender may not send them (`senders.rs`).
    refused: Refusals,
}

/// Who the worker is and what it offers: what [`Worker::new`] needs besides its settings.
pub(crate) struct WorkerIdentity {
    /// `worker-<yyyyMMddHHmmss>-<host>-<port>`.
    pub(crate) id: WorkerId,
    /// The worker env's advertised address.
    pub(crate) address: RpcAddress,
    /// Cores offered.
    pub(crate) cores: u32,
    /// Memory offered, MiB.
    pub(crate) memory_mib: u32,
    /// The work dir, absolute.
    pub(crate) work_dir: PathBuf,
    /// Reported to the master.
    pub(crate) web_ui_url: String,
    /// The masters to register with.
    pub(crate) masters: Vec<RpcAddress>,
    /// The command prefix children start through.
    pub(crate) launcher: Vec<String>,
    /// What children get in their environment to connect as this worker does (its secret
    /// and security settings; empty when it does not authenticate).
    pub(crate) security_env: Vec<(&'static str, OsString)>,
}

impl Worker {
    /// A worker that has not registered yet; `exit` receives the reason if it gives up.
    pub(crate) fn new(
        who: WorkerIdentity,
        settings: WorkerSettings,
        exit: Arc<ExitSlot>,
    ) -> Worker {
        Worker {
            registration: Registration::new(settings.schedule),
            settings,
            master: None,
            retry_timer: None,
            heartbeat_timer: None,
            cleanup_timer: None,
            cleanup_running: Arc::new(AtomicBool::new(false)),
            executors: BTreeMap::new(),
            finished_executors: VecDeque::new(),
            drivers: BTreeMap::new(),
            finished_drivers: VecDeque::new(),
            master_web_ui_url: None,
            finished_apps: HashSet::new(),
            sync: None,
            exit,
            programs: Arc::new(ProgramCache::new(&who.work_dir)),
            refused: Refusals::new(),
            who,
        }
    }

    /// `ember://host:port` of the master last registered with.
    fn active_master_url(&self) -> Option<String> {
        self.registration.master().map(RpcAddress::to_ember_url)
    }

    /// A ticker sending this endpoint `make()` every `interval`; `None` (logged) if no
    /// thread could be started.
    fn ticker(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        interval: Duration,
        make: fn() -> WorkerControl,
    ) -> Option<Ticker> {
        let me = ctx.control_ref();
        match Ticker::start(name, interval, move || me.send(make()).is_ok()) {
            Ok(t) => Some(t),
            Err(e) => {
                log::error!("Could not start the {name} timer: {e}");
                None
            }
        }
    }

    fn start_timers(&mut self, ctx: &Ctx<'_>) {
        // Spark sends the first heartbeat right after registering; the ticker's first tick
        // comes one interval later, so send one now.
        self.send_heartbeat(ctx);
        self.heartbeat_timer = self.ticker(
            ctx,
            "worker-heartbeat",
            self.settings.heartbeat_interval,
            || WorkerControl::SendHeartbeat,
        );
        if let Some(cleanup) = self.settings.cleanup {
            self.cleanup_timer = self.ticker(ctx, "worker-cleanup-timer", cleanup.interval, || {
                WorkerControl::WorkDirCleanup
            });
        }
    }

    fn send_heartbeat(&self, ctx: &Ctx<'_>) {
        if self.registration.is_connected() {
            self.send_to_master(MasterMessage::Heartbeat {
                worker_id: self.who.id.clone(),
                worker: ctx.self_ref().clone(),
            });
        }
    }

    fn send_to_master(&self, msg: MasterMessage) {
        match &self.master {
            Some(master) => {
                if let Err(e) = master.send(msg) {
                    log::warn!("Failed to send to master {master}: {e}");
                }
            }
            None => log::warn!(
                "Dropping a message to the master because the connection to master has not \
                 yet been established"
            ),
        }
    }

    /// Registration is hopeless, or a fatal error happened: exit 1 (Spark's
    /// `System.exit(1)`). The env shuts down, which kills the children first.
    fn give_up(&mut self, ctx: &Ctx<'_>, reason: &str) {
        log::error!("{reason}");
        self.exit.fail(reason);
        ctx.env().shutdown();
    }

    fn executor_descriptions(&self) -> Vec<ExecutorDescription> {
        self.executors
            .values()
            .map(|e| e.runner.description(e.state))
            .collect()
    }

    // ---- Handlers, one per message.

    fn reregister_with_master(&mut self, ctx: &Ctx<'_>) {
        let actions = self.registration.retry_tick();
        self.perform(ctx, actions, "All masters are unresponsive! Giving up.");
    }
}

impl RpcEndpoint for Worker {
    type Protocol = WorkerProtocol;

    fn on_start(&mut self, ctx: &Ctx<'_>) -> HandlerResult {
        log::info!(
            "Starting Ember worker {}:{} with {} cores, {} MiB RAM",
            self.who.address.host(),
            self.who.address.port(),
            self.who.cores,
            self.who.memory_mib
        );
        log::info!(
            "Worker id {}; work dir {}",
            self.who.id,
            self.who.work_dir.display()
        );
        let exit = Arc::clone(&self.exit);
        let env = ctx.env().clone();
        let sync = StateSync::start(
            self.settings.state_sync_max_attempts,
            self.settings.ask_timeout.clone(),
            move |reason| {
                log::error!("{reason}");
                exit.fail(&reason);
                env.shutdown();
            },
        )?;
        self.sync = Some(sync);
        let actions = self.registration.register();
        self.perform(ctx, actions, "");
        Ok(())
    }

    fn receive(&mut self, ctx: &Ctx<'_>, msg: WorkerMessage) -> HandlerResult {
        if !self.accepts(&msg, ctx.sender()) {
            return Ok(());
        }
        match msg {
            WorkerMessage::RegisteredWorker {
                master,
                master_address,
                duplicate,
                master_web_ui_url,
            } => {
                self.master_web_ui_url = Some(master_web_ui_url);
                self.registered_worker(ctx, master, master_address, duplicate)
            }
            WorkerMessage::RegisterWorkerFailed { message } => {
                self.register_worker_failed(ctx, &message)
            }
            WorkerMessage::MasterInStandby => log::debug!("A master is in standby; still trying"),
            WorkerMessage::ReconnectWorker { master_url } => {
                self.reconnect_worker(ctx, &master_url)
            }
            WorkerMessage::LaunchExecutor {
                master_url,
                app_id,
                exec_id,
                description,
                cores,
                memory_mib,
            } => self.launch_executor(
                ctx,
                &master_url,
                app_id,
                exec_id,
                description,
                cores,
                memory_mib,
            ),
            WorkerMessage::KillExecutor {
                master_url,
                app_id,
                exec_id,
            } => self.kill_executor(&master_url, app_id, exec_id),
            WorkerMessage::LaunchDriver {
                driver_id,
                description,
            } => self.launch_driver(ctx, driver_id, description),
            WorkerMessage::KillDriver { driver_id } => self.kill_driver(&driver_id),
            WorkerMessage::MasterChanged {
                master,
                master_web_ui_url,
            } => {
                self.master_changed(ctx, master, &master_web_ui_url);
                self.master_web_ui_url = Some(master_web_ui_url);
            }
            WorkerMessage::ApplicationFinished { app_id } => self.application_finished(app_id),
        }
        Ok(())
    }

    fn receive_control(&mut self, ctx: &Ctx<'_>, msg: WorkerControl) -> HandlerResult {
        match msg {
            WorkerControl::ExecutorStateChanged {
                app_id,
                exec_id,
                state,
                message,
                exit_status,
            } => self.executor_state_changed(app_id, exec_id, state, message, exit_status),
            WorkerControl::DriverStateChanged {
                driver_id,
                state,
                exception,
            } => self.driver_state_changed(driver_id, state, exception),
            WorkerControl::ReregisterWithMaster => self.reregister_with_master(ctx),
            WorkerControl::SendHeartbeat => self.send_heartbeat(ctx),
            WorkerControl::WorkDirCleanup => self.work_dir_cleanup(),
            WorkerControl::View { reply } => reply.send(self.view()),
            WorkerControl::MasterChecked { master, answer } => self.master_checked(&master, answer),
        }
        Ok(())
    }

    fn receive_and_reply(&mut self, _ctx: &Ctx<'_>, ask: WorkerAsk) -> HandlerResult {
        let WorkerAsk::RequestWorkerState { reply } = ask;
        let used = self.used();
        reply.send(WorkerState {
            id: self.who.id.clone(),
            master_url: self.active_master_url(),
            cores: self.who.cores,
            cores_used: used.cores,
            memory_mib: self.who.memory_mib,
            memory_used_mib: used.memory_mib,
            executors: self.executor_descriptions(),
            finished_executors: self
                .finished_executors
                .iter()
                .map(|f| f.description.clone())
                .collect(),
            drivers: self.drivers.keys().cloned().collect(),
            refused_messages: self.refused.count(),
        });
        Ok(())
    }

    fn on_disconnected(&mut self, ctx: &Ctx<'_>, remote: &RpcAddress) {
        let actions = self.registration.disconnected(remote);
        self.perform(ctx, actions, "");
    }

    fn on_stop(&mut self, _env: &RpcEnv) -> HandlerResult {
        self.retry_timer = None;
        self.heartbeat_timer = None;
        self.cleanup_timer = None;
        if let Some(mut sync) = self.sync.take() {
            sync.stop();
        }
        self.kill_all_children();
        Ok(())
    }
}

/// What the executors and drivers a worker runs hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Used {
    cores: u32,
    memory_mib: u32,
}

impl Used {
    /// Adds what one child holds (saturating: the master's placement keeps the sum within
    /// what the worker offers, but a wrong sum is no reason to panic).
    fn plus(self, cores: u32, memory_mib: u32) -> Used {
        Used {
            cores: self.cores.saturating_add(cores),
            memory_mib: self.memory_mib.saturating_add(memory_mib),
        }
    }
}

impl Worker {
    /// What the executors and drivers it runs hold, counted from them: it is asked for
    /// only in state requests, and a running total kept beside the maps could drift from
    /// them unseen.
    fn used(&self) -> Used {
        let executors = self
            .executors
            .values()
            .map(|e| (e.runner.cores(), e.runner.memory_mib()));
        let drivers = self.drivers.values().map(|d| (d.cores(), d.memory_mib()));
        executors
            .chain(drivers)
            .fold(Used::default(), |used, (cores, memory_mib)| {
                used.plus(cores, memory_mib)
            })
    }

    /// Kills every executor and driver and waits for them, so none outlives the worker.
    fn kill_all_children(&mut self) {
        if self.executors.is_empty() && self.drivers.is_empty() {
            return;
        }
        log::info!(
            "Killing {} executors and {} drivers",
            self.executors.len(),
            self.drivers.len()
        );
        // Signal them all first, so their grace periods run at the same time.
        for e in self.executors.values() {
            e.runner.kill();
        }
        for d in self.drivers.values() {
            d.kill();
        }
        let grace = self
            .settings
            .executor_kill_grace
            .max(self.settings.driver_kill_grace);
        let deadline = Instant::now() + grace + STOP_MARGIN;
        for ((app_id, exec_id), e) in &self.executors {
            let left = deadline.saturating_duration_since(Instant::now());
            if e.runner.wait_exit(left).is_none() {
                match e.runner.pid() {
                    Some(pid) => log::warn!("Executor {app_id}/{exec_id} (pid {pid}) did not exit"),
                    None => {
                        log::warn!("Executor {app_id}/{exec_id} was still fetching its program")
                    }
                }
            }
        }
        for (id, d) in &self.drivers {
            if !d.wait_done(deadline.saturating_duration_since(Instant::now())) {
                log::warn!("Driver {id} did not exit");
            }
        }
    }
}

/// Drops the oldest entries when `list` is over `retained`: `max(len / 10, 1)` of them, so
/// trimming happens in batches (Spark's `trimFinishedExecutorsIfNecessary`).
fn trim_oldest<T>(list: &mut VecDeque<T>, retained: usize) {
    if list.len() > retained {
        let drop = (list.len() / 10).max(1);
        list.drain(..drop.min(list.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trimmed_sizes(retained: usize, exits: usize) -> Vec<usize> {
        let mut finished = VecDeque::new();
        (0..exits)
            .map(|i| {
                finished.push_back(i);
                trim_oldest(&mut finished, retained);
                finished.len()
            })
            .collect()
    }

    /// WorkerSuite 3 and 5: "test clearing of finishedExecutors / finishedDrivers (small
    /// number of ...)": with 2 retained, sizes go 1, 2, 2, 2, 2, oldest dropped first.
    #[test]
    fn clearing_finished_entries_small() {
        assert_eq!(trimmed_sizes(2, 5), [1, 2, 2, 2, 2]);
        let mut finished: VecDeque<usize> = (0..3).collect();
        trim_oldest(&mut finished, 2);
        assert_eq!(finished, [1, 2]);
    }

    /// WorkerSuite 4 and 6: "(more executors / drivers)": 30 retained, the 31st exit drops
    /// max(31 / 10, 1) = 3 of the oldest, leaving 28.
    #[test]
    fn clearing_finished_entries_more() {
        let sizes = trimmed_sizes(30, 50);
        assert_eq!(sizes[29], 30);
        assert_eq!(sizes[30], 28);
        assert!(sizes.iter().all(|&n| n <= 30));
    }
}
