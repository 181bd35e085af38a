//! Failures, executor loss, abort, zombies, cancel and result sizes.

use super::*;
use TaskLocality::{Any, NoPref};

/// TSM #9 "task result lost".
#[test]
fn a_lost_result_requeues_the_task() {
    let mut h = Harness::new(FakeCluster::with(&[("exec1", "host1")]), no_prefs(1));
    assert_eq!(h.offer_index("exec1", "host1", Any), Some(0));
    assert!(h.fail(0, TaskFailedReason::TaskResultLost).is_empty());
    assert_eq!(h.failures(0), 1);
    assert_eq!(h.offer_index("exec1", "host1", Any), Some(0));
}

/// TSM #10 "repeated failures lead to task set abortion".
#[test]
fn the_fourth_failure_aborts_with_sparks_message() {
    let mut h = Harness::new(FakeCluster::with(&[("exec1", "host1")]), no_prefs(1));
    for attempt in 0..MAX_TASK_FAILURES {
        let task = h.offer("exec1", "host1", Any).expect("offered again");
        assert_eq!((task.index, task.attempt_number), (0, attempt));
        let events = h.fail(task.task_id.0, TaskFailedReason::TaskResultLost);
        if attempt + 1 < MAX_TASK_FAILURES {
            assert!(events.is_empty(), "{events:?}");
        } else {
            assert_eq!(
                events,
                vec![
                    TaskSetEvent::Aborted {
                        message: "Task 0 in stage 0.0 failed 4 times, most recent failure: \
                                  TaskResultLost (result lost from the executor)"
                            .into()
                    },
                    TaskSetEvent::Finished,
                ]
            );
        }
    }
    assert!(h.tsm.is_zombie());
    assert_eq!(h.offer_full("exec1", "host1", Any), Offered::nothing(false));
}

/// Spark's `countTowardsTaskFailures`: kills and executor losses not caused by the
/// application never count (TSM #37's reasons, minus those Ember does not have).
#[test]
fn failures_that_do_not_count_requeue_without_aborting() {
    let mut h = Harness::with(
        FakeCluster::with(&[("exec1", "host1")]),
        no_prefs(1),
        1,
        SchedulerConf::default(),
    );
    let not_counted = [
        killed("test"),
        TaskFailedReason::ExecutorLostFailure {
            executor_id: ExecutorId::new("exec1"),
            exit_caused_by_app: false,
            reason: None,
        },
    ];
    for (tid, reason) in not_counted.into_iter().enumerate() {
        assert_eq!(h.offer_index("exec1", "host1", NoPref), Some(0));
        assert!(h.fail(tid as u64, reason).is_empty());
        assert_eq!(h.failures(0), 0);
    }
    assert_eq!(h.offer_index("exec1", "host1", NoPref), Some(0));
    let events = h.fail(2, exception("boom"));
    assert_eq!(
        aborted(&events),
        Some("Task 0 in stage 0.0 failed 1 times, most recent failure: boom")
    );
}

/// TSM #13 "Executors exit for reason unrelated to currently running tasks".
#[test]
fn executor_loss_counts_only_when_the_application_caused_it() {
    let set = task_set(vec![
        vec![exec_loc("host1", "execA")],
        vec![exec_loc("host1", "execB")],
        vec![exec_loc("host2", "execC")],
        vec![],
    ]);
    let mut h = Harness::with(FakeCluster::default(), set, 1, SchedulerConf::default());
    h.add_executor("execA", "host1");
    h.add_executor("execC", "host2");
    let on_b = h.offer("execB", "host1", Any).expect("a task for execB");
    assert_eq!(on_b.index, 1);
    let unrelated = ExecutorLossReason::Exited {
        exit_code: 143,
        exit_caused_by_app: false,
        reason: "Terminated for reason unrelated to running tasks".into(),
    };
    assert!(h.lose_executor("execA", unrelated).is_empty());
    let on_c = h.offer("execC", "host2", Any).expect("a task for execC");
    assert_eq!(on_c.index, 2);
    h.tsm.handle_task_running(on_c.task_id);
    let caused = ExecutorLossReason::Exited {
        exit_code: 1,
        exit_caused_by_app: true,
        reason: "Terminated due to issue with running tasks".into(),
    };
    let events = h.lose_executor("execC", caused);
    assert_eq!(
        aborted(&events),
        Some(
            "Task 2 in stage 0.0 failed 1 times, most recent failure: ExecutorLostFailure \
             (executor execC exited caused by one of the running tasks) Reason: Command exited \
             with code 1: Terminated due to issue with running tasks"
        )
    );
}

