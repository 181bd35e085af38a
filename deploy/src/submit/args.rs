//! `ember-submit`'s command line (Spark's `SparkSubmitArguments`, standalone parts).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rpc_env::{keys, RpcAddress, RpcConf, TimeUnit};

use clap::builder::TypedValueParser;

use crate::command_line::{parse, Parsed, Utf8};
use crate::messages::{Command, DriverDescription};
use crate::program::ProgramDigest;
use crate::properties::{properties_file, read_properties};
use crate::{parse_master_urls, parse_memory_mib, DriverId};

use super::keys as submit_keys;
use super::{CONF_ENV, MASTER_ENV};

/// `ember-submit`'s usage text, printed for `--help` and after a bad argument.
pub const SUBMIT_USAGE: &str = "\
Usage: ember-submit [options] <app-binary> [app arguments]
Usage: ember-submit --kill <driver-id> --master ember://host:port
Usage: ember-submit --status <driver-id> --master ember://host:port

Options:
  --master URL             ember://host:port[,host:port...], or local[N], local-cluster[...]
                           in client mode (default: ember.master from the properties file,
                           else $EMBER_MASTER, else the application's own default)
  --deploy-mode MODE       client (default): run the application here; cluster: run it as
                           a driver on a worker (same binary path on every worker's machine)
  --name NAME              The application's name (ember.app.name)
  --conf KEY=VALUE         An ember.* setting for the application; may be repeated
  --properties-file FILE   Settings file (default: $EMBER_CONF_DIR/ember-defaults.conf,
                           if it exists); --conf wins over it
  --driver-memory MEM      Cluster mode: the driver's memory (e.g. 512m, 2g; default 1g)
  --driver-cores N         Cluster mode: the driver's cores (default 1)
  --supervise              Cluster mode: restart the driver when it fails
  --no-wait                Cluster mode: exit once the driver is submitted
  --wait-timeout TIME      Cluster mode: stop waiting for the driver after TIME (e.g. 90s,
                           10min; a bare number is seconds) and exit 1
  --kill DRIVER_ID         Kill a driver submitted in cluster mode
  --status DRIVER_ID       Print the state of a driver submitted in cluster mode
  -h, --help               Print this help and exit

Client mode runs the application with EMBER_MASTER and EMBER_CONF set and exits with its
exit code. Cluster mode prints the driver's id and its states, and exits 0 when it FINISHED.
";

/// Where the application's driver runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployMode {
    /// Here, as a child of `ember-submit` (it becomes the application).
    Client,
    /// On a worker, placed by the master.
    Cluster,
}

/// An application to run.
#[derive(Debug, Clone)]
pub struct SubmitArgs {
    /// The master URL, when one was given (flag, properties file or `$EMBER_MASTER`).
    pub master: Option<String>,
    /// The masters' addresses, when `master` is an `ember://` URL.
    pub masters: Vec<RpcAddress>,
    /// Where the driver runs.
    pub deploy_mode: DeployMode,
    /// The application's settings: the properties file's `ember.*` keys, the `--conf`
    /// flags over them, and what the other flags set (`ember.app.name`, `ember.master`,
    /// `ember.submit.deployMode`, `ember.driver.*`).
    pub conf: RpcConf,
    /// The driver's memory in MiB (cluster mode).
    pub driver_memory_mib: u32,
    /// The driver's cores (cluster mode).
    pub driver_cores: u32,
    /// Relaunch the driver when it fails (cluster mode).
    pub supervise: bool,
    /// Follow the driver until it ends (cluster mode; `--no-wait` clears it).
    pub wait: bool,
    /// How long to follow it at most (cluster mode).
    pub wait_timeout: Option<Duration>,
    /// The application binary.
    pub app: PathBuf,
    /// Its arguments.
    pub app_args: Vec<OsString>,
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum SubmitCommand {
    /// Run an application.
    Submit(SubmitArgs),
    /// Kill a cluster-mode driver.
    Kill {
        /// The masters to ask.
        masters: Vec<RpcAddress>,
        /// The driver.
        driver_id: DriverId,
        /// Settings for the RPC client.
        conf: RpcConf,
    },
    /// Print a cluster-mode driver's state.
    Status {
        /// The masters to ask.
        masters: Vec<RpcAddress>,
        /// The driver.
        driver_id: DriverId,
        /// Settings for the RPC client.
        conf: RpcConf,
    },
    /// Print [`SUBMIT_USAGE`] and exit 0.
    Help,
}

/// A command line `ember-submit` cannot use, or an application it cannot submit. The binary
/// prints it (then [`SUBMIT_USAGE`] when [`show_usage`](Self::show_usage)) and exits 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitError {
    message: String,
    usage: bool,
}

impl SubmitError {
    /// A bad command line: the usage follows the message.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        SubmitError {
            message: message.into(),
            usage: true,
        }
    }

    /// A failure that is not the command line's fault: no usage after it.
    pub fn new(message: impl Into<String>) -> Self {
        SubmitError {
            message: message.into(),
            usage: false,
        }
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the usage should be printed after the message.
    pub fn show_usage(&self) -> bool {
        self.usage
    }
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SubmitError {}

/// The flags as given, before defaults and the properties file, as clap reads them;
/// [`SUBMIT_USAGE`] describes them. Every value is taken as given, even one that starts
/// with `-`, and a repeated flag's last value wins (`--conf`s add up).
#[derive(clap::Parser)]
#[command(
    no_binary_name = true,
    disable_help_flag = true,
    args_override_self = true
)]
struct Flags {
    #[arg(long, allow_hyphen_values = true, value_parser = TEXT)]
    master: Option<String>,
    #[arg(long, allow_hyphen_values = true, value_parser = TEXT)]
    deploy_mode: Option<String>,
    #[arg(long, allow_hyphen_values = true, value_parser = TEXT)]
    name: Option<String>,
    /// `-c` as in spark-submit.
    #[arg(
        short = 'c',
        long = "conf",
        allow_hyphen_values = true,
        value_parser = TEXT.try_map(|pair| parse_conf_pair(&pair))
    )]
    confs: Vec<(String, String)>,
    #[arg(long, allow_hyphen_values = true)]
    properties_file: Option<PathBuf>,
    #[arg(long, allow_hyphen_values = true, value_parser = TEXT)]
    driver_memory: Option<String>,
    #[arg(long, allow_hyphen_values = true, value_parser = TEXT)]
    driver_cores: Option<String>,
    #[arg(long)]
    supervise: bool,
    #[arg(long)]
    no_wait: bool,
    #[arg(long, allow_hyphen_values = true, value_parser = TEXT)]
    wait_timeout: Option<String>,
    #[arg(long, allow_hyphen_values = true, value_parser = TEXT)]
    kill: Option<String>,
    #[arg(long, allow_hyphen_values = true, value_parser = TEXT)]
    status: Option<String>,
    /// Unlike the other binaries, `-h` is help here, as in spark-submit.
    #[arg(short = 'h', long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// The application binary and its arguments: everything from the first argument that
    /// is not a flag on is the application's, flags and `--` included.
    #[arg(trailing_var_arg = true)]
    command: Vec<OsString>,
}

