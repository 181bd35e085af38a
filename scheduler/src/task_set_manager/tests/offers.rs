//! Offers, locality levels and delay scheduling.

use super::*;
use TaskLocality::{Any, NoPref, NodeLocal, ProcessLocal, RackLocal};

/// TSM #2 "TaskSet with no preferences".
#[test]
fn a_task_without_preferences_launches_at_no_pref_and_its_success_finishes_the_set() {
    let mut h = Harness::new(FakeCluster::with(&[("exec1", "host1")]), no_prefs(1));
    let task = h.offer("exec1", "host1", NoPref).expect("a task");
    assert_eq!(task.index, 0);
    h.advance(Duration::from_millis(1));
    let events = h.succeed(task.task_id.0);
    assert_eq!(
        events,
        vec![
            TaskSetEvent::TaskSucceeded {
                task_id: task.task_id,
                index: 0,
                partition: 100,
                result: Bytes::from_static(b"ok"),
            },
            TaskSetEvent::Finished,
        ]
    );
    assert!(h.tsm.is_zombie());
    assert_eq!(h.tsm.running_tasks(), 0);
}

/// TSM #3 "multiple offers with no preferences".
#[test]
fn each_task_launches_once_and_the_set_finishes_with_the_last_success() {
    let mut h = Harness::new(FakeCluster::with(&[("exec1", "host1")]), no_prefs(3));
    for expected in 0..3 {
        let task = h.offer("exec1", "host1", NoPref).expect("a task");
        assert_eq!((task.index, task.executor_id.as_str()), (expected, "exec1"));
    }
    assert_eq!(h.offer("exec1", "host1", NoPref), None);
    assert!(!h.tsm.is_schedulable(), "everything is running");
    assert_eq!(succeeded(&h.succeed(0)), vec![0]);
    assert_eq!(succeeded(&h.succeed(1)), vec![1]);
    assert!(!h.tsm.is_zombie());
    let events = h.succeed(2);
    assert_eq!(succeeded(&events), vec![2]);
    assert!(finished(&events));
}

/// TSM #36 "SPARK-17894: Verify TaskSetManagers for different stage attempts have unique
/// names".
#[test]
fn names_carry_stage_and_attempt() {
    let cluster = FakeCluster::with(&[("exec1", "host1")]);
    let conf = SchedulerConf::default();
    let now = Instant::now();
    for (stage, attempt, name) in [
        (0, 0, "TaskSet_0.0"),
        (0, 1, "TaskSet_0.1"),
        (1, 1, "TaskSet_1.1"),
    ] {
        let set = task_set_for_stage(vec![vec![]], stage, attempt);
        let tsm = TaskSetManager::new(set, 4, &conf, now, &cluster);
        assert_eq!(tsm.name(), name);
    }
}

/// TSM #45 "TaskSetManager passes task resource along" (cores only: Ember has no custom
/// resources), plus the other fields of the description.
#[test]
fn the_description_carries_cpus_properties_input_and_the_spark_task_name() {
    let mut set = task_set_for_stage(vec![vec![], vec![]], 3, 1);
    set.properties
        .insert("ember.scheduler.pool".into(), "p".into());
    let cluster = FakeCluster::with(&[("exec1", "host1")]);
    let mut h = Harness::with(cluster, set, 4, SchedulerConf::default());
    h.next_tid = 41;
    let now = h.now();
    let offered = h.tsm.resource_offer(
        &ExecutorId::new("exec1"),
        "host1",
        NoPref,
        2,
        TaskId(41),
        now,
        &h.cluster,
    );
    let task = offered.task.expect("a task");
    assert_eq!(
        offered.locality,
        Some(ProcessLocal),
        "no-pref tasks count as local"
    );
    assert_eq!(task.name(), "task 0.0 in stage 3.1 (TID 41)");
    assert_eq!(task.cpus, 2);
    assert_eq!(task.partition, 100);
    assert_eq!(task.input, Bytes::from("input 0"));
    assert_eq!(&*task.function, "f");
    assert_eq!(
        task.properties
            .get("ember.scheduler.pool")
            .map(String::as_str),
        Some("p")
    );
    assert_eq!(
        (task.job_id, task.stage_id, task.stage_attempt),
        (JobId(3), StageId(3), 1)
    );
    assert_eq!(
        h.tsm.executor_of(TaskId(41)).map(ExecutorId::as_str),
        Some("exec1")
    );
    assert_eq!(h.tsm.running_task_ids(), vec![TaskId(41)]);
    // A retry carries the number of attempts before it.
    h.fail(41, exception("boom"));
    h.next_tid = 42;
    let retry = h.offer("exec1", "host1", NoPref).expect("the retry");
    assert_eq!((retry.index, retry.attempt_number), (0, 1));
    assert_eq!(retry.name(), "task 0.1 in stage 3.1 (TID 42)");
}

