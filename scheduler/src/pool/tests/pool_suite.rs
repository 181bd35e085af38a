//! Spark's PoolSuite, ported: FIFO and FAIR ordering, nested pools, allocation files, and
//! which pool a job goes to.

use super::*;

/// PoolSuite: "FIFO Scheduler Test".
#[test]
fn fifo_scheduler_test() {
    let mut pools = Pools::fifo();
    let mut view = FakeView::default();
    for stage in 0..3 {
        let key = view.add(stage, 2);
        pools.add_task_set(key, None);
    }
    for expected in [0, 0, 1, 1, 2, 2] {
        schedule_task_and_verify_id(&pools, &mut view, expected);
    }
}

/// PoolSuite: "Fair Scheduler Test". Pools 1 (minShare 2) and 2 (minShare 3) take turns by
/// how far each is below its minimum share, then by running tasks, then by name.
#[test]
fn fair_scheduler_test() {
    let mut pools = Pools::fair(Some(FAIRSCHEDULER_XML)).expect("parses");
    verify_pool(&pools, "default", 0, 1, SchedulingMode::Fifo);
    verify_pool(&pools, "1", 2, 1, SchedulingMode::Fifo);
    verify_pool(&pools, "2", 3, 1, SchedulingMode::Fifo);
    verify_pool(&pools, "3", 0, 1, SchedulingMode::Fifo);

    let mut view = FakeView::default();
    for (stage, tasks) in [(0, 1), (1, 1), (2, 2)] {
        pools.add_task_set(view.add(stage, tasks), Some("1"));
    }
    for stage in [3, 4] {
        pools.add_task_set(view.add(stage, 2), Some("2"));
    }
    // Both at ratio 0: "1" by name. Then 1/2 vs 0, 1/2 vs 1/3, 1/2 vs 2/3, 1 vs 2/3; then
    // neither needy: 2 vs 3 running, 3 vs 3 (name), 4 vs 3.
    for expected in [0, 3, 3, 1, 4, 2, 2, 4] {
        schedule_task_and_verify_id(&pools, &mut view, expected);
    }
}

/// PoolSuite: "Nested Pool Test". Nested pools come only from code (the file makes one level),
/// so this builds the tree with the private helpers.
#[test]
fn nested_pool_test() {
    let mut pools = Pools::with_root(SchedulingMode::Fair);
    let fair = SchedulingMode::Fair;
    let pool0 = pools.add_pool(ROOT, PoolInfo::new("0", fair, 3, 1));
    let pool1 = pools.add_pool(ROOT, PoolInfo::new("1", fair, 4, 1));
    let pool00 = pools.add_pool(pool0, PoolInfo::new("00", fair, 2, 2));
    let pool01 = pools.add_pool(pool0, PoolInfo::new("01", fair, 1, 1));
    let pool10 = pools.add_pool(pool1, PoolInfo::new("10", fair, 2, 2));
    let pool11 = pools.add_pool(pool1, PoolInfo::new("11", fair, 2, 1));

    let mut view = FakeView::default();
    for (leaf, stages) in [
        (pool00, [0, 1]),
        (pool01, [2, 3]),
        (pool10, [4, 5]),
        (pool11, [6, 7]),
    ] {
        for stage in stages {
            let key = view.add(stage, 5);
            pools.add_task_set_to(leaf, key);
        }
    }
    for expected in [0, 4, 6, 2] {
        schedule_task_and_verify_id(&pools, &mut view, expected);
    }
}

