//! Spark's PoolSuite, ported, plus checks of the parts Ember adds (a view instead of task-set
//! managers, an inline sort, XML errors).

use std::collections::HashMap;

use super::*;

/// A task set as PoolSuite's `FakeTask` task-set managers behave.
#[derive(Debug, Default, Clone)]
struct FakeTaskSet {
    job: u32,
    stage: u32,
    attempt: u32,
    tasks: usize,
    running: usize,
    successful: usize,
    zombie: bool,
}

#[derive(Debug, Default)]
struct FakeView {
    sets: HashMap<TaskSetKey, FakeTaskSet>,
}

impl FakeView {
    /// Spark's `createTaskSetManager(stageId, numTasks)`: priority 0, attempt 0. The key is the
    /// stage id, which is unique in every test that uses this.
    fn add(&mut self, stage: u32, tasks: usize) -> TaskSetKey {
        let key = TaskSetKey(u64::from(stage));
        self.sets.insert(
            key,
            FakeTaskSet {
                stage,
                tasks,
                ..FakeTaskSet::default()
            },
        );
        key
    }

    fn set(&self, key: TaskSetKey) -> &FakeTaskSet {
        self.sets.get(&key).expect("a key the test added")
    }
}

impl TaskSetView for FakeView {
    fn running_tasks(&self, key: TaskSetKey) -> usize {
        self.set(key).running
    }
    fn priority(&self, key: TaskSetKey) -> u32 {
        self.set(key).job
    }
    fn stage_id(&self, key: TaskSetKey) -> u32 {
        self.set(key).stage
    }
    fn name(&self, key: TaskSetKey) -> String {
        let set = self.set(key);
        format!("TaskSet_{}.{}", set.stage, set.attempt)
    }
    fn is_schedulable(&self, key: TaskSetKey) -> bool {
        let set = self.set(key);
        !set.zombie && set.running + set.successful < set.tasks
    }
}

/// PoolSuite's `scheduleTaskAndVerifyId`: the first task set in the sorted queue with a task
/// left gets a running task, and it must be of `expected_stage`.
#[track_caller]
fn schedule_task_and_verify_id(pools: &Pools, view: &mut FakeView, expected_stage: u32) {
    let queue = pools.sorted_task_sets(view);
    let next = queue
        .iter()
        .copied()
        .find(|&key| {
            let set = view.set(key);
            set.running + set.successful < set.tasks
        })
        .expect("a task set with a task to run");
    let set = view.sets.get_mut(&next).expect("in the view");
    set.running += 1;
    assert_eq!(set.stage, expected_stage, "queue was {queue:?}");
}

#[track_caller]
fn verify_pool(pools: &Pools, name: &str, min_share: i32, weight: i32, mode: SchedulingMode) {
    let pool = pools.pool(name).unwrap_or_else(|| panic!("no pool {name}"));
    assert_eq!(
        (pool.min_share, pool.weight, pool.mode),
        (min_share, weight, mode),
        "pool {name}"
    );
}

/// The task sets a pool holds directly, in order.
fn task_sets_in(pools: &Pools, name: &str) -> Vec<TaskSetKey> {
    let index = pools.by_name.get(name).copied().expect("pool exists");
    task_sets_at(pools, index)
}

fn task_sets_at(pools: &Pools, index: usize) -> Vec<TaskSetKey> {
    pools.nodes[index]
        .children
        .iter()
        .filter_map(|c| match c {
            Child::TaskSet(key) => Some(*key),
            Child::Pool(_) => None,
        })
        .collect()
}

/// Spark's test resource `fairscheduler.xml`.
const FAIRSCHEDULER_XML: &str = r#"<?xml version="1.0"?>
<allocations>
<pool name="1">
    <minShare>2</minShare>
    <weight>1</weight>
    <schedulingMode>FIFO</schedulingMode>
</pool>
<pool name="2">
    <minShare>3</minShare>
    <weight>1</weight>
    <schedulingMode>FIFO</schedulingMode>
</pool>
<pool name="3">
</pool>
</allocations>
"#;

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

/// The shipped `conf/fairscheduler.xml.template` parses into the pools it describes.
#[test]
fn the_template_parses() {
    let xml = include_str!("../../../conf/fairscheduler.xml.template");
    let pools = Pools::fair(Some(xml)).expect("the template parses");
    verify_pool(&pools, "production", 2, 1, SchedulingMode::Fair);
    verify_pool(&pools, "test", 3, 2, SchedulingMode::Fifo);
    verify_pool(&pools, "default", 0, 1, SchedulingMode::Fifo);
    assert_eq!(pools.pool_names(), vec!["production", "test", "default"]);
}

