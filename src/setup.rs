//! How a context builds its scheduler backend: settings, pools, the listening driver env
//! with its endpoints, and the description of the application for a standalone master.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rpc_env::{ControlRef, RpcConf, RpcEnv, RpcEnvConfig, TimeUnit};

use ember_deploy::messages::{
    placeholders, AppClientControl, AppClientProtocol, ApplicationDescription, Command,
    APP_CLIENT_ENDPOINT_NAME,
};
use ember_scheduler::{
    keys, AppConfig, DriverEndpoint, DriverProtocol, EventSink, HeartbeatReceiver, Pools,
    SchedulerConf, SchedulingMode, TaskScheduler, DRIVER_ENDPOINT_NAME, HEARTBEAT_RECEIVER_NAME,
};

use crate::error::Error;
use crate::keys::{
    CORES_MAX, DRIVER_HOST, DRIVER_PORT, EXECUTOR_CORES, EXECUTOR_MEMORY, EXECUTOR_PROGRAM,
    EXECUTOR_PROGRAM_ARGS, NETWORK_TIMEOUT_INTERVAL,
};
use ember_deploy::program::{digest_file, ProgramDigest};
use ember_deploy::LOCAL_IP_ENV;

pub(crate) fn required<'a>(conf: &'a RpcConf, key: &str, what: &str) -> Result<&'a str, Error> {
    conf.get(key)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Error::Conf(format!("{what} must be set in your configuration ({key})")))
}

pub(crate) fn pools(conf: &RpcConf) -> Result<Pools, Error> {
    let mode = SchedulingMode::parse(conf.get(keys::SCHEDULER_MODE).unwrap_or("FIFO"))
        .map_err(|e| Error::Conf(format!("{}: {e}", keys::SCHEDULER_MODE)))?;
    match mode {
        SchedulingMode::Fifo => Ok(Pools::fifo()),
        SchedulingMode::Fair => {
            let xml = match conf.get(keys::ALLOCATION_FILE) {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    Error::Conf(format!(
                        "Cannot read {} '{path}': {e}",
                        keys::ALLOCATION_FILE
                    ))
                })?),
                None => None,
            };
            Pools::fair(xml.as_deref()).map_err(|e| Error::Conf(e.to_string()))
        }
    }
}

