//! Pending tasks by locality (Spark's `PendingTasksByLocality`) and the valid locality levels.
//!
//! The lists are stacks of task indices. Tasks are pushed in reverse index order and taken
//! from the end, so low indices launch first, and a task that fails is pushed again on top,
//! so it is retried soon. A task sits in every list its preferences name; when it launches
//! from one, its entries in the others go stale and are dropped when they reach the top
//! (lazy removal: every entry is pushed once and popped once, so taking a task is O(1)
//! amortised). Whether a task is still pending is asked of its record, never of the lists;
//! [`PendingCounts`] keeps exact per-level counts so that delay scheduling need not scan.

use crate::ids::FastMap;
use crate::locality::{TaskLocality, TaskLocation};
use crate::task::TaskSpec;

use super::locality::LevelSet;
use super::ClusterView;

/// The pending lists a task is in, as bits: fixed by its preferences and the rack of each
/// preferred host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LevelMask(u8);

impl LevelMask {
    const PROCESS: u8 = 1;
    const NODE: u8 = 2;
    const NO_PREF: u8 = 4;
    const RACK: u8 = 8;

    /// The lists a task with these preferences goes in. An executor-cache or HDFS-cache
    /// location makes it process-local somewhere; any location makes it node-local there.
    pub(crate) fn of(preferences: &[TaskLocation], racks: &RackCache) -> LevelMask {
        if preferences.is_empty() {
            return LevelMask(Self::NO_PREF);
        }
        let mut bits = Self::NODE;
        for location in preferences {
            if matches!(
                location,
                TaskLocation::ExecutorCache { .. } | TaskLocation::HdfsCache(_)
            ) {
                bits |= Self::PROCESS;
            }
            if racks.rack_of(location.host()).is_some() {
                bits |= Self::RACK;
            }
        }
        LevelMask(bits)
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// Exact counts of pending tasks (status `Pending`), in total and per level. Spark answers
/// "is anything left at this level?" by scanning and cleaning its lists; a count answers it
/// in O(1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PendingCounts {
    total: usize,
    process: usize,
    node: usize,
    no_pref: usize,
    rack: usize,
}

impl PendingCounts {
    /// A task with `mask` became pending.
    pub(crate) fn add(&mut self, mask: LevelMask) {
        self.total += 1;
        self.process += usize::from(mask.has(LevelMask::PROCESS));
        self.node += usize::from(mask.has(LevelMask::NODE));
        self.no_pref += usize::from(mask.has(LevelMask::NO_PREF));
        self.rack += usize::from(mask.has(LevelMask::RACK));
    }

    /// A task with `mask` stopped being pending (launched or done).
    pub(crate) fn remove(&mut self, mask: LevelMask) {
        self.total = self.total.saturating_sub(1);
        let dec = |count: &mut usize, bit| {
            if mask.has(bit) {
                *count = count.saturating_sub(1);
            }
        };
        dec(&mut self.process, LevelMask::PROCESS);
        dec(&mut self.node, LevelMask::NODE);
        dec(&mut self.no_pref, LevelMask::NO_PREF);
        dec(&mut self.rack, LevelMask::RACK);
    }

    /// Pending tasks in all.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// Whether some pending task could run at `level` (ANY: whether any is pending).
    pub(crate) fn any_at(&self, level: TaskLocality) -> bool {
        match level {
            TaskLocality::ProcessLocal => self.process > 0,
            TaskLocality::NodeLocal => self.node > 0,
            TaskLocality::NoPref => self.no_pref > 0,
            TaskLocality::RackLocal => self.rack > 0,
            TaskLocality::Any => self.total > 0,
        }
    }
}

/// The rack of every host the task set prefers, resolved once when the manager is created
/// (Spark resolves them in one batch there too; SPARK-13704). Re-queuing a failed task then
/// needs no cluster view.
#[derive(Debug, Clone, Default)]
pub(crate) struct RackCache {
    racks: FastMap<Box<str>, Option<Box<str>>>,
    /// Whether any preferred host has a rack. Most clusters have no rack resolver: then
    /// [`rack_of`](Self::rack_of) answers without a lookup, which spares queuing a task
    /// set two hash lookups per preferred location (issue 15: submitting 10^6 tasks of 3
    /// hosts each spent a third of its time there).
    any: bool,
}

impl RackCache {
    /// Looks up each distinct preferred host once.
    pub(crate) fn resolve(tasks: &[TaskSpec], view: &dyn ClusterView) -> RackCache {
        let mut racks: FastMap<Box<str>, Option<Box<str>>> = FastMap::default();
        for location in tasks.iter().flat_map(|t| &t.preferred_locations) {
            let host = location.host();
            if !racks.contains_key(host) {
                let rack = view.rack_for_host(host).map(String::into_boxed_str);
                racks.insert(host.into(), rack);
            }
        }
        let any = racks.values().any(Option::is_some);
        RackCache { racks, any }
    }

