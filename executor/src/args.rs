//! The executor process's command line (Spark's `CoarseGrainedExecutorBackend` arguments).

use std::ffi::OsString;
use std::fmt;

/// What an executor process is told when it is launched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorArgs {
    /// The driver endpoint's URI, `ember://CoarseGrainedScheduler@host:port`.
    pub driver_url: String,
    /// This executor's id.
    pub executor_id: String,
    /// The host this executor reports; defaults to the machine's host name.
    pub hostname: String,
    /// Task threads.
    pub cores: u32,
    /// The application's id.
    pub app_id: String,
    /// The worker that launched this process; it exits when that worker goes.
    pub worker_url: Option<String>,
}

/// The usage text.
pub fn usage(program: &str) -> String {
    format!(
        "Usage: {program} [options]\n\n \
         Options are:\n   \
         --driver-url <driverUrl>\n   \
         --executor-id <executorId>\n   \
         --hostname <hostname>\n   \
         --cores <cores>\n   \
         --app-id <appid>\n   \
         --worker-url <workerUrl>\n"
    )
}

/// Why the command line is not an executor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError(String);

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgsError {}

/// Whether these arguments ask for an executor (they name a driver URL). An application's
/// binary uses this to decide whether it was launched as an executor.
pub fn looks_like_executor(args: &[OsString]) -> bool {
    args.iter().any(|a| a == "--driver-url")
}

impl ExecutorArgs {
    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<ExecutorArgs, ArgsError> {
        use lexopt::prelude::*;
        let mut parser = lexopt::Parser::from_args(args);
        let mut driver_url = None;
        let mut executor_id = None;
        let mut hostname = None;
        let mut cores = None;
        let mut app_id = None;
        let mut worker_url = None;
        let text = |v: Result<OsString, lexopt::Error>, flag: &str| -> Result<String, ArgsError> {
            v.map_err(|e| ArgsError(e.to_string()))?
                .into_string()
                .map_err(|_| ArgsError(format!("{flag} is not valid UTF-8")))
        };
        loop {
            let arg = parser.next().map_err(|e| ArgsError(e.to_string()))?;
            let Some(arg) = arg else { break };
            match arg {
                Long("driver-url") => driver_url = Some(text(parser.value(), "--driver-url")?),
                Long("executor-id") => executor_id = Some(text(parser.value(), "--executor-id")?),
                Long("hostname") => hostname = Some(text(parser.value(), "--hostname")?),
                Long("cores") => {
                    let value = text(parser.value(), "--cores")?;
                    cores = Some(value.parse::<u32>().map_err(|_| {
                        ArgsError(format!("--cores must be a positive integer, not '{value}'"))
                    })?);
                }
                Long("app-id") => app_id = Some(text(parser.value(), "--app-id")?),
                Long("worker-url") => worker_url = Some(text(parser.value(), "--worker-url")?),
                other => {
                    let shown = match other {
                        Long(l) => format!("--{l}"),
                        Short(s) => format!("-{s}"),
                        Value(v) => v.to_string_lossy().into_owned(),
                    };
                    return Err(ArgsError(format!("Unrecognized options: {shown}")));
                }
            }
        }
        let missing = |name: &str| ArgsError(format!("Missing required option {name}"));
        let cores = cores.ok_or_else(|| missing("--cores"))?;
        if cores == 0 {
            return Err(ArgsError("--cores must be at least 1".into()));
        }
        Ok(ExecutorArgs {
            driver_url: driver_url.ok_or_else(|| missing("--driver-url"))?,
            executor_id: executor_id.ok_or_else(|| missing("--executor-id"))?,
            hostname: hostname.unwrap_or_else(local_hostname),
            cores,
            app_id: app_id.ok_or_else(|| missing("--app-id"))?,
            worker_url,
        })
    }

    /// The arguments as a command line, for launching an executor.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--driver-url".to_string(),
            self.driver_url.clone(),
            "--executor-id".to_string(),
            self.executor_id.clone(),
            "--hostname".to_string(),
            self.hostname.clone(),
            "--cores".to_string(),
            self.cores.to_string(),
            "--app-id".to_string(),
            self.app_id.clone(),
        ];
        if let Some(w) = &self.worker_url {
            args.push("--worker-url".to_string());
            args.push(w.clone());
        }
        args
    }
}

/// This machine's host name, `localhost` when it cannot be read.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ExecutorArgs, ArgsError> {
        ExecutorArgs::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn parses_sparks_arguments_and_round_trips() {
        let args = parse(&[
            "--driver-url",
            "ember://CoarseGrainedScheduler@127.0.0.1:4040",
            "--executor-id",
            "3",
            "--hostname",
            "h1",
            "--cores",
            "2",
            "--app-id",
            "app-1",
            "--worker-url",
            "ember://Worker@127.0.0.1:5000",
        ])
        .expect("valid");
        assert_eq!(args.cores, 2);
        assert_eq!(
            args.worker_url.as_deref(),
            Some("ember://Worker@127.0.0.1:5000")
        );
        let again =
            ExecutorArgs::parse(args.to_args().into_iter().map(OsString::from)).expect("again");
        assert_eq!(again, args);
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let missing = parse(&["--driver-url", "x", "--cores", "1", "--app-id", "a"]).unwrap_err();
        assert_eq!(missing.to_string(), "Missing required option --executor-id");
        let unknown = parse(&["--bogus", "1"]).unwrap_err();
        assert_eq!(unknown.to_string(), "Unrecognized options: --bogus");
        let zero = parse(&[
            "--driver-url",
            "x",
            "--executor-id",
            "1",
            "--cores",
            "0",
            "--app-id",
            "a",
        ])
        .unwrap_err();
        assert!(zero.to_string().contains("--cores"));
        let nan = parse(&["--cores", "two"]).unwrap_err();
        assert!(nan.to_string().contains("'two'"));
        assert!(usage("ember-executor").starts_with("Usage: ember-executor [options]"));
    }

    #[test]
    fn an_executor_command_line_is_recognised() {
        assert!(looks_like_executor(&[
            OsString::from("--driver-url"),
            OsString::from("x")
        ]));
        assert!(!looks_like_executor(&[
            OsString::from("--master"),
            OsString::from("local")
        ]));
    }
}