/// Executor loss resubmits the attempts that ran there; an unrelated exit does not count.
#[test]
fn tasks_of_a_lost_executor_are_resubmitted() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2")]);
    let mut h = Harness::with(cluster, no_prefs(2), 1, SchedulerConf::default());
    let a = h.offer("exec1", "host1", NoPref).expect("task 0");
    let b = h.offer("exec1", "host1", NoPref).expect("task 1");
    h.tsm.handle_task_running(a.task_id);
    h.tsm.handle_task_running(b.task_id);
    assert_eq!(h.tsm.running_tasks(), 2);
    assert!(h
        .lose_executor("exec1", ExecutorLossReason::Killed)
        .is_empty());
    assert_eq!(h.tsm.running_tasks(), 0);
    assert!(h.tsm.is_schedulable());
    // Requeued in task-id order on a stack: the last one requeued goes first.
    assert_eq!(h.offer_index("exec2", "host2", NoPref), Some(1));
    assert_eq!(h.offer_index("exec2", "host2", NoPref), Some(0));
}

/// SPARK-39955: an attempt still launching when its executor dies is not blamed, even when
/// the loss is the application's; one that reported running is.
#[test]
fn launching_attempts_are_not_blamed_for_executor_loss() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2"), ("exec3", "host3")]);
    let mut h = Harness::with(cluster, no_prefs(1), 1, SchedulerConf::default());
    let crash = || ExecutorLossReason::Exited {
        exit_code: 1,
        exit_caused_by_app: true,
        reason: "boom".into(),
    };
    assert!(h.offer("exec1", "host1", NoPref).is_some());
    assert!(h.lose_executor("exec1", crash()).is_empty());
    assert_eq!(h.failures(0), 0);
    // A loss whose reason is still pending blames like Spark's default case: not launching.
    let second = h.offer("exec2", "host2", NoPref).expect("retried");
    assert_eq!(second.attempt_number, 1);
    assert!(h
        .lose_executor("exec2", ExecutorLossReason::Pending)
        .is_empty());
    let third = h.offer("exec3", "host3", NoPref).expect("retried again");
    h.tsm.handle_task_running(third.task_id);
    let events = h.lose_executor("exec3", crash());
    assert!(aborted(&events).is_some(), "{events:?}");
    assert!(finished(&events));
}

/// SPARK-37580 (TSM #63) "Reset numFailures when one of task attempts succeeds".
#[test]
fn a_success_resets_the_failure_count() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2")]);
    let mut h = Harness::with(
        cluster,
        no_prefs(3),
        MAX_TASK_FAILURES,
        speculation_conf(0.5, 0.0),
    );
    assert_eq!(h.offer_index("exec1", "host1", NoPref), Some(0));
    assert_eq!(h.offer_index("exec1", "host1", NoPref), Some(1));
    // Task 1 fails three times; each retry is taken first (a failed task goes on top).
    for tid in 1..4 {
        assert!(h.fail(tid, exception("flaky")).is_empty());
        assert_eq!(h.offer_index("exec1", "host1", NoPref), Some(1));
    }
    assert_eq!(h.failures(1), 3);
    h.advance(Duration::from_millis(1));
    assert_eq!(succeeded(&h.succeed(0)), vec![0]);
    h.advance(Duration::from_millis(1));
    // Task 2 launches now, so only task 1 (TID 4) has outrun the threshold of 0.
    assert_eq!(h.offer_index("exec2", "host2", NoPref), Some(2));
    let now = h.now();
    assert!(h.tsm.check_speculatable_tasks(now));
    let copy = h.offer("exec2", "host2", NoPref).expect("copy of task 1");
    assert_eq!(
        (copy.index, copy.attempt_number, copy.task_id),
        (1, 4, TaskId(6))
    );
    let events = h.succeed(6);
    assert_eq!(succeeded(&events), vec![1]);
    assert_eq!(
        kills(&events),
        vec![(4, "exec1".into(), "another attempt succeeded".into())]
    );
    assert_eq!(h.failures(1), 0);
    // The original failing now is its first failure since the success: no abort.
    assert!(h.fail(4, exception("flaky")).is_empty());
    assert_eq!(h.failures(1), 1);
    assert!(!h.tsm.is_zombie());
}

