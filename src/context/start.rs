//! Starting a [`Context`]: one constructor per master URL mode (`local[...]`, a standalone
//! cluster, `local-cluster[...]`, no cluster manager), each building the driver endpoint,
//! the deployment it needs and the observers its settings ask for.

use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Arc;
use std::time::Duration;

use rpc_env::{ControlRef, RpcConf, RpcEnv, RpcEnvConfig, TimeUnit};

use ember_deploy::client::{AppClient, AppClientConfig};
use ember_deploy::messages::{AppClientProtocol, APP_CLIENT_ENDPOINT_NAME};
use ember_deploy::LocalCluster;
use ember_executor::{DriverReporter, Executor, LocalExecutorHandle, TaskFiles, TaskRegistry};
use ember_scheduler::{
    DriverEndpoint, DriverProtocol, ExecutorId, SchedulerConf, TaskScheduler, DRIVER_ENDPOINT_NAME,
};

use crate::error::Error;
use crate::event_log::{sink_of, EventLog};
use crate::keys::{
    APP_NAME, EXECUTOR_MEMORY, MASTER, REGISTRATION_RETRIES, REGISTRATION_TIMEOUT,
    STARVATION_TIMEOUT,
};
use crate::master_url::MasterUrl;
use crate::progress::ConsoleProgress;
use crate::setup::{
    app_config, application_description, new_app_id, pools, remote_driver, required,
};
use crate::standalone_backend::{AppStatus, StandaloneBackend};

use super::{Context, Deployment, Inner, Observers, StandaloneApp};

impl Context {
    /// A context for the master and application named in `conf` (`ember.master`,
    /// `ember.app.name`), running tasks from `registry`.
    pub fn new(conf: RpcConf, registry: TaskRegistry) -> Result<Context, Error> {
        let master = MasterUrl::parse(required(&conf, MASTER, "A master URL")?)?;
        let app_name = required(&conf, APP_NAME, "An application name")?.to_string();
        match master {
            MasterUrl::Local {
                threads,
                max_failures,
            } => Context::local(
                conf,
                registry,
                app_name,
                threads.resolve(),
                max_failures,
                master,
            ),
            MasterUrl::Standalone { ref masters } => {
                let masters = masters.clone();
                Context::standalone(conf, registry, app_name, masters, master, None)
            }
            MasterUrl::LocalCluster {
                workers,
                cores_per_worker,
                memory_per_worker_mib,
            } => {
                let executor_mib =
                    conf.get_size_bytes(EXECUTOR_MEMORY, 1 << 30, rpc_env::SizeUnit::MiB)? >> 20;
                if executor_mib > u64::from(memory_per_worker_mib) {
                    return Err(Error::Conf(format!(
                        "Asked to launch cluster with {memory_per_worker_mib} MiB/worker but \
                         requested {executor_mib} MiB/executor"
                    )));
                }
                // Its master, workers, executors and this driver all listen on loopback:
                // authenticated by default, so other local users cannot reach them.
                let conf = conf.with_default_authentication()?;
                let cluster =
                    LocalCluster::start(workers, cores_per_worker, memory_per_worker_mib, &conf)
                        .map_err(|e| Error::Conf(format!("Cannot start the local cluster: {e}")))?;
                let masters = vec![cluster.master().address()];
                Context::standalone(conf, registry, app_name, masters, master, Some(cluster))
            }
        }
    }

    fn local(
        conf: RpcConf,
        registry: TaskRegistry,
        app_name: String,
        threads: u32,
        max_failures: u32,
        master: MasterUrl,
    ) -> Result<Context, Error> {
        let scheduler_conf = SchedulerConf::from_conf(&conf)?;
        if scheduler_conf.task_cpus > threads {
            return Err(Error::Conf(format!(
                "The number of cores per executor (={threads}) has to be >= the number of cpus \
                 per task = {}.",
                scheduler_conf.task_cpus
            )));
        }
        let max_message_size = conf.max_message_size()?;
        let scheduler = TaskScheduler::new(scheduler_conf, max_failures, pools(&conf)?);
        let event_log = EventLog::from_conf(&conf)?;
        let env = RpcEnv::create(RpcEnvConfig::client("ember-driver").with_conf(conf.clone()))?;
        let app_id = new_app_id("local");
        let registry = Arc::new(registry);
        let driver = env.control_ref::<DriverProtocol>(DRIVER_ENDPOINT_NAME);
        // One id shared by the executor, its reports and the driver's books, so comparing
        // them is a pointer check.
        let executor_id = ExecutorId::driver();
        let reporter = Arc::new(DriverReporter::local(driver.clone(), executor_id.clone()));
        let files = Arc::new(parking_lot::RwLock::new(std::collections::BTreeMap::new()));
        let executor = Executor::start(
            executor_id.clone(),
            threads,
            Arc::clone(&registry),
            reporter,
            usize::MAX,
            Arc::new(TaskFiles::Local(Arc::clone(&files))),
        )
        .map_err(|e| Error::Conf(format!("Cannot start the local executor: {e}")))?;
        let executor = Arc::new(executor);
        let mut endpoint =
            DriverEndpoint::new(scheduler, app_config(&conf, &app_id), max_message_size)
                .with_local_executor(
                    executor_id,
                    "localhost".to_string(),
                    threads,
                    Arc::new(LocalExecutorHandle(Arc::clone(&executor))),
                );
        if let Some(log) = &event_log {
            log.application_started(&app_id, &app_name);
            endpoint = endpoint.with_event_sink(Arc::clone(log) as _);
        }
        if let Err(e) = env.setup_endpoint(DRIVER_ENDPOINT_NAME, endpoint) {
            executor.stop();
            env.shutdown();
            return Err(e.into());
        }
        log::info!("Started {app_name} ({app_id}) on {threads} local thread(s)");
        let progress = ConsoleProgress::from_conf(&conf, &driver)?;
        Ok(Context {
            inner: Arc::new(Inner {
                env,
                driver,
                deployment: Deployment::Local {
                    master,
                    executor,
                    files,
                },
                registry,
                next_job: AtomicU32::new(0),
                app_id,
                app_name,
                default_parallelism: threads,
                stopped: AtomicBool::new(false),
                progress,
                event_log,
            }),
        })
    }

