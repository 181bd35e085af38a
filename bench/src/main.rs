//! `ember-bench`: Ember's benchmark runner.
//!
//! `ember-bench <suite> [--quick] [--json]` runs one suite and prints one
//! `name value unit` line per metric on stdout (or one JSON object with
//! `--json`); progress goes to stderr. Exit status: 0 on success, 1 when the
//! benchmark fails, 2 for a bad command line.
//!
//! The same binary is also every benchmark's server: `ember-bench __serve
//! <mode> [args...]` (see [`child`]) is how a suite starts one in a child
//! process.

use std::process::ExitCode;

mod child;
mod cli;
mod error;
mod report;
mod rpc;
mod stats;
mod stream;
mod suites;
mod tcp_floor;

use cli::Command;
use error::BenchError;

fn main() -> ExitCode {
    // RUST_LOG picks the level (e.g. RUST_LOG=info); logs go to stderr.
    env_logger::init();

    let names: Vec<&str> = suites::SUITES.iter().map(|s| s.name).collect();
    let command = match cli::parse(std::env::args_os().skip(1), &names) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("ember-bench: {e}\n");
            eprint!("{}", usage());
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            print!("{}", usage());
            Ok(())
        }
        Command::Serve { mode, args } => serve(&mode, &args),
        Command::Run { suite, options } => run(&suite, &options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ember-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The usage text, listing every suite.
fn usage() -> String {
    let suites: Vec<(&str, &str)> = suites::SUITES.iter().map(|s| (s.name, s.about)).collect();
    cli::usage(&suites)
}

/// Runs the named suite and prints its metrics.
fn run(name: &str, options: &cli::Options) -> Result<(), BenchError> {
    // The CLI only accepts names from SUITES, so this lookup cannot fail.
    let suite = suites::find(name).expect("cli::parse accepts only names listed in SUITES");
    let metrics = (suite.run)(options)?;
    report::print(&metrics, options.json)
}

/// Runs this process as the child server `mode` (see [`child`]).
///
/// Adding a mode is one arm here naming a `fn(&[String]) -> Result<(),
/// BenchError>` that binds with `child::listen_and_announce()` (or binds
/// itself and calls `child::announce(port)`), then serves until the parent
/// disconnects.
fn serve(mode: &str, args: &[String]) -> Result<(), BenchError> {
    let server: fn(&[String]) -> Result<(), BenchError> = match mode {
        tcp_floor::BLOCKING_ECHO_MODE => tcp_floor::serve_blocking_echo,
        tcp_floor::SPIN_ECHO_MODE => tcp_floor::serve_spin_echo,
        rpc::ECHO_MODE => rpc::serve_echo,
        stream::TCP_SINK_MODE => stream::serve_tcp_sink,
        stream::FILE_SERVER_MODE => stream::serve_file_server,
        suites::tasks::EXECUTOR_MODE => suites::tasks::serve_executor,
        suites::cluster::WORKER_MODE => suites::cluster::serve_worker,
        suites::flood::MASTER_MODE => suites::flood::serve_master,
        suites::ui::MASTER_MODE => suites::ui::serve_master,
        suites::scale::MASTER_MODE => suites::scale::serve_master,
        other => {
            return Err(BenchError::new(format!(
                "unknown {} mode '{other}'",
                cli::SERVE_ARG
            )))
        }
    };
    // Exit once the parent is gone (its end of our stdin closes), so no server outlives
    // the run. Executors are the exception: a worker starts them with no stdin, and they
    // already exit when their driver or worker goes.
    if mode != suites::tasks::EXECUTOR_MODE {
        child::exit_when_parent_gone();
    }
    server(args)
}
