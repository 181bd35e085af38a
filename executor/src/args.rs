//! The executor process's command line (Spark's `CoarseGrainedExecutorBackend` arguments).

use std::ffi::{OsStr, OsString};
use std::fmt;

use clap::builder::TypedValueParser;
use clap::error::{ContextKind, ErrorKind};
use clap::Parser;

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
         --worker-url <workerUrl>\n   \
         -h, --help                  Print this help and exit\n"
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

/// Whether these arguments ask for the usage (`--help` or `-h`, not as a flag's value):
/// the binaries print [`usage`] on stdout and exit 0 without starting anything. Spark's
/// executor has no `--help`; Ember's answers it as every other program does.
pub fn asks_for_help(args: &[OsString]) -> bool {
    matches!(
        Flags::try_parse_from(args),
        Err(e) if e.kind() == ErrorKind::DisplayHelp
    )
}

/// The flags as clap reads them; [`usage`] describes them. Every value is taken as given,
/// even one that starts with `-`, and a repeated flag's last value wins. `--help` and `-h`
/// are found by [`asks_for_help`]. The
/// first bad argument is the one named, except that clap checks a value given apart from its
/// flag only at the next argument: `--cores two --bogus` names `--bogus`.
#[derive(clap::Parser)]
#[command(
    no_binary_name = true,
    disable_help_flag = true,
    args_override_self = true
)]
struct Flags {
    #[arg(long, allow_hyphen_values = true, value_parser = Utf8)]
    driver_url: Option<String>,
    #[arg(long, allow_hyphen_values = true, value_parser = Utf8)]
    executor_id: Option<String>,
    #[arg(long, allow_hyphen_values = true, value_parser = Utf8)]
    hostname: Option<String>,
    #[arg(long, allow_hyphen_values = true, value_parser = Utf8.try_map(|v| parse_cores(&v)))]
    cores: Option<u32>,
    #[arg(long, allow_hyphen_values = true, value_parser = Utf8)]
    app_id: Option<String>,
    #[arg(long, allow_hyphen_values = true, value_parser = Utf8)]
    worker_url: Option<String>,
    #[arg(short, long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

impl ExecutorArgs {
    /// Parses the arguments after the program name.
    ///
    /// # Errors
    ///
    /// In Spark's words: an unrecognized option or stray value, a missing required option,
    /// a `--cores` that is not a positive number; or an option without its value, or with
    /// one that is not UTF-8.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<ExecutorArgs, ArgsError> {
        let flags = Flags::try_parse_from(args).map_err(|e| bad_args(&e))?;
        let missing = |name: &str| ArgsError(format!("Missing required option {name}"));
        let cores = flags.cores.ok_or_else(|| missing("--cores"))?;
        if cores == 0 {
            return Err(ArgsError("--cores must be at least 1".into()));
        }
        Ok(ExecutorArgs {
            driver_url: flags.driver_url.ok_or_else(|| missing("--driver-url"))?,
            executor_id: flags.executor_id.ok_or_else(|| missing("--executor-id"))?,
            hostname: flags.hostname.unwrap_or_else(local_hostname),
            cores,
            app_id: flags.app_id.ok_or_else(|| missing("--app-id"))?,
            worker_url: flags.worker_url,
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

fn parse_cores(value: &str) -> Result<u32, ArgsError> {
    value
        .parse::<u32>()
        .map_err(|_| ArgsError(format!("--cores must be a positive integer, not '{value}'")))
}

/// A text flag's value parser: clap's own cannot say which flag's value is not UTF-8.
#[derive(Clone, Copy)]
struct Utf8;

impl TypedValueParser for Utf8 {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        value.to_str().map(str::to_owned).ok_or_else(|| {
            let flag = arg.and_then(clap::Arg::get_long).unwrap_or_default();
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("--{flag} is not valid UTF-8"),
            )
        })
    }
}

/// clap's error in the words the executor has always used: Spark's for an unknown
/// argument, lexopt's (which read the arguments before clap) for a missing value, and a
/// value parser's own.
fn bad_args(e: &clap::Error) -> ArgsError {
    let named = e.get(ContextKind::InvalidArg).map(ToString::to_string);
    let message = match (e.kind(), std::error::Error::source(e)) {
        (ErrorKind::UnknownArgument, _) => {
            format!("Unrecognized options: {}", named.unwrap_or_default())
        }
        (ErrorKind::ValueValidation, Some(why)) => why.to_string(),
        // The binaries ask `asks_for_help` first; a caller that did not gets a plain error.
        (ErrorKind::DisplayHelp, _) => "help requested".to_string(),
        (ErrorKind::InvalidValue, _) => {
            // clap names `--cores <CORES>`.
            let flag = named
                .as_deref()
                .and_then(|arg| arg.split_whitespace().next());
            format!("missing argument for option '{}'", flag.unwrap_or_default())
        }
        // Utf8's error, or one none of these flags can cause: clap's words, without its
        // `error: ` prefix.
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        }
    };
    ArgsError(message)
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

    /// What lexopt did and clap must keep doing: values that start with '-', the last of a
    /// repeated flag, `--flag=value`, and the executor's words for the rest.
    #[test]
    fn the_command_line_reads_as_it_always_has() {
        let args = parse(&[
            "--driver-url=ember://d@h:1",
            "--executor-id",
            "-1",
            "--cores",
            "1",
            "--cores",
            "3",
            "--app-id",
            "a",
        ])
        .expect("valid");
        assert_eq!((args.executor_id.as_str(), args.cores), ("-1", 3));
        assert_eq!(args.driver_url, "ember://d@h:1");
        assert_eq!(args.worker_url, None);
        let refused = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert_eq!(refused(&["--help"]), "help requested");
        let help =
            |args: &[&str]| asks_for_help(&args.iter().map(OsString::from).collect::<Vec<_>>());
        assert!(help(&["--help"]) && help(&["-h"]) && help(&["--cores", "1", "-h"]));
        // A flag's value is not a request, and neither is a bad command line before it.
        assert!(!help(&["--hostname", "--help"]) && !help(&["--bogus", "--help"]));
        assert_eq!(refused(&["--bogus=1"]), "Unrecognized options: --bogus");
        assert_eq!(refused(&["stray"]), "Unrecognized options: stray");
        assert_eq!(
            refused(&["--cores"]),
            "missing argument for option '--cores'"
        );
        assert_eq!(
            refused(&["--cores", "-2"]),
            "--cores must be a positive integer, not '-2'"
        );
        use std::os::unix::ffi::OsStringExt;
        let not_text = OsString::from_vec(vec![0xff]);
        let err = ExecutorArgs::parse([OsString::from("--app-id"), not_text]).unwrap_err();
        assert_eq!(err.to_string(), "--app-id is not valid UTF-8");
        let flags = <Flags as clap::CommandFactory>::command();
        let text = usage("x");
        for flag in flags.get_arguments().filter_map(clap::Arg::get_long) {
            let named = if flag == "help" {
                text.contains("-h, --help ")
            } else {
                text.contains(&format!("--{flag} <"))
            };
            assert!(named, "--{flag}: {text}");
        }
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