/// PoolSuite: "SPARK-17663: FairSchedulableBuilder sets default values for blank or invalid
/// datas", with Spark's `fairscheduler-with-invalid-data.xml` (both its versions: one pool
/// with every value surrounded by spaces, and one per value).
#[test]
fn spark_17663_blank_or_invalid_values_get_defaults() {
    let xml = r#"<?xml version="1.0"?>
<allocations>
    <pool name="pool_with_invalid_min_share">
        <minShare>INVALID_MIN_SHARE</minShare><weight>2</weight>
        <schedulingMode>FAIR</schedulingMode>
    </pool>
    <pool name="pool_with_invalid_weight">
        <minShare>1</minShare><weight>INVALID_WEIGHT</weight>
        <schedulingMode>FAIR</schedulingMode>
    </pool>
    <pool name="pool_with_invalid_scheduling_mode">
        <minShare>3</minShare><weight>2</weight>
        <schedulingMode>INVALID_SCHEDULING_MODE</schedulingMode>
    </pool>
    <pool name="pool_with_non_uppercase_scheduling_mode">
        <minShare>2</minShare><weight>1</weight>
        <schedulingMode>fair</schedulingMode>
    </pool>
    <pool name="pool_with_NONE_scheduling_mode">
        <minShare>1</minShare><weight>2</weight>
        <schedulingMode>NONE</schedulingMode>
    </pool>
    <pool name="pool_with_whitespace_min_share">
        <minShare>  </minShare><weight>2</weight>
        <schedulingMode>FAIR</schedulingMode>
    </pool>
    <pool name="pool_with_whitespace_weight">
        <minShare>1</minShare><weight>  </weight>
        <schedulingMode>FAIR</schedulingMode>
    </pool>
    <pool name="pool_with_whitespace_scheduling_mode">
        <minShare>3</minShare><weight>2</weight>
        <schedulingMode>  </schedulingMode>
    </pool>
    <pool name="pool_with_empty_min_share">
        <minShare></minShare><weight>3</weight>
        <schedulingMode>FAIR</schedulingMode>
    </pool>
    <pool name="pool_with_empty_weight">
        <minShare>2</minShare><weight></weight>
        <schedulingMode>FAIR</schedulingMode>
    </pool>
    <pool name="pool_with_empty_scheduling_mode">
        <minShare>2</minShare><weight>2</weight>
        <schedulingMode></schedulingMode>
    </pool>
    <pool name="pool_with_surrounded_whitespace">
        <minShare> 3 </minShare><weight> 2 </weight>
        <schedulingMode> FAIR </schedulingMode>
    </pool>
    <pool name="pool_with_min_share_surrounded_whitespace">
        <minShare> 3 </minShare><weight>2</weight>
        <schedulingMode>FAIR</schedulingMode>
    </pool>
    <pool name="pool_with_weight_surrounded_whitespace">
        <minShare>1</minShare><weight> 2 </weight>
        <schedulingMode>FAIR</schedulingMode>
    </pool>
    <pool name="pool_with_scheduling_mode_surrounded_whitespace">
        <minShare>3</minShare><weight>2</weight>
        <schedulingMode> FAIR </schedulingMode>
    </pool>
    <pool name="pool_with_missing_values"/>
</allocations>
"#;
    let pools = Pools::fair(Some(xml)).expect("bad values are not errors");
    use SchedulingMode::{Fair, Fifo};
    for (name, min_share, weight, mode) in [
        ("default", 0, 1, Fifo),
        ("pool_with_invalid_min_share", 0, 2, Fair),
        ("pool_with_invalid_weight", 1, 1, Fair),
        ("pool_with_invalid_scheduling_mode", 3, 2, Fifo),
        ("pool_with_non_uppercase_scheduling_mode", 2, 1, Fair),
        ("pool_with_NONE_scheduling_mode", 1, 2, Fifo),
        ("pool_with_whitespace_min_share", 0, 2, Fair),
        ("pool_with_whitespace_weight", 1, 1, Fair),
        ("pool_with_whitespace_scheduling_mode", 3, 2, Fifo),
        ("pool_with_empty_min_share", 0, 3, Fair),
        ("pool_with_empty_weight", 2, 1, Fair),
        ("pool_with_empty_scheduling_mode", 2, 2, Fifo),
        ("pool_with_surrounded_whitespace", 3, 2, Fair),
        ("pool_with_min_share_surrounded_whitespace", 3, 2, Fair),
        ("pool_with_weight_surrounded_whitespace", 1, 2, Fair),
        (
            "pool_with_scheduling_mode_surrounded_whitespace",
            3,
            2,
            Fair,
        ),
        ("pool_with_missing_values", 0, 1, Fifo),
    ] {
        verify_pool(&pools, name, min_share, weight, mode);
    }
    assert_eq!(pools.pool_names().len(), 17);
    assert_eq!(
        pools.pool_names().last().map(String::as_str),
        Some("default"),
        "default is added after the file's pools"
    );
}

/// PoolSuite: "FIFO scheduler uses root pool and not spark.scheduler.pool property".
#[test]
fn fifo_scheduler_uses_root_pool_and_not_the_pool_property() {
    let mut pools = Pools::fifo();
    let mut view = FakeView::default();
    let first = view.add(0, 1);
    let second = view.add(1, 1);
    pools.add_task_set(first, Some("testPool"));
    pools.add_task_set(second, Some("testPool"));

    assert_eq!(pools.mode(), SchedulingMode::Fifo);
    assert_eq!(pools.pool("testPool"), None);
    assert!(pools.pool_names().is_empty());
    assert_eq!(task_sets_at(&pools, ROOT), vec![first, second]);
    assert_eq!(pools.sorted_task_sets(&view), vec![first, second]);
}

