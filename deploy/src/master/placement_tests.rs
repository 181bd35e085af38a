//! Placement tables from Spark's MasterSuite (1-21) and WorkerSelectionSuite, number for
//! number. MasterSuite's fixture: three workers of 10 cores and 512 MiB, passed to
//! `scheduleExecutorsOnWorkers` in that order.

use std::collections::BTreeSet;

use super::*;

const UNLIMITED: usize = usize::MAX;

fn worker(id: &str, cores: u32, memory_mib: u32) -> WorkerView {
    WorkerView {
        id: WorkerId(id.to_string()),
        cores_free: cores,
        memory_free_mib: memory_mib,
        idle: true,
    }
}

fn three_workers() -> Vec<WorkerView> {
    vec![
        worker("worker-1", 10, 512),
        worker("worker-2", 10, 512),
        worker("worker-3", 10, 512),
    ]
}

/// Spark's `makeAppInfo(memoryPerExecutorMb, coresPerExecutor, maxCores)`.
fn app(memory_mib: u32, cores_per_executor: Option<u32>, max_cores: Option<u32>) -> AppDemand {
    AppDemand {
        id: AppId("app-1".into()),
        cores_left: max_cores.unwrap_or(u32::MAX),
        cores_per_executor,
        memory_per_executor_mib: memory_mib,
        executors: 0,
        executor_limit: UNLIMITED,
    }
}

fn with_limit(mut app: AppDemand, limit: usize) -> AppDemand {
    app.executor_limit = limit;
    app
}

#[track_caller]
fn check(app: &AppDemand, spread: &[u32], pack: &[u32]) {
    let workers = three_workers();
    assert_eq!(
        schedule_executors_on_workers(app, &workers, true),
        spread,
        "spread out"
    );
    assert_eq!(
        schedule_executors_on_workers(app, &workers, false),
        pack,
        "packed"
    );
}

// MasterSuite 1-2.
#[test]
fn basic_scheduling() {
    check(&app(128, None, None), &[10, 10, 10], &[10, 10, 10]);
}

// MasterSuite 3-4.
#[test]
fn basic_scheduling_with_more_memory() {
    check(&app(384, None, None), &[10, 10, 10], &[10, 10, 10]);
}

// MasterSuite 5-6.
#[test]
fn scheduling_with_max_cores() {
    check(&app(128, None, Some(8)), &[3, 3, 2], &[8, 0, 0]);
    check(&app(128, None, Some(16)), &[6, 5, 5], &[10, 6, 0]);
}

// MasterSuite 7-8: memory caps cpe 2 / 128 MiB at four executors per worker.
#[test]
fn scheduling_with_cores_per_executor() {
    check(&app(128, Some(2), None), &[8, 8, 8], &[8, 8, 8]);
    check(&app(32, Some(2), None), &[10, 10, 10], &[10, 10, 10]);
    check(&app(32, Some(3), None), &[9, 9, 9], &[9, 9, 9]);
}

// MasterSuite 9-10.
#[test]
fn scheduling_with_cores_per_executor_and_max_cores() {
    check(&app(32, Some(2), Some(4)), &[2, 2, 0], &[4, 0, 0]);
    check(&app(32, Some(2), Some(20)), &[8, 6, 6], &[10, 10, 0]);
    check(&app(32, Some(3), Some(20)), &[6, 6, 6], &[9, 9, 0]);
}

// MasterSuite 11-12.
#[test]
fn scheduling_with_executor_limit() {
    let base = app(32, None, None);
    check(&with_limit(base.clone(), 0), &[0, 0, 0], &[0, 0, 0]);
    check(&with_limit(base.clone(), 2), &[10, 10, 0], &[10, 10, 0]);
    check(&with_limit(base, 5), &[10, 10, 10], &[10, 10, 10]);
}

// MasterSuite 13-14.
#[test]
fn scheduling_with_executor_limit_and_max_cores() {
    let base = app(32, None, Some(16));
    check(&with_limit(base.clone(), 0), &[0, 0, 0], &[0, 0, 0]);
    check(&with_limit(base.clone(), 2), &[8, 8, 0], &[10, 6, 0]);
    check(&with_limit(base, 5), &[6, 5, 5], &[10, 6, 0]);
}

// MasterSuite 15-16.
#[test]
fn scheduling_with_executor_limit_and_cores_per_executor() {
    let base = app(32, Some(4), None);
    check(&with_limit(base.clone(), 0), &[0, 0, 0], &[0, 0, 0]);
    check(&with_limit(base.clone(), 2), &[4, 4, 0], &[8, 0, 0]);
    check(&with_limit(base, 5), &[8, 8, 4], &[8, 8, 4]);
}