/// Zombie semantics: nothing more launches, running attempts are still tracked and their
/// results reported, and `Finished` comes when the last one ends.
#[test]
fn a_zombie_launches_nothing_and_finishes_when_its_last_attempt_ends() {
    let mut h = Harness::new(FakeCluster::with(&[("exec1", "host1")]), no_prefs(3));
    h.offer("exec1", "host1", NoPref).expect("task 0");
    h.offer("exec1", "host1", NoPref).expect("task 1");
    assert_eq!(
        h.tsm.abort("stop".into()),
        vec![TaskSetEvent::Aborted {
            message: "stop".into()
        }]
    );
    assert!(h.tsm.is_zombie() && !h.tsm.is_schedulable());
    assert_eq!(h.offer_full("exec1", "host1", Any), Offered::nothing(false));
    assert!(h.tsm.abort("again".into()).is_empty(), "aborted once only");
    assert_eq!(h.tsm.running_tasks(), 2);
    assert_eq!(succeeded(&h.succeed(0)), vec![0]);
    // Failures of a zombie do not count and requeue nothing.
    assert_eq!(h.fail(1, exception("late")), vec![TaskSetEvent::Finished]);
    assert_eq!(h.failures(1), 0);
    assert_eq!(h.tsm.running_tasks(), 0);
    assert!(h.tsm.abort("after".into()).is_empty());
    assert!(h.succeed(1).is_empty());
}

/// `killAllTaskAttempts`: kill every running attempt, turn zombie, finish when they end.
#[test]
fn kill_all_attempts_kills_the_running_ones_then_finishes() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2")]);
    let mut h = Harness::new(cluster, no_prefs(3));
    h.offer("exec1", "host1", NoPref).expect("task 0");
    h.offer("exec2", "host2", NoPref).expect("task 1");
    let events = h.tsm.kill_all_attempts("job 0 cancelled");
    assert_eq!(
        kills(&events),
        vec![
            (0, "exec1".into(), "Stage cancelled: job 0 cancelled".into()),
            (1, "exec2".into(), "Stage cancelled: job 0 cancelled".into()),
        ]
    );
    assert_eq!(events.len(), 2, "no Aborted, not finished yet: {events:?}");
    assert!(h.tsm.is_zombie());
    assert!(h
        .fail(0, killed("Stage cancelled: job 0 cancelled"))
        .is_empty());
    assert_eq!(
        h.fail(1, killed("Stage cancelled: job 0 cancelled")),
        vec![TaskSetEvent::Finished]
    );
    // Cancelling a set with nothing running finishes it at once.
    let mut idle = Harness::new(FakeCluster::default(), no_prefs(1));
    assert_eq!(
        idle.tsm.kill_all_attempts("x"),
        vec![TaskSetEvent::Finished]
    );
}

