//! Executor loss: which attempts fail, whether the failure counts, what is resubmitted, and
//! what the scheduler forgets.

use super::*;

/// TSI #13 "tasks are not re-scheduled while executor loss reason is pending".
#[test]
fn tasks_wait_for_the_real_loss_reason() {
    let mut h = Harness::new();
    h.submit(task_set(0, 1));
    let tasks = h.offer_all(&[("executor0", "host0", 1)]);
    assert_eq!(executors(&tasks), ["executor0"]);
    assert!(h.lose("executor0", ExecutorLossReason::Pending).is_empty());
    assert!(!h.alive("executor0"), "no offers go to it any more");
    assert!(h.offer_all(&[("executor1", "host1", 1)]).is_empty());
    let oops = ExecutorLossReason::ProcessLost {
        message: "oops".into(),
        worker_host: None,
        caused_by_app: true,
    };
    assert!(failures(&h.lose("executor0", oops)).is_empty());
    let tasks = h.offer_all(&[("executor1", "host1", 1)]);
    assert_eq!(executors(&tasks), ["executor1"]);
    assert_eq!((tasks[0].index, tasks[0].attempt_number), (0, 1));
}

/// TSI #46 "if an executor is lost then the state for its running tasks is cleaned up
/// (SPARK-18553)".
#[test]
fn a_lost_executors_task_state_is_cleaned_up() {
    let mut h = Harness::new();
    h.submit(task_set(0, 1));
    let tasks = h.offer_all(&[("executor0", "host0", 1)]);
    let tid = tasks[0].task_id;
    assert!(h.alive("executor0"));
    assert_eq!(h.sched.kill_task(tid), Some(ExecutorId::new("executor0")));
    h.lose("executor0", worker_lost());
    assert!(!h.alive("executor0"));
    let cluster = h.sched.cluster();
    assert_eq!(cluster.host_of(&ExecutorId::new("executor0")), None);
    assert!(!crate::ClusterView::has_executors_alive_on_host(
        cluster, "host0"
    ));
    assert_eq!(cluster.running_on(&ExecutorId::new("executor0")), 0);
    assert_eq!(cluster.executors().count(), 0);
    assert!(h.sched.task_to_set.is_empty(), "taskId -> task set");
    assert_eq!(h.sched.kill_task(tid), None, "taskId -> executor");
    assert_eq!(h.tsm(0).unwrap().running_tasks(), 0);
    // A late report from the lost attempt changes nothing.
    assert!(h.finish(tid, "late").is_empty());
}

/// Runs one task on `exec1`, reported RUNNING if `running`, loses `exec1` for `reason` with
/// `maxFailures = 1`, and returns the loss's events and the harness.
fn lose_one_task(running: bool, reason: ExecutorLossReason) -> (Vec<SchedulerEvent>, Harness) {
    let mut h = Harness::with(SchedulerConf::default(), 1);
    h.submit(task_set(0, 1));
    let tasks = h.offer_all(&[("exec1", "host1", 1)]);
    assert_eq!(tasks.len(), 1);
    if running {
        assert!(h.update(tasks[0].task_id, TaskStatus::Running).is_empty());
    }
    let events = h.lose("exec1", reason);
    (events, h)
}

/// TSI #70 "SPARK-39955: executor lost could fail task set if task is running".
#[test]
fn losing_a_running_task_to_the_application_counts() {
    let (events, h) = lose_one_task(true, worker_lost());
    assert_eq!(
        failures(&events),
        [
            "Task 0 in stage 0.0 failed 1 times, most recent failure: ExecutorLostFailure \
          (executor exec1 exited caused by one of the running tasks) Reason: Worker lost"
        ]
    );
    assert!(finished(&events, 0));
    assert!(!h.sched.has_task_sets());
}

/// TSI #71 "SPARK-39955: executor lost should not fail task set if task is launching".
#[test]
fn losing_a_launching_task_does_not_count() {
    let (events, mut h) = lose_one_task(false, worker_lost());
    assert!(events.is_empty(), "{events:?}");
    assert!(!h.is_zombie(0));
    let tasks = h.offer_all(&[("exec2", "host2", 1)]);
    assert_eq!(
        (executors(&tasks), tasks[0].attempt_number),
        (vec!["exec2"], 1)
    );
}

/// Ember's own (its executors hold back a short task's RUNNING report): losing an executor
/// of one slot to the application counts against its oldest outstanding attempt, which had
/// started whether or not RUNNING was reported, and not against the ones queued behind it.
/// A task that kills its executor at once therefore still fails its job after
/// `maxFailures` attempts instead of being retried forever.
#[test]
fn an_app_caused_loss_counts_against_the_attempts_that_had_started() {
    let mut h = Harness::with(SchedulerConf::default(), 1);
    h.submit(task_set(0, 3));
    // Three tasks on an executor of one core: the first runs, two wait behind it.
    let tasks = h.offer_all(&[("exec1", "host1", 3)]);
    assert_eq!(tasks.len(), 3);
    let events = h
        .sched
        .executor_lost(&ExecutorId::new("exec1"), &worker_lost(), 1, h.now());
    let first = tasks.iter().min_by_key(|t| t.task_id).expect("three tasks");
    let expected = format!(
        "Task {} in stage 0.0 failed 1 times, most recent failure: ExecutorLostFailure \
         (executor exec1 exited caused by one of the running tasks) Reason: Worker lost",
        first.index
    );
    assert_eq!(failures(&events), [expected.as_str()]);
}

