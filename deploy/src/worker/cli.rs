//! The `ember-worker` command line (Spark's `WorkerArguments`): `ember-worker [options]
//! <master>`, with `EMBER_WORKER_*` environment variables as defaults under the flags, and
//! `--properties-file` for `ember.*` settings.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use super::config::{keys, parse_master_urls, parse_memory_mib, WorkerConfig};
use crate::command_line::{parse, BadArgs, Parsed, Utf8};
use crate::properties::{properties_file, read_properties};

/// Why the command line does not start a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerArgsError {
    /// `--help`: print the usage and exit 0.
    Help,
    /// A bad flag or a missing master: print this, then the usage, and exit 1.
    Usage(String),
    /// A bad value (memory, port, properties file): print this and exit 1.
    Invalid(String),
}

impl fmt::Display for WorkerArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerArgsError::Help => f.write_str("help requested"),
            WorkerArgsError::Usage(why) | WorkerArgsError::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for WorkerArgsError {}

/// The usage text.
pub fn worker_usage() -> String {
    "Usage: ember-worker [options] <master>\n\
     \n\
     Master must be a URL of the form ember://hostname:port[,hostname:port...]\n\
     \n\
     Options:\n  \
     -c CORES, --cores CORES  Number of cores to use (default: all)\n  \
     -m MEM, --memory MEM     Amount of memory to use (e.g. 1000M, 2G; default: total - 1G)\n  \
     -d DIR, --work-dir DIR   Directory to run apps in (default: work)\n  \
     -h HOST, --host HOST     Hostname to listen on (default: 127.0.0.1)\n  \
     -p PORT, --port PORT     Port to listen on (default: random)\n  \
     --webui-port PORT        Port for web UI (default: 8081)\n  \
     --properties-file FILE   Path to a custom Ember properties file\n                              \
     (default: $EMBER_CONF_DIR/ember-defaults.conf, if it exists)\n  \
     --help                   Print this help and exit (so does a -h with no host after it)\n\
     \n\
     Environment: EMBER_WORKER_CORES, EMBER_WORKER_MEMORY, EMBER_WORKER_DIR, EMBER_WORKER_HOST\n\
     (or EMBER_LOCAL_IP), EMBER_WORKER_PORT, EMBER_WORKER_WEBUI_PORT; flags win.\n"
        .to_string()
}

/// `ember-worker`'s flags as clap reads them; [`worker_usage`] describes them. Every value
/// is taken as given, even one that starts with `-`, and a repeated flag's last value wins.
#[derive(clap::Parser)]
#[command(
    no_binary_name = true,
    disable_help_flag = true,
    args_override_self = true
)]
struct WorkerFlags {
    #[arg(
        short,
        long,
        allow_hyphen_values = true,
        value_parser = |v: &str| parse_cores(v, "--cores")
    )]
    cores: Option<u32>,
    /// Parsed after the rest: a bad memory value only counts if no flag replaces it.
    #[arg(short, long, allow_hyphen_values = true, value_parser = TEXT)]
    memory: Option<String>,
    #[arg(short = 'd', long, allow_hyphen_values = true, value_parser = TEXT)]
    work_dir: Option<String>,
    /// `-h` is the host, as in Spark.
    #[arg(short = 'h', long, allow_hyphen_values = true, value_parser = TEXT)]
    host: Option<String>,
    #[arg(
        short,
        long,
        allow_hyphen_values = true,
        value_parser = |v: &str| parse_port(v, "--port")
    )]
    port: Option<u16>,
    #[arg(
        long,
        allow_hyphen_values = true,
        value_parser = |v: &str| parse_port(v, "--webui-port")
    )]
    webui_port: Option<u16>,
    #[arg(long, allow_hyphen_values = true, value_parser = TEXT)]
    properties_file: Option<String>,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// The master URL; more than one is refused after parsing, in words of our own.
    masters: Vec<OsString>,
}

/// The text flags' parser, in the words `ember-worker` has always used.
const TEXT: Utf8 = Utf8(|_, _| "An option's value is not valid UTF-8".to_string());

