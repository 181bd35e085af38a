//! Flattening the pool tree into the order offers go to task sets.
//!
//! This runs on every offer round, so it allocates nothing but the returned `Vec` in the
//! usual case: each pool's children are keyed once into a buffer on the stack and sorted
//! there. A pool with more than [`INLINE`] children sorts a heap `Vec` instead.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::{Child, Pools, SchedulingMode, TaskSetKey, TaskSetView, ROOT};

/// Children a pool may have before sorting them needs the heap. Pools usually hold one to
/// three task sets, and a FAIR root a handful of pools.
const INLINE: usize = 16;

/// Spark's `Pool.getSortedTaskSetQueue` from the root.
pub(super) fn sorted_task_sets(pools: &Pools, view: &dyn TaskSetView) -> Vec<TaskSetKey> {
    // Every task set at most once, so this one allocation is enough.
    let mut out = Vec::with_capacity(pools.homes.len());
    emit(pools, ROOT, view, &mut out);
    out
}

/// Appends the schedulable task sets under `pool`, in order.
///
/// Children that would add nothing (task sets that can't take a task, pools with no
/// children) are left out before sorting. A stable sort of the rest gives them the same
/// relative order as sorting everything and then dropping those, which is what Spark does.
fn emit(pools: &Pools, pool: usize, view: &dyn TaskSetView, out: &mut Vec<TaskSetKey>) {
    let node = &pools.nodes[pool];
    match node.info.mode {
        SchedulingMode::Fifo => sort_children(
            pools,
            &node.children,
            view,
            out,
            |child, _| fifo_key(pools, child, view),
            |a: &FifoKey, b: &FifoKey| a.cmp(b),
        ),
        SchedulingMode::Fair => sort_children(
            pools,
            &node.children,
            view,
            out,
            |child, eager| fair_key(pools, child, view, eager),
            |a: &FairKey<'_>, b: &FairKey<'_>| compare_fair(a, b, view),
        ),
    }
}

/// Keys `children`, sorts them stably by `compare`, and emits them in that order.
///
/// `key` gets `eager = true` on the heap path: there the keys must be plain data, because
/// `slice::sort_by` may panic if comparisons are not a total order, and a view asked again
/// mid-sort is not plain data. The stack path uses a hand-written insertion sort, which
/// cannot panic whatever the comparisons say.
fn sort_children<K>(
    pools: &Pools,
    children: &[Child],
    view: &dyn TaskSetView,
    out: &mut Vec<TaskSetKey>,
    key: impl Fn(Child, bool) -> Option<K>,
    compare: impl Fn(&K, &K) -> Ordering,
) {
    let mut emit_child = |child: Child| match child {
        Child::TaskSet(task_set) => out.push(task_set),
        Child::Pool(pool) => emit(pools, pool, view, out),
    };
    // Two stack sizes, so the common one-to-three children don't pay for sixteen slots.
    if children.len() <= 4 {
        sort_inline::<4, K>(children, &key, &compare, &mut emit_child);
    } else if children.len() <= INLINE {
        sort_inline::<INLINE, K>(children, &key, &compare, &mut emit_child);
    } else {
        let mut keyed: Vec<(K, Child)> = children
            .iter()
            .filter_map(|&child| key(child, true).map(|k| (k, child)))
            .collect();
        keyed.sort_by(|a, b| compare(&a.0, &b.0));
        for (_, child) in keyed {
            emit_child(child);
        }
    }
}

/// The stack path of [`sort_children`], for at most `N` children.
fn sort_inline<const N: usize, K>(
    children: &[Child],
    key: &impl Fn(Child, bool) -> Option<K>,
    compare: &impl Fn(&K, &K) -> Ordering,
    emit_child: &mut impl FnMut(Child),
) {
    // `None` slots cost a tag each; keys are only built for the children there are.
    let mut buffer: [Option<(K, Child)>; N] = std::array::from_fn(|_| None);
    let mut len = 0;
    for &child in children {
        let Some(slot) = buffer.get_mut(len) else {
            // The caller checked that the children fit.
            break;
        };
        if let Some(k) = key(child, false) {
            *slot = Some((k, child));
            len += 1;
        }
    }
    let keyed = &mut buffer[..len];
    insertion_sort(keyed, |a, b| match (a, b) {
        (Some(a), Some(b)) => compare(&a.0, &b.0),
        // Slots below `len` are all filled.
        _ => Ordering::Equal,
    });
    for (_, child) in keyed.iter().flatten() {
        emit_child(*child);
    }
}

/// A stable sort for a handful of items: moves an item left only past strictly greater ones.
fn insertion_sort<T>(items: &mut [T], compare: impl Fn(&T, &T) -> Ordering) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && compare(&items[j - 1], &items[j]) == Ordering::Greater {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// FIFO order: (priority, stage id), compared as numbers. Spark subtracts `Int`s, which could
/// overflow; comparing cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FifoKey {
    priority: i64,
    stage: i64,
}

