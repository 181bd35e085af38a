//! Monte Carlo pi, like SparkPi: each task throws darts at the unit square and counts the
//! ones inside the circle.
//!
//! ```text
//! cargo run --release --example pi -- --master local[*] --slices 8
//! ```
//!
//! Prints `Pi is roughly <value>`; exits non-zero when the job fails.

use std::process::ExitCode;

use ember::{App, TaskContext, TaskError};

/// Darts per slice.
const DARTS_PER_SLICE: u64 = 100_000;

/// Throws `darts` darts and returns how many land inside the circle. Each slice seeds its
/// own generator from its partition, so the estimate is the same on every run.
fn sample(ctx: &TaskContext, darts: u64) -> Result<u64, TaskError> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(ctx.partition() + 1);
    let mut next = move || {
        // xorshift64*: plenty for darts.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut inside = 0;
    for i in 0..darts {
        if i % 10_000 == 0 {
            ctx.check_interrupted()?;
        }
        let (x, y) = (next() * 2.0 - 1.0, next() * 2.0 - 1.0);
        if x * x + y * y <= 1.0 {
            inside += 1;
        }
    }
    Ok(inside)
}

/// What `--help` prints (on stdout) and a bad argument (on stderr).
const USAGE: &str = "\
Usage: pi [--master <url>] [--slices <n>] [<slices>]

Estimates pi by throwing darts in <n> tasks (default 2).

Options:
  --master URL   local[N], local-cluster[N,C,M] or ember://host:port (default:
                 $EMBER_MASTER, else local[*])
  --slices N     The number of tasks (also the one positional argument)
  -h, --help     Print this help and exit
";

struct Options {
    master: Option<String>,
    slices: u32,
    help: bool,
}

fn parse_options() -> Result<Options, String> {
    use lexopt::prelude::*;
    let mut options = Options {
        master: None,
        slices: 2,
        help: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            // Help before anything else is read: nothing after it can make it fail.
            Short('h') | Long("help") => {
                options.help = true;
                return Ok(options);
            }
            Long("master") => {
                let value = parser.value().map_err(|e| e.to_string())?;
                options.master = Some(value.into_string().map_err(|_| "--master is not UTF-8")?);
            }
            Long("slices") => {
                let value = parser.value().map_err(|e| e.to_string())?;
                let text = value.into_string().map_err(|_| "--slices is not UTF-8")?;
                options.slices =
                    text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--slices must be a positive integer, not '{text}'")
                    })?;
            }
            Value(value) => {
                // SparkPi takes the slice count as its one positional argument.
                let text = value
                    .into_string()
                    .map_err(|_| "the slice count is not UTF-8")?;
                options.slices = text
                    .parse()
                    .map_err(|_| format!("not a slice count: '{text}'"))?;
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    // The console progress bar, as Spark's shells show it (only when stderr is a terminal).
    // Launched as an executor, the process runs it and exits here: the options below are
    // then only ever the driver's.
    let app = App::new("pi")
        .task("sample", sample)
        .conf("ember.ui.showConsoleProgress", "true")
        .run_executor_if_launched();
    let options = match parse_options() {
        Ok(o) if o.help => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(o) => o,
        Err(e) => {
            eprint!("pi: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let app = match &options.master {
        Some(master) => app.master(master),
        None => app,
    };
    let slices = options.slices;
    app.run(move |ctx| {
        let inside: Vec<u64> = ctx.run_job("sample", vec![DARTS_PER_SLICE; slices as usize])?;
        let total = DARTS_PER_SLICE * u64::from(slices);
        let pi = 4.0 * inside.iter().sum::<u64>() as f64 / total as f64;
        println!("Pi is roughly {pi}");
        Ok(())
    })
}
