//! Task sets from submission to removal: results, unknown updates, result-size limits,
//! cancel, abort, zombies and speculation.

use super::*;

/// Ember's own (Spark's `taskSetFinished`): the last result removes the task set; later
/// offers launch nothing.
#[test]
fn a_finished_task_set_is_removed() {
    let mut h = Harness::new();
    h.submit(task_set(0, 2));
    assert!(h.sched.has_task_sets());
    let tasks = h.offer_all(&[("exec1", "host1", 2)]);
    let first = h.finish(tasks[1].task_id, "one");
    let expected_first: [(u32, &[u8]); 1] = [(1, b"one")];
    assert_eq!(successes(&first), expected_first);
    assert!(!finished(&first, 0));
    let last = h.finish(tasks[0].task_id, "zero");
    assert_eq!(
        last,
        vec![
            SchedulerEvent::TaskSucceeded {
                job_id: JobId(0),
                partition: 0,
                result: Bytes::from_static(b"zero"),
            },
            SchedulerEvent::TaskSetFinished { job_id: JobId(0) },
        ]
    );
    assert!(!h.sched.has_task_sets());
    assert_eq!(h.sched.cluster().running_on(&ExecutorId::new("exec1")), 0);
    assert!(h.offer_all(&[("exec1", "host1", 2)]).is_empty());
}

/// Ember's own (Spark's "Ignoring update with state ... because its task set is gone"):
/// updates for unknown or ended attempts are ignored.
#[test]
fn updates_for_unknown_attempts_are_ignored() {
    let mut h = Harness::new();
    assert!(h.finish(TaskId(42), "x").is_empty());
    assert!(h.update(TaskId(42), TaskStatus::Running).is_empty());
    assert_eq!(h.sched.kill_task(TaskId(42)), None);
    h.submit(task_set(0, 2));
    let tasks = h.offer_all(&[("exec1", "host1", 2)]);
    assert_eq!(successes(&h.finish(tasks[0].task_id, "a")).len(), 1);
    // A second report for the same attempt, in any state.
    assert!(h.finish(tasks[0].task_id, "again").is_empty());
    assert!(h.fail(tasks[0].task_id, exception("late")).is_empty());
    assert!(h.update(tasks[0].task_id, TaskStatus::Running).is_empty());
    assert!(h.finish(TaskId(42), "x").is_empty());
    assert_eq!(h.tsm(0).unwrap().running_tasks(), 1);
}

/// Ember's own (Spark's `canFetchMoreResults` through `statusUpdate`): results
/// beyond `ember.driver.maxResultSize` abort the job; the result that crossed the limit is
/// not delivered.
#[test]
fn results_over_max_result_size_abort_the_job() {
    let conf = SchedulerConf {
        max_result_size: 10,
        ..SchedulerConf::default()
    };
    let mut h = Harness::with(conf, MAX_TASK_FAILURES);
    h.submit(task_set(0, 3));
    let tasks = h.offer_all(&[("exec1", "host1", 3)]);
    assert_eq!(successes(&h.finish(tasks[0].task_id, "123456")).len(), 1);
    let events = h.finish(tasks[1].task_id, "abcdef");
    assert!(successes(&events).is_empty(), "{events:?}");
    assert_eq!(
        failures(&events),
        [
            "Total size of serialized results of 2 tasks (12.0 B) is bigger than \
          ember.driver.maxResultSize (10.0 B)"
        ]
    );
    assert!(h.is_zombie(0));
    assert!(!finished(&events, 0), "one attempt still runs");
    let events = h.finish(tasks[2].task_id, "x");
    assert!(failures(&events).is_empty(), "aborted once only");
    assert!(finished(&events, 0));
    assert!(!h.sched.has_task_sets());
}

/// Ember's own: a limit of 0 means no limit.
#[test]
fn a_max_result_size_of_zero_is_unlimited() {
    let conf = SchedulerConf {
        max_result_size: 0,
        ..SchedulerConf::default()
    };
    let mut h = Harness::with(conf, MAX_TASK_FAILURES);
    h.submit(task_set(0, 1));
    let tasks = h.offer_all(&[("exec1", "host1", 1)]);
    let big = "x".repeat(1 << 20);
    let events = h.finish(tasks[0].task_id, &big);
    assert_eq!(successes(&events).len(), 1);
    assert!(finished(&events, 0));
}

