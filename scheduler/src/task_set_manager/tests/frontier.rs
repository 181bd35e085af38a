//! The frontier (issue 15): a large task set launches its first tasks having indexed only a
//! batch of them, and indexing lazily launches exactly what indexing everything up front
//! would, with the same valid locality levels, through offers, delay scheduling, failures
//! and executors coming and going.

use super::*;
use crate::task_set_manager::frontier::BATCH;

/// Task `i` prefers hosts `i`, `i + 1` and `i + 2` of `hosts`, as the scale bench's tasks.
fn spread(tasks: usize, hosts: usize) -> TaskSet {
    task_set(
        (0..tasks)
            .map(|i| {
                (0..3)
                    .map(|r| host_loc(&format!("host-{}", (i + r) % hosts)))
                    .collect()
            })
            .collect(),
    )
}

#[test]
fn the_first_offer_round_of_a_large_set_indexes_a_batch_or_two() {
    let hosts = 100;
    let executors: Vec<(String, String)> = (0..hosts)
        .map(|h| (format!("exec-{h}"), format!("host-{h}")))
        .collect();
    let pairs: Vec<(&str, &str)> = executors
        .iter()
        .map(|(e, h)| (e.as_str(), h.as_str()))
        .collect();
    let tasks = 200_000;
    let mut h = Harness::new(FakeCluster::with(&pairs), spread(tasks, hosts));
    // Creating the manager indexed one batch, not the set.
    assert_eq!(h.tsm.indexed_tasks(), BATCH as usize);
    assert_eq!(h.levels(), vec![TaskLocality::NodeLocal, TaskLocality::Any]);
    // Host 7 is preferred by tasks 5, 6 and 7 first: task 5 launches there, node-local.
    let first = h.offer_full("exec-7", "host-7", TaskLocality::Any);
    assert_eq!(first.task.map(|t| t.index), Some(5));
    assert_eq!(first.locality, Some(TaskLocality::NodeLocal));
    // A round of 4 cores on every executor, as the scheduler's first offer round.
    for _ in 0..4 {
        for (e, host) in &executors {
            let offered = h.offer_full(e, host, TaskLocality::Any);
            assert_eq!(offered.locality, Some(TaskLocality::NodeLocal));
        }
    }
    assert!(
        h.tsm.indexed_tasks() <= 2 * BATCH as usize,
        "{} tasks indexed for 401 launches",
        h.tsm.indexed_tasks()
    );
}

#[test]
fn a_host_named_only_by_the_last_task_is_found() {
    let tasks = 3 * BATCH as usize;
    let mut prefs: Vec<Vec<TaskLocation>> = vec![vec![host_loc("common")]; tasks];
    prefs[tasks - 1] = vec![host_loc("late")];
    // Only the host the last task prefers has an executor: NODE_LOCAL is valid, and found
    // by summarising the tasks behind the frontier, not by indexing them.
    let mut h = Harness::new(FakeCluster::with(&[("e", "late")]), task_set(prefs.clone()));
    assert_eq!(h.levels(), vec![TaskLocality::NodeLocal, TaskLocality::Any]);
    assert_eq!(h.tsm.indexed_tasks(), BATCH as usize);
    let offered = h.offer_full("e", "late", TaskLocality::NodeLocal);
    assert_eq!(offered.task.map(|t| t.index), Some(tasks as u32 - 1));
    // With no executor there, only ANY.
    let h = Harness::new(FakeCluster::with(&[("e", "elsewhere")]), task_set(prefs));
    assert_eq!(h.levels(), vec![TaskLocality::Any]);
}

#[test]
fn an_executor_on_a_host_no_task_prefers_does_not_index_the_set() {
    let tasks = 100_000;
    let cluster = FakeCluster::with(&[("a", "A"), ("b", "B")]);
    let mut h = Harness::new(cluster, task_set(vec![vec![host_loc("A")]; tasks]));
    assert_eq!(h.levels(), vec![TaskLocality::NodeLocal, TaskLocality::Any]);
    // Nothing prefers B: after a few batches the frontier summarises the hosts it holds
    // and the offer ends, delay scheduling holding the tasks back for A.
    let offered = h.offer_full("b", "B", TaskLocality::Any);
    assert_eq!(offered.task.map(|t| t.index), None);
    assert!(offered.delay_rejected);
    assert!(
        h.tsm.indexed_tasks() <= 4 * BATCH as usize,
        "{} tasks indexed for an offer that launches nothing",
        h.tsm.indexed_tasks()
    );
    assert_eq!(h.offer_index("a", "A", TaskLocality::NodeLocal), Some(0));
}

/// SplitMix64: a fixed, dependency-free random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const HOSTS: usize = 6;

fn host_name(i: usize) -> String {
    format!("h{i}")
}

