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

use ember_deploy::{parse_master_args, start_master, MasterCommand, MASTER_USAGE};
use nix::sys::signal::{SigSet, Signal};

fn main() -> ExitCode {
    // Block the stop signals before any thread starts (threads inherit the mask), so that
    // one thread can wait for them and stop the master cleanly.
    let mut stop_signals = SigSet::empty();
    stop_signals.add(Signal::SIGTERM);
    stop_signals.add(Signal::SIGINT);
    let signals_blocked = stop_signals.thread_block().is_ok();

    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match parse_master_args(std::env::args_os().skip(1), |k| std::env::var(k).ok()) {
        Ok(MasterCommand::Run(config)) => config,
        Ok(MasterCommand::Help) => {
            eprint!("{MASTER_USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            eprint!("{MASTER_USAGE}");
            return ExitCode::from(1);
        }
    };
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
    if signals_blocked {
        let stopping = master.clone();
        let spawned = std::thread::Builder::new()
            .name("master-signals".to_string())
            .spawn(move || {
                if let Ok(signal) = stop_signals.wait() {
                    log::info!("RECEIVED SIGNAL {signal}");
                    stopping.shutdown();
                }
            });
        if let Err(e) = spawned {
            log::warn!("Cannot watch for stop signals: {e}");
        }
    }
    master.await_termination();
    ExitCode::SUCCESS
}