/// TSM #4 "skip unsatisfiable locality levels".
#[test]
fn unsatisfiable_locality_levels_are_skipped() {
    let cluster = FakeCluster::with(&[("execA", "host1"), ("execC", "host2")]);
    let mut h = Harness::new(cluster, task_set(vec![vec![exec_loc("host1", "execB")]]));
    // execB is not alive, so PROCESS_LOCAL is not a level at all: NODE_LOCAL is the first.
    assert_eq!(h.levels(), vec![NodeLocal, Any]);
    let rejected = h.offer_full("execC", "host2", Any);
    assert_eq!(rejected.task, None);
    assert!(rejected.delay_rejected);
    assert_eq!(h.offer_index("execA", "host1", Any), Some(0));
}

/// TSM #5 "basic delay scheduling".
#[test]
fn basic_delay_scheduling() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2")]);
    let set = task_set(vec![
        vec![exec_loc("host1", "exec1")],
        vec![exec_loc("host2", "exec2")],
        vec![host_loc("host1"), exec_loc("host2", "exec2")],
        vec![],
    ]);
    let mut h = Harness::new(cluster, set);
    assert_eq!(h.offer_index("exec1", "host1", Any), Some(0));
    assert_eq!(h.offer_index("exec1", "host1", ProcessLocal), None);
    h.advance(WAIT);
    // The node-local task goes before the no-pref one.
    assert_eq!(h.offer_index("exec1", "host1", NodeLocal), Some(2));
    assert_eq!(h.offer_index("exec2", "host2", NodeLocal), Some(1));
    assert_eq!(h.offer_index("exec2", "host2", NodeLocal), None);
    h.advance(WAIT);
    assert_eq!(h.offer_index("exec2", "host2", NoPref), Some(3));
}

/// TSM #6 "we do not need to delay scheduling when we only have noPref tasks in the queue".
#[test]
fn no_delay_when_only_no_pref_tasks_are_left() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec3", "host2")]);
    let set = task_set(vec![
        vec![exec_loc("host1", "exec1")],
        vec![exec_loc("host2", "exec3")],
        vec![],
    ]);
    let mut h = Harness::new(cluster, set);
    assert_eq!(h.offer_index("exec1", "host1", ProcessLocal), Some(0));
    assert_eq!(h.offer_index("exec3", "host2", ProcessLocal), Some(1));
    assert_eq!(h.offer_index("exec3", "host2", NodeLocal), None);
    assert_eq!(h.offer_index("exec3", "host2", NoPref), Some(2));
}

/// TSM #7 "delay scheduling with fallback" (legacy reset on every launch; the exclusion
/// steps are not ported: Ember has no exclusion on failure).
#[test]
fn delay_scheduling_with_fallback_and_legacy_reset() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2"), ("exec3", "host3")]);
    let set = task_set(
        ["host1", "host2", "host2", "host3", "host2"]
            .iter()
            .map(|h| vec![host_loc(h)])
            .collect(),
    );
    let conf = SchedulerConf {
        legacy_locality_reset: true,
        ..SchedulerConf::default()
    };
    let mut h = Harness::with(cluster, set, MAX_TASK_FAILURES, conf);
    assert_eq!(h.offer_index("exec1", "host1", Any), Some(0));
    assert_eq!(h.offer_index("exec1", "host1", Any), None);
    h.advance(WAIT);
    // The wait expired: host2's tasks run on host1.
    assert_eq!(h.offer_index("exec1", "host1", Any), Some(1));
    assert_eq!(h.offer_index("exec1", "host1", Any), Some(2));
    // A node-local launch resets the level to NODE_LOCAL ...
    assert_eq!(h.offer_index("exec2", "host2", Any), Some(4));
    // ... so host3's task waits again.
    let rejected = h.offer_full("exec2", "host2", Any);
    assert_eq!((rejected.task, rejected.delay_rejected), (None, true));
    h.advance(WAIT);
    assert_eq!(h.offer_index("exec2", "host2", Any), Some(3));
    let nothing_left = h.offer_full("exec2", "host2", Any);
    assert_eq!(
        (nothing_left.task, nothing_left.delay_rejected),
        (None, false)
    );
}

