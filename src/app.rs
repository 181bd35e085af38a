//! [`App`]: the entry point of an application's binary, which is both its driver and, when
//! a worker launches it with executor arguments, its executors.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use rpc_env::{Decode, Encode, RpcConf};

use ember_executor::{
    asks_for_help, looks_like_executor, run_executor, usage, ExecutorArgs, TaskContext, TaskError,
    TaskRegistry,
};

use crate::context::Context;
use crate::keys::{APP_NAME, MASTER};

/// The environment variable that names the default master.
pub const MASTER_ENV: &str = "EMBER_MASTER";

/// The environment variable through which `ember-submit` hands a driver its settings
/// (`--conf`, the properties file): one `key=value` per line. Settings the program makes
/// itself win over these, as in Spark.
pub const CONF_ENV: &str = "EMBER_CONF";

/// `conf` with every setting of `text` (properties, as in [`CONF_ENV`]) it does not have.
fn with_submitted(mut conf: RpcConf, text: &str) -> Result<RpcConf, String> {
    let submitted = RpcConf::from_properties(text).map_err(|e| format!("bad {CONF_ENV}: {e}"))?;
    for (key, value) in submitted.iter() {
        if !conf.contains(key) {
            conf.set(key, value);
        }
    }
    Ok(conf)
}

/// An application: its name, its task functions, its settings.
///
/// ```no_run
/// use ember::{App, TaskContext, TaskError};
///
/// fn double(_ctx: &TaskContext, x: u64) -> Result<u64, TaskError> {
///     Ok(2 * x)
/// }
///
/// fn main() -> std::process::ExitCode {
///     App::new("doubler")
///         .task("double", double)
///         .run(|ctx| {
///             let out: Vec<u64> = ctx.run_job("double", vec![1u64, 2, 3])?;
///             println!("{out:?}");
///             Ok(())
///         })
/// }
/// ```
pub struct App {
    name: String,
    registry: TaskRegistry,
    conf: RpcConf,
}

impl App {
    /// An application called `name`, with no tasks yet.
    pub fn new(name: &str) -> App {
        App {
            name: name.to_string(),
            registry: TaskRegistry::new(),
            conf: RpcConf::new(),
        }
    }

    /// Registers a task function under `name`.
    pub fn task<In, Out, F>(mut self, name: &str, f: F) -> App
    where
        In: Decode + 'static,
        Out: Encode + 'static,
        F: Fn(&TaskContext, In) -> Result<Out, TaskError> + Send + Sync + 'static,
    {
        self.registry.register(name, f);
        self
    }

    /// Sets an `ember.*` setting.
    pub fn conf(mut self, key: &str, value: &str) -> App {
        self.conf.set(key, value);
        self
    }

    /// Sets the master URL (else `ember.master` from `$EMBER_CONF`, else `$EMBER_MASTER`,
    /// else `local[*]`).
    pub fn master(self, url: &str) -> App {
        self.conf(MASTER, url)
    }

    /// In a process a worker launched as an executor (its arguments carry `--driver-url`),
    /// runs the executor with the registered tasks and exits the process with its exit code;
    /// anywhere else, returns the app unchanged. Call it before parsing the program's own
    /// options, so that the program's parser never sees executor arguments:
    ///
    /// ```no_run
    /// # fn double(_: &ember::TaskContext, x: u64) -> Result<u64, ember::TaskError> { Ok(2 * x) }
    /// let app = ember::App::new("doubler")
    ///     .task("double", double)
    ///     .run_executor_if_launched();
    /// // Only a driver gets here: its own options are all that is left to read.
    /// let verbose = std::env::args().any(|a| a == "--verbose");
    /// # let _ = (app, verbose);
    /// ```
    ///
    /// [`App::run`] does the same check, so a program without options of its own needs only
    /// `run`.
    pub fn run_executor_if_launched(self) -> App {
        let args: Vec<OsString> = std::env::args_os().skip(1).collect();
        if !looks_like_executor(&args) {
            return self;
        }
        init_logging();
        let code = self.run_as_executor(args);
        std::process::exit(code);
    }

    /// Runs the application. Launched with executor arguments (`--driver-url ...`), this
    /// process becomes an executor running the registered tasks; otherwise it creates a
    /// [`Context`], runs `driver` with it, and stops it. Returns the process's exit code;
    /// errors are printed.
    pub fn run<F>(self, driver: F) -> ExitCode
    where
        F: FnOnce(&Context) -> Result<(), Box<dyn std::error::Error>>,
    {
        init_logging();
        let args: Vec<OsString> = std::env::args_os().skip(1).collect();
        if looks_like_executor(&args) {
            let code = self.run_as_executor(args);
            return ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1));
        }
        let conf = match std::env::var(CONF_ENV) {
            Ok(text) => match with_submitted(self.conf, &text) {
                Ok(conf) => conf,
                Err(e) => {
                    eprintln!("{}: {e}", self.name);
                    return ExitCode::FAILURE;
                }
            },
            Err(_) => self.conf,
        };
        // A cluster-mode driver started by a worker connects as the worker does.
        let mut conf = match conf.with_inherited_security() {
            Ok(conf) => conf,
            Err(e) => {
                eprintln!("{}: {e}", self.name);
                return ExitCode::FAILURE;
            }
        };
        if !conf.contains(MASTER) {
            let master = std::env::var(MASTER_ENV).unwrap_or_else(|_| "local[*]".to_string());
            conf.set(MASTER, master);
        }
        conf.set(APP_NAME, self.name.clone());
        let ctx = match Context::new(conf, self.registry) {
            Ok(ctx) => ctx,
            Err(e) => {
                eprintln!("{}: {e}", self.name);
                return ExitCode::FAILURE;
            }
        };
        let outcome = driver(&ctx);
        ctx.stop();
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{}: {e}", self.name);
                ExitCode::FAILURE
            }
        }
    }

    /// Runs this process as an executor with `args`; returns its exit code.
    fn run_as_executor(self, args: Vec<OsString>) -> i32 {
        let program = std::env::args().next().unwrap_or_else(|| self.name.clone());
        if asks_for_help(&args) {
            print!("{}", usage(&program));
            return 0;
        }
        match ExecutorArgs::parse(args) {
            Ok(args) => run_executor(&args, Arc::new(self.registry)),
            Err(e) => {
                eprintln!("{e}");
                eprint!("{}", usage(&program));
                1
            }
        }
    }
}

/// Warnings by default (`RUST_LOG` decides otherwise), as Spark's console shows WARN: the
/// driver's warnings (no executor after `ember.scheduler.starvationTimeout`, a lost master)
/// are for the person who started it.
fn init_logging() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .try_init();
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.name)
            .field("tasks", &self.registry)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submitted_settings_fill_in_what_the_program_did_not_set() {
        let own = RpcConf::new().with("ember.executor.cores", "2");
        let conf = with_submitted(
            own,
            "ember.executor.cores=4\nember.master=ember://h:7077\n# a comment\n",
        )
        .expect("valid properties");
        assert_eq!(
            conf.get("ember.executor.cores"),
            Some("2"),
            "the program's wins"
        );
        assert_eq!(conf.get("ember.master"), Some("ember://h:7077"));
    }

    #[test]
    fn bad_submitted_settings_are_an_error_naming_the_variable() {
        let err = with_submitted(RpcConf::new(), "= 5").expect_err("no key");
        assert!(err.starts_with("bad EMBER_CONF: "), "{err}");
    }
}
