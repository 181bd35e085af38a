//! Unit tests of the [`Executor`]: a recording [`StatusReporter`] stands in for the driver.
//!
//! Spark's `Executor` has no suite of its own for most of this (its behaviour is pinned by
//! `CoarseGrainedExecutorBackendSuite` and `ExecutorSuite`); each test says which Spark test
//! it ports, or that it is Ember's own. Kills are tested in `kill_tests.rs`, how updates
//! reach the reporter in `report_tests.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ember_test_support::{wait_until, DEADLINE};
use parking_lot::{Condvar, Mutex};
use rpc_env::encode_to_bytes;

use ember_scheduler::{
    DriverMessage, ExecutorId, JobId, StageId, TaskDescription, TaskFailedReason, TaskId,
    TaskStatus, TaskUpdate,
};

use super::{Executor, StatusReporter};
use crate::registry::{TaskError, TaskRegistry};
use crate::task_files::TaskFiles;

mod kill_tests;
mod report_tests;

/// A [`StatusReporter`] that records every batch, in order, and each task's statuses.
#[derive(Default)]
struct Recorder {
    state: Mutex<Recorded>,
    changed: Condvar,
}

#[derive(Default)]
struct Recorded {
    batches: Vec<Vec<TaskUpdate>>,
    by_task: HashMap<TaskId, Vec<TaskStatus>>,
}

impl StatusReporter for Recorder {
    fn report(&self, updates: Vec<TaskUpdate>) {
        let mut state = self.state.lock();
        for u in &updates {
            state
                .by_task
                .entry(u.task_id)
                .or_default()
                .push(u.status.clone());
        }
        state.batches.push(updates);
        self.changed.notify_all();
    }
}

impl Recorder {
    fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    /// Every batch so far.
    fn batches(&self) -> Vec<Vec<TaskUpdate>> {
        self.state.lock().batches.clone()
    }

    /// Every update so far, batches flattened, in order.
    fn updates(&self) -> Vec<TaskUpdate> {
        self.state
            .lock()
            .batches
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// The statuses reported for `tid`, in order.
    fn statuses(&self, tid: u64) -> Vec<TaskStatus> {
        let state = self.state.lock();
        state.by_task.get(&TaskId(tid)).cloned().unwrap_or_default()
    }

    /// Waits until `tid` has ended and returns all its statuses.
    #[track_caller]
    fn wait_end(&self, tid: u64) -> Vec<TaskStatus> {
        let end = Instant::now() + DEADLINE;
        let mut state = self.state.lock();
        loop {
            let statuses = state.by_task.get(&TaskId(tid)).cloned().unwrap_or_default();
            if statuses.iter().any(|s| s.state().is_finished()) {
                return statuses;
            }
            assert!(
                !self.changed.wait_until(&mut state, end).timed_out(),
                "TID {tid} did not end within {DEADLINE:?}; its statuses: {statuses:?}"
            );
        }
    }

    /// Waits until `tid` has ended and returns its final status, checking that `Running`
    /// came first and nothing came after the end.
    #[track_caller]
    fn wait_final(&self, tid: u64) -> TaskStatus {
        let statuses = self.wait_end(tid);
        assert_eq!(statuses.len(), 2, "TID {tid}: {statuses:?}");
        assert_eq!(statuses[0], TaskStatus::Running, "TID {tid}: {statuses:?}");
        statuses[1].clone()
    }
}

/// A task description for `function` with `input`; the partition is the TID plus 100.
fn task(tid: u64, function: &str, input: Bytes) -> TaskDescription {
    let mut properties = BTreeMap::new();
    properties.insert("ember.job.description".to_string(), format!("job of {tid}"));
    TaskDescription {
        task_id: TaskId(tid),
        attempt_number: 0,
        executor_id: ExecutorId::new("exec-1"),
        index: tid as u32,
        partition: tid as u32 + 100,
        job_id: JobId(7),
        stage_id: StageId(7),
        stage_attempt: 0,
        function: function.into(),
        properties,
        cpus: 1,
        input,
    }
}

fn u64_input(n: u64) -> Bytes {
    encode_to_bytes(&n)
}

fn failure_message(status: &TaskStatus) -> String {
    match status {
        TaskStatus::Failed {
            reason: TaskFailedReason::ExceptionFailure { message },
        } => message.clone(),
        other => panic!("expected Failed with an ExceptionFailure, got {other:?}"),
    }
}

/// Task functions most tests share: `echo(n) = n`, `error(msg)`, `panic(msg)`,
/// `panic_str(_)` (a `&'static str` payload) and `bytes(n)` (a vector of n bytes).
fn basic_registry() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry
        .register("echo", |_, n: u64| Ok::<u64, TaskError>(n))
        .register("error", |_, msg: String| Err::<u64, _>(TaskError::msg(msg)))
        .register("panic", |_, msg: String| -> Result<u64, TaskError> {
            panic!("{msg}")
        })
        .register("panic_str", |_, _: u64| -> Result<u64, TaskError> {
            panic!("static boom")
        })
        .register("bytes", |_, n: u32| {
            Ok::<_, TaskError>(vec![7u8; n as usize])
        });
    registry
}

