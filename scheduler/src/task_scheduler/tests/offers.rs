//! Offers: shuffling, cores per task, and the order task sets get offers in (FIFO, FAIR).

use super::*;

/// TSI #2 "Scheduler does not always schedule tasks on the same workers": with shuffled
/// offers, 1000 one-task sets offered two one-core executors land on both.
#[test]
fn shuffled_offers_spread_tasks_over_executors() {
    let sched = TaskScheduler::new(SchedulerConf::default(), MAX_TASK_FAILURES, Pools::fifo());
    let mut h = Harness::from(sched);
    let offers = [("executor0", "host0", 1), ("executor1", "host1", 1)];
    let mut on_executor0 = 0;
    for job in 0..1000 {
        h.submit(task_set(job, 1));
        let tasks = h.offer_all(&offers);
        assert_eq!(tasks.len(), 1, "round {job}");
        if tasks[0].executor_id.as_str() == "executor0" {
            on_executor0 += 1;
        }
        let events = h.finish(tasks[0].task_id, "ok");
        assert!(finished(&events, job), "{events:?}");
    }
    assert!(
        0 < on_executor0 && on_executor0 < 1000,
        "executor0 got {on_executor0} of 1000"
    );
    assert!(!h.sched.has_task_sets());
}

/// Ember's own: `without_shuffling` keeps the offers' order, so the first offer with room
/// always gets the task (what the locality tests rely on).
#[test]
fn unshuffled_offers_are_used_in_the_order_given() {
    let mut h = Harness::new();
    for job in 0..20 {
        h.submit(task_set(job, 1));
        let tasks = h.offer_all(&[("executor0", "host0", 1), ("executor1", "host1", 1)]);
        assert_eq!(executors(&tasks), ["executor0"], "round {job}");
        h.finish(tasks[0].task_id, "ok");
    }
    h.submit(task_set(20, 3));
    let tasks = h.offer_all(&[("executor1", "host1", 2), ("executor0", "host0", 2)]);
    assert_eq!(
        executors(&tasks),
        ["executor1", "executor0", "executor1"],
        "one task per offer per pass, the offers in the order given"
    );
    assert_eq!(indices(&tasks), [0, 1, 2]);
}

/// Ember's own (Spark's `newTaskId`): task ids count from 0 across every task set, and
/// task names follow Spark's `task <index>.<attempt> in stage <stage>.<attempt> (TID <tid>)`.
#[test]
fn task_ids_are_unique_across_task_sets() {
    let mut h = Harness::new();
    h.submit(task_set(0, 2));
    let mut set = task_set(1, 2);
    set.stage_attempt = 3;
    h.submit(set);
    let tasks = h.offer_all(&[("exec1", "host1", 4)]);
    let ids: Vec<u64> = tasks.iter().map(|t| t.task_id.0).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    let names: Vec<String> = tasks.iter().map(|t| t.name()).collect();
    assert_eq!(
        names,
        [
            "task 0.0 in stage 0.0 (TID 0)",
            "task 1.0 in stage 0.0 (TID 1)",
            "task 0.0 in stage 1.3 (TID 2)",
            "task 1.0 in stage 1.3 (TID 3)",
        ]
    );
    h.fail(tasks[3].task_id, exception("once"));
    let retry = h.offer_all(&[("exec1", "host1", 1)]);
    assert_eq!(retry[0].name(), "task 1.1 in stage 1.3 (TID 4)");
}

/// TSI #3 "Scheduler correctly accounts for multiple CPUs per task": with
/// `ember.task.cpus = 2`, offers of fewer cores launch nothing and do not abort.
#[test]
fn tasks_needing_two_cpus_wait_for_an_offer_of_two() {
    let conf = SchedulerConf {
        task_cpus: 2,
        ..SchedulerConf::default()
    };
    let mut h = Harness::with(conf, MAX_TASK_FAILURES);
    h.submit(task_set(0, 1));
    assert!(h
        .offer_all(&[("executor0", "host0", 0), ("executor1", "host1", 0)])
        .is_empty());
    assert!(h
        .offer_all(&[("executor0", "host0", 1), ("executor1", "host1", 1)])
        .is_empty());
    let tasks = h.offer_all(&[("executor0", "host0", 2), ("executor1", "host1", 1)]);
    assert_eq!(executors(&tasks), ["executor0"]);
    assert_eq!(tasks[0].cpus, 2);
    assert!(!h.is_zombie(0), "no abort");
}

