//! Speculative copies: when tasks are marked, where copies go, and what the first success
//! does to the other attempts.

use super::*;
use TaskLocality::{Any, NoPref, NodeLocal};

const MS: Duration = Duration::from_millis(1);

/// Launches `n` no-preference tasks with one offer per `(executor, host)`, in order.
fn launch_all(h: &mut Harness, placements: &[(&str, &str)]) {
    for (i, (executor, host)) in placements.iter().enumerate() {
        let task = h.offer(executor, host, NoPref).expect("a task");
        assert_eq!(
            (task.index as usize, task.executor_id.as_str()),
            (i, *executor)
        );
    }
}

fn check(h: &mut Harness) -> bool {
    let now = h.now();
    h.tsm.check_speculatable_tasks(now)
}

fn speculatable(h: &Harness) -> Vec<u32> {
    (0..h.tsm.tasks.len() as u32)
        .filter(|&i| {
            matches!(
                h.tsm.tasks[i as usize].status,
                super::super::records::IndexStatus::Running {
                    speculatable: true,
                    ..
                }
            )
        })
        .collect()
}

/// TSM #33 "Kill other task attempts when one attempt belonging to the same task succeeds".
#[test]
fn the_first_success_kills_the_other_attempts() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2")]);
    let mut h = Harness::with(
        cluster,
        no_prefs(4),
        MAX_TASK_FAILURES,
        speculation_conf(0.75, 0.0),
    );
    launch_all(
        &mut h,
        &[
            ("exec1", "host1"),
            ("exec1", "host1"),
            ("exec2", "host2"),
            ("exec2", "host2"),
        ],
    );
    h.advance(MS);
    for tid in 0..3 {
        assert_eq!(succeeded(&h.succeed(tid)), vec![tid as u32]);
    }
    h.advance(MS);
    assert!(check(&mut h));
    assert_eq!(speculatable(&h), vec![3]);
    assert!(!check(&mut h), "already marked");
    let copy = h.offer("exec1", "host1", NoPref).expect("the copy");
    assert_eq!(
        (copy.index, copy.task_id, copy.attempt_number),
        (3, TaskId(4), 1)
    );
    let events = h.succeed(4);
    assert_eq!(
        kills(&events),
        vec![(3, "exec2".into(), "another attempt succeeded".into())]
    );
    assert_eq!(succeeded(&events), vec![3]);
    assert!(h.tsm.is_zombie() && !finished(&events), "TID 3 still runs");
    assert_eq!(
        h.fail(3, killed("another attempt succeeded")),
        vec![TaskSetEvent::Finished]
    );
}

/// TSM #34 "Killing speculative tasks does not count towards aborting the taskset".
#[test]
fn killed_attempts_do_not_count_towards_aborting() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2")]);
    let mut h = Harness::with(
        cluster,
        no_prefs(5),
        MAX_TASK_FAILURES,
        speculation_conf(0.6, 0.0),
    );
    launch_all(
        &mut h,
        &[
            ("exec1", "host1"),
            ("exec1", "host1"),
            ("exec1", "host1"),
            ("exec2", "host2"),
            ("exec2", "host2"),
        ],
    );
    h.advance(MS);
    for tid in 0..3 {
        h.succeed(tid);
    }
    // Tasks 3 and 4 each fail three times (not enough to abort) and are retried on exec2.
    let mut running = [3u64, 4];
    for _ in 0..3 {
        for (slot, index) in [3u32, 4].into_iter().enumerate() {
            assert!(h.fail(running[slot], exception("c")).is_empty());
            assert!(!h.tsm.is_zombie());
            let retry = h.offer("exec2", "host2", NoPref).expect("a retry");
            assert_eq!(retry.index, index);
            running[slot] = retry.task_id.0;
        }
    }
    h.advance(MS);
    assert!(check(&mut h));
    assert_eq!(speculatable(&h), vec![3, 4]);
    let first = h.offer("exec1", "host1", NoPref).expect("a copy");
    assert_eq!((first.task_id, first.attempt_number), (TaskId(11), 4));
    let original = |index: u32| running[(index - 3) as usize];
    let events = h.succeed(11);
    assert_eq!(
        kills(&events),
        vec![(
            original(first.index),
            "exec2".into(),
            "another attempt succeeded".into()
        )]
    );
    assert!(h
        .fail(original(first.index), killed("another attempt succeeded"))
        .is_empty());
    // That was the task's fourth failure, but a kill does not count.
    assert_eq!(h.tsm.succeeded, 4);
    assert!(!h.tsm.is_zombie());
    let second = h.offer("exec1", "host1", NoPref).expect("the other copy");
    assert_ne!(second.index, first.index);
    assert_eq!(second.attempt_number, 4);
    let events = h.succeed(second.task_id.0);
    assert_eq!(kills(&events).len(), 1);
    assert_eq!(kills(&events)[0].0, original(second.index));
    assert_eq!(h.tsm.succeeded, 5);
    assert!(h.tsm.is_zombie());
}

