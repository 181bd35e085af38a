//! Spark's PoolSuite, ported, plus checks of the parts Ember adds (a view instead of task-set
//! managers, an inline sort, XML errors). The fakes and helpers they share are here.

mod cross_check;
mod ember;
mod pool_suite;

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