/// Ember's own (TSI #3 continued): the cores an offer has left are counted down task by
/// task within one round.
#[test]
fn cores_are_counted_down_within_a_round() {
    let conf = SchedulerConf {
        task_cpus: 2,
        ..SchedulerConf::default()
    };
    let mut h = Harness::with(conf, MAX_TASK_FAILURES);
    h.submit(task_set(0, 5));
    let tasks = h.offer_all(&[("executor0", "host0", 5), ("executor1", "host1", 3)]);
    assert_eq!(executors(&tasks), ["executor0", "executor1", "executor0"]);
    assert!(tasks.iter().all(|t| t.cpus == 2));
    assert_eq!(
        h.sched.cluster().running_on(&ExecutorId::new("executor0")),
        2
    );
    assert_eq!(
        h.sched.cluster().running_on(&ExecutorId::new("executor1")),
        1
    );
    // Two tasks remain; an offer of one free core takes none of them.
    assert!(h.offer(&[("executor1", "host1", 1)], false).is_empty());
    assert_eq!(indices(&h.offer(&[("executor1", "host1", 2)], false)), [3]);
}

/// Ember's own, FIFO (Spark's `FIFOSchedulingAlgorithm` through `resourceOffers`): the job
/// with the lower id gets offers first, whatever order the jobs came in.
#[test]
fn fifo_offers_go_to_the_earliest_job_first() {
    let mut h = Harness::new();
    h.submit(task_set(1, 2));
    h.submit(task_set(0, 2));
    assert_eq!(jobs_of(&h.offer_all(&[("exec0", "host0", 1)])), [0]);
    assert_eq!(jobs_of(&h.offer_all(&[("exec0", "host0", 3)])), [0, 1, 1]);
    assert!(h.offer_all(&[("exec0", "host0", 1)]).is_empty());
}

/// Pools `a` (minShare 0) and `b` (minShare 2), weight 1 each.
const POOLS_XML: &str = r#"<allocations>
  <pool name="a"><schedulingMode>FIFO</schedulingMode><minShare>0</minShare><weight>1</weight></pool>
  <pool name="b"><schedulingMode>FIFO</schedulingMode><minShare>2</minShare><weight>1</weight></pool>
</allocations>"#;

fn in_pool(mut task_set: TaskSet, pool: &str) -> TaskSet {
    task_set
        .properties
        .insert(crate::keys::POOL_PROPERTY.into(), pool.into());
    task_set
}

/// Ember's own, FAIR (Spark's `FairSchedulingAlgorithm` through `resourceOffers`; PoolSuite
/// checks the comparator alone): a pool below its minShare goes first, then the pool
/// running fewer tasks per weight, ties by name; FIFO settings on the same jobs run them in
/// job order instead.
#[test]
fn fair_offers_follow_min_share_then_running_per_weight() {
    let pools = Pools::fair(Some(POOLS_XML)).expect("the pools parse");
    let mut h = Harness::from(
        TaskScheduler::new(SchedulerConf::default(), MAX_TASK_FAILURES, pools).without_shuffling(),
    );
    h.submit(in_pool(task_set(0, 6), "a"));
    h.submit(in_pool(task_set(1, 6), "b"));
    let mut order = Vec::new();
    for _ in 0..6 {
        order.extend(jobs_of(&h.offer(&[("exec0", "host0", 1)], false)));
    }
    // b is needy twice (minShare 2); then a (0 running) < b (2); a (1) < b (2); then
    // a (2) = b (2): the name decides; then b (2) < a (3).
    assert_eq!(order, [1, 1, 0, 0, 0, 1]);

    let mut fifo = Harness::new();
    fifo.submit(in_pool(task_set(1, 6), "b"));
    fifo.submit(in_pool(task_set(0, 6), "a"));
    let mut order = Vec::new();
    for _ in 0..3 {
        order.extend(jobs_of(&fifo.offer(&[("exec0", "host0", 1)], false)));
    }
    assert_eq!(order, [0, 0, 0], "FIFO ignores the pool property");
}

/// Ember's own, FAIR as in Spark: task sets are sorted once per offer round, so the first
/// one takes every core it can use; the next round sorts again.
#[test]
fn fair_sorts_once_per_round() {
    let pools = Pools::fair(Some(POOLS_XML)).expect("the pools parse");
    let mut h = Harness::from(
        TaskScheduler::new(SchedulerConf::default(), MAX_TASK_FAILURES, pools).without_shuffling(),
    );
    h.submit(in_pool(task_set(0, 4), "a"));
    h.submit(in_pool(task_set(1, 1), "b"));
    // b is needy, but has only one task: a takes the rest of the round.
    assert_eq!(
        jobs_of(&h.offer_all(&[("exec0", "host0", 4)])),
        [1, 0, 0, 0]
    );
    // A job naming a pool nobody configured still runs (the pool is made with defaults).
    h.submit(in_pool(task_set(2, 1), "unconfigured"));
    assert_eq!(jobs_of(&h.offer_all(&[("exec0", "host0", 2)])), [2, 0]);
}
