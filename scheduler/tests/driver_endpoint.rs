//! The driver endpoint over a real loopback env, with fake executors in client-mode envs:
//! registration, launching, free cores, the app config, stopping executors and the periodic
//! revive. Ports of CoarseGrainedSchedulerBackendSuite where they apply (each names the test
//! it ports, with its place in the suite), plus Ember's own checks.
//!
//! Not ported: CGSB #2–#5 (`maxNumConcurrentTasks`: Ember has no such query), #5–#15
//! (custom resources, GPUs, resource profiles), #16 (custom log URLs for a web UI), #17–#18
//! (resources and executor allocation requests from a cluster manager) and #20
//! (decommission).

pub mod util;

use std::time::{Duration, Instant};

use ember_scheduler::{DriverAsk, SchedulerConf, TaskLocation};
use rpc_env::RpcError;
use util::{
    answer, app_config, echoed, job, job_of, outcome, spark_cores, wait_until, Driver, DriverSetup,
    FakeExecutor, Seen, APP_SECRET, DEADLINE,
};

/// Ember's own (Spark's `RegisterExecutor` / `RetrieveSparkAppConfig`): an executor fetches
/// the app config (without the secret), registers, and once launched runs a job to the end.
#[test]
fn an_executor_registers_and_runs_a_job() {
    let d = Driver::start(DriverSetup::default());
    let (executor, registered) = FakeExecutor::register(&d.addr(), "1", "host1", 2);
    assert_eq!(registered, Ok(true));
    let config = answer(
        executor
            .driver
            .ask(|reply| DriverAsk::RetrieveAppConfig { reply }),
    );
    // Every setting but the secret, which executors take from their environment.
    let config = config.expect("the app config");
    assert_eq!(config, app_config().without_secrets());
    assert_eq!(config.properties.len(), app_config().properties.len() - 1);
    assert!(!format!("{config:?}").contains(APP_SECRET));
    assert!(d.is_alive("1"));
    assert!(!d.is_alive("2"));
    executor.auto_finish(true);
    executor.launched();
    wait_until("executor 1 counts", DEADLINE, || {
        d.executor_count() == (1, 2)
    });
    let job = d.submit(job(0, 5));
    assert_eq!(outcome(&job), Ok(echoed(0, 5)));
    let launched = executor.launches();
    assert_eq!(launched.len(), 5);
    assert!(launched.iter().all(|t| t.executor_id.as_str() == "1"));
}

/// Spark's `RegisterExecutor` handling: a second executor with a taken id is refused with
/// `Duplicate executor ID: <id>`; the first one is unaffected.
#[test]
fn a_duplicate_executor_id_is_refused() {
    let d = Driver::start(DriverSetup::default());
    let first = FakeExecutor::start_finishing(&d.addr(), "1", "host1", 1);
    let (_second, registered) = FakeExecutor::register(&d.addr(), "1", "host2", 4);
    assert_eq!(
        registered,
        Err(RpcError::Failure {
            message: "Duplicate executor ID: 1".into()
        })
    );
    wait_until("executor 1 counts", DEADLINE, || {
        d.executor_count() == (1, 1)
    });
    let job = d.submit(job(0, 2));
    assert_eq!(outcome(&job), Ok(echoed(0, 2)));
    assert_eq!(first.launches().len(), 2);
}

/// CGSB #19 "SPARK-41848: executor cores should be decreased based on taskCpus" (first
/// part, and Spark's `LaunchedExecutor`): a registered executor gets no task until it says
/// it has launched; then its free cores are all offered.
#[test]
fn no_tasks_before_launched_executor() {
    let d = Driver::start(DriverSetup::default());
    let (executor, registered) = FakeExecutor::register(&d.addr(), "1", "host1", 2);
    assert_eq!(registered, Ok(true));
    assert_eq!(d.executor_count(), (0, 0), "registered, not launched");
    let job = d.submit(job(0, 2));
    d.send(ember_scheduler::DriverControl::ReviveOffers);
    assert!(d.stop_executors());
    executor.wait_stops(1);
    assert_eq!(
        executor.seen(),
        [Seen::Stop],
        "no task before LaunchedExecutor"
    );
    executor.auto_finish(true);
    executor.launched();
    assert_eq!(outcome(&job), Ok(echoed(0, 2)));
    assert_eq!(d.executor_count(), (1, 2));
}