/// PoolSuite: "FAIR Scheduler uses default pool when spark.scheduler.pool property is not
/// set".
#[test]
fn fair_scheduler_uses_default_pool_when_the_pool_property_is_not_set() {
    let mut pools = Pools::fair(None).expect("no file is fine");
    assert_eq!(pools.mode(), SchedulingMode::Fair);
    assert_eq!(pools.pool_names(), vec!["default".to_owned()]);
    let mut view = FakeView::default();
    let first = view.add(0, 1);
    pools.add_task_set(first, None);
    assert_eq!(task_sets_in(&pools, "default"), vec![first]);
    let second = view.add(1, 1);
    pools.add_task_set(second, None);
    assert_eq!(task_sets_in(&pools, "default"), vec![first, second]);
    assert_eq!(pools.sorted_task_sets(&view), vec![first, second]);
}

/// PoolSuite: "FAIR Scheduler creates a new pool when spark.scheduler.pool property points to
/// a non-existent pool".
#[test]
fn fair_scheduler_creates_a_pool_for_an_unknown_name() {
    let mut pools = Pools::fair(None).expect("no file is fine");
    assert_eq!(pools.pool("testPool"), None);
    let mut view = FakeView::default();
    let key = view.add(0, 1);
    pools.add_task_set(key, Some("testPool"));
    verify_pool(&pools, "testPool", 0, 1, SchedulingMode::Fifo);
    assert_eq!(task_sets_in(&pools, "testPool"), vec![key]);
    assert!(task_sets_in(&pools, "default").is_empty());
    assert_eq!(pools.pool_names(), vec!["default", "testPool"]);
}

/// PoolSuite: "Pool should throw IllegalArgumentException when schedulingMode is not
/// supported", and TaskSchedulerImplSuite: "TaskScheduler should throw
/// IllegalArgumentException when schedulingMode is not supported" (`NONE`).
#[test]
fn none_and_unknown_scheduling_modes_are_rejected() {
    let none = "Unsupported scheduling mode: NONE. Use FAIR or FIFO instead.";
    for value in ["NONE", "none", "None"] {
        let error = SchedulingMode::parse(value).expect_err("NONE is rejected");
        assert_eq!(error.to_string(), none);
    }
    for value in ["bogus", " FAIR", ""] {
        let error = SchedulingMode::parse(value).expect_err("not a mode");
        assert_eq!(
            error.to_string(),
            format!("Unrecognized scheduling mode: {value:?}. Use FAIR or FIFO instead.")
        );
    }
    assert_eq!(SchedulingMode::parse("fair"), Ok(SchedulingMode::Fair));
    assert_eq!(SchedulingMode::parse("FIFO"), Ok(SchedulingMode::Fifo));
    assert_eq!(SchedulingMode::parse("Fifo"), Ok(SchedulingMode::Fifo));
    assert_eq!(SchedulingMode::Fair.to_string(), "FAIR");
}

/// PoolSuite: "Fair Scheduler should build fair scheduler when valid
/// spark.scheduler.allocation.file property is set" (`fairscheduler-with-valid-data.xml`).
#[test]
fn fair_scheduler_builds_pools_from_a_valid_file() {
    let xml = r#"<?xml version="1.0"?>
<allocations>
    <pool name="pool1">
        <minShare>3</minShare>
        <weight>1</weight>
        <schedulingMode>FIFO</schedulingMode>
    </pool>
    <pool name="pool2">
        <minShare>4</minShare>
        <weight>2</weight>
        <schedulingMode>FAIR</schedulingMode>
    </pool>
    <pool name="pool3">
        <minShare>2</minShare>
        <weight>3</weight>
        <schedulingMode>FAIR</schedulingMode>
    </pool>
</allocations>
"#;
    let pools = Pools::fair(Some(xml)).expect("parses");
    verify_pool(&pools, "default", 0, 1, SchedulingMode::Fifo);
    verify_pool(&pools, "pool1", 3, 1, SchedulingMode::Fifo);
    verify_pool(&pools, "pool2", 4, 2, SchedulingMode::Fair);
    verify_pool(&pools, "pool3", 2, 3, SchedulingMode::Fair);
    assert_eq!(
        pools.pool_names(),
        vec!["pool1", "pool2", "pool3", "default"]
    );
}