pub(crate) fn app_config(conf: &RpcConf, app_id: &str) -> AppConfig {
    AppConfig {
        app_id: app_id.to_string(),
        properties: conf
            .iter()
            .filter(|(k, _)| k.starts_with("ember."))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

pub(crate) fn new_app_id(prefix: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{prefix}-{millis}")
}

/// A listening driver env with the driver endpoint and the heartbeat receiver. A
/// `standalone` driver hears from the master how its executors ended, and so waits a little
/// for that before removing one whose connection dropped. `events` hears what the driver
/// endpoint sees (the event log).
pub(crate) fn remote_driver(
    conf: &RpcConf,
    id_prefix: &str,
    standalone: bool,
    events: Option<Arc<dyn EventSink>>,
) -> Result<(RpcEnv, ControlRef<DriverProtocol>, String), Error> {
    let scheduler_conf = SchedulerConf::from_conf(conf)?;
    let max_failures = conf.get_u32(keys::TASK_MAX_FAILURES, 4)?;
    let max_message_size = conf.max_message_size()?;
    let network_timeout = conf.network_timeout()?;
    let check_interval = conf.get_duration(
        NETWORK_TIMEOUT_INTERVAL,
        Duration::from_secs(60),
        TimeUnit::Milliseconds,
    )?;
    let host = match conf.get(DRIVER_HOST) {
        Some(host) => host.to_string(),
        None => std::env::var(LOCAL_IP_ENV).unwrap_or_else(|_| "127.0.0.1".to_string()),
    };
    let port = conf.get_u32(DRIVER_PORT, 0)?;
    let port = u16::try_from(port)
        .map_err(|_| Error::Conf(format!("{DRIVER_PORT} must be a port, not {port}")))?;
    let scheduler = TaskScheduler::new(scheduler_conf, max_failures, pools(conf)?);
    let env =
        RpcEnv::create(RpcEnvConfig::server("ember-driver", host, port).with_conf(conf.clone()))?;
    let app_id = new_app_id(id_prefix);
    let driver = env.control_ref::<DriverProtocol>(DRIVER_ENDPOINT_NAME);
    let started = (|| -> Result<(), Error> {
        env.setup_endpoint(
            HEARTBEAT_RECEIVER_NAME,
            HeartbeatReceiver::new(driver.clone(), network_timeout, check_interval),
        )?;
        let heartbeat = env.control_ref(HEARTBEAT_RECEIVER_NAME);
        let mut endpoint =
            DriverEndpoint::new(scheduler, app_config(conf, &app_id), max_message_size)
                .with_heartbeat_receiver(heartbeat);
        if let Some(sink) = events {
            endpoint = endpoint.with_event_sink(sink);
        }
        if standalone {
            endpoint = endpoint.with_disconnect_removal_delay(conf.get_duration(
                crate::keys::EXECUTOR_REMOVE_DELAY_ON_DISCONNECTION,
                Duration::from_secs(5),
                TimeUnit::Milliseconds,
            )?);
            // The app client is set up later, under this name, in this env.
            let client = env.control_ref::<AppClientProtocol>(APP_CLIENT_ENDPOINT_NAME);
            // The master hears of each executor that registers here: only those reset its
            // executor retry count, and only their clean exits are not failures.
            let told = client.clone();
            endpoint = endpoint.with_registration_hook(Box::new(move |executor_id| {
                if let Ok(exec_id) = executor_id.as_str().parse::<u32>() {
                    let _ = told.send(AppClientControl::ExecutorRegistered { exec_id });
                }
            }));
            endpoint = endpoint.with_executor_killer(Box::new(move |executor_id| {
                let Ok(exec_id) = executor_id.as_str().parse::<u32>() else {
                    log::warn!("Cannot ask the master to kill executor {executor_id}");
                    return;
                };
                let kill = AppClientControl::KillExecutors {
                    exec_ids: vec![exec_id],
                };
                if let Err(e) = client.send(kill) {
                    log::warn!("Could not ask the master to kill executor {executor_id}: {e}");
                }
            }));
        }
        env.setup_endpoint(DRIVER_ENDPOINT_NAME, endpoint)?;
        Ok(())
    })();
    if let Err(e) = started {
        env.shutdown();
        return Err(e);
    }
    Ok((env, driver, app_id))
}

/// What the master needs to know of this application, including how a worker starts one
/// of its executors: this program (or `ember.executor.program`) with executor arguments.
/// With `serve_program`, when the executors' program is this very binary, the driver
/// serves it and the description carries its digest, for workers whose disks lack it
/// (`local-cluster` workers run in this process, so they need not: hashing the binary
/// would only slow its start).
pub(crate) fn application_description(
    conf: &RpcConf,
    app_name: &str,
    driver_url: &str,
    env: &RpcEnv,
    serve_program: bool,
) -> Result<ApplicationDescription, Error> {
    let exe = std::env::current_exe();
    let program = match (conf.get(EXECUTOR_PROGRAM), &exe) {
        (Some(p), _) => std::path::PathBuf::from(p),
        (None, Ok(exe)) => exe.clone(),
        (None, Err(e)) => {
            return Err(Error::Conf(format!(
                "Cannot find this program to start executors: {e}"
            )))
        }
    };
    // This very program (a test binary, an App) is served to the workers that lack it;
    // another one must be on the workers already.
    let program_digest = match &exe {
        Ok(exe) if serve_program && is_same_file(&program, exe) => Some(serve(env, exe)?),
        _ => None,
    };
    let program = program.to_string_lossy().into_owned();
    let mut args: Vec<String> = conf
        .get(EXECUTOR_PROGRAM_ARGS)
        .map(|a| a.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    args.extend([
        "--driver-url".to_string(),
        driver_url.to_string(),
        "--executor-id".to_string(),
        placeholders::EXECUTOR_ID.to_string(),
        "--hostname".to_string(),
        placeholders::HOSTNAME.to_string(),
        "--cores".to_string(),
        placeholders::CORES.to_string(),
        "--app-id".to_string(),
        placeholders::APP_ID.to_string(),
        "--worker-url".to_string(),
        placeholders::WORKER_URL.to_string(),
    ]);
    let mut env = BTreeMap::new();
    for key in ["RUST_LOG", "RUST_BACKTRACE"] {
        if let Ok(v) = std::env::var(key) {
            env.insert(key.to_string(), v);
        }
    }
    let memory = conf.get_size_bytes(EXECUTOR_MEMORY, 1 << 30, rpc_env::SizeUnit::MiB)?;
    let cores_max = conf
        .get(CORES_MAX)
        .map(|_| conf.get_u32(CORES_MAX, 0))
        .transpose()?;
    let cores_per_executor = conf
        .get(EXECUTOR_CORES)
        .map(|_| conf.get_u32(EXECUTOR_CORES, 0))
        .transpose()?;
    Ok(ApplicationDescription {
        name: app_name.to_string(),
        max_cores: cores_max,
        memory_per_executor_mib: u32::try_from(memory >> 20).unwrap_or(u32::MAX),
        cores_per_executor,
        command: Command { program, args, env },
        user: std::env::var("USER").unwrap_or_else(|_| "ember".to_string()),
        program_digest,
    })
}

/// Whether `a` and `b` are one file (symlinks and relative paths resolved).
fn is_same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    matches!(
        (std::fs::canonicalize(a), std::fs::canonicalize(b)),
        (Ok(a), Ok(b)) if a == b
    )
}

/// Serves this program from the driver's file server, so that workers whose disks do not
/// have it fetch it, and describes it: its URI, size and SHA-256.
fn serve(env: &RpcEnv, exe: &std::path::Path) -> Result<ProgramDigest, Error> {
    let cannot = |e: String| {
        Error::Conf(format!(
            "Cannot serve this program ({}) to the workers: {e}",
            exe.display()
        ))
    };
    let (size, sha256) = digest_file(exe).map_err(|e| cannot(e.to_string()))?;
    let uri = env
        .file_server()
        .and_then(|files| files.add_file(exe))
        .map_err(|e| cannot(e.to_string()))?;
    Ok(ProgramDigest { uri, size, sha256 })
}