/// CGSB #19 "SPARK-41848: executor cores should be decreased based on taskCpus": with
/// `ember.task.cpus = 2`, a 3-core executor runs one task at a time; a finished task gives
/// its 2 cores back and the next task launches.
#[test]
fn free_cores_go_down_by_task_cpus_and_come_back() {
    let d = Driver::start(DriverSetup {
        scheduler: SchedulerConf {
            task_cpus: 2,
            ..spark_cores()
        },
        ..DriverSetup::default()
    });
    let executor = FakeExecutor::start(&d.addr(), "1", "host1", 3);
    let job = d.submit(job(0, 3));
    let first = executor.wait_launches(1);
    assert_eq!(first[0].cpus, 2);
    d.send(ember_scheduler::DriverControl::ReviveOffers);
    assert!(d.stop_executors());
    executor.wait_stops(1);
    assert_eq!(executor.launches().len(), 1, "1 free core is not enough");
    for n in 1..=3 {
        let launched = executor.wait_launches(n);
        let task = &launched[n - 1];
        assert_eq!(task.index as usize, n - 1);
        executor.finish(task, &format!("0:{}", n - 1));
    }
    assert_eq!(outcome(&job), Ok(echoed(0, 3)));
    assert_eq!(d.executor_count(), (1, 3));
}

/// Ember's own: tasks go to executors with free cores, each at most its cores at a time.
#[test]
fn tasks_are_spread_by_free_cores() {
    let d = Driver::start(DriverSetup::default());
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let b = FakeExecutor::start(&d.addr(), "b", "hostB", 2);
    wait_until("both executors count", DEADLINE, || {
        d.executor_count() == (2, 3)
    });
    let job = d.submit(job(0, 5));
    wait_until("three tasks launched", DEADLINE, || {
        a.launches().len() + b.launches().len() >= 3
    });
    d.send(ember_scheduler::DriverControl::ReviveOffers);
    assert!(d.stop_executors());
    a.wait_stops(1);
    b.wait_stops(1);
    assert_eq!((a.launches().len(), b.launches().len()), (1, 2));
    // Finishing one of b's tasks frees one core of b's: one more task goes there.
    let on_b = b.launches();
    b.finish(&on_b[0], &format!("0:{}", on_b[0].index));
    let on_b = b.wait_launches(3);
    assert_eq!(a.launches().len(), 1);
    a.auto_finish(true);
    b.auto_finish(true);
    for task in on_b[1..].iter().chain(a.launches().iter()) {
        let executor = if task.executor_id.as_str() == "a" {
            &a
        } else {
            &b
        };
        executor.finish(task, &format!("0:{}", task.index));
    }
    assert_eq!(outcome(&job), Ok(echoed(0, 5)));
}

/// Ember's own (Spark's `StopExecutors`): every registered executor is told to stop, and
/// the ask is answered.
#[test]
fn stop_executors_reaches_every_executor() {
    let d = Driver::start(DriverSetup::default());
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let (b, registered) = FakeExecutor::register(&d.addr(), "b", "hostB", 1);
    assert_eq!(registered, Ok(true));
    assert!(d.stop_executors());
    a.wait_stops(1);
    b.wait_stops(1);
    assert!(d.stop_executors(), "asked again, they are told again");
    a.wait_stops(2);
    b.wait_stops(2);
}

/// Ember's own (Spark's `reviveThread`, `spark.scheduler.revive.interval`): offers are
/// made again on a timer, so a task held back by delay scheduling launches once its wait
/// is over although nothing else happens.
#[test]
fn the_periodic_revive_launches_delayed_tasks() {
    let wait = Duration::from_millis(300);
    let d = Driver::start(DriverSetup {
        scheduler: SchedulerConf {
            revive_interval: Duration::from_millis(20),
            locality_wait_process: wait,
            locality_wait_node: wait,
            locality_wait_rack: wait,
            ..spark_cores()
        },
        ..DriverSetup::default()
    });
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let b = FakeExecutor::start(&d.addr(), "b", "hostB", 1);
    wait_until("both executors count", DEADLINE, || {
        d.executor_count() == (2, 2)
    });
    let prefs = |_| vec![TaskLocation::Host("hostA".into())];
    let inputs = vec!["0:0".into(), "0:1".into()];
    let submitted = Instant::now();
    let job = d.submit(job_of(0, inputs, prefs));
    let on_a = a.wait_launches(1);
    let on_b = b.wait_launches(1);
    assert!(
        submitted.elapsed() >= wait,
        "b got its task only after the locality wait"
    );
    assert_eq!((on_a[0].index, on_b[0].index), (0, 1));
    a.finish(&on_a[0], "0:0");
    b.finish(&on_b[0], "0:1");
    assert_eq!(outcome(&job), Ok(echoed(0, 2)));
}

/// Ember's own: a job submitted before any executor exists waits for one.
#[test]
fn a_job_waits_for_its_first_executor() {
    let d = Driver::start(DriverSetup::default());
    let job = d.submit(job(0, 3));
    assert!(job.wait(Some(Instant::now())).is_none());
    let _executor = FakeExecutor::start_finishing(&d.addr(), "1", "host1", 2);
    assert_eq!(outcome(&job), Ok(echoed(0, 3)));
}