/// Parses the arguments after the program name; `env` reads environment variables (a
/// parameter so tests need not touch the process's environment).
pub fn parse_worker_args(
    args: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<WorkerConfig, WorkerArgsError> {
    let mut config = WorkerConfig::new(Vec::new());
    // As in Spark, a bad memory value only counts if no flag replaces it.
    let mut memory: Result<u32, String> = Ok(config.memory_mib);
    if let Some(v) = env("EMBER_WORKER_CORES") {
        config.cores = parse_cores(&v, "EMBER_WORKER_CORES")?;
    }
    if let Some(v) = env("EMBER_WORKER_MEMORY") {
        memory = parse_memory_mib(&v);
    }
    if let Some(v) = env("EMBER_WORKER_PORT") {
        config.port = parse_port(&v, "EMBER_WORKER_PORT")?;
    }
    if let Some(v) = env("EMBER_WORKER_WEBUI_PORT") {
        config.webui_port = parse_port(&v, "EMBER_WORKER_WEBUI_PORT")?;
    }
    if let Some(v) = env("EMBER_WORKER_DIR") {
        config.work_dir = PathBuf::from(v);
    }
    if let Some(v) = env("EMBER_WORKER_HOST").or_else(|| env(crate::LOCAL_IP_ENV)) {
        config.host = v;
    }

    let flags = match parse::<WorkerFlags>(args) {
        Ok(Parsed::Args(flags)) => flags,
        Ok(Parsed::Help) => return Err(WorkerArgsError::Help),
        Err(BadArgs::Shape(why)) => return Err(WorkerArgsError::Usage(why)),
        Err(BadArgs::Value(why)) => return Err(WorkerArgsError::Invalid(why)),
    };
    config.cores = flags.cores.unwrap_or(config.cores);
    if let Some(v) = flags.memory {
        memory = parse_memory_mib(&v);
    }
    config.work_dir = flags.work_dir.map_or(config.work_dir, PathBuf::from);
    config.host = flags.host.unwrap_or(config.host);
    config.port = flags.port.unwrap_or(config.port);
    config.webui_port = flags.webui_port.unwrap_or(config.webui_port);
    let master = match <[OsString; 1]>::try_from(flags.masters) {
        Ok([master]) => master
            .into_string()
            .map_err(|_| WorkerArgsError::Usage("The master URL is not valid UTF-8".to_string()))?,
        Err(none) if none.is_empty() => {
            return Err(WorkerArgsError::Usage("No master URL given".to_string()))
        }
        Err(_) => {
            return Err(WorkerArgsError::Usage(
                "Only one master URL may be given".to_string(),
            ))
        }
    };
    config.masters = parse_master_urls(&master).map_err(WorkerArgsError::Usage)?;
    if let Some(path) = properties_file(flags.properties_file.map(PathBuf::from), &env) {
        config.conf = read_properties(&path).map_err(WorkerArgsError::Invalid)?;
        // Spark lets the file's UI port win over the flag.
        if let Some(port) = config.conf.get(keys::UI_PORT) {
            config.webui_port = parse_port(port, keys::UI_PORT)?;
        }
    }
    config.memory_mib = memory.map_err(WorkerArgsError::Invalid)?;
    Ok(config)
}

fn parse_cores(v: &str, what: &str) -> Result<u32, WorkerArgsError> {
    match v.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(WorkerArgsError::Invalid(format!(
            "{what} must be a positive integer, not '{v}'"
        ))),
    }
}

