//! What the command lines of `ember-master`, `ember-worker` and `ember-submit` share: clap
//! reads them, and its errors are told in the words users and scripts have seen since
//! these binaries began (lexopt's, which read them before: `invalid option '--bogus'`,
//! `missing argument for option '--port'`).
//!
//! One thing reads differently: the first bad argument is the one named, except that clap
//! checks a value given apart from its flag (`-p x`) only at the next argument, and when
//! that is an unknown flag it names that flag instead (`-p x --bogus`: `invalid option
//! '--bogus'`, where lexopt said the port was bad).

use std::ffi::{OsStr, OsString};

use clap::builder::TypedValueParser;
use clap::error::{ContextKind, ErrorKind};

/// A command line clap could read.
pub(crate) enum Parsed<T> {
    /// Its flags and arguments.
    Args(T),
    /// `--help`, before anything wrong.
    Help,
}

/// Why clap could not read a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadArgs {
    /// Its shape: an unknown flag, a flag without its value, a stray argument, a value that
    /// is not text.
    Shape(String),
    /// A value a flag's parser refused: the parser's own message.
    Value(String),
}

impl BadArgs {
    /// What is wrong, whichever kind.
    pub(crate) fn into_message(self) -> String {
        match self {
            BadArgs::Shape(message) | BadArgs::Value(message) => message,
        }
    }
}

/// Reads `args` (without the program name) as `T`'s flags. `T`'s command must not add
/// clap's own `--help`: a `--help` of `ArgAction::Help` comes back as [`Parsed::Help`].
///
/// So does a last `-h` that has no value: where `-h` is the host (Spark's `-h HOST`), a
/// `-h` with nothing after it cannot name one, and a user who types `ember-master -h` asks
/// for help.
pub(crate) fn parse<T: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<OsString>>,
) -> Result<Parsed<T>, BadArgs> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let last_is_h = args.last().is_some_and(|a| a == "-h");
    match T::try_parse_from(args) {
        Ok(flags) => Ok(Parsed::Args(flags)),
        Err(e) if e.kind() == ErrorKind::DisplayHelp => Ok(Parsed::Help),
        Err(e) if last_is_h && is_missing_value(&e) => Ok(Parsed::Help),
        Err(e) => Err(bad_args(&e)),
    }
}

/// Whether clap says a flag came without its value.
fn is_missing_value(e: &clap::Error) -> bool {
    e.kind() == ErrorKind::InvalidValue
        && e.get(ContextKind::InvalidValue)
            .is_none_or(|value| value.to_string().is_empty())
}

/// A text flag's value parser: the value must be UTF-8, and when it is not, the error is
/// the given function's words for the flag (`--name`) and the value, as each binary said
/// it before clap (clap itself cannot say which argument).
#[derive(Clone, Copy)]
pub(crate) struct Utf8(pub(crate) fn(flag: &str, value: &OsStr) -> String);

impl TypedValueParser for Utf8 {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        value.to_str().map(str::to_owned).ok_or_else(|| {
            let flag = arg
                .and_then(clap::Arg::get_long)
                .map(|long| format!("--{long}"))
                .unwrap_or_default();
            clap::Error::raw(ErrorKind::ValueValidation, (self.0)(&flag, value))
        })
    }
}

/// clap's error in lexopt's words, or, for a value, in the value parser's.
fn bad_args(e: &clap::Error) -> BadArgs {
    // What clap names: `--port <PORT>` for an option, `--bogus` or `stray` for what it
    // does not know.
    let named = e.get(ContextKind::InvalidArg).map(ToString::to_string);
    let flag = named
        .as_deref()
        .and_then(|arg| arg.split_whitespace().next())
        .unwrap_or("an option");
    let value = e.get(ContextKind::InvalidValue).map(ToString::to_string);
    let message = match e.kind() {
        ErrorKind::ValueValidation => match std::error::Error::source(e) {
            Some(why) => return BadArgs::Value(why.to_string()),
            // Utf8's: not text at all is the command line's shape.
            None => first_line(e),
        },
        ErrorKind::UnknownArgument if flag.starts_with('-') => format!("invalid option '{flag}'"),
        ErrorKind::UnknownArgument => {
            format!("unexpected argument {:?}", named.unwrap_or_default())
        }
        ErrorKind::InvalidValue if value.as_deref().is_none_or(str::is_empty) => {
            format!("missing argument for option '{flag}'")
        }
        ErrorKind::TooManyValues => format!(
            "unexpected argument for option '{flag}': {:?}",
            value.unwrap_or_default()
        ),
        // clap does not say which argument.
        ErrorKind::InvalidUtf8 => "An argument is not valid UTF-8".to_string(),
        // None of the command lines has possible values, required flags or conflicts; say
        // what clap says, without its `error: ` prefix.
        _ => first_line(e),
    };
    BadArgs::Shape(message)
}