// MasterSuite 17-18.
#[test]
fn scheduling_with_executor_limit_cores_per_executor_and_max_cores() {
    let base = app(32, Some(4), Some(18));
    check(&with_limit(base.clone(), 0), &[0, 0, 0], &[0, 0, 0]);
    check(&with_limit(base.clone(), 2), &[4, 4, 0], &[8, 0, 0]);
    check(&with_limit(base, 5), &[8, 4, 4], &[8, 8, 0]);
}

// The limit counts the executors the app already has.
#[test]
fn existing_executors_count_towards_the_limit() {
    let mut demand = with_limit(app(256, Some(4), None), 5);
    demand.executors = 4;
    check(&demand, &[4, 0, 0], &[4, 0, 0]);
}

// SPARK-8881: whole executors, never single cores, when cores per executor is set.
#[test]
fn cores_per_executor_is_assigned_as_a_block() {
    let workers: Vec<_> = (1..=4)
        .map(|i| worker(&format!("w{i}"), 16, 4096))
        .collect();
    let demand = app(1024, Some(16), Some(48));
    assert_eq!(
        schedule_executors_on_workers(&demand, &workers, true),
        [16, 16, 16, 0]
    );
}

#[test]
fn placement_is_pure() {
    let workers = three_workers();
    let demand = app(128, Some(2), Some(20));
    let first = schedule_executors_on_workers(&demand, &workers, true);
    assert_eq!(
        schedule_executors_on_workers(&demand, &workers, true),
        first
    );
    assert_eq!(workers, three_workers(), "the input is untouched");
}

#[test]
fn not_enough_cores_or_memory_gives_nothing() {
    let workers = vec![worker("w1", 2, 512), worker("w2", 2, 512)];
    let needs_four = app(128, Some(4), None);
    assert_eq!(
        schedule_executors_on_workers(&needs_four, &workers, true),
        [0, 0]
    );
    let needs_1g = app(1024, None, None);
    assert_eq!(
        schedule_executors_on_workers(&needs_1g, &workers, false),
        [0, 0]
    );
}

fn input(workers: Vec<WorkerView>, apps: Vec<AppDemand>) -> ScheduleInput {
    ScheduleInput {
        workers,
        waiting_drivers: Vec::new(),
        running_drivers: 0,
        max_drivers: UNLIMITED,
        spread_out_drivers: true,
        apps,
        spread_out_apps: true,
        policy: WorkerSelectionPolicy::CoresFreeDesc,
    }
}

fn driver(n: u32) -> DriverDemand {
    DriverDemand {
        id: DriverId(format!("driver-{n}")),
        cores: 1,
        memory_mib: 1,
    }
}

fn drivers_per_worker(plan: &SchedulePlan, workers: &[WorkerView]) -> Vec<usize> {
    workers
        .iter()
        .map(|w| plan.drivers.iter().filter(|d| d.worker == w.id).count())
        .collect()
}

// MasterSuite 19 (SPARK-45174): at most `maxDrivers` run.
#[test]
fn scheduling_with_max_drivers() {
    let mut sched = input(vec![worker("w1", 10, 512)], Vec::new());
    sched.max_drivers = 4;
    assert_eq!(plan_schedule(&sched), SchedulePlan::default());
    sched.waiting_drivers = (0..3).map(driver).collect();
    assert_eq!(plan_schedule(&sched).drivers.len(), 3);
    // Three run now; three more arrive: only one may start.
    sched.running_drivers = 3;
    sched.workers[0].cores_free = 7;
    sched.waiting_drivers = (3..6).map(driver).collect();
    let plan = plan_schedule(&sched);
    assert_eq!(plan.drivers.len(), 1, "2 stay waiting");
}

// MasterSuite 20 (SPARK-46800).
#[test]
fn schedule_to_spread_out_drivers() {
    let mut sched = input(three_workers(), Vec::new());
    sched.waiting_drivers = (0..3).map(driver).collect();
    let plan = plan_schedule(&sched);
    assert_eq!(drivers_per_worker(&plan, &sched.workers), [1, 1, 1]);
}