/// An executor that is stopped and joined when the test ends (joined only if the test
/// passed, so a failing test cannot hang on a task that never ends).
struct Started(Arc<Executor>);

impl Started {
    fn new(cores: u32, registry: TaskRegistry, reporter: Arc<dyn StatusReporter>) -> Started {
        Started::with_max(cores, registry, reporter, 1 << 20)
    }

    fn with_max(
        cores: u32,
        registry: TaskRegistry,
        reporter: Arc<dyn StatusReporter>,
        max_result_size: usize,
    ) -> Started {
        let executor = Executor::start(
            ExecutorId::new("exec-1"),
            cores,
            Arc::new(registry),
            reporter,
            max_result_size,
            Arc::new(TaskFiles::None),
        )
        .expect("the executor starts");
        Started(Arc::new(executor))
    }
}

impl std::ops::Deref for Started {
    type Target = Executor;
    fn deref(&self) -> &Executor {
        &self.0
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.0.stop();
        if !std::thread::panicking() {
            self.0.join();
        }
    }
}

/// Ember's own (Spark's `TaskRunner.run`): a task reports `Running`, then
/// `Finished` with its output encoded, and the cores it held.
#[test]
fn a_task_reports_running_then_finished_with_its_encoded_output() {
    let recorder = Recorder::new();
    let executor = Started::new(2, basic_registry(), recorder.clone());
    let mut t = task(1, "echo", u64_input(42));
    t.cpus = 2;
    executor.launch_tasks(vec![t]);
    let status = recorder.wait_final(1);
    assert_eq!(
        status,
        TaskStatus::Finished {
            result: encode_to_bytes(&42u64)
        }
    );
    assert!(recorder.updates().iter().all(|u| u.cpus == 2));
    assert!(executor.running_tasks().is_empty());
}

/// Ember's own (Spark's `ExceptionFailure` path of `TaskRunner.run`): an error fails the
/// task with the error's message.
#[test]
fn an_error_fails_the_task_with_its_message() {
    let recorder = Recorder::new();
    let executor = Started::new(1, basic_registry(), recorder.clone());
    executor.launch_tasks(vec![task(1, "error", encode_to_bytes(&"disk on fire"))]);
    let status = recorder.wait_final(1);
    assert_eq!(
        status,
        TaskStatus::Failed {
            reason: TaskFailedReason::ExceptionFailure {
                message: "disk on fire".into()
            }
        }
    );
}

/// Ember's own (a panic is Rust's uncaught exception; Spark fails the task with
/// `ExceptionFailure`): a panicking task fails with `task panicked: <msg>`, whatever the
/// payload type, and its thread goes on to run later tasks.
#[test]
fn a_panicking_task_fails_and_the_executor_keeps_running() {
    let recorder = Recorder::new();
    // One thread: if the panic killed it, nothing would run after.
    let executor = Started::new(1, basic_registry(), recorder.clone());
    executor.launch_tasks(vec![
        task(1, "panic", encode_to_bytes(&"boom 1")),
        task(2, "panic_str", u64_input(0)),
        task(3, "echo", u64_input(3)),
    ]);
    assert_eq!(
        failure_message(&recorder.wait_final(1)),
        "task panicked: boom 1"
    );
    assert_eq!(
        failure_message(&recorder.wait_final(2)),
        "task panicked: static boom"
    );
    assert_eq!(
        recorder.wait_final(3),
        TaskStatus::Finished {
            result: u64_input(3)
        }
    );
    executor.launch_tasks(vec![task(4, "echo", u64_input(4))]);
    assert!(matches!(
        recorder.wait_final(4),
        TaskStatus::Finished { .. }
    ));
}

