//! Delay scheduling through the scheduler: which offer rounds reset a task set's locality
//! timer (SPARK-18886), locality without delay, new executors and
//! racks.

use super::*;
use crate::TaskLocality;

/// Spark's `setupTaskSchedulerForLocalityTests`: offers are not shuffled; `exec1@host1` is
/// offered first so PROCESS_LOCAL is valid, then stage 1.1 (job 1) is submitted with 8
/// tasks all preferring `(host1, exec1)`. Its level starts at PROCESS_LOCAL; waits are 3 s.
fn locality_harness(conf: SchedulerConf) -> Harness {
    let mut h = Harness::with(conf, MAX_TASK_FAILURES);
    assert!(h.offer_all(&[("exec1", "host1", 1)]).is_empty());
    let mut set = task_set_with(1, 8, |_| vec![exec_loc("host1", "exec1")]);
    set.stage_attempt = 1;
    h.submit(set);
    h
}

fn count(tasks: Vec<TaskDescription>) -> usize {
    tasks.len()
}

/// TSI #4 "SPARK-18886 - partial offers (isAllFreeResources = false) reset timer before any
/// resources have been rejected".
#[test]
fn a_partial_offer_resets_the_timer_before_any_reject() {
    let mut h = locality_harness(SchedulerConf::default());
    h.advance_ms(3000);
    assert_eq!(count(h.offer(&[("exec1", "host1", 1)], false)), 1);
    // Reset to PROCESS_LOCAL: the NODE_LOCAL offer is refused.
    assert_eq!(count(h.offer(&[("exec2", "host1", 1)], false)), 0);
}

/// TSI #5 "SPARK-18886 - delay scheduling timer is reset when it accepts all resources
/// offered when isAllFreeResources = true".
#[test]
fn a_fully_accepted_full_offer_resets_the_timer() {
    let mut h = locality_harness(SchedulerConf::default());
    h.advance_ms(3000);
    assert_eq!(count(h.offer(&[("exec1", "host1", 1)], true)), 1);
    assert_eq!(count(h.offer(&[("exec2", "host1", 1)], false)), 0);
}

/// TSI #6 "SPARK-18886 - task set with no locality requirements should not starve one with
/// them".
#[test]
fn a_set_without_preferences_does_not_starve_one_with_them() {
    let mut h = locality_harness(SchedulerConf::default());
    h.submit(task_set(2, 8));
    let name = |tasks: Vec<TaskDescription>| tasks.first().map(|t| t.name());
    let first = name(h.offer(&[("exec2", "host1", 1)], false)).expect("a task");
    assert!(first.contains("stage 2.0"), "{first}");
    h.advance_ms(2000);
    let second = name(h.offer(&[("exec2", "host1", 1)], false)).expect("a task");
    assert!(second.contains("stage 2.0"), "{second}");
    // A full offer with no cores: nothing launched, nothing rejected, no reset.
    assert_eq!(count(h.offer(&[("exec2", "host1", 0)], true)), 0);
    h.advance_ms(2000);
    // 4 s in: stage 1.1 has moved to NODE_LOCAL and takes the host1 offer.
    let third = name(h.offer(&[("exec2", "host1", 1)], false)).expect("a task");
    assert!(third.contains("stage 1.1"), "{third}");
}

/// TSI #7 "SPARK-18886 - partial resource offers (isAllFreeResources = false) reset time if
/// last full resource offer (isAllResources = true) was accepted as well as any following
/// partial resource offers".
#[test]
fn partial_offers_reset_while_nothing_was_rejected_since_the_last_full_offer() {
    let mut h = locality_harness(SchedulerConf::default());
    // A full offer with no cores: not rejected, nothing launched.
    assert_eq!(count(h.offer(&[("exec1", "host1", 0)], true)), 0);
    h.advance_ms(3000);
    assert_eq!(count(h.offer(&[("exec1", "host1", 1)], false)), 1);
    h.advance_ms(3000);
    assert_eq!(count(h.offer(&[("exec1", "host1", 1)], false)), 1);
    // Still PROCESS_LOCAL: the NODE_LOCAL offer is refused.
    assert_eq!(count(h.offer(&[("exec2", "host1", 1)], false)), 0);
}

/// TSI #8 "SPARK-18886 - partial resource offers (isAllFreeResources = false) do not reset
/// time if any offer was rejected since last full offer".
#[test]
fn partial_offers_do_not_reset_after_a_reject() {
    let mut h = locality_harness(SchedulerConf::default());
    // NODE_LOCAL full offer rejected.
    assert_eq!(count(h.offer(&[("exec2", "host1", 1)], true)), 0);
    h.advance_ms(3000);
    // Accepted, but no reset: the last full offer was rejected.
    assert_eq!(count(h.offer(&[("exec1", "host1", 1)], false)), 1);
    // So NODE_LOCAL is allowed.
    assert_eq!(count(h.offer(&[("exec2", "host1", 1)], false)), 1);
    // A fully accepted full offer resets to PROCESS_LOCAL.
    assert_eq!(count(h.offer(&[("exec1", "host1", 1)], true)), 1);
    // exec2 (NODE_LOCAL) is rejected, exec1 accepted.
    assert_eq!(
        count(h.offer(&[("exec2", "host1", 1), ("exec1", "host1", 1)], false)),
        1
    );
    h.advance_ms(3000);
    // Accepted, no reset (the previous partial offer had a reject) ...
    assert_eq!(count(h.offer(&[("exec1", "host1", 1)], false)), 1);
    // ... so NODE_LOCAL is allowed again.
    assert_eq!(count(h.offer(&[("exec2", "host1", 1)], false)), 1);
}