/// The text flags' parser, in the words `ember-submit` has always used.
const TEXT: Utf8 = Utf8(|flag, _| format!("The value of {flag} is not valid UTF-8"));

/// Reads `ember-submit`'s arguments (without the program name). `env` looks up an
/// environment variable: `EMBER_CONF_DIR` (the default properties file) and
/// `EMBER_MASTER`. Reads the properties file; touches nothing else.
///
/// ```
/// use ember_deploy::submit::{parse_submit_args, DeployMode, SubmitCommand};
///
/// let args = ["--master", "ember://m:7077", "--deploy-mode", "cluster", "/bin/pi", "8"];
/// let Ok(SubmitCommand::Submit(submit)) = parse_submit_args(args, |_| None) else {
///     panic!("a valid command line");
/// };
/// assert_eq!(submit.deploy_mode, DeployMode::Cluster);
/// assert_eq!(submit.app_args, ["8"]);
/// ```
///
/// # Errors
///
/// An unknown flag, a flag without its value, a bad value, `--kill` or `--status` without
/// an `ember://` master, no application, or a properties file that cannot be read.
pub fn parse_submit_args<I, A>(
    args: I,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SubmitCommand, SubmitError>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    let mut flags = match parse::<Flags>(args) {
        Ok(Parsed::Args(flags)) => flags,
        Ok(Parsed::Help) => return Ok(SubmitCommand::Help),
        Err(bad) => return Err(SubmitError::usage(bad.into_message())),
    };
    let mut command = std::mem::take(&mut flags.command).into_iter();
    let app = command.next().map(PathBuf::from);
    let app_args: Vec<OsString> = command.collect();
    let mut conf = match properties_file(flags.properties_file.clone(), &env) {
        Some(path) => read_properties(&path).map_err(SubmitError::new)?,
        None => RpcConf::new(),
    };
    for (key, value) in &flags.confs {
        conf.set(key, value);
    }
    let master = flags
        .master
        .clone()
        .or_else(|| conf.get("ember.master").map(str::to_string))
        .or_else(|| env(MASTER_ENV))
        .filter(|m| !m.trim().is_empty());

    if flags.kill.is_some() || flags.status.is_some() {
        return driver_request(flags, app, master, conf);
    }
    let Some(app) = app else {
        return Err(SubmitError::usage("Must specify the application binary"));
    };
    let deploy_mode = match flags
        .deploy_mode
        .as_deref()
        .or(conf.get(submit_keys::DEPLOY_MODE))
    {
        None | Some("client") => DeployMode::Client,
        Some("cluster") => DeployMode::Cluster,
        Some(other) => {
            return Err(SubmitError::usage(format!(
                "Deploy mode must be either client or cluster, not '{other}'"
            )))
        }
    };
    let masters = match (&master, deploy_mode) {
        (Some(url), _) if url.starts_with("ember://") => {
            parse_master_urls(url).map_err(SubmitError::usage)?
        }
        (_, DeployMode::Client) => Vec::new(),
        (Some(url), DeployMode::Cluster) => {
            return Err(SubmitError::usage(format!(
                "Cluster deploy mode needs an ember://host:port master, not '{url}'"
            )))
        }
        (None, DeployMode::Cluster) => {
            return Err(SubmitError::usage(
                "Cluster deploy mode needs a master: --master ember://host:port",
            ))
        }
    };
    if deploy_mode == DeployMode::Client
        && (flags.supervise || flags.no_wait || flags.wait_timeout.is_some())
    {
        return Err(SubmitError::usage(
            "--supervise, --no-wait and --wait-timeout apply to cluster deploy mode only",
        ));
    }

    let memory_text = flags
        .driver_memory
        .clone()
        .or_else(|| conf.get(submit_keys::DRIVER_MEMORY).map(str::to_string))
        .unwrap_or_else(|| "1g".to_string());
    let driver_memory_mib = parse_memory_mib(&memory_text)
        .map_err(|e| SubmitError::usage(format!("--driver-memory: {e}")))?;
    let cores_text = flags
        .driver_cores
        .clone()
        .or_else(|| conf.get(submit_keys::DRIVER_CORES).map(str::to_string))
        .unwrap_or_else(|| "1".to_string());
    let driver_cores = match cores_text.trim().parse::<u32>() {
        Ok(n) if n > 0 => n,
        _ => {
            return Err(SubmitError::usage(format!(
                "--driver-cores must be a positive integer, not '{cores_text}'"
            )))
        }
    };
    let supervise = flags.supervise
        || conf
            .get_bool(submit_keys::DRIVER_SUPERVISE, false)
            .map_err(|e| SubmitError::usage(e.to_string()))?;
    let wait_timeout = match &flags.wait_timeout {
        None => None,
        Some(text) => Some(
            RpcConf::new()
                .with("--wait-timeout", text)
                .get_duration("--wait-timeout", Duration::ZERO, TimeUnit::Seconds)
                .map_err(|e| SubmitError::usage(e.to_string()))?,
        ),
    };

    if let Some(name) = &flags.name {
        conf.set("ember.app.name", name);
    }
    if let Some(url) = &master {
        conf.set("ember.master", url);
    }
    let mode = match deploy_mode {
        DeployMode::Client => "client",
        DeployMode::Cluster => "cluster",
    };
    conf.set(submit_keys::DEPLOY_MODE, mode);
    if deploy_mode == DeployMode::Cluster {
        conf.set(submit_keys::DRIVER_MEMORY, format!("{driver_memory_mib}m"));
        conf.set(submit_keys::DRIVER_CORES, driver_cores.to_string());
        conf.set(submit_keys::DRIVER_SUPERVISE, supervise.to_string());
    }
    Ok(SubmitCommand::Submit(SubmitArgs {
        master,
        masters,
        deploy_mode,
        conf,
        driver_memory_mib,
        driver_cores,
        supervise,
        wait: !flags.no_wait,
        wait_timeout,
        app,
        app_args,
    }))
}

