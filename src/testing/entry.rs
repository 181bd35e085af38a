//! A test binary as its cluster's executor program: [`executor_entry!`](crate::executor_entry),
//! what it runs, and the check that the executors it starts know the drivers' tasks.

use std::ffi::OsString;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_executor::{looks_like_executor, run_executor, usage, ExecutorArgs, TaskRegistry};

use crate::error::Error;

/// The name of the test [`executor_entry!`](crate::executor_entry) defines.
pub const EXECUTOR_ENTRY_TEST: &str = "ember_executor_entry";

/// What a test binary is told before the executor arguments so that it runs only the
/// executor entry: libtest takes the arguments after `--` as name filters, and with
/// `--exact` only `ember_executor_entry` matches one of them.
pub const EXECUTOR_ENTRY_ARGS: &str =
    "ember_executor_entry --exact --nocapture --test-threads=1 --";

/// Asked of the entry instead of executor arguments: print the task functions it would run,
/// between [`SIGNATURE_BEGIN`] and [`SIGNATURE_END`], and exit.
const DESCRIBE_TASKS: &str = "--ember-describe-tasks";
/// The line before the entry's task signature.
const SIGNATURE_BEGIN: &str = "ember-executor-entry: tasks";
/// The line after it.
const SIGNATURE_END: &str = "ember-executor-entry: end";

/// How long the entry may take to describe its tasks: a test binary starting once, on a
/// loaded machine.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most of the entry's output read: the signature is a line per task function.
const DESCRIBE_OUTPUT_LIMIT: u64 = 1 << 20;

/// Makes this test binary its clusters' executor program, with the task functions `$tasks()`
/// returns, and declares `test_cluster()`, a [`TestCluster`](crate::testing::TestCluster)
/// builder whose drivers run those same tasks: the registry is named once, here.
///
/// Put it once per test file, at the top level (the harness runs the entry by its full
/// name):
///
/// ```ignore
/// fn tasks() -> ember::TaskRegistry { /* register the task functions */ }
/// ember::executor_entry!(tasks);
///
/// #[test]
/// fn runs_on_a_cluster() -> Result<(), ember::Error> {
///     let cluster = test_cluster().workers(2).start()?;
///     // ...
/// #   Ok(())
/// }
/// ```
///
/// The entry is a test named `ember_executor_entry`: when the process's arguments hold
/// executor arguments after a `--` (as a cluster's workers launch it), it runs an executor
/// and exits with its code; in a normal test run it does nothing and passes at once. It shows
/// in the file's test list (`test ember_executor_entry ... ok`) because it is a test: a test
/// binary runs nothing of a crate's own before the harness, and Ember forbids the `unsafe`
/// that a constructor run before `main` (the `ctor` crate) would need, so the harness must be
/// told to run this one test, by name, for an executor to start.
#[macro_export]
macro_rules! executor_entry {
    ($tasks:expr) => {
        /// Not a test: the executor program of this file's test clusters.
        #[test]
        fn ember_executor_entry() {
            $crate::testing::run_executor_entry(|| ($tasks)());
        }

        /// A test cluster whose drivers run the task functions this file's executors run
        /// (declared by `ember::executor_entry!`).
        #[allow(dead_code)]
        fn test_cluster() -> $crate::testing::TestClusterBuilder {
            $crate::testing::TestCluster::builder().tasks($tasks)
        }
    };
}

/// The body of [`executor_entry!`](crate::executor_entry): with executor arguments after
/// the first `--` of this process's command line, runs an executor of the tasks `tasks()`
/// returns and exits with its code (1 when the arguments are bad); asked to describe its
/// tasks, prints their signature and exits 0; otherwise returns.
pub fn run_executor_entry(tasks: impl FnOnce() -> TaskRegistry) {
    let args: Vec<OsString> = std::env::args_os().collect();
    let Some(separator) = args.iter().position(|a| a == "--") else {
        return;
    };
    let executor_args = &args[separator + 1..];
    if executor_args == [DESCRIBE_TASKS] {
        print!(
            "{SIGNATURE_BEGIN}\n{}{SIGNATURE_END}\n",
            tasks().signature()
        );
        std::process::exit(0);
    }
    if !looks_like_executor(executor_args) {
        return;
    }
    let _ = env_logger::try_init();
    match ExecutorArgs::parse(executor_args.iter().cloned()) {
        Ok(parsed) => std::process::exit(run_executor(&parsed, Arc::new(tasks()))),
        Err(e) => {
            let program = args
                .first()
                .map_or("test".into(), |p| p.to_string_lossy().into_owned());
            eprintln!("{e}");
            eprint!("{}", usage(&program));
            std::process::exit(1);
        }
    }
}