/// The first line of clap's own text for `e`, without its `error: ` prefix.
fn first_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// The long flags of `T`'s command that `usage` does not name: the usage text is written by
/// hand, so each command line's tests check it against its flags.
#[cfg(test)]
pub(crate) fn flags_missing_from<T: clap::CommandFactory>(usage: &str) -> Vec<String> {
    T::command()
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .map(|long| format!("--{long}"))
        .filter(|flag| {
            // Whole words only: `--port` is not named by `--webui-port`.
            !usage
                .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
                .any(|word| word == flag)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    /// A command line shaped as the binaries' are.
    #[derive(clap::Parser, Debug)]
    #[command(
        no_binary_name = true,
        disable_help_flag = true,
        args_override_self = true
    )]
    struct Flags {
        #[arg(short, long, allow_hyphen_values = true, value_parser = |v: &str| {
            v.parse::<u16>().map_err(|_| format!("Not a port: '{v}'"))
        })]
        port: Option<u16>,
        #[arg(long)]
        quiet: bool,
        #[arg(long, value_parser = Utf8(|flag, value| format!("{flag}: {value:?}")))]
        name: Option<String>,
        #[arg(long, action = clap::ArgAction::Help)]
        help: Option<bool>,
        /// `-h` is the host, as in the daemons.
        #[arg(short = 'h', long, allow_hyphen_values = true)]
        host: Option<String>,
    }

    fn port(args: &[&str]) -> Result<Option<u16>, BadArgs> {
        match parse::<Flags>(args.iter().copied())? {
            Parsed::Args(flags) => Ok(flags.port),
            Parsed::Help => Err(BadArgs::Shape("help".to_string())),
        }
    }

    #[test]
    fn clap_errors_in_lexopts_words() {
        let shape = |text: &str| Err(BadArgs::Shape(text.to_string()));
        // (the arguments, what they parse to)
        type Case<'a> = (&'a [&'a str], Result<Option<u16>, BadArgs>);
        let cases: [Case<'_>; 11] = [
            (&[], Ok(None)),
            (&["-p", "1", "--port=2"], Ok(Some(2))),
            (&["--bogus"], shape("invalid option '--bogus'")),
            (&["-x"], shape("invalid option '-x'")),
            (&["stray"], shape("unexpected argument \"stray\"")),
            (&["-p"], shape("missing argument for option '--port'")),
            (
                &["--quiet=yes"],
                shape("unexpected argument for option '--quiet': \"yes\""),
            ),
            (&["-p", "x"], Err(BadArgs::Value("Not a port: 'x'".into()))),
            // A value that starts with '-' is the flag's, as lexopt took it.
            (
                &["-p", "-5"],
                Err(BadArgs::Value("Not a port: '-5'".into())),
            ),
            (&["--bogus", "--help"], shape("invalid option '--bogus'")),
            // The one difference from lexopt (see the module's doc).
            (&["-p", "x", "--bogus"], shape("invalid option '--bogus'")),
        ];
        for (args, expected) in cases {
            assert_eq!(port(args), expected, "{args:?}");
        }
    }

    #[test]
    fn help_before_anything_wrong() {
        for args in [
            &["--help"][..],
            &["--help", "--bogus"],
            &["-p", "1", "--help"],
        ] {
            let parsed = parse::<Flags>(args.iter().copied());
            assert!(matches!(parsed, Ok(Parsed::Help)), "{args:?}");
        }
    }

    #[test]
    fn a_last_h_without_a_value_is_help_and_any_other_h_the_host() {
        for args in [&["-h"][..], &["-p", "1", "-h"], &["--host", "x", "-h"]] {
            let parsed = parse::<Flags>(args.iter().copied());
            assert!(matches!(parsed, Ok(Parsed::Help)), "{args:?}");
        }
        let host = |args: &[&str]| match parse::<Flags>(args.iter().copied()) {
            Ok(Parsed::Args(flags)) => flags.host,
            _ => panic!("{args:?} names a host"),
        };
        assert_eq!(host(&["-h", "h1"]), Some("h1".to_string()));
        assert_eq!(host(&["--host", "-h"]), Some("-h".to_string()));
        // `-h` as the port's value is a bad port, not a request for help.
        assert_eq!(
            port(&["-p", "-h"]),
            Err(BadArgs::Value("Not a port: '-h'".into()))
        );
        // A `--host` with no value is still an error.
        assert_eq!(
            port(&["--host"]),
            Err(BadArgs::Shape(
                "missing argument for option '--host'".into()
            ))
        );
    }

    #[test]
    fn a_value_that_is_not_utf8_is_an_error() {
        let args = [OsString::from("-p"), OsString::from_vec(vec![0xff])];
        let Err(bad) = parse::<Flags>(args) else {
            panic!("not UTF-8");
        };
        assert_eq!(bad.into_message(), "An argument is not valid UTF-8");
        // A text flag's parser says which, in the binary's words.
        let args = [
            OsString::from("--name"),
            OsString::from_vec(vec![b'a', 0xff]),
        ];
        let Err(bad) = parse::<Flags>(args) else {
            panic!("not UTF-8");
        };
        assert_eq!(bad, BadArgs::Shape("--name: \"a\\xFF\"".to_string()));
        let args = ["--name", "ä"];
        let Ok(Parsed::Args(flags)) = parse::<Flags>(args) else {
            panic!("UTF-8");
        };
        assert_eq!(flags.name.as_deref(), Some("ä"));
    }

    #[test]
    fn the_usage_check_finds_undescribed_flags() {
        let usage = "Usage: x [--port PORT] [--quiet]\n  --help, --name-ish";
        assert_eq!(flags_missing_from::<Flags>(usage), ["--name", "--host"]);
    }
}