/// `KEY=VALUE` from `--conf`: an `ember.*` key without blanks, `=` or `:` (the properties
/// format's separators), and a value on one line.
fn parse_conf_pair(pair: &str) -> Result<(String, String), SubmitError> {
    let Some((key, value)) = pair.split_once('=') else {
        return Err(SubmitError::usage(format!(
            "--conf needs KEY=VALUE, not '{pair}'"
        )));
    };
    let key = key.trim();
    if !key.starts_with("ember.") || key.contains(|c: char| c == ':' || c.is_whitespace()) {
        return Err(SubmitError::usage(format!(
            "--conf keys are ember.* settings without blanks or ':', not '{key}'"
        )));
    }
    if value.contains(['\n', '\r']) {
        return Err(SubmitError::usage(format!(
            "--conf {key}: the value must be on one line"
        )));
    }
    Ok((key.to_string(), value.trim().to_string()))
}

/// `--kill` or `--status`.
fn driver_request(
    flags: Flags,
    app: Option<PathBuf>,
    master: Option<String>,
    conf: RpcConf,
) -> Result<SubmitCommand, SubmitError> {
    if let Some(app) = &app {
        return Err(SubmitError::usage(format!(
            "--kill and --status take no application, but '{}' was given",
            app.display()
        )));
    }
    let Some(url) = master.filter(|m| m.starts_with("ember://")) else {
        return Err(SubmitError::usage(
            "--kill and --status need a master: --master ember://host:port",
        ));
    };
    let masters = parse_master_urls(&url).map_err(SubmitError::usage)?;
    match (flags.kill, flags.status) {
        (Some(id), None) => Ok(SubmitCommand::Kill {
            masters,
            driver_id: DriverId(id),
            conf,
        }),
        (None, Some(id)) => Ok(SubmitCommand::Status {
            masters,
            driver_id: DriverId(id),
            conf,
        }),
        _ => Err(SubmitError::usage("Give --kill or --status, not both")),
    }
}