/// TSM #43 "SPARK-13343 speculative tasks that didn't commit shouldn't be marked as
/// success", with the result-size undo of Spark's `handleSuccessfulTask`.
#[test]
fn a_killed_attempt_that_finishes_anyway_is_reported_killed() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2")]);
    let conf = SchedulerConf {
        max_result_size: 10,
        ..speculation_conf(0.75, 0.0)
    };
    let mut h = Harness::with(cluster, no_prefs(4), MAX_TASK_FAILURES, conf);
    launch_all(
        &mut h,
        &[
            ("exec1", "host1"),
            ("exec1", "host1"),
            ("exec2", "host2"),
            ("exec2", "host2"),
        ],
    );
    h.advance(MS);
    for tid in 0..3 {
        assert_eq!(h.tsm.can_fetch_more_results(2), Ok(()));
        h.succeed(tid);
    }
    h.advance(MS);
    assert!(check(&mut h));
    let copy = h.offer("exec1", "host1", NoPref).expect("the copy");
    assert_eq!(copy.task_id, TaskId(4));
    // The original wins this time.
    assert_eq!(h.tsm.can_fetch_more_results(2), Ok(()));
    let events = h.succeed(3);
    assert_eq!(
        kills(&events),
        vec![(4, "exec1".into(), "another attempt succeeded".into())]
    );
    assert_eq!(succeeded(&events), vec![3]);
    // The copy's result arrives before the kill lands: counted, then taken back.
    assert_eq!(h.tsm.can_fetch_more_results(2), Ok(()));
    assert_eq!(h.succeed(4), vec![TaskSetEvent::Finished]);
    // 4 results of 2 bytes are in; without the undo this would be 12 > 10.
    assert_eq!(h.tsm.can_fetch_more_results(2), Ok(()));
}

/// TSM #24 "[SPARK-13931] taskSetManager should not send Resubmitted tasks after being a
/// zombie" (Ember resubmits nothing on success; what remains is the zombie tracking the copy).
#[test]
fn a_zombie_tracks_the_copy_until_its_executor_is_lost() {
    let cluster = FakeCluster::with(&[("execA", "host1"), ("execB", "host2")]);
    let set = task_set(vec![vec![exec_loc("host1", "execA")]]);
    let mut h = Harness::with(cluster, set, MAX_TASK_FAILURES, speculation_conf(0.75, 1.5));
    let original = h
        .offer("execA", "host1", TaskLocality::ProcessLocal)
        .expect("task 0");
    h.mark_speculatable(0);
    let copy = h.offer("execB", "host2", Any).expect("the copy");
    assert_eq!(h.tsm.running_tasks(), 2);
    assert!(!h.tsm.is_zombie());
    let events = h.succeed(original.task_id.0);
    assert_eq!(kills(&events).len(), 1);
    assert!(h.tsm.is_zombie());
    assert_eq!(h.tsm.running_tasks(), 1);
    let events = h.lose_executor("execB", worker_lost());
    assert_eq!(events, vec![TaskSetEvent::Finished]);
    assert_eq!(h.tsm.running_tasks(), 0);
    assert_eq!(h.tsm.executor_of(copy.task_id), None);
}

/// TSM #46 "SPARK-26755 Ensure that a speculative task is submitted only once for
/// execution", and copies never go to a host that already ran the task.
#[test]
fn a_speculative_copy_is_launched_once_and_not_where_the_task_ran() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2"), ("exec3", "host3")]);
    let mut h = Harness::with(
        cluster,
        no_prefs(4),
        MAX_TASK_FAILURES,
        speculation_conf(0.5, 0.0),
    );
    launch_all(
        &mut h,
        &[
            ("exec1", "host1"),
            ("exec1", "host1"),
            ("exec2", "host2"),
            ("exec2", "host2"),
        ],
    );
    h.advance(MS);
    h.succeed(0);
    h.succeed(2);
    h.advance(MS);
    assert!(check(&mut h));
    assert_eq!(speculatable(&h), vec![1, 3]);
    // Task 1 ran on host1, so exec1 gets the copy of task 3 ...
    let copy3 = h.offer("exec1", "host1", NoPref).expect("copy of 3");
    assert_eq!(
        (copy3.index, copy3.task_id, copy3.attempt_number),
        (3, TaskId(4), 1)
    );
    // ... and exec2 that of task 1.
    let copy1 = h.offer("exec2", "host2", NoPref).expect("copy of 1");
    assert_eq!(
        (copy1.index, copy1.task_id, copy1.attempt_number),
        (1, TaskId(5), 1)
    );
    assert!(!check(&mut h));
    for (executor, host) in [("exec1", "host1"), ("exec2", "host2"), ("exec3", "host3")] {
        assert_eq!(h.offer(executor, host, Any), None);
    }
    assert!(!h.tsm.is_schedulable());
}