/// A file that defines `default` keeps its settings; the built-in one is only a fallback.
#[test]
fn a_file_may_define_the_default_pool() {
    let xml = r#"<allocations><pool name="default"><schedulingMode>fair</schedulingMode>
        <minShare>2</minShare><weight>3</weight></pool></allocations>"#;
    let pools = Pools::fair(Some(xml)).expect("parses");
    verify_pool(&pools, "default", 2, 3, SchedulingMode::Fair);
    assert_eq!(pools.pool_names(), vec!["default"]);
}

/// Spark reads `xml \\ "pool"`: pools nested in other elements, or in each other, all become
/// pools under the root; a later pool of the same name replaces the earlier one's settings.
#[test]
fn every_pool_element_counts_and_the_last_duplicate_wins() {
    let xml = r#"<allocations>
        <group><pool name="a"><weight>2</weight><pool name="b"/></pool></group>
        <pool name="a"><weight>5</weight></pool>
    </allocations>"#;
    let pools = Pools::fair(Some(xml)).expect("parses");
    assert_eq!(pools.pool_names(), vec!["a", "b", "default"]);
    verify_pool(&pools, "a", 0, 5, SchedulingMode::Fifo);
    assert_eq!(
        pools.nodes[ROOT].children.len(),
        3,
        "b sits under the root too"
    );
}

/// Malformed XML is an error that says where, and so is a pool without a name (Spark would
/// make a pool named "").
#[test]
fn bad_files_are_errors_that_say_where() {
    let error = Pools::fair(Some("<allocations>\n  <pool name=\"a\">\n</allocations>"))
        .expect_err("unclosed pool");
    let text = error.to_string();
    assert!(
        text.starts_with("the allocation file is not well-formed XML"),
        "{text}"
    );
    assert!(text.contains("3:"), "names the line: {text}");

    for xml in ["", "not xml", "<allocations>", "<a/><b/>"] {
        let error = Pools::fair(Some(xml)).expect_err("not a document");
        assert!(error.to_string().contains("XML"), "{error}");
    }

    let dtd = r#"<!DOCTYPE allocations [<!ENTITY x "y">]><allocations/>"#;
    assert!(Pools::fair(Some(dtd)).is_err(), "a DTD is refused");

    for xml in [
        "<allocations>\n  <pool>\n  </pool>\n</allocations>",
        "<allocations>\n  <pool name=\" \"/>\n</allocations>",
    ] {
        let error = Pools::fair(Some(xml)).expect_err("unnamed pool");
        assert_eq!(
            error.to_string(),
            "the allocation file has a <pool> without a name at 2:3; give it name=\"...\""
        );
    }
}

/// An allocation file with no pools at all still gets `default`.
#[test]
fn an_empty_allocations_element_gets_the_default_pool() {
    let pools = Pools::fair(Some("<allocations/>")).expect("parses");
    assert_eq!(pools.pool_names(), vec!["default"]);
}

/// Only schedulable task sets are returned (Spark filters `isSchedulable`), but a pool's
/// running count includes its zombies' tasks, as Spark's does.
#[test]
fn zombies_are_skipped_but_their_running_tasks_count_for_their_pool() {
    let mut pools = Pools::fair(None).expect("no file");
    let mut view = FakeView::default();
    let zombie = view.add(0, 10);
    let busy_pool_set = view.add(1, 10);
    let other = view.add(2, 10);
    pools.add_task_set(zombie, Some("a"));
    pools.add_task_set(busy_pool_set, Some("a"));
    pools.add_task_set(other, Some("b"));
    if let Some(set) = view.sets.get_mut(&zombie) {
        set.zombie = true;
        set.running = 5;
    }
    if let Some(set) = view.sets.get_mut(&other) {
        set.running = 1;
    }
    // Pool a runs 5 tasks, b runs 1: b first, and the zombie is not offered anything.
    assert_eq!(pools.sorted_task_sets(&view), vec![other, busy_pool_set]);
}

