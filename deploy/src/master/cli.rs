//! `ember-master`'s command line, as Spark's `MasterArguments`: flags over environment
//! variables over defaults, then the properties file, whose `ember.master.ui.port` wins
//! over `--webui-port`.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use super::config::{keys, MasterConfig};
use crate::command_line::{parse, Parsed, Utf8};
use crate::properties::{properties_file, read_properties};

/// `ember-master`'s usage text, printed for `--help` and after a bad argument.
pub const MASTER_USAGE: &str = "\
Usage: ember-master [options]

Options:
  -h HOST, --host HOST   Hostname to listen on (default: 127.0.0.1, or $EMBER_MASTER_HOST)
  -i HOST, --ip HOST     Hostname to listen on (deprecated, please use --host or -h)
  -p PORT, --port PORT   Port to listen on (default: 7077, or $EMBER_MASTER_PORT)
  --webui-port PORT      Port for web UI (default: 8080, or $EMBER_MASTER_WEBUI_PORT)
  --properties-file FILE Path to a custom Ember properties file.
                         Default is $EMBER_CONF_DIR/ember-defaults.conf, if it exists.
  --help                 Print this help and exit (so does a -h with no host after it).
";

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum MasterCommand {
    /// Start a master with this configuration.
    Run(MasterConfig),
    /// Print [`MASTER_USAGE`] and exit successfully.
    Help,
}

/// A command line, environment variable or properties file `ember-master` cannot use. Its
/// text says which; the binary prints it, then [`MASTER_USAGE`], and exits with 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterCliError {
    message: String,
}

impl MasterCliError {
    fn new(message: impl Into<String>) -> Self {
        MasterCliError {
            message: message.into(),
        }
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for MasterCliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MasterCliError {}

/// `ember-master`'s flags as clap reads them; [`MASTER_USAGE`] describes them. Every value is
/// taken as given, even one that starts with `-`, and a repeated flag's last value wins.
#[derive(clap::Parser)]
#[command(
    no_binary_name = true,
    disable_help_flag = true,
    args_override_self = true
)]
struct MasterFlags {
    /// `-h` is the host, as in Spark; `-i`/`--ip` are its deprecated names.
    #[arg(
        short = 'h',
        long,
        short_alias = 'i',
        alias = "ip",
        allow_hyphen_values = true,
        value_parser = Utf8(|_, value| format!("argument is invalid unicode: {value:?}"))
    )]
    host: Option<String>,
    #[arg(short, long, allow_hyphen_values = true, value_parser = port_of("--port"))]
    port: Option<u16>,
    #[arg(long, allow_hyphen_values = true, value_parser = port_of("--webui-port"))]
    webui_port: Option<u16>,
    #[arg(long, allow_hyphen_values = true)]
    properties_file: Option<PathBuf>,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// Reads `ember-master`'s arguments (without the program name). `env` looks up an
/// environment variable: `EMBER_MASTER_HOST`, `EMBER_MASTER_PORT`,
/// `EMBER_MASTER_WEBUI_PORT`, and `EMBER_CONF_DIR` for the default properties file.
///
/// ```
/// use ember_deploy::{parse_master_args, MasterCommand};
///
/// let no_env = |_: &str| None;
/// let Ok(MasterCommand::Run(config)) = parse_master_args(["-p", "7078"], no_env) else {
///     panic!("a valid command line");
/// };
/// assert_eq!((config.host.as_str(), config.port), ("127.0.0.1", 7078));
/// ```
///
/// # Errors
///
/// An unknown flag, a flag without its value, a port that is not a number from 0 to
/// 65535 (in a flag or a variable), or a properties file that cannot be read or parsed.
pub fn parse_master_args<I, A>(
    args: I,
    env: impl Fn(&str) -> Option<String>,
) -> Result<MasterCommand, MasterCliError>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    let mut config = MasterConfig::default();
    if let Some(host) = env("EMBER_MASTER_HOST") {
        config.host = host;
    }
    if let Some(port) = env("EMBER_MASTER_PORT") {
        config.port = parse_port(&port, "EMBER_MASTER_PORT")?;
    }
    if let Some(port) = env("EMBER_MASTER_WEBUI_PORT") {
        config.webui_port = parse_port(&port, "EMBER_MASTER_WEBUI_PORT")?;
    }
    let flags = match parse::<MasterFlags>(args) {
        Ok(Parsed::Args(flags)) => flags,
        Ok(Parsed::Help) => return Ok(MasterCommand::Help),
        Err(bad) => return Err(MasterCliError::new(bad.into_message())),
    };
    config.host = flags.host.unwrap_or(config.host);
    config.port = flags.port.unwrap_or(config.port);
    config.webui_port = flags.webui_port.unwrap_or(config.webui_port);
    if config.host.is_empty() {
        return Err(MasterCliError::new("The host must not be empty"));
    }
    if let Some(path) = properties_file(flags.properties_file, &env) {
        config.conf = read_properties(&path).map_err(MasterCliError::new)?;
    }
    if config.conf.contains(keys::MASTER_UI_PORT) {
        let value = config.conf.get(keys::MASTER_UI_PORT).unwrap_or_default();
        config.webui_port = parse_port(value, keys::MASTER_UI_PORT)?;
    }
    Ok(MasterCommand::Run(config))
}

/// The value parser of the port flag `name`.
fn port_of(
    name: &'static str,
) -> impl Fn(&str) -> Result<u16, MasterCliError> + Clone + Send + Sync {
    move |value| parse_port(value, name)
}

