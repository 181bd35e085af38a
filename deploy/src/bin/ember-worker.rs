//! `ember-worker`: the standalone worker daemon.
//!
//! ```text
//! ember-worker [options] ember://host:port[,host:port...]
//! ```
//!
//! Parses the command line, starts the worker and waits for it. SIGTERM or SIGINT stops it
//! cleanly (its executors and drivers are killed first); it exits 1 when registration gives
//! up (`All masters are unresponsive! Giving up.`) or a master refuses it.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use ember_deploy::{parse_worker_args, start_worker, worker_usage, StopSignals, WorkerArgsError};
use nix::sys::signal::SigSet;

/// The hidden first argument under which this binary starts a child for the worker: it
/// clears the signal mask it inherited, then becomes the child's program.
const EXEC_CHILD: &str = "--exec-child";

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let _program = args.next();
    let args: Vec<OsString> = args.collect();
    if args.first().is_some_and(|a| a == EXEC_CHILD) {
        return exec_child(&args[1..]);
    }

    // Block the stop signals before any thread starts (threads inherit the mask), so one
    // thread can wait for them and stop the worker cleanly instead of dying with its
    // children left running. Children would inherit the mask too, so they are started
    // through this binary's EXEC_CHILD mode, which clears it; without a path to this binary
    // there is no such mode, so the signals stay unblocked.
    let launcher = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.into_os_string().into_string().ok())
        .and_then(|exe| Some((exe, StopSignals::block()?)));

    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut config = match parse_worker_args(args, |k| std::env::var(k).ok()) {
        Ok(config) => config,
        // Asked for, so on stdout (where `| less` reads it), and nothing else is done.
        Err(WorkerArgsError::Help) => {
            print!("{}", worker_usage());
            return ExitCode::SUCCESS;
        }
        Err(WorkerArgsError::Usage(why)) => {
            eprintln!("{why}");
            eprint!("{}", worker_usage());
            return ExitCode::from(1);
        }
        Err(WorkerArgsError::Invalid(why)) => {
            eprintln!("{why}");
            return ExitCode::from(1);
        }
    };
    ember_deploy::raise_open_file_limit();
    if let Some((exe, _)) = &launcher {
        config.launcher = vec![exe.clone(), EXEC_CHILD.to_string()];
    }
    let worker = match start_worker(config) {
        Ok(worker) => worker,
        Err(e) => {
            log::error!("Failed to start the worker: {e}");
            return ExitCode::from(1);
        }
    };
    {
        use std::io::Write;
        let mut stdout = std::io::stdout();
        // As the master's line: for scripts, whatever the log level; a closed stdout must
        // not stop the worker.
        let _ = writeln!(stdout, "Worker listening on {}", worker.url());
        let _ = stdout.flush();
    }
    if let Some((_, stop_signals)) = launcher {
        let stopping = worker.clone();
        stop_signals.watch("worker-signals", move || stopping.shutdown());
    }
    ExitCode::from(worker.await_termination().code())
}

/// Becomes `program args...` with an empty signal mask, keeping the working directory,
/// environment, output files and process group the worker gave this process.
fn exec_child(args: &[OsString]) -> ExitCode {
    let Some((program, rest)) = args.split_first() else {
        eprintln!("ember-worker {EXEC_CHILD}: no program given");
        return ExitCode::from(127);
    };
    if let Err(e) = SigSet::empty().thread_set_mask() {
        eprintln!("ember-worker {EXEC_CHILD}: cannot clear the signal mask: {e}");
        return ExitCode::from(127);
    }
    // `exec` only returns on failure.
    let error = std::process::Command::new(program).args(rest).exec();
    eprintln!("Cannot run program {}: {error}", program.to_string_lossy());
    ExitCode::from(127)
}