// MasterSuite 21 (SPARK-46800).
#[test]
fn schedule_not_to_spread_out_drivers() {
    let mut sched = input(three_workers(), Vec::new());
    sched.spread_out_drivers = false;
    sched.waiting_drivers = (0..3).map(driver).collect();
    let plan = plan_schedule(&sched);
    assert_eq!(drivers_per_worker(&plan, &sched.workers), [3, 0, 0]);
}

#[test]
fn drivers_come_first_and_use_up_capacity() {
    let mut sched = input(vec![worker("w1", 4, 2048)], vec![app(512, None, None)]);
    sched.waiting_drivers = vec![DriverDemand {
        id: DriverId("driver-0".into()),
        cores: 3,
        memory_mib: 1024,
    }];
    let plan = plan_schedule(&sched);
    assert_eq!(plan.drivers.len(), 1);
    assert_eq!(plan.executors.len(), 1);
    assert_eq!(plan.executors[0].cores, 1, "the executor gets what is left");
}

#[test]
fn apps_are_served_in_fifo_order() {
    let first = app(128, None, None);
    let mut second = app(128, None, None);
    second.id = AppId("app-2".into());
    let plan = plan_schedule(&input(three_workers(), vec![first, second]));
    assert!(plan.executors.iter().all(|e| e.app.0 == "app-1"));
    assert_eq!(plan.executors.len(), 3);
}

#[test]
fn cores_per_executor_splits_a_worker_into_executors() {
    let plan = plan_schedule(&input(
        vec![worker("w1", 10, 512)],
        vec![app(128, Some(3), None)],
    ));
    let cores: Vec<u32> = plan.executors.iter().map(|e| e.cores).collect();
    assert_eq!(cores, [3, 3, 3]);
}

#[test]
fn warns_when_nothing_could_ever_fit() {
    let mut sched = input(vec![worker("w1", 2, 512)], vec![app(128, Some(4), None)]);
    sched.waiting_drivers = vec![DriverDemand {
        id: DriverId("driver-0".into()),
        cores: 8,
        memory_mib: 1,
    }];
    let plan = plan_schedule(&sched);
    assert!(plan.drivers.is_empty() && plan.executors.is_empty());
    assert_eq!(
        plan.warnings,
        [
            "Driver driver-0 requires more resource than any of Workers could have.",
            "App app-1 requires more resource than any of Workers could have.",
        ]
    );
}

/// WorkerSelectionSuite: workers 10001-10003 with 5, 6, 7 cores and 1280, 5120, 3840 MiB;
/// an app of 2 cores per executor, 4 cores at most, 128 MiB.
fn selected(policy: WorkerSelectionPolicy, spread_out: bool) -> BTreeSet<String> {
    let workers = vec![
        worker("10001", 5, 1280),
        worker("10002", 6, 5120),
        worker("10003", 7, 3840),
    ];
    let mut sched = input(workers, vec![app(128, Some(2), Some(4))]);
    sched.policy = policy;
    sched.spread_out_apps = spread_out;
    let plan = plan_schedule(&sched);
    assert_eq!(plan.executors.len(), 2);
    plan.executors.iter().map(|e| e.worker.0.clone()).collect()
}

// WorkerSelectionSuite 1-10 (SPARK-46881).
#[test]
fn scheduling_with_worker_selection_policy() {
    use WorkerSelectionPolicy::*;
    let cases: [(WorkerSelectionPolicy, &[&str], &[&str]); 5] = [
        (CoresFreeAsc, &["10001", "10002"], &["10001"]),
        (CoresFreeDesc, &["10002", "10003"], &["10003"]),
        (MemoryFreeAsc, &["10001", "10003"], &["10001"]),
        (MemoryFreeDesc, &["10002", "10003"], &["10002"]),
        (WorkerId, &["10001", "10002"], &["10001"]),
    ];
    for (policy, spread, pack) in cases {
        let expect = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            selected(policy, true),
            expect(spread),
            "{policy:?} spread out"
        );
        assert_eq!(selected(policy, false), expect(pack), "{policy:?} packed");
    }
}

#[test]
fn descending_policies_break_ties_towards_the_larger_id() {
    let workers = vec![worker("a", 4, 512), worker("b", 4, 512)];
    let mut positions = vec![0, 1];
    order_by_policy(
        &mut positions,
        &workers,
        WorkerSelectionPolicy::CoresFreeDesc,
    );
    assert_eq!(positions, [1, 0]);
    order_by_policy(
        &mut positions,
        &workers,
        WorkerSelectionPolicy::CoresFreeAsc,
    );
    assert_eq!(positions, [0, 1]);
}