    /// The rack of a preferred host, if it has one.
    pub(crate) fn rack_of(&self, host: &str) -> Option<&str> {
        if !self.any {
            return None;
        }
        self.racks.get(host).and_then(|rack| rack.as_deref())
    }
}

/// What to do with a list entry when looking for a task to launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Candidate {
    /// Launch it.
    Take,
    /// Valid, but not for this offer (a speculative copy on a host that already ran the
    /// task): leave it in the list.
    Skip,
    /// No longer wanted (running, done, or a duplicate): drop it.
    Stale,
}

/// One set of pending lists: the task set keeps one for normal tasks and one for
/// speculative copies.
#[derive(Debug, Clone, Default)]
pub(crate) struct PendingLists {
    for_executor: FastMap<Box<str>, Vec<u32>>,
    /// Tasks cached on a host (`hdfs_cache_<host>`): process-local on every executor of the
    /// host. Spark copies them into the list of each executor alive there when the task is
    /// queued; keeping them by host also serves executors that arrive later.
    for_cached_host: FastMap<Box<str>, Vec<u32>>,
    for_host: FastMap<Box<str>, Vec<u32>>,
    no_prefs: Vec<u32>,
    for_rack: FastMap<Box<str>, Vec<u32>>,
    all: Vec<u32>,
}

impl PendingLists {
    /// Queues task `index` in every list its preferences name (Spark's `addPendingTask`).
    pub(crate) fn push(&mut self, index: u32, preferences: &[TaskLocation], racks: &RackCache) {
        for location in preferences {
            match location {
                TaskLocation::ExecutorCache { executor_id, .. } => {
                    push_keyed(&mut self.for_executor, executor_id, index)
                }
                TaskLocation::HdfsCache(host) => push_keyed(&mut self.for_cached_host, host, index),
                TaskLocation::Host(_) => {}
            }
            push_keyed(&mut self.for_host, location.host(), index);
            if let Some(rack) = racks.rack_of(location.host()) {
                push_keyed(&mut self.for_rack, rack, index);
            }
        }
        if preferences.is_empty() {
            self.no_prefs.push(index);
        }
        self.all.push(index);
    }

    /// Takes a task for an offer on `executor` at `host`, searching only levels `max` allows,
    /// in Spark's order (`dequeueTaskHelper`): the executor's list, then the host's cached
    /// tasks (both PROCESS_LOCAL), the host's list (NODE_LOCAL), tasks without preferences
    /// (reported as PROCESS_LOCAL: they run as well here as anywhere), the rack's list
    /// (RACK_LOCAL), and finally every task (ANY). `rack` is asked only when the rack list
    /// is reached; `judge` decides per entry.
    pub(crate) fn take(
        &mut self,
        executor: &str,
        host: &str,
        max: TaskLocality,
        rack: impl FnOnce() -> Option<String>,
        mut judge: impl FnMut(u32) -> Candidate,
    ) -> Option<(u32, TaskLocality)> {
        if let Some(index) = take_keyed(&mut self.for_executor, executor, &mut judge) {
            return Some((index, TaskLocality::ProcessLocal));
        }
        if let Some(index) = take_keyed(&mut self.for_cached_host, host, &mut judge) {
            return Some((index, TaskLocality::ProcessLocal));
        }
        if max.allows(TaskLocality::NodeLocal) {
            if let Some(index) = take_keyed(&mut self.for_host, host, &mut judge) {
                return Some((index, TaskLocality::NodeLocal));
            }
        }
        // No-preference tasks come after node-local ones to keep cross-rack traffic down.
        if max.allows(TaskLocality::NoPref) {
            if let Some(index) = take_from(&mut self.no_prefs, &mut judge) {
                return Some((index, TaskLocality::ProcessLocal));
            }
        }
        if max.allows(TaskLocality::RackLocal) && !self.for_rack.is_empty() {
            if let Some(rack) = rack() {
                if let Some(index) = take_keyed(&mut self.for_rack, &rack, &mut judge) {
                    return Some((index, TaskLocality::RackLocal));
                }
            }
        }
        if max.allows(TaskLocality::Any) {
            if let Some(index) = take_from(&mut self.all, &mut judge) {
                return Some((index, TaskLocality::Any));
            }
        }
        None
    }