/// TSI #57 "killAllTaskAttempts shall kill all the running tasks", through `cancel_job`:
/// every running attempt is killed with `Stage cancelled: <reason>` and the set turns
/// zombie. Ember differs from Spark's `suspend()` on purpose: the set stays (tracking its
/// attempts) until the killed attempts report, then is removed.
#[test]
fn cancel_kills_the_running_attempts() {
    let mut h = Harness::new();
    h.submit(task_set(0, 10));
    let tasks = h.offer_all(&[("exec1", "host1", 1), ("exec2", "host2", 1)]);
    assert_eq!(tasks.len(), 2);
    let events = h.sched.cancel_job(JobId(0), "test message");
    let mut expected = vec![
        (tasks[0].task_id, "exec1", "Stage cancelled: test message"),
        (tasks[1].task_id, "exec2", "Stage cancelled: test message"),
    ];
    expected.sort();
    let mut got = kills(&events);
    got.sort();
    assert_eq!(got, expected);
    assert!(failures(&events).is_empty(), "a cancel is not an abort");
    assert!(h.is_zombie(0));
    assert!(h.offer_all(&[("exec3", "host3", 4)]).is_empty());
    let killed = |reason: &str| TaskStatus::Killed {
        reason: reason.into(),
    };
    assert!(h
        .update(tasks[0].task_id, killed("Stage cancelled: test message"))
        .is_empty());
    assert!(h.sched.has_task_sets(), "one attempt still runs");
    let events = h.update(tasks[1].task_id, killed("Stage cancelled: test message"));
    assert_eq!(
        events,
        vec![SchedulerEvent::TaskSetFinished { job_id: JobId(0) }]
    );
    assert!(!h.sched.has_task_sets());
    // Cancelling an unknown or finished job does nothing.
    assert!(h.sched.cancel_job(JobId(0), "again").is_empty());
}

/// Ember's own: cancelling a job with nothing running removes its set at once.
#[test]
fn cancelling_a_job_with_nothing_running_removes_it() {
    let mut h = Harness::new();
    h.submit(task_set(0, 3));
    let events = h.sched.cancel_job(JobId(0), "nobody wants it");
    assert_eq!(
        events,
        vec![SchedulerEvent::TaskSetFinished { job_id: JobId(0) }]
    );
    assert!(!h.sched.has_task_sets());
}

/// TSI #11 "don't schedule more tasks after a taskset is zombie", with Ember's zombies
/// (a cancelled job) instead of a superseded stage attempt.
#[test]
fn a_zombie_set_launches_nothing_more() {
    let mut h = Harness::new();
    h.submit(task_set(0, 10));
    let tasks = h.offer_all(&[("executor0", "host0", 1)]);
    assert_eq!(jobs_of(&tasks), [0]);
    h.sched.cancel_job(JobId(0), "zombie");
    assert!(h.offer_all(&[("executor0", "host0", 1)]).is_empty());
    h.submit(task_set(1, 10));
    let tasks = h.offer_all(&[("executor0", "host0", 1)]);
    assert_eq!(jobs_of(&tasks), [1]);
}

/// TSI #12 "if a zombie attempt finishes, continue scheduling tasks for non-zombie
/// attempts", with an aborted job: the zombie keeps tracking its running attempts (their
/// results still come out), later jobs get offers meanwhile, and the zombie is removed when
/// its last attempt ends.
#[test]
fn a_zombie_set_tracks_its_attempts_while_other_jobs_run() {
    let mut h = Harness::with(SchedulerConf::default(), 1);
    h.submit(task_set(0, 10));
    let first = h.offer_all(&[("executor0", "host0", 10)]);
    assert_eq!(first.len(), 10);
    let events = h.fail(first[0].task_id, exception("boom"));
    assert_eq!(
        failures(&events),
        ["Task 0 in stage 0.0 failed 1 times, most recent failure: boom"]
    );
    assert!(h.is_zombie(0));
    assert!(h.offer_all(&[("executor0", "host0", 10)]).is_empty());
    h.submit(task_set(1, 10));
    let second = h.offer_all(&[("executor1", "host1", 1)]);
    assert_eq!(jobs_of(&second), [1]);
    let mut events = Vec::new();
    for t in &first[1..] {
        events.extend(h.finish(t.task_id, "late"));
    }
    assert_eq!(
        successes(&events).len(),
        9,
        "the zombie still reports results"
    );
    assert!(finished(&events, 0));
    assert!(h.tsm(0).is_none());
    let rest = h.offer_all(&[("executor0", "host0", 10)]);
    assert_eq!(jobs_of(&rest), [1; 9]);
}