/// TSM #8 "delay scheduling with failed hosts".
#[test]
fn delay_scheduling_with_failed_hosts() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2"), ("exec3", "host3")]);
    let set = task_set(vec![
        vec![host_loc("host1")],
        vec![host_loc("host2")],
        vec![host_loc("host3")],
    ]);
    let mut h = Harness::new(cluster, set);
    assert_eq!(h.offer_index("exec1", "host1", Any), Some(0));
    assert_eq!(h.offer_index("exec1", "host1", Any), None);
    assert!(h.lose_executor("exec2", worker_lost()).is_empty());
    assert_eq!(h.offer_index("exec1", "host1", Any), None);
    h.advance(WAIT * 2);
    assert_eq!(h.offer_index("exec1", "host1", Any), Some(1));
    assert_eq!(h.offer_index("exec1", "host1", Any), Some(2));
    assert_eq!(h.offer_index("exec1", "host1", Any), None);
    assert_eq!(h.offer_index("exec2", "host2", Any), None);
}

/// TSM #12 "new executors get added and lost".
#[test]
fn locality_levels_follow_executors_added_and_lost() {
    let mut cluster = FakeCluster::default();
    cluster.assign_rack("host2", "rack2");
    let set = task_set(vec![
        vec![exec_loc("host1", "execA")],
        vec![exec_loc("host1", "execB")],
        vec![exec_loc("host2", "execC")],
        vec![],
    ]);
    let mut h = Harness::new(cluster, set);
    assert_eq!(h.levels(), vec![NoPref, Any]);
    h.add_executor("execD", "host1");
    assert_eq!(h.levels(), vec![NodeLocal, NoPref, Any]);
    h.add_executor("execC", "host2");
    assert_eq!(
        h.levels(),
        vec![ProcessLocal, NodeLocal, NoPref, RackLocal, Any]
    );
    h.lose_executor("execC", worker_lost());
    assert_eq!(h.levels(), vec![NodeLocal, NoPref, Any]);
    h.lose_executor("execD", worker_lost());
    assert_eq!(h.levels(), vec![NoPref, Any]);
}

/// TSM #14 "SPARK-31837: Shift to the new highest locality level if there is when
/// recomputeLocality".
#[test]
fn a_new_more_local_level_becomes_current_when_executors_arrive() {
    let cluster = FakeCluster::with(&[("execB", "host2"), ("execC", "host3")]);
    let set = task_set(vec![vec![exec_loc("host1", "execA")]; 2]);
    let mut h = Harness::with(cluster, set, 1, SchedulerConf::default());
    assert_eq!(h.levels(), vec![Any]);
    assert_eq!(h.offer_index("execB", "host2", Any), Some(0));
    h.add_executor("execA", "host1");
    assert_eq!(h.levels(), vec![ProcessLocal, NodeLocal, Any]);
    // Without the shift the set would stay at ANY and give task 1 to execC.
    assert_eq!(h.offer_index("execC", "host3", Any), None);
    assert_eq!(h.offer_index("execA", "host1", Any), Some(1));
}

/// TSM #18 "test RACK_LOCAL tasks".
#[test]
fn rack_local_tasks() {
    let mut cluster =
        FakeCluster::with(&[("execA", "host1"), ("execB", "host2"), ("execC", "host3")]);
    cluster.assign_rack("host1", "rack1");
    cluster.assign_rack("host2", "rack1");
    cluster.assign_rack("host3", "rack2");
    let set = task_set(vec![vec![exec_loc("host1", "execA")]; 2]);
    let mut h = Harness::new(cluster, set);
    assert_eq!(h.levels(), vec![ProcessLocal, NodeLocal, RackLocal, Any]);
    h.advance(WAIT * 3);
    assert_eq!(h.offer_index("execC", "host3", RackLocal), None);
    assert_eq!(h.offer_index("execC", "host3", Any), Some(0));
    let offered = h.offer_full("execB", "host2", RackLocal);
    assert_eq!(offered.task.map(|t| t.index), Some(1));
    assert_eq!(offered.locality, Some(RackLocal));
}

