//! The sort against Spark's algorithm as written, on random trees.

use super::*;

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