/// Ember's own: a task naming an unregistered function fails, naming it and the functions
/// this executor does have.
#[test]
fn an_unknown_task_function_fails_naming_it_and_the_registered_ones() {
    let recorder = Recorder::new();
    let executor = Started::new(1, basic_registry(), recorder.clone());
    executor.launch_tasks(vec![task(1, "nope", u64_input(0))]);
    let message = failure_message(&recorder.wait_final(1));
    assert!(message.contains("'nope'"), "{message}");
    for name in ["echo", "error", "panic", "panic_str", "bytes"] {
        assert!(message.contains(name), "{name} missing from: {message}");
    }
}

/// Ember's own: input that does not decode as the function's input type fails the task,
/// naming the type (too short, and with bytes left over).
#[test]
fn input_that_does_not_decode_fails_naming_the_type() {
    let recorder = Recorder::new();
    let executor = Started::new(1, basic_registry(), recorder.clone());
    executor.launch_tasks(vec![
        task(1, "echo", Bytes::from_static(&[1, 2, 3])),
        task(2, "echo", Bytes::from_static(&[0; 9])),
    ]);
    for tid in [1, 2] {
        let message = failure_message(&recorder.wait_final(tid));
        assert!(message.contains("does not decode as u64"), "{message}");
    }
}

/// Ember's own (Spark routes a result over `spark.rpc.message.maxSize` elsewhere;
/// Ember has nowhere else): a result longer than `max_result_size` fails the task, naming
/// `ember.rpc.message.maxSize`; one exactly at the limit goes through.
#[test]
fn a_result_over_the_maximum_size_fails_naming_the_setting() {
    let recorder = Recorder::new();
    let n: u32 = 1000;
    let encoded = encode_to_bytes(&vec![7u8; n as usize]).len();
    let executor = Started::with_max(1, basic_registry(), recorder.clone(), encoded);
    executor.launch_tasks(vec![
        task(1, "bytes", encode_to_bytes(&n)),
        task(2, "bytes", encode_to_bytes(&(n + 1))),
    ]);
    assert_eq!(
        recorder.wait_final(1),
        TaskStatus::Finished {
            result: encode_to_bytes(&vec![7u8; n as usize])
        }
    );
    let message = failure_message(&recorder.wait_final(2));
    assert!(message.contains("ember.rpc.message.maxSize"), "{message}");
    assert!(message.contains(&(encoded + 1).to_string()), "{message}");
}

/// Ember's own: the [`TaskContext`](crate::TaskContext) a function gets describes its
/// task: TID, attempt, partition, job, stage, executor and the job's properties.
#[test]
fn the_task_context_describes_the_task() {
    let mut registry = TaskRegistry::new();
    registry.register("context", |ctx, _: u64| {
        Ok::<String, TaskError>(format!(
            "{} {} {} {} {} {} {:?} {:?} {}",
            ctx.task_id(),
            ctx.attempt_number(),
            ctx.partition(),
            ctx.job_id(),
            ctx.stage_id(),
            ctx.executor_id(),
            ctx.property("ember.job.description"),
            ctx.property("missing"),
            ctx.is_interrupted(),
        ))
    });
    let recorder = Recorder::new();
    let executor = Started::new(1, registry, recorder.clone());
    let mut t = task(5, "context", u64_input(0));
    t.attempt_number = 3;
    t.job_id = JobId(11);
    t.stage_id = StageId(12);
    executor.launch_tasks(vec![t]);
    let expected = "5 3 105 11 12 exec-1 Some(\"job of 5\") None false";
    assert_eq!(
        recorder.wait_final(5),
        TaskStatus::Finished {
            result: encode_to_bytes(&expected.to_string())
        }
    );
}

/// A gate tasks wait at, counting how many are inside at once.
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, usize, bool)>,
    opened: Condvar,
}

impl Gate {
    /// Enters, waits for the gate to open, leaves.
    fn pass(&self) {
        let mut state = self.state.lock();
        state.0 += 1;
        state.1 = state.1.max(state.0);
        let end = Instant::now() + DEADLINE;
        while !state.2 && !self.opened.wait_until(&mut state, end).timed_out() {}
        state.0 -= 1;
    }

    fn inside(&self) -> usize {
        self.state.lock().0
    }

    fn most_inside(&self) -> usize {
        self.state.lock().1
    }

    fn open(&self) {
        self.state.lock().2 = true;
        self.opened.notify_all();
    }
}

