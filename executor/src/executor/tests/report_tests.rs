//! How status updates reach the reporter: batches, and reporters that launch tasks.

use std::sync::atomic::AtomicBool;
use std::sync::{OnceLock, Weak};

use super::*;

/// A reporter that holds its first report until released, as a slow send would, noting
/// whether the thread it holds is a task thread.
struct HeldFirst {
    inner: Recorder,
    held: Mutex<Option<bool>>,
    released: Condvar,
    holds_a_task_thread: AtomicBool,
}

impl StatusReporter for HeldFirst {
    fn report(&self, updates: Vec<TaskUpdate>) {
        {
            let mut held = self.held.lock();
            if held.is_none() {
                let name = std::thread::current().name().unwrap_or("").to_string();
                self.holds_a_task_thread.store(
                    name.starts_with("Executor task launch worker"),
                    Ordering::SeqCst,
                );
                *held = Some(true);
                self.released.notify_all();
                let end = Instant::now() + DEADLINE;
                while *held == Some(true) && !self.released.wait_until(&mut held, end).timed_out() {
                }
            }
        }
        self.inner.report(updates);
    }
}

/// Ember's own: batching must not put more in one status message than a message may carry.
/// Each result here is under `max_result_size` (the backend sets it to
/// `ember.rpc.message.maxSize` − 1 KiB), yet while one report is being sent the others queue
/// up and travel as one `StatusUpdate`, which the real reporter then cannot send at all
/// (`DriverReporter` drops it, and those tasks never end on the driver).
#[test]
fn a_batch_of_updates_fits_in_one_message() {
    let max_result_size = 64 * 1024;
    let recorder = Arc::new(HeldFirst {
        inner: Recorder::default(),
        held: Mutex::new(None),
        released: Condvar::new(),
        holds_a_task_thread: AtomicBool::new(false),
    });
    let gate = Arc::new(Gate::default());
    let mut registry = basic_registry();
    let g = Arc::clone(&gate);
    registry.register("gate", move |_, n: u64| {
        g.pass();
        Ok::<u64, TaskError>(n)
    });
    let executor = Started::with_max(3, registry, recorder.clone(), max_result_size);
    // The first report is held: whichever thread sends it stays the sender meanwhile.
    executor.launch_tasks(vec![task(1, "echo", u64_input(1))]);
    wait_until("the first report is held", DEADLINE, || {
        recorder.held.lock().is_some()
    });
    let big = encode_to_bytes(&((max_result_size - 100) as u32));
    executor.launch_tasks(vec![
        task(2, "bytes", big.clone()),
        task(3, "bytes", big),
        task(4, "gate", u64_input(4)),
        task(5, "gate", u64_input(5)),
        task(6, "gate", u64_input(6)),
    ]);
    // Tasks are taken in order and a thread takes its next task only after queueing its
    // last one's end: once every free task thread waits at the gate, 2 and 3 are queued.
    let free = 3 - usize::from(recorder.holds_a_task_thread.load(Ordering::SeqCst));
    wait_until("every free task thread waits at the gate", DEADLINE, || {
        gate.inside() == free
    });
    *recorder.held.lock() = Some(false);
    recorder.released.notify_all();
    gate.open();
    for tid in [2, 3] {
        assert!(matches!(
            recorder.inner.wait_final(tid),
            TaskStatus::Finished { .. }
        ));
    }
    for batch in recorder.inner.batches() {
        let message = DriverMessage::StatusUpdate {
            executor_id: ExecutorId::new("exec-1"),
            updates: batch.clone(),
        };
        let size = encode_to_bytes(&message).len();
        assert!(
            size <= max_result_size + 1024,
            "a StatusUpdate of {} updates is {size} bytes, over the {} a message may carry",
            batch.len(),
            max_result_size + 1024
        );
    }
}

/// A reporter that, like the local driver endpoint running on the reporting thread, launches
/// tasks from inside `report` when a task ends; here an empty list.
#[derive(Default)]
struct LaunchesOnEnd {
    inner: Recorder,
    executor: OnceLock<Weak<Executor>>,
    panicked: Mutex<Vec<String>>,
}

impl StatusReporter for LaunchesOnEnd {
    fn report(&self, updates: Vec<TaskUpdate>) {
        let ended = updates.iter().any(|u| u.status.state().is_finished());
        self.inner.report(updates);
        if let Some(executor) = self.executor.get().and_then(Weak::upgrade) {
            if ended {
                let launched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    executor.launch_tasks(Vec::new())
                }));
                if let Err(panic) = launched {
                    self.panicked
                        .lock()
                        .push(crate::executor::panic_message(&*panic));
                }
            }
        }
    }
}

/// Ember's own: `launch_tasks` with no tasks is a no-op, even on a task thread that is
/// reporting its task's end (where the "will take the next task" shortcut applies).
#[test]
fn launching_no_tasks_from_a_report_is_harmless() {
    let reporter = Arc::new(LaunchesOnEnd::default());
    let executor = Started::new(1, basic_registry(), reporter.clone());
    reporter
        .executor
        .set(Arc::downgrade(&executor.0))
        .unwrap_or_else(|_| unreachable!());
    // A task's end is usually sent by its own thread (else by whoever is sending then).
    for tid in 0..20 {
        executor.launch_tasks(vec![task(tid, "echo", u64_input(tid))]);
        reporter.inner.wait_final(tid);
        if !reporter.panicked.lock().is_empty() {
            break;
        }
    }
    assert_eq!(*reporter.panicked.lock(), Vec::<String>::new());
}