/// TSM #47 "SPARK-26755 Ensure that a speculative task obeys original locality
/// preferences".
#[test]
fn a_speculative_copy_obeys_the_task_preferences() {
    let cluster = FakeCluster::with(&[
        ("exec1", "host1"),
        ("exec2", "host2"),
        ("exec3", "host3"),
        ("exec4", "host4"),
    ]);
    let set = task_set(vec![
        vec![host_loc("host1"), host_loc("host3")],
        vec![host_loc("host2")],
        vec![host_loc("host3")],
    ]);
    let mut h = Harness::with(cluster, set, MAX_TASK_FAILURES, speculation_conf(0.5, 0.0));
    assert_eq!(h.offer_index("exec1", "host1", NodeLocal), Some(0));
    assert_eq!(h.offer_index("exec2", "host2", NodeLocal), Some(1));
    assert_eq!(h.offer_index("exec3", "host3", NodeLocal), Some(2));
    h.advance(MS);
    h.succeed(2);
    h.advance(MS);
    assert!(check(&mut h));
    assert_eq!(speculatable(&h), vec![0, 1]);
    assert_eq!(h.offer_index("exec4", "host4", NodeLocal), None);
    assert_eq!(
        h.offer_index("exec2", "host2", NodeLocal),
        None,
        "task 1 ran there"
    );
    let copy0 = h.offer_full("exec3", "host3", NodeLocal);
    assert_eq!(copy0.task.map(|t| t.index), Some(0));
    assert_eq!(copy0.locality, Some(NodeLocal));
    assert_eq!(h.offer_index("exec4", "host4", Any), Some(1));
    assert_eq!(h.offer_index("exec1", "host1", Any), None);
    assert!(!check(&mut h));
}

/// TSM #58 "SPARK-33741 Test minimum amount of time a task runs before being considered for
/// speculation".
#[test]
fn tasks_run_at_least_the_minimum_runtime_before_speculation() {
    let conf = SchedulerConf {
        speculation: true,
        speculation_quantile: 0.5,
        speculation_min_task_runtime: Duration::from_secs(3),
        ..SchedulerConf::default()
    };
    let mut h = Harness::with(
        FakeCluster::with(&[("exec1", "host1")]),
        no_prefs(2),
        4,
        conf,
    );
    launch_all(&mut h, &[("exec1", "host1"), ("exec1", "host1")]);
    h.advance(Duration::from_secs(1));
    h.succeed(0);
    h.advance(Duration::from_secs(1));
    assert!(!check(&mut h));
    h.advance(Duration::from_secs(2));
    assert!(check(&mut h));
    assert_eq!(speculatable(&h), vec![1]);
}

/// The quantile: nothing is speculated before `floor(quantile × tasks)` tasks succeeded.
#[test]
fn speculation_waits_for_the_quantile() {
    let cluster = FakeCluster::with(&[("exec1", "host1")]);
    let mut h = Harness::with(
        cluster,
        no_prefs(4),
        MAX_TASK_FAILURES,
        speculation_conf(0.75, 0.0),
    );
    launch_all(&mut h, &[("exec1", "host1"); 4]);
    h.advance(MS);
    h.succeed(0);
    h.succeed(1);
    h.advance(Duration::from_secs(60));
    assert!(!check(&mut h), "2 of the 3 needed");
    h.succeed(2);
    assert!(check(&mut h));
}

/// The multiplier: a task is slow when it outruns `multiplier × median`.
#[test]
fn speculation_threshold_is_the_multiplier_times_the_median() {
    let cluster = FakeCluster::with(&[("exec1", "host1")]);
    let mut h = Harness::with(
        cluster,
        no_prefs(3),
        MAX_TASK_FAILURES,
        speculation_conf(0.5, 2.0),
    );
    launch_all(&mut h, &[("exec1", "host1"); 2]);
    h.advance(Duration::from_secs(1));
    h.succeed(0); // median 1 s: threshold 2 s
    h.advance(Duration::from_millis(900));
    assert!(!check(&mut h), "task 1 has run 1.9 s");
    h.advance(Duration::from_millis(200));
    assert!(check(&mut h), "task 1 has run 2.1 s");
    assert_eq!(speculatable(&h), vec![1]);
}

/// TSM #41 "[SPARK-24677] Avoid NoSuchElementException from MedianHeap", #50/#51 (a single
/// task is never speculated without a duration threshold), and speculation off.
#[test]
fn speculation_checks_that_find_nothing_to_judge_return_false() {
    let cluster = FakeCluster::with(&[("exec1", "host1")]);
    let mut h = Harness::with(
        cluster,
        no_prefs(10),
        MAX_TASK_FAILURES,
        speculation_conf(0.1, 0.0),
    );
    launch_all(&mut h, &[("exec1", "host1"); 8]);
    h.advance(Duration::from_secs(60));
    assert!(!check(&mut h), "no successes yet");

    let mut single = Harness::with(
        FakeCluster::with(&[("exec1", "host1")]),
        no_prefs(1),
        4,
        speculation_conf(0.0, 0.0),
    );
    single.offer("exec1", "host1", NoPref).expect("the task");
    single.advance(Duration::from_secs(3600));
    assert!(!check(&mut single));

    let mut off = Harness::new(FakeCluster::with(&[("exec1", "host1")]), no_prefs(2));
    launch_all(&mut off, &[("exec1", "host1"); 2]);
    off.advance(MS);
    off.succeed(0);
    off.advance(Duration::from_secs(3600));
    assert!(!check(&mut off));
}