/// Removing a task set takes it out of its pool; the pool stays, unknown keys are ignored,
/// and adding a key twice moves it.
#[test]
fn remove_and_re_add() {
    let mut pools = Pools::fair(None).expect("no file");
    let mut view = FakeView::default();
    let first = view.add(0, 1);
    let second = view.add(1, 1);
    pools.add_task_set(first, Some("x"));
    pools.add_task_set(second, Some("x"));
    pools.remove_task_set(first);
    pools.remove_task_set(first);
    pools.remove_task_set(TaskSetKey(99));
    assert_eq!(task_sets_in(&pools, "x"), vec![second]);
    assert_eq!(pools.sorted_task_sets(&view), vec![second]);
    assert!(pools.pool("x").is_some());

    pools.add_task_set(second, None);
    assert!(task_sets_in(&pools, "x").is_empty());
    assert_eq!(task_sets_in(&pools, "default"), vec![second]);
    pools.remove_task_set(second);
    assert!(pools.sorted_task_sets(&view).is_empty());
    assert!(pools.homes.is_empty());
}

/// FIFO: lower job first whatever the stage, then lower stage.
#[test]
fn fifo_orders_by_job_then_stage() {
    let mut pools = Pools::fifo();
    let mut view = FakeView::default();
    let mut keys = Vec::new();
    for (key, job, stage) in [(1, 2, 0), (2, 1, 9), (3, 1, 3), (4, 0, 50)] {
        let key = TaskSetKey(key);
        view.sets.insert(
            key,
            FakeTaskSet {
                job,
                stage,
                tasks: 1,
                ..FakeTaskSet::default()
            },
        );
        pools.add_task_set(key, None);
        keys.push(key);
    }
    assert_eq!(
        pools.sorted_task_sets(&view),
        vec![keys[3], keys[2], keys[1], keys[0]]
    );
}

/// In a FAIR pool, task sets with equal shares go by name, as strings: "TaskSet_10.0" before
/// "TaskSet_9.0".
#[test]
fn fair_pool_ties_between_task_sets_go_by_name() {
    let xml = r#"<allocations><pool name="p"><schedulingMode>FAIR</schedulingMode></pool>
        </allocations>"#;
    let mut pools = Pools::fair(Some(xml)).expect("parses");
    let mut view = FakeView::default();
    let nine = view.add(9, 4);
    let ten = view.add(10, 4);
    pools.add_task_set(nine, Some("p"));
    pools.add_task_set(ten, Some("p"));
    assert_eq!(pools.sorted_task_sets(&view), vec![ten, nine]);
    if let Some(set) = view.sets.get_mut(&ten) {
        set.running = 1;
    }
    assert_eq!(pools.sorted_task_sets(&view), vec![nine, ten]);
}

/// Weights of 0 and below are accepted as Spark accepts them, and order the way Java's
/// `Double.compare` orders the resulting infinities and NaNs, without panicking.
#[test]
fn zero_and_negative_weights_order_like_spark() {
    let xml = r#"<allocations>
        <pool name="nan"><weight>0</weight></pool>
        <pool name="inf"><weight>0</weight></pool>
        <pool name="three"><weight>1</weight></pool>
        <pool name="negative"><weight>-1</weight><minShare>-4</minShare></pool>
    </allocations>"#;
    let mut pools = Pools::fair(Some(xml)).expect("parses");
    verify_pool(&pools, "negative", -4, -1, SchedulingMode::Fifo);
    let mut view = FakeView::default();
    let mut add = |stage, pool, running| {
        let key = view.add(stage, 10);
        if let Some(set) = view.sets.get_mut(&key) {
            set.running = running;
        }
        pools.add_task_set(key, Some(pool));
        key
    };
    let nan = add(0, "nan", 0); // 0 / 0
    let inf = add(1, "inf", 2); // 2 / 0
    let three = add(2, "three", 3); // 3 / 1
    let negative = add(3, "negative", 1); // 1 / -1
    assert_eq!(
        pools.sorted_task_sets(&view),
        vec![negative, three, inf, nan]
    );
}