/// TSM #26 "speculative and noPref task should be scheduled after node-local".
#[test]
fn speculative_and_no_pref_tasks_come_after_node_local_ones() {
    let cluster = FakeCluster::with(&[("execA", "host1"), ("execB", "host2"), ("execC", "host3")]);
    let set = task_set(vec![
        vec![exec_loc("host1", "execA")],
        vec![host_loc("host2"), host_loc("host1")],
        vec![],
        vec![exec_loc("host3", "execC")],
    ]);
    let mut h = Harness::with(cluster, set, MAX_TASK_FAILURES, speculation_conf(0.75, 1.5));
    assert_eq!(h.offer_index("execA", "host1", ProcessLocal), Some(0));
    assert_eq!(h.offer_index("execA", "host1", NodeLocal), None);
    assert_eq!(h.offer_index("execA", "host1", NoPref), Some(1));
    h.mark_speculatable(1);
    h.advance(WAIT);
    assert_eq!(h.offer_index("execA", "host1", NoPref), Some(2));
    let copy = h
        .offer("execB", "host2", NoPref)
        .expect("the speculative copy");
    assert_eq!((copy.index, copy.attempt_number), (1, 1));
    h.advance(WAIT * 3);
    assert_eq!(h.offer_index("execB", "host2", Any), Some(3));
}

/// TSM #27 "node-local tasks should be scheduled right away when there are only node-local
/// and no-preference tasks".
#[test]
fn node_local_tasks_run_at_once_when_only_node_local_and_no_pref_tasks_exist() {
    let cluster = FakeCluster::with(&[("execA", "host1"), ("execB", "host2"), ("execC", "host3")]);
    let set = task_set(vec![
        vec![host_loc("host1")],
        vec![host_loc("host2")],
        vec![],
        vec![host_loc("host3")],
    ]);
    let mut h = Harness::new(cluster, set);
    assert_eq!(h.offer_index("execA", "host1", NodeLocal), Some(0));
    assert_eq!(h.offer_index("execA", "host2", NodeLocal), Some(1));
    assert_eq!(h.offer_index("execA", "host3", NodeLocal), Some(3));
    assert_eq!(h.offer_index("execA", "host3", NodeLocal), None);
    assert_eq!(h.offer_index("execA", "host3", NoPref), Some(2));
}

/// TSM #28 "SPARK-4939: node-local tasks should be scheduled right after process-local tasks
/// finished".
#[test]
fn node_local_tasks_follow_right_after_the_process_local_ones() {
    let cluster = FakeCluster::with(&[("execA", "host1"), ("execB", "host2")]);
    let set = task_set(vec![
        vec![host_loc("host1")],
        vec![host_loc("host2")],
        vec![exec_loc("host1", "execA")],
        vec![exec_loc("host2", "execB")],
    ]);
    let mut h = Harness::new(cluster, set);
    assert_eq!(h.offer_index("execA", "host1", NodeLocal), Some(2));
    assert_eq!(h.offer_index("execB", "host2", NodeLocal), Some(3));
    assert_eq!(h.offer_index("execA", "host1", NodeLocal), Some(0));
    assert_eq!(h.offer_index("execB", "host2", NodeLocal), Some(1));
    assert_eq!(h.offer_index("execA", "host1", NodeLocal), None);
    assert_eq!(h.offer_index("execB", "host2", NodeLocal), None);
}

/// TSM #29 "SPARK-4939: no-pref tasks should be scheduled after process-local tasks
/// finished".
#[test]
fn no_pref_tasks_follow_right_after_the_process_local_ones() {
    let cluster = FakeCluster::with(&[("execA", "host1"), ("execB", "host2")]);
    let set = task_set(vec![
        vec![],
        vec![exec_loc("host1", "execA")],
        vec![exec_loc("host2", "execB")],
    ]);
    let mut h = Harness::new(cluster, set);
    assert_eq!(h.offer_index("execA", "host1", ProcessLocal), Some(1));
    assert_eq!(h.offer_index("execB", "host2", ProcessLocal), Some(2));
    assert_eq!(h.offer_index("execA", "host1", ProcessLocal), None);
    assert_eq!(h.offer_index("execA", "host1", NodeLocal), None);
    assert_eq!(h.offer_index("execA", "host1", NoPref), Some(0));
    assert_eq!(h.offer_index("execA", "host1", Any), None);
}

/// TSM #30 "Ensure TaskSetManager is usable after addition of levels" (SPARK-2931).
#[test]
fn usable_after_levels_come_and_go() {
    let set = task_set(vec![
        vec![exec_loc("host1", "execA")],
        vec![exec_loc("host2", "execB.1")],
    ]);
    let mut h = Harness::new(FakeCluster::default(), set);
    assert_eq!(h.levels(), vec![Any]);
    h.cluster.add("execA", "host1");
    h.add_executor("execB.2", "host2");
    assert_eq!(h.levels(), vec![ProcessLocal, NodeLocal, Any]);
    assert!(h.offer("execA", "host1", Any).is_some());
    h.advance(WAIT * 4);
    assert!(h.offer("execB.2", "host2", Any).is_some());
    h.lose_executor("execA", worker_lost());
    h.lose_executor("execB.2", worker_lost());
    h.advance(WAIT * 4);
    h.add_executor("execC", "host3");
    assert!(h.offer("execC", "host3", Any).is_some());
}