/// The same loss with no slot known (0) follows Spark's rule alone: nothing had reported
/// RUNNING, so nothing counts and every task runs again.
#[test]
fn without_slots_only_reported_running_attempts_count() {
    let mut h = Harness::with(SchedulerConf::default(), 1);
    h.submit(task_set(0, 2));
    let tasks = h.offer_all(&[("exec1", "host1", 2)]);
    assert_eq!(tasks.len(), 2);
    let events = h.lose("exec1", worker_lost());
    assert!(failures(&events).is_empty(), "{events:?}");
    assert_eq!(h.offer_all(&[("exec2", "host2", 2)]).len(), 2);
}

/// Ember's own (Spark's `exitCausedByApp` per `ExecutorLossReason`): a running task
/// lost with its executor counts only when the loss is the application's fault; either way
/// it is resubmitted while failures remain.
#[test]
fn whether_a_loss_counts_depends_on_its_reason() {
    let not_counted = [
        ExecutorLossReason::Exited {
            exit_code: 143,
            exit_caused_by_app: false,
            reason: "unrelated".into(),
        },
        ExecutorLossReason::Killed,
        ExecutorLossReason::ProcessLost {
            message: "Worker lost".into(),
            worker_host: Some("host1".into()),
            caused_by_app: false,
        },
    ];
    for reason in not_counted {
        let (events, mut h) = lose_one_task(true, reason.clone());
        assert!(events.is_empty(), "{reason}: {events:?}");
        let tasks = h.offer_all(&[("exec2", "host2", 1)]);
        assert_eq!(indices(&tasks), [0], "{reason}: resubmitted");
        assert_eq!(tasks[0].attempt_number, 1);
    }
    let exited = ExecutorLossReason::Exited {
        exit_code: 1,
        exit_caused_by_app: true,
        reason: "boom".into(),
    };
    let (events, _) = lose_one_task(true, exited);
    assert_eq!(
        failures(&events),
        [
            "Task 0 in stage 0.0 failed 1 times, most recent failure: ExecutorLostFailure \
          (executor exec1 exited caused by one of the running tasks) Reason: Command exited \
          with code 1: boom"
        ]
    );
}

/// Ember's own: every attempt running on a lost executor is resubmitted (counted failures
/// below `maxFailures` do not abort), attempts elsewhere are untouched, and the executor's
/// late reports are ignored.
#[test]
fn a_lost_executors_attempts_are_resubmitted_elsewhere() {
    let mut h = Harness::new();
    h.submit(task_set(0, 4));
    let tasks = h.offer_all(&[("exec1", "host1", 3), ("exec2", "host2", 1)]);
    assert_eq!(executors(&tasks), ["exec1", "exec2", "exec1", "exec1"]);
    for t in &tasks {
        h.update(t.task_id, TaskStatus::Running);
    }
    let events = h.lose("exec1", worker_lost());
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(h.tsm(0).unwrap().running_tasks(), 1);
    // Late reports from exec1 are dropped: its attempts are gone.
    assert!(h.finish(tasks[0].task_id, "late").is_empty());
    let again = h.offer_all(&[("exec3", "host3", 4)]);
    let mut resubmitted = indices(&again);
    resubmitted.sort();
    assert_eq!(resubmitted, [0, 2, 3]);
    assert!(again.iter().all(|t| t.attempt_number == 1));
    let mut events = h.finish(tasks[1].task_id, "1");
    for t in &again {
        events.extend(h.finish(t.task_id, &t.index.to_string()));
    }
    let mut done = successes(&events);
    done.sort();
    let expected: [(u32, &[u8]); 4] = [(0, b"0"), (1, b"1"), (2, b"2"), (3, b"3")];
    assert_eq!(done, expected);
    assert!(finished(&events, 0));
}

/// Ember's own (`recomputeLocality` on loss): once the only executor a task prefers is gone,
/// its locality levels shrink and it runs anywhere without waiting.
#[test]
fn tasks_preferring_a_lost_executor_run_elsewhere_at_once() {
    let mut h = Harness::new();
    assert!(h.offer_all(&[("exec1", "host1", 1)]).is_empty());
    h.submit(task_set_with(0, 2, |_| vec![exec_loc("host1", "exec1")]));
    let first = h.offer_all(&[("exec1", "host1", 1), ("exec2", "host2", 1)]);
    assert_eq!(executors(&first), ["exec1"], "task 1 waits for exec1");
    h.lose("exec1", worker_lost());
    let tasks = h.offer_all(&[("exec2", "host2", 2)]);
    assert_eq!(indices(&tasks), [0, 1]);
}

/// Ember's own: losing an executor the scheduler never saw changes nothing.
#[test]
fn losing_an_unknown_executor_is_ignored() {
    let mut h = Harness::new();
    h.submit(task_set(0, 1));
    assert!(h.lose("ghost", worker_lost()).is_empty());
    assert!(h.lose("ghost", ExecutorLossReason::Pending).is_empty());
    assert_eq!(h.offer_all(&[("exec1", "host1", 1)]).len(), 1);
}