fn parse_port(value: &str, source: &str) -> Result<u16, MasterCliError> {
    value
        .trim()
        .parse()
        .map_err(|_| MasterCliError::new(format!("Invalid port for {source}: '{value}'")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::test_dir::TestDir;
    use std::collections::HashMap;

    fn run(args: &[&str], vars: &[(&str, &str)]) -> Result<MasterConfig, MasterCliError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match parse_master_args(args.iter().copied(), |k| vars.get(k).cloned())? {
            MasterCommand::Run(config) => Ok(config),
            MasterCommand::Help => Err(MasterCliError::new("help")),
        }
    }

    /// A file in a directory of its own, removed (with the directory) when the returned
    /// guard drops.
    fn temp_file(name: &str, text: &str) -> (TestDir, PathBuf) {
        let dir = TestDir::new("cli");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn defaults_bind_loopback_on_sparks_ports() {
        let config = run(&[], &[]).expect("valid");
        assert_eq!(config.host, "127.0.0.1");
        assert_eq!((config.port, config.webui_port), (7077, 8080));
        assert!(!config.standby);
    }

    #[test]
    fn flags_short_and_long() {
        let config = run(
            &["-h", "10.0.0.1", "-p", "7078", "--webui-port", "8081"],
            &[],
        )
        .expect("valid");
        assert_eq!(
            (config.host.as_str(), config.port, config.webui_port),
            ("10.0.0.1", 7078, 8081)
        );
        let config = run(&["--host=node1", "--port", "0"], &[]).expect("valid");
        assert_eq!((config.host.as_str(), config.port), ("node1", 0));
        let config = run(&["--ip", "node2"], &[]).expect("deprecated but accepted");
        assert_eq!(config.host, "node2");
    }

    #[test]
    fn environment_variables_lose_to_flags() {
        let vars = [
            ("EMBER_MASTER_HOST", "envhost"),
            ("EMBER_MASTER_PORT", "9000"),
            ("EMBER_MASTER_WEBUI_PORT", "9001"),
        ];
        let config = run(&[], &vars).expect("valid");
        assert_eq!(
            (config.host.as_str(), config.port, config.webui_port),
            ("envhost", 9000, 9001)
        );
        let config = run(&["-p", "9100"], &vars).expect("valid");
        assert_eq!((config.host.as_str(), config.port), ("envhost", 9100));
    }

    #[test]
    fn properties_file_keeps_ember_keys_and_may_set_the_ui_port() {
        let (_dir, path) = temp_file(
            "props.conf",
            "# comment\nember.worker.timeout 30s\nember.master.ui.port=8090\nother.key 1\n",
        );
        let path = path.to_str().expect("utf-8 temp path");
        let config = run(&["--properties-file", path, "--webui-port", "8081"], &[]).expect("valid");
        assert_eq!(config.conf.get("ember.worker.timeout"), Some("30s"));
        assert_eq!(config.conf.get("other.key"), None);
        assert_eq!(
            config.webui_port, 8090,
            "ember.master.ui.port wins, as in Spark"
        );
    }

    #[test]
    fn the_default_properties_file_comes_from_ember_conf_dir() {
        let (_dir, path) = temp_file("ember-defaults.conf", "ember.deploy.spreadOut false\n");
        let dir = path
            .parent()
            .and_then(|p| p.to_str())
            .expect("utf-8 temp path");
        let config = run(&[], &[("EMBER_CONF_DIR", dir)]).expect("valid");
        assert_eq!(config.conf.get("ember.deploy.spreadOut"), Some("false"));
        let config = run(&[], &[("EMBER_CONF_DIR", "/nonexistent/dir")]).expect("optional");
        assert_eq!(config.conf.iter().count(), 0);
    }

    #[test]
    fn help() {
        let parsed = parse_master_args(["--help"], |_| None).expect("valid");
        assert!(matches!(parsed, MasterCommand::Help));
        assert!(MASTER_USAGE.starts_with("Usage: ember-master [options]"));
        let missing = crate::command_line::flags_missing_from::<MasterFlags>(MASTER_USAGE);
        assert!(missing.is_empty(), "not in the usage: {missing:?}");
    }

    #[test]
    fn bad_input_is_an_error_naming_it() {
        // (arguments, environment, what the error must name)
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case<'_>; 7] = [
            (&["--bogus"], &[], "--bogus"),
            (&["stray"], &[], "stray"),
            (&["--port"], &[], "--port"),
            (&["-p", "http"], &[], "'http'"),
            (&["-p", "70000"], &[], "--port"),
            (&[], &[("EMBER_MASTER_PORT", "x")], "EMBER_MASTER_PORT"),
            (
                &["--properties-file", "/nonexistent/ember.conf"],
                &[],
                "/nonexistent/ember.conf",
            ),
        ];
        for (args, vars, needle) in cases {
            let err = run(args, vars).expect_err(needle);
            assert!(err.message().contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn a_bad_properties_file_is_an_error() {
        let (_dir, path) = temp_file("bad.conf", "= 5\n");
        let path = path.to_str().expect("utf-8 temp path");
        let err = run(&["--properties-file", path], &[]).expect_err("no key");
        assert!(err.message().contains("Bad properties file"), "{err}");
        let (_ui_dir, ui) = temp_file("ui.conf", "ember.master.ui.port nope\n");
        let ui = ui.to_str().expect("utf-8 temp path");
        let err = run(&["--properties-file", ui], &[]).expect_err("bad port");
        assert!(err.message().contains("ember.master.ui.port"), "{err}");
    }
}
