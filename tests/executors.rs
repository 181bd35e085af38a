//! Jobs on executor processes that register with a driver, without a master: the test
//! starts the processes itself (this test binary, re-run as an executor), the way a worker
//! will. Ports what applies of DistributedSuite and CoarseGrainedSchedulerBackendSuite.

pub mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember::{Context, RpcConf, TaskContext, TaskError, TaskRegistry};
use ember_executor::{run_executor, ExecutorArgs};

const CHILD_ENV: &str = "EMBER_TEST_EXECUTOR_ARGS";
/// Separates the executor arguments inside the environment variable.
const SEP: char = '\u{1f}';

/// Not a test: in a child process started by [`ExecutorProcess::start`], this runs the
/// executor; in the test run itself it returns at once.
#[test]
fn executor_child() {
    let Ok(joined) = std::env::var(CHILD_ENV) else {
        return;
    };
    let _ = env_logger::try_init();
    let args = ExecutorArgs::parse(joined.split(SEP).map(OsString::from))
        .expect("valid executor arguments");
    let code = run_executor(&args, Arc::new(tasks()));
    std::process::exit(code);
}

/// A task that names its executor.
fn which_executor(ctx: &TaskContext, _: u64) -> Result<String, TaskError> {
    std::thread::sleep(Duration::from_millis(5));
    Ok(ctx.executor_id().to_string())
}

/// Drops a marker file `<dir>/p<partition>-a<attempt>` when it starts, then sleeps up to
/// `millis`, stopping when killed.
fn sleep_with_marker(ctx: &TaskContext, (dir, millis): (String, u64)) -> Result<u32, TaskError> {
    let marker = Path::new(&dir).join(format!("p{}-a{}", ctx.partition(), ctx.attempt_number()));
    std::fs::write(&marker, ctx.executor_id().as_str())?;
    let until = Instant::now() + Duration::from_millis(millis);
    while Instant::now() < until {
        ctx.check_interrupted()?;
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(ctx.partition())
}

fn tasks() -> TaskRegistry {
    let mut registry = common::test_tasks();
    registry
        .register("which_executor", which_executor)
        .register("sleep_with_marker", sleep_with_marker);
    registry
}

/// An executor process; killed and reaped when dropped.
struct ExecutorProcess(Child);

impl ExecutorProcess {
    fn start(ctx: &Context, id: &str, cores: u32) -> ExecutorProcess {
        let args = ctx
            .executor_args(id, cores)
            .expect("a driver with an address");
        let joined = args.to_args().join(&SEP.to_string());
        let child = Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "executor_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, joined)
            .stdout(Stdio::null())
            .spawn()
            .expect("the executor process starts");
        ExecutorProcess(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Waits for the process to exit on its own; its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        common::wait_for(
            "the executor process exits",
            common::DEADLINE,
            || match self.0.try_wait() {
                Ok(Some(status)) => Ok(status.code()),
                other => Err(other.map(|_| "still running")),
            },
        )
    }
}

impl Drop for ExecutorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn driver() -> Context {
    let _ = env_logger::try_init();
    let conf = RpcConf::new().with(ember::APP_NAME, "executors-test");
    Context::driver_only(conf, tasks()).expect("the driver starts")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ember-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn two_executor_processes_share_a_job() {
    let ctx = driver();
    let _a = ExecutorProcess::start(&ctx, "1", 1);
    let _b = ExecutorProcess::start(&ctx, "2", 1);
    ctx.wait_for_executors(2, common::DEADLINE)
        .expect("both register");
    let out: Vec<String> = ctx
        .run_job("which_executor", vec![0u64; 40])
        .expect("succeeds");
    assert_eq!(out.len(), 40);
    assert!(
        out.iter().any(|e| e == "1") && out.iter().any(|e| e == "2"),
        "{out:?}"
    );
    let squares: Vec<u64> = ctx
        .run_job("square", (0..100u64).collect())
        .expect("succeeds");
    assert_eq!(squares, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
    ctx.stop();
}

#[test]
fn a_task_failing_three_times_succeeds_on_its_fourth_attempt() {
    let ctx = driver();
    let _a = ExecutorProcess::start(&ctx, "1", 2);
    ctx.wait_for_executors(1, common::DEADLINE)
        .expect("registers");
    let out: Vec<u32> = ctx
        .run_job("fail_three_times", vec![5u32, 6])
        .expect("retried");
    assert_eq!(out, vec![5, 6]);
    ctx.stop();
}

#[test]
fn a_task_that_panics_in_an_executor_fails_the_job_after_four_attempts() {
    let ctx = driver();
    let _a = ExecutorProcess::start(&ctx, "1", 2);
    ctx.wait_for_executors(1, common::DEADLINE)
        .expect("registers");
    let error = ctx
        .run_job::<u64, u64>("panic_on_three", vec![1, 3])
        .expect_err("partition 1 always panics");
    assert!(
        error.to_string().contains(
            "Task 1 in stage 0.0 failed 4 times, most recent failure: task panicked: three!"
        ),
        "{error}"
    );
    // The executor process lived on.
    let out: Vec<u64> = ctx.run_job("square", vec![9u64]).expect("succeeds");
    assert_eq!(out, vec![81]);
    ctx.stop();
}

#[test]
fn an_executor_killed_mid_job_has_its_tasks_rerun_elsewhere() {
    let ctx = driver();
    let mut doomed = ExecutorProcess::start(&ctx, "doomed", 2);
    let _survivor = ExecutorProcess::start(&ctx, "survivor", 2);
    ctx.wait_for_executors(2, common::DEADLINE)
        .expect("both register");
    let dir = temp_dir("killed");
    let dir_text = dir.to_string_lossy().into_owned();
    let inputs: Vec<(String, u64)> = (0..4).map(|_| (dir_text.clone(), 1_500)).collect();
    let handle = ctx
        .submit_job::<(String, u64), u32>("sleep_with_marker", inputs)
        .expect("submitted");
    // Wait until the doomed executor runs something, then kill -9 it.
    common::wait_until(
        "a task runs on the doomed executor",
        common::DEADLINE,
        || {
            std::fs::read_dir(&dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|c| c == "doomed"))
                })
                .unwrap_or(false)
        },
    );
    doomed.kill();
    let out = handle
        .wait_timeout(Duration::from_secs(60))
        .expect("the job ends")
        .expect("the job succeeds on the survivor");
    assert_eq!(out, vec![0, 1, 2, 3]);
    let reruns = std::fs::read_dir(&dir)
        .expect("markers")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("-a1"))
        .count();
    assert!(reruns >= 1, "the doomed executor's tasks ran a second time");
    let _ = std::fs::remove_dir_all(&dir);
    ctx.stop();
}

#[test]
fn executors_exit_when_the_driver_stops() {
    let ctx = driver();
    let mut a = ExecutorProcess::start(&ctx, "1", 1);
    ctx.wait_for_executors(1, common::DEADLINE)
        .expect("registers");
    ctx.stop();
    assert_eq!(a.wait_exit(), Some(0), "told to stop, it exits cleanly");
}