/// A tiny deterministic generator, so the cross-check below needs no extra crate.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Spark's algorithm as written: `sortWith(lessThan)` over every child (a stable sort), then
/// recurse, keeping schedulable task sets.
fn spark_sorted(pools: &Pools, pool: usize, view: &FakeView) -> Vec<TaskSetKey> {
    struct S {
        child: Child,
        min_share: i32,
        weight: i32,
        running: i64,
        priority: i64,
        stage: i64,
        name: String,
    }
    fn running(pools: &Pools, pool: usize, view: &FakeView) -> i64 {
        pools.nodes[pool]
            .children
            .iter()
            .map(|c| match *c {
                Child::TaskSet(k) => view.set(k).running as i64,
                Child::Pool(p) => running(pools, p, view),
            })
            .sum()
    }
    // Java's Double.compare, from its source.
    fn java_double_compare(a: f64, b: f64) -> i32 {
        if a < b {
            return -1;
        }
        if a > b {
            return 1;
        }
        let bits = |d: f64| {
            if d.is_nan() {
                0x7ff8_0000_0000_0000_i64
            } else {
                d.to_bits() as i64
            }
        };
        bits(a).cmp(&bits(b)) as i32
    }
    let node = &pools.nodes[pool];
    let mut children: Vec<S> = node
        .children
        .iter()
        .map(|&child| match child {
            Child::TaskSet(k) => S {
                child,
                min_share: 0,
                weight: 1,
                running: view.set(k).running as i64,
                priority: i64::from(view.priority(k)),
                stage: i64::from(view.stage_id(k)),
                name: view.name(k),
            },
            Child::Pool(p) => S {
                child,
                min_share: pools.nodes[p].info.min_share,
                weight: pools.nodes[p].info.weight,
                running: running(pools, p, view),
                priority: 0,
                stage: -1,
                name: pools.nodes[p].info.name.clone(),
            },
        })
        .collect();
    let fifo_lt = |a: &S, b: &S| (a.priority, a.stage) < (b.priority, b.stage);
    let fair_lt = |s1: &S, s2: &S| {
        let needy1 = s1.running < i64::from(s1.min_share);
        let needy2 = s2.running < i64::from(s2.min_share);
        let msr1 = s1.running as f64 / f64::from(s1.min_share).max(1.0);
        let msr2 = s2.running as f64 / f64::from(s2.min_share).max(1.0);
        let twr1 = s1.running as f64 / f64::from(s1.weight);
        let twr2 = s2.running as f64 / f64::from(s2.weight);
        if needy1 && !needy2 {
            return true;
        } else if !needy1 && needy2 {
            return false;
        }
        let compare = if needy1 && needy2 {
            java_double_compare(msr1, msr2)
        } else {
            java_double_compare(twr1, twr2)
        };
        if compare != 0 {
            compare < 0
        } else {
            s1.name < s2.name
        }
    };
    let mode = node.info.mode;
    children.sort_by(|a, b| {
        let lt = |x: &S, y: &S| match mode {
            SchedulingMode::Fifo => fifo_lt(x, y),
            SchedulingMode::Fair => fair_lt(x, y),
        };
        if lt(a, b) {
            std::cmp::Ordering::Less
        } else if lt(b, a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    let mut out = Vec::new();
    for s in children {
        match s.child {
            Child::TaskSet(k) if view.is_schedulable(k) => out.push(k),
            Child::TaskSet(_) => {}
            Child::Pool(p) => out.extend(spark_sorted(pools, p, view)),
        }
    }
    out
}

/// The inline and heap sorts, key caching and filtering give exactly the order of Spark's
/// algorithm on random trees, including pools with more children than fit inline.
#[test]
fn matches_sparks_algorithm_on_random_trees() {
    let mut rng = Lcg(7);
    let modes = [SchedulingMode::Fifo, SchedulingMode::Fair];
    for round in 0..400 {
        let mut pools = Pools::with_root(modes[(round % 2) as usize]);
        let mut view = FakeView::default();
        let mut leaves = vec![ROOT];
        if pools.mode == SchedulingMode::Fair {
            leaves.clear();
            for p in 0..1 + rng.below(20) {
                let parent = if p > 2 && rng.below(3) == 0 {
                    leaves[rng.below(leaves.len() as u64) as usize]
                } else {
                    ROOT
                };
                let info = PoolInfo::new(
                    &format!("p{}", rng.below(30) + 100 * p),
                    modes[rng.below(2) as usize],
                    rng.below(6) as i32 - 1,
                    rng.below(4) as i32 - 1,
                );
                leaves.push(pools.add_pool(parent, info));
            }
        }
        let most = if rng.below(4) == 0 { 60 } else { 8 };
        let sets = rng.below(most);
        for key in 0..sets {
            let key = TaskSetKey(key);
            let set = FakeTaskSet {
                job: rng.below(4) as u32,
                stage: rng.below(12) as u32,
                attempt: rng.below(2) as u32,
                tasks: 1 + rng.below(6) as usize,
                running: rng.below(4) as usize,
                successful: 0,
                zombie: rng.below(5) == 0,
            };
            view.sets.insert(key, set);
            let leaf = leaves[rng.below(leaves.len() as u64) as usize];
            pools.add_task_set_to(leaf, key);
        }
        assert_eq!(
            pools.sorted_task_sets(&view),
            spark_sorted(&pools, ROOT, &view),
            "round {round}: {pools:?} {view:?}"
        );
    }
}