/// TSM #22 "abort the job if total size of results is too large".
#[test]
fn results_over_max_result_size_abort_the_set() {
    let conf = SchedulerConf {
        max_result_size: 2 << 20,
        ..SchedulerConf::default()
    };
    let cluster = || FakeCluster::with(&[("exec1", "host1")]);
    let mut h = Harness::with(cluster(), no_prefs(11), MAX_TASK_FAILURES, conf.clone());
    for _ in 0..10 {
        assert_eq!(h.tsm.can_fetch_more_results(1024), Ok(()));
    }
    let events = h.tsm.can_fetch_more_results(10 << 20).expect_err("over");
    assert_eq!(
        events,
        vec![
            TaskSetEvent::Aborted {
                message: "Total size of serialized results of 11 tasks (10.0 MiB) is bigger \
                          than ember.driver.maxResultSize (2.0 MiB)"
                    .into()
            },
            TaskSetEvent::Finished,
        ]
    );
    // Still refused afterwards, without a second abort.
    assert_eq!(h.tsm.can_fetch_more_results(1), Err(Vec::new()));

    let mut h = Harness::with(cluster(), no_prefs(10), MAX_TASK_FAILURES, conf);
    h.offer("exec1", "host1", NoPref).expect("a running task");
    assert_eq!(h.tsm.can_fetch_more_results(1 << 20), Ok(()));
    assert_eq!(h.tsm.can_fetch_more_results(1 << 20), Ok(()));
    let events = h.tsm.can_fetch_more_results(1 << 20).expect_err("over");
    assert_eq!(
        aborted(&events),
        Some(
            "Total size of serialized results of 3 tasks (3.0 MiB) is bigger than \
             ember.driver.maxResultSize (2.0 MiB)"
        )
    );
    assert!(!finished(&events), "a task still runs");
}

/// Reports for unknown or already ended attempts are ignored (SPARK-37300), never panic.
#[test]
fn unknown_and_repeated_reports_are_ignored() {
    let mut h = Harness::new(FakeCluster::with(&[("exec1", "host1")]), no_prefs(3));
    assert!(h.succeed(99).is_empty());
    assert!(h.fail(99, exception("?")).is_empty());
    h.tsm.handle_task_running(TaskId(99));
    assert_eq!(h.tsm.executor_of(TaskId(99)), None);
    h.offer("exec1", "host1", NoPref).expect("task 0");
    assert_eq!(succeeded(&h.succeed(0)), vec![0]);
    assert!(h.succeed(0).is_empty());
    assert!(h.fail(0, exception("late")).is_empty());
    assert_eq!(h.failures(0), 0);
    // A task id that is already running is refused rather than overwriting the attempt.
    h.offer("exec1", "host1", NoPref).expect("task 1");
    h.next_tid = 1;
    assert_eq!(
        h.offer_full("exec1", "host1", NoPref),
        Offered::nothing(false)
    );
    h.next_tid = 2;
    assert_eq!(h.offer_index("exec1", "host1", NoPref), Some(2));
}

/// TSM "SPARK-13704 Rack Resolution is done with a batch of de-duped hosts", and Ember's
/// stronger promise: the rack of each preferred host is looked up once for the task set's
/// whole life, not again when a task fails and is re-queued or when executors come and go.
#[test]
fn each_preferred_hosts_rack_is_looked_up_once_per_task_set() {
    let mut cluster = FakeCluster::with(&[("execA", "host1"), ("execB", "host2")]);
    cluster.assign_rack("host1", "rack1");
    cluster.assign_rack("host2", "rack1");
    let set = task_set(vec![
        vec![exec_loc("host1", "execA"), host_loc("host2")],
        vec![host_loc("host1")],
        vec![host_loc("host2"), host_loc("host3")],
        vec![host_loc("host1"), host_loc("host3")],
    ]);
    let mut h = Harness::new(cluster, set);
    let once: BTreeMap<String, usize> = ["host1", "host2", "host3"]
        .into_iter()
        .map(|host| (host.to_string(), 1))
        .collect();
    assert_eq!(
        *h.cluster.rack_lookups.borrow(),
        once,
        "resolved at creation"
    );

    let task = h.offer("execA", "host1", Any).expect("a task");
    assert!(h.fail(task.task_id.0, exception("boom")).is_empty());
    h.add_executor("execC", "host3");
    let _ = h.lose_executor("execB", worker_lost());
    while let Some(task) = h.offer("execA", "host1", Any) {
        let _ = h.succeed(task.task_id.0);
    }
    assert_eq!(
        *h.cluster.rack_lookups.borrow(),
        once,
        "no host was looked up again"
    );
}
