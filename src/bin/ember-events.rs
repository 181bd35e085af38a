//! `ember-events`: prints what an application's event log (`ember.eventLog.enabled`) says of
//! it: its name, id, start, end and duration; each job's tasks, failures, duration and
//! result; task failures by reason; its executors, when they came and why they went.
//!
//! ```text
//! ember-events [--json] <event-log-file>
//! ```
//!
//! The file is read line by line, never whole: a bad line is skipped and counted, and the
//! summary says how many. Exits 1 when the file cannot be read or holds no application
//! start (it is not an event log), 0 otherwise, also for a log without an end (its driver
//! still runs, or died: the summary says so).

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use ember::event_log::summary;

/// What `--help` prints (on stdout), and a bad command line (on stderr).
const USAGE: &str = "\
Usage: ember-events [--json] <event-log-file>

Prints the summary of an application's event log (written with
ember.eventLog.enabled=true into ember.eventLog.dir, /tmp/ember-events by default):
the application's name, id, start, end and duration; per job its tasks, failures,
duration and result; task failures by reason; executors added and removed, and why.
A log whose name ends in .inprogress has no end yet (still running, or its driver died).

Options:
  --json       Print one JSON object instead of text
  -h, --help   Print this help and exit
";

/// The command line, as clap reads it; [`USAGE`] describes it.
#[derive(clap::Parser)]
#[command(no_binary_name = true, disable_help_flag = true)]
struct Flags {
    #[arg(long)]
    json: bool,
    #[arg(short = 'h', long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// The log to read.
    file: PathBuf,
}

/// A bad command line in words of our own: clap without its help feature words its errors
/// tersely, and without the argument.
fn what_is_wrong(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ErrorKind};
    let arg = e
        .get(ContextKind::InvalidArg)
        .map(|v| v.to_string())
        .unwrap_or_default();
    match e.kind() {
        ErrorKind::MissingRequiredArgument => "no event log file given".to_string(),
        ErrorKind::UnknownArgument if arg.starts_with('-') => format!("invalid option '{arg}'"),
        ErrorKind::UnknownArgument => format!("unexpected argument \"{arg}\" (one file only)"),
        ErrorKind::InvalidUtf8 => "an argument is not valid UTF-8".to_string(),
        kind => format!("{kind} {arg}").trim_end().to_string(),
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let flags = match <Flags as clap::Parser>::try_parse_from(args) {
        Ok(flags) => flags,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ember-events: {}", what_is_wrong(&e));
            eprint!("{USAGE}");
            return ExitCode::from(1);
        }
    };
    let path = &flags.file;
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("ember-events: cannot open {}: {e}", path.display());
            return ExitCode::from(1);
        }
    };
    let summary = match summary::read(BufReader::with_capacity(1 << 16, file)) {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("ember-events: cannot read {}: {e}", path.display());
            return ExitCode::from(1);
        }
    };
    if summary.app_id.is_none() {
        eprintln!(
            "ember-events: {} is not an event log: no application start in {} line(s) \
             ({} bad)",
            path.display(),
            summary.lines,
            summary.bad_lines
        );
        return ExitCode::from(1);
    }
    let out = if flags.json {
        format!("{}\n", summary.to_json())
    } else {
        summary.to_text()
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is no error of ours.
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
    ExitCode::SUCCESS
}