    /// A driver with no cluster manager: it listens on `ember.driver.host:ember.driver.port`
    /// and schedules on whatever executors register with it. Start them yourself with
    /// [`executor_args`](Self::executor_args) (tests and benchmarks do).
    pub fn driver_only(conf: RpcConf, registry: TaskRegistry) -> Result<Context, Error> {
        let app_name = conf.get(APP_NAME).unwrap_or("ember-app").to_string();
        let event_log = EventLog::from_conf(&conf)?;
        let (env, driver, app_id) = remote_driver(&conf, "app", false, sink_of(&event_log))?;
        let observers = Observers {
            progress: ConsoleProgress::from_conf(&conf, &driver)?,
            event_log,
        };
        Ok(Context::remote(
            env,
            driver,
            app_id,
            app_name,
            registry,
            Deployment::DriverOnly,
            observers,
        ))
    }

    /// A driver of a standalone cluster: executors come from the masters' workers. With
    /// `local_cluster`, those masters run in this process, and stop with the context.
    fn standalone(
        conf: RpcConf,
        registry: TaskRegistry,
        app_name: String,
        masters: Vec<rpc_env::RpcAddress>,
        master: MasterUrl,
        local_cluster: Option<LocalCluster>,
    ) -> Result<Context, Error> {
        let event_log = EventLog::from_conf(&conf)?;
        let (env, driver, _local_id) = remote_driver(&conf, "app", true, sink_of(&event_log))?;
        let driver_url = format!(
            "ember://{DRIVER_ENDPOINT_NAME}@{}",
            env.address().map(|a| a.host_port()).unwrap_or_default()
        );
        let registration =
            (|| -> Result<(ControlRef<AppClientProtocol>, Arc<AppStatus>, Duration), Error> {
                let description = application_description(
                    &conf,
                    &app_name,
                    &driver_url,
                    &env,
                    local_cluster.is_none(),
                )?;
                let timeout = conf.get_duration(
                    REGISTRATION_TIMEOUT,
                    Duration::from_secs(20),
                    TimeUnit::Seconds,
                )?;
                let retries = conf.get_u32(REGISTRATION_RETRIES, 3)?.max(1);
                let starvation_timeout = conf.get_duration(
                    STARVATION_TIMEOUT,
                    Duration::from_secs(15),
                    TimeUnit::Seconds,
                )?;
                let status = Arc::new(AppStatus::default());
                let client = AppClient::new(
                    AppClientConfig {
                        masters,
                        description,
                        registration_timeout: timeout,
                        registration_retries: retries,
                        starvation_timeout,
                    },
                    Box::new(StandaloneBackend::new(driver.clone(), Arc::clone(&status))),
                );
                env.setup_endpoint(APP_CLIENT_ENDPOINT_NAME, client)?;
                let client_ref = env.control_ref(APP_CLIENT_ENDPOINT_NAME);
                Ok((client_ref, status, timeout * (retries + 1)))
            })();
        let (client_ref, status, wait) = match registration {
            Ok(r) => r,
            Err(e) => {
                env.shutdown();
                return Err(e);
            }
        };
        // Like Spark's backend start: a context exists only once a master took the app.
        let app_id = match status.wait_registered(wait) {
            Some(Ok(app_id)) => app_id.0,
            Some(Err(reason)) => {
                env.shutdown();
                return Err(Error::Conf(format!(
                    "Application has been killed. Reason: {reason}"
                )));
            }
            None => {
                env.shutdown();
                return Err(Error::Timeout("registering with the masters".into()));
            }
        };
        log::info!(
            "Started {app_name} ({app_id}) on {}",
            conf.get(MASTER).unwrap_or("?")
        );
        let app = StandaloneApp {
            client: client_ref,
            status,
        };
        let deployment = match local_cluster {
            Some(cluster) => Deployment::LocalCluster {
                master,
                app,
                cluster: parking_lot::Mutex::new(Some(cluster)),
            },
            None => Deployment::Standalone { master, app },
        };
        let observers = Observers {
            progress: ConsoleProgress::from_conf(&conf, &driver)?,
            event_log,
        };
        Ok(Context::remote(
            env, driver, app_id, app_name, registry, deployment, observers,
        ))
    }

    fn remote(
        env: RpcEnv,
        driver: ControlRef<DriverProtocol>,
        app_id: String,
        app_name: String,
        registry: TaskRegistry,
        deployment: Deployment,
        observers: Observers,
    ) -> Context {
        let Observers {
            progress,
            event_log,
        } = observers;
        // Only now is the application's id known (a standalone master gives it): the log's
        // file is named by it. What the driver endpoint posted before waits for it.
        if let Some(log) = &event_log {
            log.application_started(&app_id, &app_name);
        }
        Context {
            inner: Arc::new(Inner {
                env,
                driver,
                deployment,
                registry: Arc::new(registry),
                next_job: AtomicU32::new(0),
                app_id,
                app_name,
                default_parallelism: 2,
                stopped: AtomicBool::new(false),
                progress,
                event_log,
            }),
        }
    }
}