/// Ember's own (Spark's pool is unbounded and the driver bounds it by cores; Ember's pool is
/// the bound): `cores` tasks run at once, never more.
#[test]
fn cores_tasks_run_at_once_and_never_more() {
    let gate = Arc::new(Gate::default());
    let mut registry = TaskRegistry::new();
    let g = Arc::clone(&gate);
    registry.register("gate", move |_, n: u64| {
        g.pass();
        Ok::<u64, TaskError>(n)
    });
    let recorder = Recorder::new();
    let executor = Started::new(3, registry, recorder.clone());
    executor.launch_tasks((0..8).map(|i| task(i, "gate", u64_input(i))).collect());
    wait_until("three tasks are running at once", DEADLINE, || {
        gate.inside() == 3
    });
    assert_eq!(executor.running_tasks().len(), 3);
    gate.open();
    for i in 0..8 {
        assert!(matches!(
            recorder.wait_final(i),
            TaskStatus::Finished { .. }
        ));
    }
    assert_eq!(gate.most_inside(), 3);
}

/// Ember's own (Spark's `TaskRunner` reports RUNNING before it runs the task): a long task's
/// `Running` reaches the reporter while the task still runs, not only with its end; the end
/// says how long it ran.
#[test]
fn a_long_task_reports_running_while_it_runs() {
    let gate = Arc::new(Gate::default());
    let mut registry = TaskRegistry::new();
    let g = Arc::clone(&gate);
    registry.register("gate", move |_, n: u64| {
        g.pass();
        Ok::<u64, TaskError>(n)
    });
    let recorder = Recorder::new();
    let executor = Started::new(1, registry, recorder.clone());
    executor.launch_tasks(vec![task(1, "gate", u64_input(1))]);
    wait_until("TID 1 runs", DEADLINE, || gate.inside() == 1);
    let inside_since = Instant::now();
    wait_until("TID 1 reports Running", DEADLINE, || {
        recorder.statuses(1) == vec![TaskStatus::Running]
    });
    assert_eq!(gate.inside(), 1, "TID 1 is still running");
    let ran_at_least = inside_since.elapsed();
    gate.open();
    assert!(matches!(
        recorder.wait_final(1),
        TaskStatus::Finished { .. }
    ));
    // The end carries how long the task ran; `Running` carries nothing.
    let run_micros: Vec<u64> = recorder.updates().iter().map(|u| u.run_micros).collect();
    assert_eq!(run_micros[0], 0);
    assert!(
        u128::from(run_micros[1]) >= ran_at_least.as_micros(),
        "{run_micros:?} < {ran_at_least:?}"
    );
}

/// Ember's own (Spark's `Executor.stop`): `stop` asks running tasks to stop (they report
/// `Killed`), queued tasks never start, later launches are dropped, and `join` returns once
/// the threads have ended.
#[test]
fn stop_kills_running_tasks_and_join_ends_the_threads() {
    let started = Arc::new(AtomicUsize::new(0));
    let mut registry = TaskRegistry::new();
    let s = Arc::clone(&started);
    registry.register("until_killed", move |ctx, _: u64| {
        s.fetch_add(1, Ordering::SeqCst);
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            ctx.check_interrupted()?;
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok::<u64, TaskError>(0)
    });
    let recorder = Recorder::new();
    let executor = Executor::start(
        ExecutorId::new("exec-1"),
        2,
        Arc::new(registry),
        recorder.clone(),
        1 << 20,
        Arc::new(TaskFiles::None),
    )
    .unwrap();
    executor.launch_tasks(
        (1..=4)
            .map(|i| task(i, "until_killed", u64_input(0)))
            .collect(),
    );
    wait_until("two tasks run", DEADLINE, || {
        started.load(Ordering::SeqCst) == 2
    });
    executor.stop();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let executor = Arc::new(executor);
    let joiner = Arc::clone(&executor);
    std::thread::spawn(move || {
        joiner.join();
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(DEADLINE)
        .expect("join returns after stop");
    for tid in [1, 2] {
        assert_eq!(
            recorder.wait_final(tid),
            TaskStatus::Killed {
                reason: "the executor is stopping".into()
            }
        );
    }
    // The threads are gone: nothing else can run now.
    executor.launch_tasks(vec![task(5, "until_killed", u64_input(0))]);
    assert_eq!(started.load(Ordering::SeqCst), 2);
    for tid in [3, 4, 5] {
        assert!(recorder.statuses(tid).is_empty(), "TID {tid} ran");
    }
    assert!(executor.running_tasks().is_empty());
}