    /// The locality levels these lists make worth waiting for, given who is alive (Spark's
    /// `computeValidLocalityLevels`): PROCESS_LOCAL if a listed executor (or an executor on
    /// a host with cached tasks) is alive, NODE_LOCAL if a listed host has an executor,
    /// NO_PREF if tasks without preferences are queued, RACK_LOCAL if a listed rack has a
    /// live host, and always ANY. Like Spark, a list counts while it holds entries, stale
    /// ones included. O(keys), on executor added or lost only.
    pub(crate) fn valid_levels(&self, view: &dyn ClusterView) -> LevelSet {
        let live = |map: &FastMap<Box<str>, Vec<u32>>, alive: &dyn Fn(&str) -> bool| {
            map.iter().any(|(key, list)| !list.is_empty() && alive(key))
        };
        let process = live(&self.for_executor, &|e| {
            view.is_executor_alive(&crate::ids::ExecutorId::new(e))
        }) || live(&self.for_cached_host, &|h| {
            view.has_executors_alive_on_host(h)
        });
        let node = live(&self.for_host, &|h| view.has_executors_alive_on_host(h));
        let no_pref = !self.no_prefs.is_empty();
        let rack = live(&self.for_rack, &|r| view.has_hosts_alive_on_rack(r));
        LevelSet::from_flags(process, node, no_pref, rack)
    }
}

fn push_keyed(map: &mut FastMap<Box<str>, Vec<u32>>, key: &str, index: u32) {
    // Look up before inserting, so a known key costs no allocation.
    match map.get_mut(key) {
        Some(list) => list.push(index),
        None => {
            map.insert(key.into(), vec![index]);
        }
    }
}

fn take_keyed(
    map: &mut FastMap<Box<str>, Vec<u32>>,
    key: &str,
    judge: &mut impl FnMut(u32) -> Candidate,
) -> Option<u32> {
    if map.is_empty() {
        return None;
    }
    map.get_mut(key).and_then(|list| take_from(list, judge))
}

/// Walks the list from the top: stale entries are dropped, skipped ones stay, the first
/// taken one is removed and returned. Normal lists never skip, so removal is from the end.
fn take_from(list: &mut Vec<u32>, judge: &mut impl FnMut(u32) -> Candidate) -> Option<u32> {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        let index = list[i];
        match judge(index) {
            Candidate::Take => {
                list.remove(i);
                return Some(index);
            }
            Candidate::Stale => {
                list.remove(i);
            }
            Candidate::Skip => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn racks() -> RackCache {
        RackCache::default()
    }

    #[test]
    fn lower_indices_come_first_and_stale_entries_are_dropped() {
        let mut lists = PendingLists::default();
        for index in (0..3).rev() {
            lists.push(index, &[], &racks());
        }
        let take = |lists: &mut PendingLists, done: &[u32]| {
            lists.take(
                "e",
                "h",
                TaskLocality::Any,
                || None,
                |i| {
                    if done.contains(&i) {
                        Candidate::Stale
                    } else {
                        Candidate::Take
                    }
                },
            )
        };
        assert_eq!(take(&mut lists, &[]), Some((0, TaskLocality::ProcessLocal)));
        // 1 launched elsewhere meanwhile: its no-pref entry is dropped, 2 comes next.
        assert_eq!(
            take(&mut lists, &[1]),
            Some((2, TaskLocality::ProcessLocal))
        );
        // The `all` list still holds 2, 1, 0: all stale now.
        assert_eq!(take(&mut lists, &[0, 1, 2]), None);
        assert!(lists.all.is_empty());
    }

    #[test]
    fn skipped_entries_stay_queued() {
        let mut lists = PendingLists::default();
        lists.push(0, &[], &racks());
        let skip = lists.take("e", "h", TaskLocality::Any, || None, |_| Candidate::Skip);
        assert_eq!(skip, None);
        assert_eq!(lists.no_prefs, vec![0]);
        assert_eq!(lists.all, vec![0]);
    }

    #[test]
    fn node_local_entries_need_node_local_allowed() {
        let mut lists = PendingLists::default();
        lists.push(0, &[TaskLocation::Host("h".into())], &racks());
        let take =
            |lists: &mut PendingLists, max| lists.take("e", "h", max, || None, |_| Candidate::Take);
        assert_eq!(take(&mut lists, TaskLocality::ProcessLocal), None);
        assert_eq!(
            take(&mut lists, TaskLocality::NodeLocal),
            Some((0, TaskLocality::NodeLocal))
        );
    }

    #[test]
    fn counts_follow_masks() {
        let mut counts = PendingCounts::default();
        let exec = LevelMask::of(
            &[TaskLocation::ExecutorCache {
                host: "h".into(),
                executor_id: "e".into(),
            }],
            &racks(),
        );
        counts.add(exec);
        counts.add(LevelMask::of(&[], &racks()));
        assert!(counts.any_at(TaskLocality::ProcessLocal));
        assert!(counts.any_at(TaskLocality::NodeLocal));
        assert!(counts.any_at(TaskLocality::NoPref));
        assert!(!counts.any_at(TaskLocality::RackLocal));
        counts.remove(exec);
        assert!(!counts.any_at(TaskLocality::ProcessLocal));
        assert_eq!(counts.total(), 1);
    }
}