/// Checks that this test binary's executor entry runs the task functions of `drivers`: it
/// starts the binary as its workers will, asking the entry to describe its tasks. A binary
/// without [`executor_entry!`](crate::executor_entry), or whose entry registers other
/// functions, fails here, before any job, with what to change.
pub(crate) fn check_executor_entry(drivers: &TaskRegistry) -> Result<(), Error> {
    let program = std::env::current_exe()
        .map_err(|e| Error::Process(format!("Cannot find this test binary: {e}")))?;
    let mut child = Command::new(&program)
        .args(EXECUTOR_ENTRY_ARGS.split_whitespace())
        .arg(DESCRIBE_TASKS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::Process(format!("Cannot start {}: {e}", program.display())))?;
    // Read on a thread so that a child writing more than a pipe holds cannot stall the wait.
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stdout) = stdout {
            let _ = stdout.take(DESCRIBE_OUTPUT_LIMIT).read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now() + DESCRIBE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Process(format!(
                    "This test binary did not describe its executor entry's tasks within {}s",
                    DESCRIBE_TIMEOUT.as_secs()
                )));
            }
        }
    }
    let output = reader.join().unwrap_or_default();
    compare_signatures(&drivers.signature(), described_signature(&output))
}

/// The signature between the markers of the entry's output; `None` when there is none (no
/// test of the entry's name ran).
fn described_signature(output: &str) -> Option<&str> {
    let start = output.find(SIGNATURE_BEGIN)? + SIGNATURE_BEGIN.len() + 1;
    let end = start + output.get(start..)?.find(SIGNATURE_END)?;
    output.get(start..end)
}

/// An error saying what differs between the drivers' task signature and the executors'.
fn compare_signatures(drivers: &str, executors: Option<&str>) -> Result<(), Error> {
    let Some(executors) = executors else {
        return Err(Error::Conf(
            "This test binary has no executor entry, so its workers cannot start executors: \
             add `ember::executor_entry!(tasks);` at the top level of the test file (with the \
             function that returns its task functions)"
                .to_string(),
        ));
    };
    if drivers == executors {
        return Ok(());
    }
    let only_in = |a: &str, b: &str| -> Vec<String> {
        a.lines()
            .filter(|line| !b.lines().any(|other| other == *line))
            .map(str::to_string)
            .collect()
    };
    Err(Error::Conf(format!(
        "The test cluster's drivers and this binary's executor entry register different task \
         functions; give both the same function (`test_cluster()`, which \
         `ember::executor_entry!` declares, does). Only the drivers have: [{}]; only the \
         executors have: [{}]",
        only_in(drivers, executors).join("; "),
        only_in(executors, drivers).join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_read_from_between_the_markers() {
        let output = format!(
            "running 1 test\n{SIGNATURE_BEGIN}\ndouble: u64 -> u64\n{SIGNATURE_END}\ntest ok\n"
        );
        assert_eq!(described_signature(&output), Some("double: u64 -> u64\n"));
        assert_eq!(described_signature("running 0 tests\n"), None);
        assert_eq!(described_signature(SIGNATURE_BEGIN), None, "cut short");
    }

    #[test]
    fn a_mismatch_names_what_each_side_has_alone() {
        let error = compare_signatures("a: u64 -> u64\nb: u64 -> u64\n", Some("a: u64 -> u64\n"))
            .expect_err("they differ")
            .to_string();
        assert!(
            error.contains("Only the drivers have: [b: u64 -> u64]; only the executors have: []"),
            "{error}"
        );
        let missing = compare_signatures("", None)
            .expect_err("no entry")
            .to_string();
        assert!(
            missing.contains("ember::executor_entry!(tasks);"),
            "{missing}"
        );
        assert!(compare_signatures("a: u64 -> u64\n", Some("a: u64 -> u64\n")).is_ok());
    }
}