fn fifo_key(pools: &Pools, child: Child, view: &dyn TaskSetView) -> Option<FifoKey> {
    match child {
        Child::TaskSet(key) => view.is_schedulable(key).then(|| FifoKey {
            priority: i64::from(view.priority(key)),
            stage: i64::from(view.stage_id(key)),
        }),
        // Spark's `Pool` has priority 0 and stage id -1.
        Child::Pool(pool) => (!pools.nodes[pool].children.is_empty()).then_some(FifoKey {
            priority: 0,
            stage: -1,
        }),
    }
}

/// FAIR order, worked out once per child.
#[derive(Debug)]
struct FairKey<'a> {
    /// Running fewer tasks than its minimum share.
    needy: bool,
    /// `running / max(minShare, 1)` when needy, else `running / weight`: the only ratio the
    /// comparator looks at, since two children are compared on the same one or not at all.
    ratio: f64,
    name: Name<'a>,
}

/// A child's name, the last tie-break.
#[derive(Debug)]
enum Name<'a> {
    /// A pool's name, borrowed from the tree.
    Pool(&'a str),
    /// A task set's name, asked of the view only when a tie needs it, since it allocates.
    Ask(TaskSetKey),
    /// A task set's name, asked up front (heap path).
    Owned(String),
}

fn fair_key<'a>(
    pools: &'a Pools,
    child: Child,
    view: &dyn TaskSetView,
    eager: bool,
) -> Option<FairKey<'a>> {
    match child {
        Child::TaskSet(key) => {
            if !view.is_schedulable(key) {
                return None;
            }
            let name = if eager {
                Name::Owned(view.name(key))
            } else {
                Name::Ask(key)
            };
            // A task set is a Schedulable with minShare 0 and weight 1.
            Some(fair_numbers(view.running_tasks(key), 0, 1, name))
        }
        Child::Pool(pool) => {
            let node = &pools.nodes[pool];
            if node.children.is_empty() {
                return None;
            }
            Some(fair_numbers(
                running_below(pools, pool, view),
                node.info.min_share,
                node.info.weight,
                Name::Pool(&node.info.name),
            ))
        }
    }
}

/// Spark's `FairSchedulingAlgorithm` inputs for one child.
fn fair_numbers(running: usize, min_share: i32, weight: i32, name: Name<'_>) -> FairKey<'_> {
    let needy = i64::try_from(running).unwrap_or(i64::MAX) < i64::from(min_share);
    // Exact for any count a scheduler reaches (below 2^53).
    let running = running as f64;
    let ratio = if needy {
        running / f64::from(min_share.max(1))
    } else {
        // A weight of 0 gives infinity or NaN and a negative one a negative ratio, as in
        // Spark; `java_compare` orders those the way Java's `Double.compare` does.
        running / f64::from(weight)
    };
    FairKey { needy, ratio, name }
}

/// A pool's running tasks: the sum over every task set below it. Spark keeps this count up
/// to date as tasks start and end; adding it up here reads the same numbers from the view.
fn running_below(pools: &Pools, pool: usize, view: &dyn TaskSetView) -> usize {
    pools.nodes[pool]
        .children
        .iter()
        .fold(0usize, |sum, &child| {
            let running = match child {
                Child::TaskSet(key) => view.running_tasks(key),
                Child::Pool(inner) => running_below(pools, inner, view),
            };
            sum.saturating_add(running)
        })
}

/// Needy first; then the ratio, lower first; then the name.
fn compare_fair(a: &FairKey<'_>, b: &FairKey<'_>, view: &dyn TaskSetView) -> Ordering {
    b.needy
        .cmp(&a.needy)
        .then_with(|| java_compare(a.ratio, b.ratio))
        .then_with(|| compare_names(&a.name, &b.name, view))
}

/// Java's `Double.compare`, which Spark's `compareTo` uses: -0.0 before 0.0, and every NaN
/// equal to every other and after everything else. `f64::total_cmp` alone would put a NaN
/// with its sign bit set (what 0.0 / 0.0 gives on x86) first.
fn java_compare(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.total_cmp(&b),
    }
}

/// Spark compares names with Scala's `<`: Java string order, which is byte order for any
/// name without characters beyond U+FFFF.
fn compare_names(a: &Name<'_>, b: &Name<'_>, view: &dyn TaskSetView) -> Ordering {
    fn text<'n>(name: &'n Name<'_>, view: &dyn TaskSetView) -> Cow<'n, str> {
        match name {
            Name::Pool(s) => Cow::Borrowed(*s),
            Name::Owned(s) => Cow::Borrowed(s.as_str()),
            Name::Ask(key) => Cow::Owned(view.name(*key)),
        }
    }
    text(a, view).cmp(&text(b, view))
}