/// Ember's own (Spark's speculation thread, `spark.speculation.interval`): the driver checks
/// for slow tasks on its own timer, runs a copy of a straggler on another host, takes the
/// first result and kills the other attempt with "another attempt succeeded".
#[test]
fn a_straggler_gets_a_speculative_copy() {
    let d = Driver::start(DriverSetup {
        scheduler: SchedulerConf {
            speculation: true,
            speculation_interval: Duration::from_millis(10),
            speculation_quantile: 0.5,
            speculation_multiplier: 1.0,
            speculation_min_task_runtime: Duration::from_millis(50),
            ..spark_cores()
        },
        ..DriverSetup::default()
    });
    let slow = FakeExecutor::start(&d.addr(), "slow", "hostA", 1);
    let fast = FakeExecutor::start_finishing(&d.addr(), "fast", "hostB", 3);
    wait_until("both executors count", DEADLINE, || {
        d.executor_count() == (2, 4)
    });
    let job = d.submit(job(0, 4));
    let straggler = slow.wait_launches(1).remove(0);
    assert_eq!(outcome(&job), Ok(echoed(0, 4)));
    let on_fast = fast.launches();
    assert_eq!(on_fast.len(), 4, "three tasks and one copy");
    let copy = on_fast.last().expect("the copy");
    assert_eq!((copy.index, copy.attempt_number), (straggler.index, 1));
    wait_until("the straggler is killed", DEADLINE, || {
        !slow.kills().is_empty()
    });
    assert_eq!(
        slow.kills(),
        [(straggler.task_id, "another attempt succeeded".to_string())]
    );
}

/// Ember's own (`ember.scheduler.launchAhead`, `ember.scheduler.launchAheadTime`): once
/// tasks are known to be short, an executor is given more tasks than cores, queued, up to
/// `launchAhead` per core; tasks known to be long are still launched one per core.
#[test]
fn short_tasks_are_launched_ahead_long_ones_are_not() {
    for (run_micros, expected) in [(10, 1 + 5), (10_000, 1 + 1)] {
        let d = Driver::start(DriverSetup {
            scheduler: SchedulerConf {
                launch_ahead: 4,
                launch_ahead_time: Duration::from_millis(1),
                ..SchedulerConf::default()
            },
            ..DriverSetup::default()
        });
        let executor = FakeExecutor::start(&d.addr(), "1", "host1", 1);
        let job = d.submit(job(0, 40));
        let first = executor.wait_launches(1).remove(0);
        d.send(ember_scheduler::DriverControl::ReviveOffers);
        assert!(d.stop_executors());
        executor.wait_stops(1);
        assert_eq!(
            executor.launches().len(),
            1,
            "task times unknown: one per core"
        );
        let result = ember_scheduler::TaskStatus::Finished {
            result: first.input.clone(),
        };
        executor.report_timed(&first, result, run_micros);
        let launched = executor.wait_launches(expected);
        d.send(ember_scheduler::DriverControl::ReviveOffers);
        assert!(d.stop_executors());
        executor.wait_stops(2);
        assert_eq!(
            executor.launches().len(),
            expected,
            "tasks of {run_micros} µs: {launched:?}"
        );
        d.send(ember_scheduler::DriverControl::CancelJob {
            job_id: ember_scheduler::JobId(0),
            reason: "done".into(),
        });
        assert!(util::outcome(&job).is_err());
    }
}

/// Ember's own (issue 15): a full offer round over more executors than a launch batch
/// searches linearly (8) sends each executor its own tasks, and only those.
#[test]
fn a_round_over_many_executors_sends_each_its_own_tasks() {
    let d = Driver::start(DriverSetup::default());
    let executors: Vec<FakeExecutor> = (0..12)
        .map(|i| FakeExecutor::start(&d.addr(), &i.to_string(), &format!("host{i}"), 2))
        .collect();
    wait_until("all executors count", DEADLINE, || {
        d.executor_count() == (12, 24)
    });
    let job = d.submit(job(0, 24));
    wait_until("every core has a task", DEADLINE, || {
        executors.iter().map(|e| e.launches().len()).sum::<usize>() >= 24
    });
    for (i, executor) in executors.iter().enumerate() {
        let launched = executor.launches();
        assert_eq!(launched.len(), 2, "executor {i}: {launched:?}");
        assert!(launched
            .iter()
            .all(|t| t.executor_id.as_str() == i.to_string()));
        executor.auto_finish(true);
        for task in &launched {
            executor.finish(task, &format!("0:{}", task.index));
        }
    }
    assert_eq!(outcome(&job), Ok(echoed(0, 24)));
}