fn parse_port(v: &str, what: &str) -> Result<u16, WorkerArgsError> {
    v.trim()
        .parse::<u16>()
        .map_err(|_| WorkerArgsError::Invalid(format!("{what} must be a port number, not '{v}'")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpc_env::RpcAddress;
    use std::collections::HashMap;

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<WorkerConfig, WorkerArgsError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_worker_args(args.iter().map(OsString::from), |k| env.get(k).cloned())
    }

    fn parse(args: &[&str]) -> Result<WorkerConfig, WorkerArgsError> {
        parse_with(args, &[])
    }

    #[test]
    fn defaults() {
        let c = parse(&["ember://m1:7077,m2:7078"]).expect("parses");
        assert_eq!(
            c.masters,
            [RpcAddress::new("m1", 7077), RpcAddress::new("m2", 7078)]
        );
        assert_eq!(c.host, "127.0.0.1", "loopback unless told");
        assert_eq!(c.port, 0);
        assert_eq!(c.webui_port, 8081);
        assert_eq!(c.work_dir, PathBuf::from("work"));
        assert!(c.cores >= 1);
        assert!(c.memory_mib >= 1024);
    }

    #[test]
    fn flags_short_and_long() {
        let c = parse(&[
            "-c",
            "3",
            "-m",
            "2g",
            "-d",
            "/tmp/w",
            "-h",
            "0.0.0.0",
            "-p",
            "7100",
            "--webui-port",
            "9000",
            "ember://m:1",
        ])
        .expect("parses");
        assert_eq!(
            (c.cores, c.memory_mib, c.port, c.webui_port),
            (3, 2048, 7100, 9000)
        );
        assert_eq!(
            (c.host.as_str(), c.work_dir.to_str()),
            ("0.0.0.0", Some("/tmp/w"))
        );
        let c = parse(&[
            "--cores=2",
            "--memory",
            "512m",
            "--work-dir",
            "w2",
            "--host",
            "h",
            "--port",
            "1",
            "ember://m:1",
        ])
        .expect("parses");
        assert_eq!((c.cores, c.memory_mib, c.port), (2, 512, 1));
        assert_eq!(c.work_dir, PathBuf::from("w2"));
    }

    #[test]
    fn environment_under_flags() {
        let env = [
            ("EMBER_WORKER_CORES", "5"),
            ("EMBER_WORKER_MEMORY", "3g"),
            ("EMBER_WORKER_PORT", "7200"),
            ("EMBER_WORKER_WEBUI_PORT", "8200"),
            ("EMBER_WORKER_DIR", "/var/w"),
            ("EMBER_LOCAL_IP", "10.1.1.1"),
        ];
        let c = parse_with(&["ember://m:1"], &env).expect("parses");
        assert_eq!(
            (c.cores, c.memory_mib, c.port, c.webui_port),
            (5, 3072, 7200, 8200)
        );
        assert_eq!(
            (c.host.as_str(), c.work_dir.to_str()),
            ("10.1.1.1", Some("/var/w"))
        );
        let c = parse_with(&["-c", "1", "-h", "h2", "ember://m:1"], &env).expect("parses");
        assert_eq!((c.cores, c.host.as_str()), (1, "h2"), "flags win");
        let both = [("EMBER_WORKER_HOST", "h3"), ("EMBER_LOCAL_IP", "10.1.1.1")];
        let c = parse_with(&["ember://m:1"], &both).expect("parses");
        assert_eq!(c.host, "h3", "EMBER_WORKER_HOST before EMBER_LOCAL_IP");
    }

    /// WorkerArgumentsTest: memory without a unit is bytes, so below 1 MiB; units work.
    #[test]
    fn worker_arguments_test_memory() {
        let too_small =
            WorkerArgsError::Invalid(crate::worker::config::MEMORY_TOO_SMALL.to_string());
        assert_eq!(
            parse(&["-m", "10000", "ember://m:1"]).err(),
            Some(too_small.clone())
        );
        let env = [("EMBER_WORKER_MEMORY", "50000")];
        assert_eq!(parse_with(&["ember://m:1"], &env).err(), Some(too_small));
        let env = [("EMBER_WORKER_MEMORY", "5G")];
        assert_eq!(
            parse_with(&["ember://m:1"], &env).map(|c| c.memory_mib),
            Ok(5120)
        );
        assert_eq!(
            parse(&["-m", "10000M", "ember://m:1"]).map(|c| c.memory_mib),
            Ok(10000)
        );
        // A flag replaces a bad environment value, as in Spark.
        let env = [("EMBER_WORKER_MEMORY", "50000")];
        assert_eq!(
            parse_with(&["-m", "1g", "ember://m:1"], &env).map(|c| c.memory_mib),
            Ok(1024)
        );
    }

    #[test]
    fn bad_command_lines() {
        assert!(
            matches!(parse(&[]), Err(WorkerArgsError::Usage(_))),
            "no master"
        );
        assert!(matches!(
            parse(&["ember://a:1", "ember://b:2"]),
            Err(WorkerArgsError::Usage(_))
        ));
        assert!(matches!(
            parse(&["--bogus", "ember://a:1"]),
            Err(WorkerArgsError::Usage(_))
        ));
        assert!(matches!(
            parse(&["-x", "ember://a:1"]),
            Err(WorkerArgsError::Usage(_))
        ));
        assert!(matches!(
            parse(&["spark://a:1"]),
            Err(WorkerArgsError::Usage(_))
        ));
        assert!(matches!(
            parse(&["ember://a:1", "-c"]),
            Err(WorkerArgsError::Usage(_))
        ));
        assert!(matches!(
            parse(&["-c", "zero", "ember://a:1"]),
            Err(WorkerArgsError::Invalid(_))
        ));
        assert!(matches!(
            parse(&["-c", "0", "ember://a:1"]),
            Err(WorkerArgsError::Invalid(_))
        ));
        assert!(matches!(
            parse(&["-p", "70000", "ember://a:1"]),
            Err(WorkerArgsError::Invalid(_))
        ));
        assert_eq!(parse(&["--help"]).err(), Some(WorkerArgsError::Help));
        let usage = worker_usage();
        assert!(usage.starts_with("Usage: ember-worker [options] <master>"));
        assert!(usage.contains("Master must be a URL of the form ember://hostname:port"));
        let missing = crate::command_line::flags_missing_from::<WorkerFlags>(&usage);
        assert!(missing.is_empty(), "not in the usage: {missing:?}");
    }

    /// What lexopt did and clap must keep doing: flags after the master (start-worker.sh
    /// puts the caller's there), the last of a repeated flag, values that start with '-',
    /// and the worker's own words for a master too many, none, or not text.
    #[test]
    fn the_command_line_reads_as_it_always_has() {
        let c =
            parse(&["-p", "1", "ember://m:1", "--port=2", "-c4", "--host", "-h"]).expect("parses");
        assert_eq!((c.port, c.cores, c.host.as_str()), (2, 4, "-h"));
        let usage = |why: &str| Some(WorkerArgsError::Usage(why.to_string()));
        assert_eq!(
            parse(&["ember://a:1", "ember://b:2"]).err(),
            usage("Only one master URL may be given")
        );
        assert_eq!(parse(&["-c", "1"]).err(), usage("No master URL given"));
        assert_eq!(
            parse(&["--bogus", "ember://a:1"]).err(),
            usage("invalid option '--bogus'")
        );
        assert_eq!(
            parse(&["-c", "-1", "ember://a:1"]).err(),
            Some(WorkerArgsError::Invalid(
                "--cores must be a positive integer, not '-1'".to_string()
            ))
        );
        use std::os::unix::ffi::OsStringExt;
        let not_text = OsString::from_vec(vec![0xff]);
        let bad_master = parse_worker_args([not_text.clone()], |_| None);
        assert_eq!(bad_master.err(), usage("The master URL is not valid UTF-8"));
        let bad_dir = parse_worker_args(["-d".into(), not_text, "ember://a:1".into()], |_| None);
        assert_eq!(bad_dir.err(), usage("An option's value is not valid UTF-8"));
    }

    #[test]
    fn properties_file() {
        let dir = crate::worker::test_util::TempDir::new("props");
        let path = dir.path().join("worker.conf");
        std::fs::write(
            &path,
            "# tiny intervals\nember.worker.timeout 2s\nember.worker.ui.port=9999\nother.key 1\n",
        )
        .expect("writes");
        let path = path.to_str().expect("utf-8").to_string();
        let c = parse(&[
            "--webui-port",
            "1234",
            "--properties-file",
            &path,
            "ember://m:1",
        ])
        .expect("parses");
        assert_eq!(c.conf.get(keys::TIMEOUT), Some("2s"));
        assert_eq!(c.conf.get("other.key"), None, "only ember.* keys");
        assert_eq!(c.webui_port, 9999, "the file's UI port wins, as in Spark");
        let missing = parse(&["--properties-file", "/nonexistent/x.conf", "ember://m:1"]);
        assert!(matches!(missing, Err(WorkerArgsError::Invalid(_))));
    }

    #[test]
    fn the_default_properties_file_is_read_from_the_conf_dir() {
        let dir = crate::worker::test_util::TempDir::new("conf-dir");
        std::fs::write(
            dir.path().join("ember-defaults.conf"),
            "ember.worker.timeout 3\n",
        )
        .expect("writes");
        let conf_dir = dir.path().to_string_lossy().into_owned();
        let env = |key: &str| (key == "EMBER_CONF_DIR").then(|| conf_dir.clone());
        let c = parse_worker_args(["ember://m:1"].map(OsString::from), env).expect("parses");
        assert_eq!(c.conf.get(keys::TIMEOUT), Some("3"));
        // A conf dir without the file is no error.
        let empty = crate::worker::test_util::TempDir::new("empty-conf-dir");
        let empty_dir = empty.path().to_string_lossy().into_owned();
        let env = |key: &str| (key == "EMBER_CONF_DIR").then(|| empty_dir.clone());
        let c = parse_worker_args(["ember://m:1"].map(OsString::from), env).expect("parses");
        assert_eq!(c.conf.get(keys::TIMEOUT), None);
    }
}