/// Ember's own: with `ember.locality.wait.legacyResetOnTaskLaunch`, every launch resets the
/// timer, so TSI #8's second offer (NODE_LOCAL, accepted under SPARK-18886) is refused.
#[test]
fn the_legacy_reset_resets_on_every_launch() {
    let conf = SchedulerConf {
        legacy_locality_reset: true,
        ..SchedulerConf::default()
    };
    let mut h = locality_harness(conf);
    assert_eq!(count(h.offer(&[("exec2", "host1", 1)], true)), 0);
    h.advance_ms(3000);
    assert_eq!(count(h.offer(&[("exec1", "host1", 1)], false)), 1);
    assert_eq!(count(h.offer(&[("exec2", "host1", 1)], false)), 0);
    h.advance_ms(3000);
    assert_eq!(count(h.offer(&[("exec2", "host1", 1)], false)), 1);
}

/// No waits at all (`ember.locality.wait = 0`).
fn no_wait() -> SchedulerConf {
    SchedulerConf {
        locality_wait_process: Duration::ZERO,
        locality_wait_node: Duration::ZERO,
        locality_wait_rack: Duration::ZERO,
        ..SchedulerConf::default()
    }
}

/// TSI #47 "Locality should be used for bulk offers even with delay scheduling off".
#[test]
fn locality_is_used_for_bulk_offers_without_delay() {
    let mut h = Harness::with(no_wait(), MAX_TASK_FAILURES);
    for (job, swap) in [(1, false), (2, true)] {
        h.submit(task_set_with(job, 1, |_| vec![exec_loc("host1", "exec1")]));
        let mut offers = vec![("exec1", "host1", 1), ("exec2", "host2", 1)];
        if swap {
            offers.reverse();
        }
        let tasks = h.offer_all(&offers);
        assert_eq!(executors(&tasks), ["exec1"], "swapped: {swap}");
    }
}

/// TSI #48 "With delay scheduling off, tasks can be run at any locality level immediately".
#[test]
fn without_delay_tasks_run_anywhere_at_once() {
    let mut h = Harness::with(no_wait(), MAX_TASK_FAILURES);
    assert!(h.offer_all(&[("exec1", "host1", 1)]).is_empty());
    h.submit(task_set_with(1, 1, |_| vec![exec_loc("host1", "exec1")]));
    let levels = h.tsm(1).expect("submitted").valid_locality_levels();
    assert!(levels.contains(&TaskLocality::NodeLocal), "{levels:?}");
    let tasks = h.offer_all(&[("exec2", "host2", 1)]);
    assert_eq!(executors(&tasks), ["exec2"]);
}

/// TSI #44 "SPARK-16106 locality levels updated if executor added to existing host".
#[test]
fn an_executor_added_to_a_known_host_adds_process_local() {
    use TaskLocality::{Any, NodeLocal, ProcessLocal};
    let mut h = Harness::new();
    h.submit(task_set_with(0, 2, |_| {
        vec![exec_loc("host0", "executor2")]
    }));
    let tasks = h.offer_all(&[("executor0", "host0", 1), ("executor1", "host1", 1)]);
    assert_eq!(executors(&tasks), ["executor0"]);
    assert_eq!(h.tsm(0).unwrap().valid_locality_levels(), [NodeLocal, Any]);
    let view: &dyn crate::ClusterView = h.sched.cluster();
    assert!(view.has_executors_alive_on_host("host0"));
    assert!(view.has_executors_alive_on_host("host1"));
    let tasks = h.offer_all(&[("executor2", "host0", 1)]);
    assert_eq!(executors(&tasks), ["executor2"]);
    assert_eq!(
        h.tsm(0).unwrap().valid_locality_levels(),
        [ProcessLocal, NodeLocal, Any]
    );
    assert_eq!(
        h.sched.cluster().host_of(&ExecutorId::new("executor2")),
        Some("host0")
    );
    // Nothing left to launch.
    assert!(h.offer_all(&[("executor3", "host1", 1)]).is_empty());
    assert_eq!(
        h.sched.cluster().host_of(&ExecutorId::new("executor3")),
        Some("host1")
    );
}

/// Ember's own: racks come from the resolver given to the scheduler. A task preferring a host
/// with no executor waits at RACK_LOCAL, takes a host of its rack at once, and any host after
/// the rack wait.
#[test]
fn rack_local_offers_come_from_the_resolver() {
    let sched = TaskScheduler::new(SchedulerConf::default(), MAX_TASK_FAILURES, Pools::fifo())
        .without_shuffling()
        .with_rack_resolver(|host| match host {
            "host1" | "host2" => Some("rack1".to_string()),
            "host3" => Some("rack2".to_string()),
            _ => None,
        });
    let mut h = Harness::from(sched);
    assert!(h
        .offer_all(&[("exec2", "host2", 1), ("exec3", "host3", 1)])
        .is_empty());
    h.submit(task_set_with(0, 3, |_| {
        vec![TaskLocation::Host("host1".into())]
    }));
    assert_eq!(
        h.tsm(0).unwrap().valid_locality_levels(),
        [TaskLocality::RackLocal, TaskLocality::Any]
    );
    assert!(h.offer(&[("exec3", "host3", 1)], false).is_empty());
    assert_eq!(
        executors(&h.offer(&[("exec2", "host2", 1)], false)),
        ["exec2"]
    );
    assert!(h.offer(&[("exec3", "host3", 1)], false).is_empty());
    h.advance_ms(3000);
    assert_eq!(
        executors(&h.offer(&[("exec3", "host3", 1)], false)),
        ["exec3"]
    );
}