fn random_prefs(rng: &mut Rng, tasks: usize) -> Vec<Vec<TaskLocation>> {
    (0..tasks)
        .map(|_| {
            // A third without preferences; the rest one to three locations of every kind.
            let n = rng.below(6).saturating_sub(2);
            (0..n)
                .map(|_| {
                    let host = host_name(rng.below(HOSTS));
                    match rng.below(4) {
                        0 => TaskLocation::HdfsCache(host),
                        1 => exec_loc(&host, &format!("e{}", rng.below(HOSTS))),
                        _ => TaskLocation::Host(host),
                    }
                })
                .collect()
        })
        .collect()
}

fn cluster(executors: &[(String, String)], racks: bool) -> FakeCluster {
    let mut cluster = FakeCluster::default();
    for (e, h) in executors {
        cluster.add(e, h);
    }
    if racks {
        // Half the hosts in one of two racks, the others in none.
        for i in 0..HOSTS / 2 {
            cluster.assign_rack(&host_name(i), &format!("rack{}", i % 2));
        }
    }
    cluster
}

/// Runs the same random scenario on a manager indexing `batch` tasks at a time and on one
/// indexing everything at once, comparing every answer.
fn compare(seed: u64, tasks: usize, batch: u32) {
    let mut rng = Rng(seed);
    let prefs = random_prefs(&mut rng, tasks);
    let racks = rng.below(2) == 0;
    let mut executors: Vec<(String, String)> = (0..rng.below(3))
        .map(|_| {
            let i = rng.below(HOSTS);
            (format!("e{i}"), host_name(i))
        })
        .collect();
    executors.dedup_by(|a, b| a.0 == b.0);
    let mut lazy =
        Harness::with_index_batch(cluster(&executors, racks), task_set(prefs.clone()), batch);
    let mut eager =
        Harness::with_index_batch(cluster(&executors, racks), task_set(prefs), u32::MAX);
    assert_eq!(
        lazy.levels(),
        eager.levels(),
        "seed {seed}: levels at creation"
    );
    let mut running: Vec<u64> = Vec::new();
    let levels = [
        TaskLocality::ProcessLocal,
        TaskLocality::NodeLocal,
        TaskLocality::NoPref,
        TaskLocality::RackLocal,
        TaskLocality::Any,
    ];
    for step in 0..400 {
        match rng.below(10) {
            0..=4 => {
                let i = rng.below(HOSTS);
                let (e, h) = (format!("e{i}"), host_name(i));
                if !executors.iter().any(|(x, _)| *x == e) {
                    continue;
                }
                let max = levels[rng.below(levels.len())];
                let a = lazy.offer_full(&e, &h, max);
                let b = eager.offer_full(&e, &h, max);
                let show = |o: &Offered| {
                    (
                        o.task.as_ref().map(|t| t.index),
                        o.locality,
                        o.delay_rejected,
                    )
                };
                assert_eq!(
                    show(&a),
                    show(&b),
                    "seed {seed}, step {step}: offer on {e} at {max}"
                );
                if let Some(t) = a.task {
                    running.push(t.task_id.0);
                }
            }
            5 => {
                let by = Duration::from_millis(rng.below(4000) as u64);
                lazy.advance(by);
                eager.advance(by);
            }
            6 if !running.is_empty() => {
                let tid = running.swap_remove(rng.below(running.len()));
                assert_eq!(
                    lazy.succeed(tid),
                    eager.succeed(tid),
                    "seed {seed}, step {step}"
                );
            }
            7 if !running.is_empty() => {
                let tid = running.swap_remove(rng.below(running.len()));
                let reason = || TaskFailedReason::TaskKilled {
                    reason: "test".into(),
                };
                assert_eq!(
                    lazy.fail(tid, reason()),
                    eager.fail(tid, reason()),
                    "seed {seed}"
                );
            }
            8 => {
                let i = rng.below(HOSTS);
                let e = format!("e{i}");
                if executors.iter().all(|(x, _)| *x != e) {
                    executors.push((e.clone(), host_name(i)));
                    lazy.add_executor(&e, &host_name(i));
                    eager.add_executor(&e, &host_name(i));
                }
            }
            9 if !executors.is_empty() => {
                let (e, _) = executors.swap_remove(rng.below(executors.len()));
                let a = lazy.lose_executor(&e, worker_lost());
                let b = eager.lose_executor(&e, worker_lost());
                assert_eq!(a, b, "seed {seed}, step {step}: losing {e}");
                running.clear();
                running.extend(lazy.tsm.running_task_ids().iter().map(|t| t.0));
            }
            _ => {}
        }
        assert_eq!(
            lazy.levels(),
            eager.levels(),
            "seed {seed}, step {step}: levels"
        );
    }
}

#[test]
fn indexing_lazily_launches_what_indexing_everything_would() {
    for seed in 0..300 {
        let tasks = 1 + (seed as usize * 7) % 60;
        compare(seed, tasks, 1 + (seed % 5) as u32);
    }
}
