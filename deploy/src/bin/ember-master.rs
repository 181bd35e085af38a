//! `ember-master`: the standalone master daemon.
//!
//! ```text
//! ember-master [--host HOST] [--port PORT] [--webui-port PORT] [--properties-file FILE]
//! ```
//!
//! Parses the command line, starts the master, prints `Master listening on
//! ember://host:port` on stdout (for scripts), and waits. SIGTERM or SIGINT stops it. A bad
//! flag prints what is wrong and the usage, and exits 1; so does a master that cannot start.

use std::io::Write;
use std::process::ExitCode;

use ember_deploy::{parse_master_args, start_master, MasterCommand, StopSignals, MASTER_USAGE};

fn main() -> ExitCode {
    // Before any thread starts, so that every thread has them blocked.
    let stop_signals = StopSignals::block();

    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match parse_master_args(std::env::args_os().skip(1), |k| std::env::var(k).ok()) {
        Ok(MasterCommand::Run(config)) => config,
        // Asked for, so on stdout (where `| less` reads it), and nothing else is done.
        Ok(MasterCommand::Help) => {
            print!("{MASTER_USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            eprint!("{MASTER_USAGE}");
            return ExitCode::from(1);
        }
    };
    ember_deploy::raise_open_file_limit();
    let master = match start_master(config) {
        Ok(master) => master,
        Err(e) => {
            eprintln!("Failed to start the master: {e}");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout();
    // A closed stdout must not stop the master; the line is a convenience for scripts.
    let _ = writeln!(stdout, "Master listening on {}", master.url());
    let _ = stdout.flush();
    if let Some(stop_signals) = stop_signals {
        let stopping = master.clone();
        stop_signals.watch("master-signals", move || stopping.shutdown());
    }
    master.await_termination();
    ExitCode::SUCCESS
}