impl SubmitArgs {
    /// The settings as the application reads them from [`CONF_ENV`]: one `key=value` per
    /// line, never the secret itself (it travels in [`keys::AUTH_SECRET_ENV`]: an
    /// environment variable of its own is not copied into messages, logs or recovery
    /// files). With `cluster`, the secret file's path is left out too: it names a file on
    /// this host, and the worker that runs the driver hands it its own secret.
    pub fn conf_text(&self, cluster: bool) -> String {
        self.conf
            .iter()
            .filter(|(key, _)| {
                let host_path = cluster && *key == keys::AUTHENTICATE_SECRET_FILE;
                !keys::holds_secret(key) && !host_path
            })
            .map(|(key, value)| format!("{key}={value}\n"))
            .collect()
    }

    /// The environment the application gets in client mode: [`MASTER_ENV`] (when a master
    /// was given), [`CONF_ENV`], and the secret in [`keys::AUTH_SECRET_ENV`] when it was
    /// given as a setting.
    pub fn app_env(&self) -> BTreeMap<String, String> {
        let mut env = self.cluster_env();
        env.insert(CONF_ENV.to_string(), self.conf_text(false));
        if let Some(secret) = self.conf.get(keys::AUTHENTICATE_SECRET) {
            env.insert(keys::AUTH_SECRET_ENV.to_string(), secret.to_string());
        }
        env
    }

    /// The environment a cluster-mode driver is described with (it goes to the master and
    /// into its recovery files): [`MASTER_ENV`] and [`CONF_ENV`], nothing secret.
    fn cluster_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if let Some(master) = &self.master {
            env.insert(MASTER_ENV.to_string(), master.clone());
        }
        env.insert(CONF_ENV.to_string(), self.conf_text(true));
        env
    }

    /// How client mode runs the application: the binary with its arguments and
    /// [`app_env`](Self::app_env) on top of this process's environment.
    pub fn client_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.app);
        command.args(&self.app_args).envs(self.app_env());
        command
    }

    /// What cluster mode asks the master to run: the binary by its absolute path, with its
    /// size and SHA-256 (it is uploaded to the master, so workers without it fetch it), its
    /// arguments, an environment without secrets, the driver's memory, cores and supervise.
    ///
    /// # Errors
    ///
    /// The binary is not an executable file here, or an argument is not UTF-8.
    pub fn driver_description(&self) -> Result<DriverDescription, SubmitError> {
        use std::os::unix::fs::PermissionsExt;

        let cannot = |why: &str| {
            SubmitError::new(format!(
                "Cannot submit application binary {}: {why}",
                self.app.display()
            ))
        };
        let path = std::fs::canonicalize(&self.app).map_err(|e| cannot(&e.to_string()))?;
        let meta = std::fs::metadata(&path).map_err(|e| cannot(&e.to_string()))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(cannot("not an executable file"));
        }
        let (size, sha256) =
            crate::program::digest_file(&path).map_err(|e| cannot(&e.to_string()))?;
        let program = path
            .into_os_string()
            .into_string()
            .map_err(|_| cannot("its path is not valid UTF-8"))?;
        let args = self
            .app_args
            .iter()
            .map(|a| {
                a.clone().into_string().map_err(|a| {
                    cannot(&format!(
                        "argument {} is not valid UTF-8",
                        a.to_string_lossy()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DriverDescription {
            memory_mib: self.driver_memory_mib,
            cores: self.driver_cores,
            supervise: self.supervise,
            command: Command {
                program,
                args,
                env: self.cluster_env(),
            },
            // The master fills in where it serves the upload.
            program_digest: Some(ProgramDigest {
                uri: String::new(),
                size,
                sha256,
            }),
        })
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
