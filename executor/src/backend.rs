//! The coarse-grained executor backend: the executor process's endpoint (`Executor`) and
//! its start sequence (Spark's `CoarseGrainedExecutorBackend`).
//!
//! 1. A short-lived client-mode env fetches the application's settings from the driver.
//! 2. The real env (client mode too) registers the `Executor` endpoint, which asks the
//!    driver `RegisterExecutor`; on success it creates the [`Executor`] and tells the driver
//!    `LaunchedExecutor`, and only then does the driver give it tasks.
//! 3. It heartbeats to the driver's `HeartbeatReceiver`, and exits when the driver's
//!    connection drops (or, with `--worker-url`, when its worker goes).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rpc_env::{
    EndpointAddress, EndpointContext, EndpointRef, HandlerResult, RpcAddress, RpcConf, RpcEndpoint,
    RpcEnv, RpcEnvConfig, RpcTimeout, Threading, Ticker,
};

use ember_scheduler::{
    DriverAsk, DriverMessage, DriverProtocol, ExecutorId, ExecutorMessage, ExecutorProtocol,
    HeartbeatAsk, HeartbeatProtocol, SchedulerConf, EXECUTOR_ENDPOINT_NAME,
    HEARTBEAT_RECEIVER_NAME,
};

use crate::args::ExecutorArgs;
use crate::executor::Executor;
use crate::local::DriverReporter;
use crate::registry::TaskRegistry;
use crate::task_files::{TaskFiles, FILES_DIR};
use crate::worker_watcher::WorkerWatcher;

/// Exit code when heartbeats keep failing (Spark's `HEARTBEAT_FAILURE`).
pub const EXIT_HEARTBEAT_FAILURE: i32 = 56;
/// Consecutive failed heartbeats before the executor gives up (Spark's default).
const MAX_HEARTBEAT_FAILURES: u32 = 60;

/// The executor process's endpoint.
pub struct ExecutorBackend {
    executor_id: ExecutorId,
    hostname: String,
    cores: u32,
    registry: Arc<TaskRegistry>,
    driver: EndpointRef<DriverProtocol>,
    driver_address: Option<RpcAddress>,
    heartbeat: Option<EndpointRef<HeartbeatProtocol>>,
    heartbeat_interval: Duration,
    max_result_size: usize,
    executor: Option<Arc<Executor>>,
    heartbeater: Option<Ticker>,
    exit_code: Arc<AtomicI32>,
    stopping: bool,
}

impl ExecutorBackend {
    /// Where this executor's tasks find the application's added files: fetched from the
    /// driver's file server into `files/` of the executor's working directory (the one
    /// its worker made for it).
    fn task_files(&self, ctx: &EndpointContext<'_, ExecutorProtocol>) -> TaskFiles {
        match self.driver.address().address() {
            Some(driver) => {
                let dir = std::env::current_dir()
                    .unwrap_or_else(|_| std::path::PathBuf::from("."))
                    .join(FILES_DIR);
                TaskFiles::fetched(ctx.env().clone(), driver.clone(), dir)
            }
            None => TaskFiles::None,
        }
    }

    fn exit(&mut self, ctx: &EndpointContext<'_, ExecutorProtocol>, code: i32, reason: &str) {
        if code == 0 {
            log::info!("{reason}");
        } else {
            log::error!("{reason}");
        }
        self.stopping = true;
        self.exit_code.store(code, Ordering::SeqCst);
        self.heartbeater = None;
        if let Some(executor) = &self.executor {
            executor.stop();
        }
        ctx.env().shutdown();
    }

    fn start_heartbeats(&mut self) {
        let Some(receiver) = self.heartbeat.clone() else {
            return;
        };
        let executor_id = self.executor_id.clone();
        let executor = self.executor.clone();
        let interval = self.heartbeat_interval;
        let failures = Arc::new(AtomicU32::new(0));
        let timeout = RpcTimeout::new(interval, "ember.executor.heartbeatInterval");
        let exit_code = Arc::clone(&self.exit_code);
        let ticker = Ticker::start("executor-heartbeater", interval, move || {
            let running = executor
                .as_ref()
                .map(|e| e.running_tasks())
                .unwrap_or_default();
            let failures = Arc::clone(&failures);
            let exit_code = Arc::clone(&exit_code);
            receiver
                .ask_with_rpc_timeout(
                    |reply| HeartbeatAsk::Heartbeat {
                        executor_id: executor_id.clone(),
                        running,
                        reply,
                    },
                    &timeout,
                )
                .on_complete(move |outcome| match outcome {
                    Ok(response) => {
                        failures.store(0, Ordering::SeqCst);
                        if response.unknown_executor {
                            log::warn!("The driver does not know this executor any more");
                        }
                    }
                    Err(e) => {
                        let n = failures.fetch_add(1, Ordering::SeqCst) + 1;
                        log::warn!("Issue communicating with driver in heartbeater ({n}): {e}");
                        if n >= MAX_HEARTBEAT_FAILURES {
                            log::error!("Exit as unable to send heartbeats to driver more than {MAX_HEARTBEAT_FAILURES} times");
                            exit_code.store(EXIT_HEARTBEAT_FAILURE, Ordering::SeqCst);
                            std::process::exit(EXIT_HEARTBEAT_FAILURE);
                        }
                    }
                });
            true
        });
        match ticker {
            Ok(t) => self.heartbeater = Some(t),
            Err(e) => log::warn!("Could not start the heartbeat thread: {e}"),
        }
    }
}

