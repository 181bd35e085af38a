//! Command-line parsing: `ember-bench <suite> [--quick] [--json]`, plus the
//! hidden `ember-bench __serve <mode> [args...]` used to start child servers.
//!
//! Parsing is separate from `main` and takes the argument list and the known
//! suite names as parameters, so the error cases are unit-testable.

use std::ffi::OsString;

/// The hidden first argument that makes this binary a child server (see
/// [`crate::child`]). It starts with `__` so nobody types it by accident.
pub(crate) const SERVE_ARG: &str = "__serve";

/// Settings every suite receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Options {
    /// `--quick`: far fewer iterations, for CI smoke runs; numbers are noisier.
    pub(crate) quick: bool,
    /// `--json`: print one JSON object instead of `name value unit` lines.
    pub(crate) json: bool,
    /// `--plot DIR`: write charts there (suites that draw any: `scale`). Leaked once at
    /// parse time, so that the options stay `Copy`.
    pub(crate) plot: Option<&'static std::path::Path>,
}

impl Options {
    /// Picks an iteration count: `quick` under `--quick`, else `normal`.
    pub(crate) fn iterations(&self, normal: usize, quick: usize) -> usize {
        if self.quick {
            quick
        } else {
            normal
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `--help`: print usage to stdout and exit 0.
    Help,
    /// Run one benchmark suite.
    Run {
        /// The suite's name, already checked against the known suites.
        suite: String,
        /// Flags for the suite.
        options: Options,
    },
    /// `__serve <mode> [args...]`: act as a child server.
    Serve {
        /// Which server to run, e.g. `tcp-echo`.
        mode: String,
        /// The rest of the arguments, passed to that server untouched.
        args: Vec<String>,
    },
}

/// Parses the arguments (without the program name). `suites` lists the valid
/// suite names; anything else, or an unknown flag, is an error for which the
/// caller prints usage and exits 2.
pub(crate) fn parse(
    args: impl IntoIterator<Item = OsString>,
    suites: &[&str],
) -> Result<Command, lexopt::Error> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut suite: Option<String> = None;
    let mut options = Options::default();
    let mut first = true;
    while let Some(arg) = parser.next()? {
        let is_first = std::mem::replace(&mut first, false);
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Long("quick") => options.quick = true,
            Long("json") => options.json = true,
            Long("plot") => {
                let dir = std::path::PathBuf::from(parser.value()?);
                options.plot = Some(Box::leak(dir.into_boxed_path()));
            }
            // Only as the very first argument: the child's own arguments are
            // then taken verbatim, so a mode can have flags of its own.
            Value(v) if is_first && v == SERVE_ARG => return parse_serve(&mut parser),
            Value(v) if suite.is_none() => {
                let name = v.string()?;
                if !suites.contains(&name.as_str()) {
                    return Err(
                        format!("unknown suite '{name}' (known: {})", suites.join(", ")).into(),
                    );
                }
                suite = Some(name);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    match suite {
        Some(suite) => Ok(Command::Run { suite, options }),
        None => Err("missing <suite>".into()),
    }
}

/// The rest of `__serve <mode> [args...]`, after `__serve`.
fn parse_serve(parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut rest = parser.raw_args()?.map(|a| {
        a.into_string()
            .map_err(|bad| lexopt::Error::from(format!("non-UTF-8 argument {bad:?}")))
    });
    let mode = rest
        .next()
        .ok_or_else(|| lexopt::Error::from(format!("{SERVE_ARG} needs a <mode>")))??;
    let args = rest.collect::<Result<Vec<_>, _>>()?;
    Ok(Command::Serve { mode, args })
}

/// Usage text. `suites` pairs each suite name with a one-line description.
pub(crate) fn usage(suites: &[(&str, &str)]) -> String {
    let width = suites.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut text = String::from(
        "Usage: ember-bench <suite> [--quick] [--json] [--plot DIR]\n\
         \n\
         Runs one benchmark suite and prints one `name value unit` line per\n\
         metric on stdout (progress goes to stderr).\n\
         \n\
         Suites:\n",
    );
    for (name, about) in suites {
        text.push_str(&format!("  {name:<width$}  {about}\n"));
    }
    text.push_str(
        "\n\
         Options:\n\
         \x20 --quick     far fewer iterations (CI smoke runs; noisier numbers)\n\
         \x20 --json      print one JSON object {name: {\"value\": v, \"unit\": u}} instead\n\
         \x20 --plot DIR  write PNG charts of cost against size into DIR (scale)\n\
         \x20 -h, --help  print this help\n\
         \n\
         Logging: set RUST_LOG (e.g. RUST_LOG=info) for details on stderr.\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITES: &[&str] = &["rpc", "tasks"];

    fn parse_strs(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from), SUITES).map_err(|e| e.to_string())
    }

    #[test]
    fn suite_with_flags_in_any_order() {
        let want = Command::Run {
            suite: "rpc".into(),
            options: Options {
                quick: true,
                json: true,
                plot: None,
            },
        };
        assert_eq!(parse_strs(&["rpc", "--quick", "--json"]), Ok(want.clone()));
        assert_eq!(parse_strs(&["--json", "rpc", "--quick"]), Ok(want));
        assert_eq!(
            parse_strs(&["tasks"]),
            Ok(Command::Run {
                suite: "tasks".into(),
                options: Options::default()
            })
        );
    }

    #[test]
    fn help() {
        assert_eq!(parse_strs(&["--help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["rpc", "-h"]), Ok(Command::Help));
    }

    #[test]
    fn unknown_flag_is_an_error() {
        let err = parse_strs(&["rpc", "--fast"]).unwrap_err();
        assert!(err.contains("--fast"), "{err}");
    }

    #[test]
    fn unknown_suite_is_an_error() {
        let err = parse_strs(&["disk"]).unwrap_err();
        assert!(err.contains("unknown suite 'disk'"), "{err}");
        assert!(err.contains("rpc, tasks"), "{err}");
    }

    #[test]
    fn missing_or_extra_suite_is_an_error() {
        assert!(parse_strs(&[]).unwrap_err().contains("missing <suite>"));
        assert!(parse_strs(&["--quick"]).is_err());
        assert!(parse_strs(&["rpc", "tasks"]).is_err());
    }

    #[test]
    fn plot_takes_a_directory() {
        match parse_strs(&["rpc", "--plot", "charts"]) {
            Ok(Command::Run { options, .. }) => {
                assert_eq!(options.plot, Some(std::path::Path::new("charts")))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_strs(&["rpc", "--plot"]).is_err());
    }

    #[test]
    fn flags_take_no_value() {
        assert!(parse_strs(&["rpc", "--quick=yes"]).is_err());
    }

    #[test]
    fn serve_takes_the_rest_verbatim() {
        assert_eq!(
            parse_strs(&["__serve", "rpc-echo", "--threads", "4"]),
            Ok(Command::Serve {
                mode: "rpc-echo".into(),
                args: vec!["--threads".into(), "4".into()],
            })
        );
        assert!(parse_strs(&["__serve"]).unwrap_err().contains("<mode>"));
        // Only as the first argument; elsewhere it is just an unknown suite.
        assert!(parse_strs(&["--quick", "__serve", "x"]).is_err());
    }

    #[test]
    fn usage_lists_suites() {
        let text = usage(&[("rpc", "RPC things"), ("cluster", "cluster things")]);
        assert!(text.contains("  rpc      RPC things\n"), "{text}");
        assert!(text.contains("  cluster  cluster things\n"), "{text}");
        assert!(text.contains("--quick"));
    }
}