/// Ember's own: `abort_all` fails every job with the message; sets with running attempts
/// stay until those end.
#[test]
fn abort_all_fails_every_job() {
    let mut h = Harness::new();
    h.submit(task_set(0, 1));
    h.submit(task_set(1, 2));
    let tasks = h.offer_all(&[("exec1", "host1", 1)]);
    assert_eq!(jobs_of(&tasks), [0]);
    let events = h.sched.abort_all("the application is dying");
    assert_eq!(
        failures(&events),
        ["the application is dying", "the application is dying"]
    );
    let mut done: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            SchedulerEvent::JobFailed { job_id, .. } => Some(job_id.0),
            _ => None,
        })
        .collect();
    done.sort();
    assert_eq!(done, [0, 1]);
    assert!(finished(&events, 1), "job 1 had nothing running");
    assert!(!finished(&events, 0));
    assert!(h.offer_all(&[("exec2", "host2", 4)]).is_empty());
    let events = h.fail(tasks[0].task_id, exception("interrupted"));
    assert!(failures(&events).is_empty());
    assert!(finished(&events, 0));
    assert!(!h.sched.has_task_sets());
}

/// Speculation for these tests: on, after 3 of 4 tasks, at 1.5 × the median, no minimum.
fn speculation_conf() -> SchedulerConf {
    SchedulerConf {
        speculation: true,
        speculation_quantile: 0.75,
        speculation_multiplier: 1.5,
        speculation_min_task_runtime: Duration::ZERO,
        ..SchedulerConf::default()
    }
}

/// Ember's own, speculation end to end through the scheduler (Spark's
/// `checkSpeculatableTasks` + `resourceOffers` + `handleSuccessfulTask`): a slow task gets
/// one copy on another host; the first to finish wins, the other is killed with "another
/// attempt succeeded", the job gets one result, and the set goes once the loser reports.
#[test]
fn speculation_runs_a_copy_and_kills_the_loser() {
    let mut h = Harness::with(speculation_conf(), MAX_TASK_FAILURES);
    h.submit(task_set(0, 4));
    let tasks = h.offer_all(&[("exec1", "host1", 4)]);
    assert_eq!(tasks.len(), 4);
    assert!(
        !h.sched.check_speculatable_tasks(h.now()),
        "nothing done yet"
    );
    h.advance_ms(1000);
    for t in &tasks[..3] {
        h.finish(t.task_id, "fast");
    }
    assert!(!h.sched.check_speculatable_tasks(h.now()), "not slow yet");
    h.advance_ms(1000);
    assert!(h.sched.check_speculatable_tasks(h.now()), "2 s > 1.5 × 1 s");
    assert!(
        !h.sched.check_speculatable_tasks(h.now()),
        "already speculatable"
    );
    // Never on the host the original runs on.
    assert!(h.offer_all(&[("exec1b", "host1", 1)]).is_empty());
    let copies = h.offer_all(&[("exec2", "host2", 2)]);
    assert_eq!(indices(&copies), [3], "one copy only");
    assert_eq!(copies[0].attempt_number, 1);
    let events = h.finish(copies[0].task_id, "copy");
    let expected: [(u32, &[u8]); 1] = [(3, b"copy")];
    assert_eq!(successes(&events), expected);
    assert_eq!(
        kills(&events),
        [(tasks[3].task_id, "exec1", "another attempt succeeded")]
    );
    assert!(!finished(&events, 0), "the original still runs");
    let events = h.finish(tasks[3].task_id, "original");
    assert!(successes(&events).is_empty(), "one result per partition");
    assert!(finished(&events, 0));
    assert!(!h.sched.has_task_sets());
}

/// Ember's own: without `ember.speculation`, slow tasks are never copied.
#[test]
fn without_speculation_nothing_is_copied() {
    let mut h = Harness::new();
    h.submit(task_set(0, 4));
    let tasks = h.offer_all(&[("exec1", "host1", 4)]);
    h.advance_ms(1000);
    for t in &tasks[..3] {
        h.finish(t.task_id, "fast");
    }
    h.advance_ms(60_000);
    assert!(!h.sched.check_speculatable_tasks(h.now()));
    assert!(h.offer_all(&[("exec2", "host2", 2)]).is_empty());
}

/// Ember's own (the console progress bar's `(done + running)`): running tasks are counted
/// per job, jobs with none are left out, and a finished task leaves the count.
#[test]
fn running_tasks_are_counted_per_job() {
    let mut h = Harness::new();
    assert!(h.sched.running_tasks_by_job().is_empty());
    h.submit(task_set(1, 3));
    h.submit(task_set(0, 2));
    assert!(
        h.sched.running_tasks_by_job().is_empty(),
        "nothing launched yet"
    );
    let tasks = h.offer_all(&[("exec1", "host1", 3)]);
    assert_eq!(tasks.len(), 3);
    let running = h.sched.running_tasks_by_job();
    let total: u32 = running.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 3);
    assert!(
        running.windows(2).all(|w| w[0].0 .0 < w[1].0 .0),
        "{running:?}"
    );
    h.finish(tasks[0].task_id, "done");
    let after: u32 = h.sched.running_tasks_by_job().iter().map(|(_, n)| n).sum();
    assert_eq!(after, 2);
}