impl RpcEndpoint for ExecutorBackend {
    type Protocol = ExecutorProtocol;

    /// Launches and kills only queue work, so the IO thread may handle them (Spark makes
    /// this endpoint isolated for the same reason: nothing may delay it).
    fn threading(&self) -> Threading {
        Threading::Inline
    }

    fn on_start(&mut self, ctx: &EndpointContext<'_, ExecutorProtocol>) -> HandlerResult {
        log::info!("Connecting to driver: {}", self.driver);
        let me = ctx.self_ref().clone();
        let log_urls: BTreeMap<String, String> = std::env::vars()
            .filter_map(|(k, v)| {
                k.strip_prefix("EMBER_LOG_URL_")
                    .map(|name| (name.to_lowercase(), v))
            })
            .collect();
        self.driver
            .ask(|reply| DriverAsk::RegisterExecutor {
                executor_id: self.executor_id.clone(),
                executor_ref: me.clone(),
                hostname: self.hostname.clone(),
                cores: self.cores,
                log_urls,
                reply,
            })
            .on_complete(move |outcome| {
                let msg = match outcome {
                    Ok(true) => ExecutorMessage::RegisteredExecutor,
                    Ok(false) => ExecutorMessage::RegistrationFailed {
                        message: "the driver refused".into(),
                    },
                    Err(e) => ExecutorMessage::RegistrationFailed {
                        message: e.to_string(),
                    },
                };
                let _ = me.send(msg);
            });
        Ok(())
    }

    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, ExecutorProtocol>,
        msg: ExecutorMessage,
    ) -> HandlerResult {
        match msg {
            ExecutorMessage::RegisteredExecutor => {
                log::info!("Successfully registered with driver");
                let reporter = Arc::new(DriverReporter::new(
                    self.driver.clone(),
                    self.executor_id.clone(),
                ));
                match Executor::start(
                    self.executor_id.clone(),
                    self.cores,
                    Arc::clone(&self.registry),
                    reporter,
                    self.max_result_size,
                    Arc::new(self.task_files(ctx)),
                ) {
                    Ok(executor) => {
                        self.executor = Some(Arc::new(executor));
                        self.start_heartbeats();
                        self.driver.send(DriverMessage::LaunchedExecutor {
                            executor_id: self.executor_id.clone(),
                        })?;
                    }
                    Err(e) => self.exit(ctx, 1, &format!("Unable to create executor due to {e}")),
                }
            }
            ExecutorMessage::RegistrationFailed { message } => {
                let reason = format!("Cannot register with driver: {}: {message}", self.driver);
                self.exit(ctx, 1, &reason);
            }
            ExecutorMessage::LaunchTasks { tasks } => match &self.executor {
                Some(executor) => executor.launch_tasks(tasks),
                None => self.exit(ctx, 1, "Received LaunchTask command but executor was null"),
            },
            ExecutorMessage::KillTask { task_id, reason } => match &self.executor {
                Some(executor) => executor.kill_task(task_id, reason),
                None => self.exit(ctx, 1, "Received KillTask command but executor was null"),
            },
            ExecutorMessage::StopExecutor => self.exit(ctx, 0, "Driver commanded a shutdown"),
        }
        Ok(())
    }

    fn on_disconnected(
        &mut self,
        ctx: &EndpointContext<'_, ExecutorProtocol>,
        remote: &RpcAddress,
    ) {
        if self.stopping {
            log::info!("Driver from {remote} disconnected during shutdown");
        } else if self.driver_address.as_ref() == Some(remote) {
            let reason = format!("Driver {remote} disassociated! Shutting down.");
            self.exit(ctx, 1, &reason);
        } else {
            log::warn!("An unknown ({remote}) driver disconnected.");
        }
    }

    fn on_stop(&mut self, _env: &RpcEnv) -> HandlerResult {
        self.heartbeater = None;
        if let Some(executor) = &self.executor {
            executor.stop();
        }
        Ok(())
    }
}

/// The URI of another endpoint in the driver's env: same address, another name.
fn sibling_uri(driver_url: &str, name: &str) -> Option<String> {
    let address = EndpointAddress::parse(driver_url).ok()?;
    Some(EndpointAddress::new(address.address().cloned(), name).to_string())
}