/// TSM #31 "Test that locations with HDFSCacheTaskLocation are treated as PROCESS_LOCAL."
#[test]
fn hdfs_cached_locations_are_process_local() {
    let cluster = FakeCluster::with(&[("execA", "host1"), ("execB", "host2"), ("execC", "host3")]);
    let set = task_set(vec![
        vec![host_loc("host1")],
        vec![host_loc("host2")],
        vec![TaskLocation::parse("hdfs_cache_host3")],
    ]);
    let mut h = Harness::new(cluster, set);
    assert_eq!(h.levels(), vec![ProcessLocal, NodeLocal, Any]);
    for executor in ["execA", "execB"] {
        h.cluster.remove(executor);
        h.tsm.executor_added(&h.cluster);
        assert_eq!(h.levels(), vec![ProcessLocal, NodeLocal, Any]);
    }
    h.cluster.remove("execC");
    h.tsm.executor_added(&h.cluster);
    assert_eq!(h.levels(), vec![Any]);
    // Any executor of the caching host gets it process-locally, even one that came later.
    h.add_executor("execD", "host3");
    let offered = h.offer_full("execD", "host3", ProcessLocal);
    assert_eq!(offered.task.map(|t| t.index), Some(2));
    assert_eq!(offered.locality, Some(ProcessLocal));
}

/// SPARK-18886: the scheduler's reset moves the set back to the level it launched at and
/// restarts the wait; `delay_rejected` reports offers held back at ANY.
#[test]
fn reset_delay_timer_restarts_the_wait_at_the_given_level() {
    let cluster = FakeCluster::with(&[("exec1", "host1"), ("exec2", "host2")]);
    let set = task_set(vec![vec![host_loc("host1")]; 3]);
    let mut h = Harness::new(cluster, set);
    assert!(h.tsm.no_rejects_since_last_reset());
    assert_eq!(h.offer_index("exec1", "host1", Any), Some(0));
    let held = h.offer_full("exec2", "host2", Any);
    assert!(held.task.is_none() && held.delay_rejected);
    // Only offers that may go to ANY count as rejects.
    assert!(!h.offer_full("exec2", "host2", NodeLocal).delay_rejected);
    h.tsm.set_no_rejects_since_last_reset(false);
    assert!(!h.tsm.no_rejects_since_last_reset());
    h.advance(WAIT);
    assert_eq!(h.offer_index("exec2", "host2", Any), Some(1));
    // The scheduler resets to the most local level launched this round: NODE_LOCAL.
    let now = h.now();
    h.tsm.reset_delay_timer(Some(NodeLocal), now);
    assert!(h.offer_full("exec2", "host2", Any).delay_rejected);
    h.advance(WAIT);
    assert_eq!(h.offer_index("exec2", "host2", Any), Some(2));
}

/// Ember: a large no-preference set launches and completes every task once, in order.
#[test]
fn a_large_set_launches_every_task_once_in_index_order() {
    let n = 20_000;
    let mut h = Harness::new(FakeCluster::with(&[("driver", "localhost")]), no_prefs(n));
    for expected in 0..n as u32 {
        assert_eq!(h.offer_index("driver", "localhost", NoPref), Some(expected));
        let events = h.succeed(u64::from(expected));
        assert_eq!(succeeded(&events), vec![expected]);
    }
    assert!(h.tsm.is_zombie());
    assert_eq!(
        h.offer_full("driver", "localhost", Any),
        Offered::nothing(false)
    );
}

/// The hand-built task name matches `format!` at the edges of the integer ranges.
#[test]
fn task_names_match_the_formatted_ones() {
    for (index, attempt, tid) in [
        (0, 0, 0),
        (9, 10, 99),
        (u32::MAX, 7, u64::MAX),
        (1234, 0, 1 << 40),
    ] {
        assert_eq!(
            crate::task::task_name(index, attempt, crate::StageId(12), 3, TaskId(tid)),
            format!("task {index}.{attempt} in stage 12.3 (TID {tid})")
        );
    }
}
