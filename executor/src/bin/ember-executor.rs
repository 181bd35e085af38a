//! `ember-executor`: an executor process carrying the built-in tasks (no-op, sleep, fail),
//! for tests and benchmarks. Applications' own binaries become executors through the app
//! entry point instead.

use std::process::ExitCode;
use std::sync::Arc;

use ember_executor::{asks_for_help, builtin, run_executor, usage, ExecutorArgs, TaskRegistry};

fn main() -> ExitCode {
    env_logger::init();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if asks_for_help(&args) {
        print!("{}", usage("ember-executor"));
        return ExitCode::SUCCESS;
    }
    let args = match ExecutorArgs::parse(args) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            eprint!("{}", usage("ember-executor"));
            return ExitCode::from(1);
        }
    };
    let mut registry = TaskRegistry::new();
    builtin::register(&mut registry);
    let code = run_executor(&args, Arc::new(registry));
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}