/// Runs an executor process with these arguments until it is told to stop or loses its
/// driver; returns the process's exit code.
pub fn run_executor(args: &ExecutorArgs, registry: Arc<TaskRegistry>) -> i32 {
    match start_and_wait(args, registry) {
        Ok(code) => code,
        Err(e) => {
            log::error!("Executor {} failed to start: {e}", args.executor_id);
            eprintln!("ember-executor: {e}");
            1
        }
    }
}

fn start_and_wait(args: &ExecutorArgs, registry: Arc<TaskRegistry>) -> Result<i32, String> {
    let driver_address = EndpointAddress::parse(&args.driver_url)
        .map_err(|e| e.to_string())?
        .address()
        .cloned();
    // Phase 1: fetch the application's settings with a throw-away env, authenticated the
    // way the worker that started this process is (its secret and settings come in the
    // environment: the driver never sends the secret).
    let inherited = RpcConf::new()
        .with_inherited_security()
        .map_err(|e| e.to_string())?;
    let fetcher = RpcEnv::create(RpcEnvConfig::client("driverPropsFetcher").with_conf(inherited))
        .map_err(|e| e.to_string())?;
    let app_config = fetch_app_config(&fetcher, &args.driver_url);
    fetcher.shutdown();
    let app_config = app_config?;
    let mut conf = RpcConf::new();
    for (k, v) in &app_config.properties {
        conf.set(k.clone(), v.clone());
    }
    conf.set("ember.app.id", app_config.app_id.clone());
    conf.set("ember.executor.id", args.executor_id.clone());
    let conf = conf.with_inherited_security().map_err(|e| e.to_string())?;
    let scheduler_conf = SchedulerConf::from_conf(&conf).map_err(|e| e.to_string())?;
    // Phase 2: the real env.
    let env = RpcEnv::create(RpcEnvConfig::client("ember-executor").with_conf(conf.clone()))
        .map_err(|e| e.to_string())?;
    let started = (|| -> Result<Arc<AtomicI32>, String> {
        let driver: EndpointRef<DriverProtocol> = env
            .setup_endpoint_ref_by_uri(&args.driver_url)
            .map_err(|e| e.to_string())?;
        let heartbeat = sibling_uri(&args.driver_url, HEARTBEAT_RECEIVER_NAME).and_then(|uri| {
            env.setup_endpoint_ref_by_uri::<HeartbeatProtocol>(&uri)
                .ok()
        });
        if heartbeat.is_none() {
            log::warn!(
                "The driver has no {HEARTBEAT_RECEIVER_NAME}: this executor will not heartbeat"
            );
        }
        let exit_code = Arc::new(AtomicI32::new(0));
        let max_result_size = conf
            .max_message_size()
            .map_err(|e| e.to_string())?
            .saturating_sub(1024);
        env.setup_endpoint(
            EXECUTOR_ENDPOINT_NAME,
            ExecutorBackend {
                executor_id: ExecutorId::new(&args.executor_id),
                hostname: args.hostname.clone(),
                cores: args.cores,
                registry,
                driver,
                driver_address,
                heartbeat,
                heartbeat_interval: scheduler_conf.heartbeat_interval,
                max_result_size,
                executor: None,
                heartbeater: None,
                exit_code: Arc::clone(&exit_code),
                stopping: false,
            },
        )
        .map_err(|e| e.to_string())?;
        if let Some(worker_url) = &args.worker_url {
            env.setup_endpoint(
                "WorkerWatcher",
                WorkerWatcher::new(worker_url, Arc::clone(&exit_code))?,
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(exit_code)
    })();
    let exit_code = match started {
        Ok(code) => code,
        Err(e) => {
            env.shutdown();
            return Err(e);
        }
    };
    env.await_termination();
    Ok(exit_code.load(Ordering::SeqCst))
}

/// Spark tries the driver three times before giving up.
fn fetch_app_config(
    fetcher: &RpcEnv,
    driver_url: &str,
) -> Result<ember_scheduler::AppConfig, String> {
    let mut last = String::new();
    for attempt in 1..=3 {
        match fetcher.setup_endpoint_ref_by_uri::<DriverProtocol>(driver_url) {
            Ok(driver) => {
                return driver
                    .ask_sync(|reply| DriverAsk::RetrieveAppConfig { reply })
                    .map_err(|e| format!("Could not fetch the application's settings: {e}"));
            }
            Err(e) => {
                log::warn!("Looking up the driver at {driver_url} failed (attempt {attempt}): {e}");
                last = e.to_string();
            }
        }
    }
    Err(format!("Cannot reach the driver at {driver_url}: {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_scheduler::DRIVER_ENDPOINT_NAME;

    #[test]
    fn sibling_endpoints_share_the_driver_address() {
        let uri = format!("ember://{DRIVER_ENDPOINT_NAME}@10.0.0.1:4040");
        assert_eq!(
            sibling_uri(&uri, HEARTBEAT_RECEIVER_NAME).as_deref(),
            Some("ember://HeartbeatReceiver@10.0.0.1:4040")
        );
        assert_eq!(sibling_uri("nonsense", "x"), None);
    }
}
