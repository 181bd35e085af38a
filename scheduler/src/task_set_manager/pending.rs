//! Pending tasks by locality (Spark's `PendingTasksByLocality`) and the valid locality levels.
//!
//! The lists are queues of task indices whose front is their top. The tasks of the set are
//! appended in index order (in batches, as the [`Frontier`](super::frontier::Frontier)
//! indexes them) and taken from the front, so low indices launch first, and a task that
//! fails is pushed again at the front, so it is retried soon: the order Spark's stacks give.
//! A task sits in every list its preferences name; when it launches from one, its entries in
//! the others go stale and are dropped when they reach the front (lazy removal: every entry
//! is pushed once and popped once, so taking a task is O(1) amortised). Whether a task is
//! still pending is asked of its record, never of the lists; [`PendingCounts`] keeps exact
//! per-level counts of the indexed tasks so that delay scheduling need not scan.

use std::collections::VecDeque;

use crate::ids::FastMap;
use crate::locality::{TaskLocality, TaskLocation};

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

    /// Whether a task with this mask could run at `level` (every task can at ANY).
    pub(crate) fn at(self, level: TaskLocality) -> bool {
        match level {
            TaskLocality::ProcessLocal => self.has(Self::PROCESS),
            TaskLocality::NodeLocal => self.has(Self::NODE),
            TaskLocality::NoPref => self.has(Self::NO_PREF),
            TaskLocality::RackLocal => self.has(Self::RACK),
            TaskLocality::Any => true,
        }
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

/// The rack of every preferred host the task set has indexed, resolved once per host as
/// tasks are indexed (Spark resolves them in one batch when the manager is created,
/// SPARK-13704; resolving them all up front cost a 10^6-task set a hash lookup per preferred
/// location before its first launch, issue 15). Re-queuing a failed task then needs no
/// cluster view: its hosts were resolved when it was indexed.
#[derive(Debug, Clone, Default)]
pub(crate) struct RackCache {
    racks: FastMap<Box<str>, Option<Box<str>>>,
    /// Whether any resolved host has a rack: when none has, [`rack_of`](Self::rack_of)
    /// answers without a lookup.
    any: bool,
    /// Whether the cluster resolves racks at all ([`ClusterView::knows_racks`]). Most
    /// clusters have no rack resolver: then no host is ever looked up.
    enabled: bool,
}

impl RackCache {
    /// An empty cache for a cluster seen through `view`.
    pub(crate) fn new(view: &dyn ClusterView) -> RackCache {
        RackCache {
            enabled: view.knows_racks(),
            ..RackCache::default()
        }
    }

    /// Whether hosts can have racks at all.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Resolves the rack of each of these preferred hosts not seen before.
    pub(crate) fn learn(&mut self, preferences: &[TaskLocation], view: &dyn ClusterView) {
        if !self.enabled {
            return;
        }
        for location in preferences {
            let host = location.host();
            if !self.racks.contains_key(host) {
                let rack = view.rack_for_host(host).map(String::into_boxed_str);
                self.any |= rack.is_some();
                self.racks.insert(host.into(), rack);
            }
        }
    }

    /// The rack of a preferred host already [learned](Self::learn), if it has one.
    pub(crate) fn rack_of(&self, host: &str) -> Option<&str> {
        if !self.any {
            return None;
        }
        self.racks.get(host).and_then(|rack| rack.as_deref())
    }
}

/// Which locality levels are worth waiting for, before ANY (always valid) is added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LevelFlags {
    pub(crate) process: bool,
    pub(crate) node: bool,
    pub(crate) no_pref: bool,
    pub(crate) rack: bool,
}

impl LevelFlags {
    /// The valid levels these flags make, most local first, ending with ANY.
    pub(crate) fn levels(self) -> LevelSet {
        LevelSet::from_flags(self.process, self.node, self.no_pref, self.rack)
    }
}

/// A list [`PendingLists::take`] found nothing to take in, for asking whether tasks not yet
/// indexed could be in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source<'a> {
    /// The executor's list.
    Executor(&'a str),
    /// The host's cached tasks.
    CachedHost(&'a str),
    /// The host's list.
    Host(&'a str),
    /// Tasks without preferences.
    NoPref,
    /// Some rack's list (before the offer's rack is known).
    AnyRack,
    /// The rack's list.
    Rack(&'a str),
    /// Every task.
    All,
}

/// What [`PendingLists::take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// This task, at this locality.
    Task(u32, TaskLocality),
    /// Nothing, and nothing more could be found by indexing more tasks.
    Nothing,
    /// Nothing in the lists up to `source`, which tasks not yet indexed may be in: index
    /// more and ask again.
    NeedMore,
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
    for_executor: FastMap<Box<str>, VecDeque<u32>>,
    /// Tasks cached on a host (`hdfs_cache_<host>`): process-local on every executor of the
    /// host. Spark copies them into the list of each executor alive there when the task is
    /// queued; keeping them by host also serves executors that arrive later.
    for_cached_host: FastMap<Box<str>, VecDeque<u32>>,
    for_host: FastMap<Box<str>, VecDeque<u32>>,
    no_prefs: VecDeque<u32>,
    for_rack: FastMap<Box<str>, VecDeque<u32>>,
    all: VecDeque<u32>,
}

/// Which end of a list an entry goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The top: taken next (a re-queued task, a speculative copy).
    Front,
    /// The bottom: after every entry already there (a task indexed for the first time, whose
    /// index is above every indexed one).
    Back,
}

impl PendingLists {
    /// Queues task `index` at the top of every list its preferences name, to be taken next
    /// (Spark's `addPendingTask` for a failed task, or a speculative copy).
    pub(crate) fn push(&mut self, index: u32, preferences: &[TaskLocation], racks: &RackCache) {
        self.add(index, preferences, racks, End::Front);
    }

    /// Queues task `index`, indexed for the first time, at the bottom of every list its
    /// preferences name: its index is above every task indexed before it.
    pub(crate) fn append(&mut self, index: u32, preferences: &[TaskLocation], racks: &RackCache) {
        self.add(index, preferences, racks, End::Back);
    }

    fn add(&mut self, index: u32, preferences: &[TaskLocation], racks: &RackCache, end: End) {
        for location in preferences {
            match location {
                TaskLocation::ExecutorCache { executor_id, .. } => {
                    push_keyed(&mut self.for_executor, executor_id, index, end)
                }
                TaskLocation::HdfsCache(host) => {
                    push_keyed(&mut self.for_cached_host, host, index, end)
                }
                TaskLocation::Host(_) => {}
            }
            push_keyed(&mut self.for_host, location.host(), index, end);
            if let Some(rack) = racks.rack_of(location.host()) {
                push_keyed(&mut self.for_rack, rack, index, end);
            }
        }
        if preferences.is_empty() {
            push_at(&mut self.no_prefs, index, end);
        }
        push_at(&mut self.all, index, end);
    }

    /// Takes a task for an offer on `executor` at `host`, searching only levels `max` allows,
    /// in Spark's order (`dequeueTaskHelper`): the executor's list, then the host's cached
    /// tasks (both PROCESS_LOCAL), the host's list (NODE_LOCAL), tasks without preferences
    /// (reported as PROCESS_LOCAL: they run as well here as anywhere), the rack's list
    /// (RACK_LOCAL), and finally every task (ANY). `rack` is asked only when the rack list
    /// is reached; `judge` decides per entry. A list with nothing to take that `more` says
    /// tasks not yet indexed may be in stops the search with [`Taken::NeedMore`]: the task a
    /// full index would give may be one of those.
    pub(crate) fn take(
        &mut self,
        executor: &str,
        host: &str,
        max: TaskLocality,
        rack: impl FnOnce() -> Option<String>,
        mut judge: impl FnMut(u32) -> Candidate,
        more: impl Fn(Source<'_>) -> bool,
    ) -> Taken {
        if let Some(index) = take_keyed(&mut self.for_executor, executor, &mut judge) {
            return Taken::Task(index, TaskLocality::ProcessLocal);
        }
        if more(Source::Executor(executor)) {
            return Taken::NeedMore;
        }
        if let Some(index) = take_keyed(&mut self.for_cached_host, host, &mut judge) {
            return Taken::Task(index, TaskLocality::ProcessLocal);
        }
        if more(Source::CachedHost(host)) {
            return Taken::NeedMore;
        }
        if max.allows(TaskLocality::NodeLocal) {
            if let Some(index) = take_keyed(&mut self.for_host, host, &mut judge) {
                return Taken::Task(index, TaskLocality::NodeLocal);
            }
            if more(Source::Host(host)) {
                return Taken::NeedMore;
            }
        }
        // No-preference tasks come after node-local ones to keep cross-rack traffic down.
        if max.allows(TaskLocality::NoPref) {
            if let Some(index) = take_from(&mut self.no_prefs, &mut judge) {
                return Taken::Task(index, TaskLocality::ProcessLocal);
            }
            if more(Source::NoPref) {
                return Taken::NeedMore;
            }
        }
        if max.allows(TaskLocality::RackLocal)
            && (!self.for_rack.is_empty() || more(Source::AnyRack))
        {
            if let Some(rack) = rack() {
                if let Some(index) = take_keyed(&mut self.for_rack, &rack, &mut judge) {
                    return Taken::Task(index, TaskLocality::RackLocal);
                }
                if more(Source::Rack(&rack)) {
                    return Taken::NeedMore;
                }
            }
        }
        if max.allows(TaskLocality::Any) {
            if let Some(index) = take_from(&mut self.all, &mut judge) {
                return Taken::Task(index, TaskLocality::Any);
            }
            if more(Source::All) {
                return Taken::NeedMore;
            }
        }
        Taken::Nothing
    }

    /// The locality levels these lists make worth waiting for, given who is alive (Spark's
    /// `computeValidLocalityLevels`): PROCESS_LOCAL if a listed executor (or an executor on
    /// a host with cached tasks) is alive, NODE_LOCAL if a listed host has an executor,
    /// NO_PREF if tasks without preferences are queued, RACK_LOCAL if a listed rack has a
    /// live host, and always ANY. Like Spark, a list counts while it holds entries, stale
    /// ones included. O(keys), on executor added or lost only. Tasks not yet indexed are
    /// not in these lists: the [`Frontier`](super::frontier::Frontier) adds theirs.
    pub(crate) fn valid_levels(&self, view: &dyn ClusterView) -> LevelFlags {
        let live = |map: &FastMap<Box<str>, VecDeque<u32>>, alive: &dyn Fn(&str) -> bool| {
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
        LevelFlags {
            process,
            node,
            no_pref,
            rack,
        }
    }
}

fn push_keyed(map: &mut FastMap<Box<str>, VecDeque<u32>>, key: &str, index: u32, end: End) {
    // Look up before inserting, so a known key costs no allocation.
    match map.get_mut(key) {
        Some(list) => push_at(list, index, end),
        None => {
            map.insert(key.into(), VecDeque::from([index]));
        }
    }
}

fn push_at(list: &mut VecDeque<u32>, index: u32, end: End) {
    match end {
        End::Front => list.push_front(index),
        End::Back => list.push_back(index),
    }
}

fn take_keyed(
    map: &mut FastMap<Box<str>, VecDeque<u32>>,
    key: &str,
    judge: &mut impl FnMut(u32) -> Candidate,
) -> Option<u32> {
    if map.is_empty() {
        return None;
    }
    map.get_mut(key).and_then(|list| take_from(list, judge))
}

/// Walks the list from the top: stale entries are dropped, skipped ones stay, the first
/// taken one is removed and returned. Normal lists never skip, so removal is from the front.
fn take_from(list: &mut VecDeque<u32>, judge: &mut impl FnMut(u32) -> Candidate) -> Option<u32> {
    let mut i = 0;
    while i < list.len() {
        let index = list[i];
        match judge(index) {
            Candidate::Take => {
                list.remove(i);
                return Some(index);
            }
            Candidate::Stale => {
                list.remove(i);
            }
            Candidate::Skip => i += 1,
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

    fn none(_: Source<'_>) -> bool {
        false
    }

    #[test]
    fn lower_indices_come_first_and_stale_entries_are_dropped() {
        let mut lists = PendingLists::default();
        for index in 0..3 {
            lists.append(index, &[], &racks());
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
                none,
            )
        };
        assert_eq!(
            take(&mut lists, &[]),
            Taken::Task(0, TaskLocality::ProcessLocal)
        );
        // 1 launched elsewhere meanwhile: its no-pref entry is dropped, 2 comes next.
        assert_eq!(
            take(&mut lists, &[1]),
            Taken::Task(2, TaskLocality::ProcessLocal)
        );
        // The `all` list still holds 0, 1, 2: all stale now.
        assert_eq!(take(&mut lists, &[0, 1, 2]), Taken::Nothing);
        assert!(lists.all.is_empty());
    }

    #[test]
    fn a_pushed_task_comes_before_appended_ones() {
        let mut lists = PendingLists::default();
        for index in 0..3 {
            lists.append(index, &[], &racks());
        }
        lists.push(2, &[], &racks());
        let taken = lists.take(
            "e",
            "h",
            TaskLocality::Any,
            || None,
            |_| Candidate::Take,
            none,
        );
        assert_eq!(taken, Taken::Task(2, TaskLocality::ProcessLocal));
    }

    #[test]
    fn an_empty_list_that_unindexed_tasks_may_fill_asks_for_more() {
        let mut lists = PendingLists::default();
        lists.append(0, &[TaskLocation::Host("a".into())], &racks());
        let judge = |_| Candidate::Take;
        // Host b's list is empty, but tasks not yet indexed may prefer b.
        let more = |source: Source<'_>| source == Source::Host("b");
        let taken = lists.take("e", "b", TaskLocality::Any, || None, judge, more);
        assert_eq!(taken, Taken::NeedMore);
        // On host a, the list answers before the frontier is asked.
        let taken = lists.take("e", "a", TaskLocality::Any, || None, judge, more);
        assert_eq!(taken, Taken::Task(0, TaskLocality::NodeLocal));
    }

    #[test]
    fn skipped_entries_stay_queued() {
        let mut lists = PendingLists::default();
        lists.push(0, &[], &racks());
        let skip = lists.take(
            "e",
            "h",
            TaskLocality::Any,
            || None,
            |_| Candidate::Skip,
            none,
        );
        assert_eq!(skip, Taken::Nothing);
        assert_eq!(lists.no_prefs, VecDeque::from([0]));
        assert_eq!(lists.all, VecDeque::from([0]));
    }

    #[test]
    fn node_local_entries_need_node_local_allowed() {
        let mut lists = PendingLists::default();
        lists.append(0, &[TaskLocation::Host("h".into())], &racks());
        let take = |lists: &mut PendingLists, max| {
            lists.take("e", "h", max, || None, |_| Candidate::Take, none)
        };
        assert_eq!(take(&mut lists, TaskLocality::ProcessLocal), Taken::Nothing);
        assert_eq!(
            take(&mut lists, TaskLocality::NodeLocal),
            Taken::Task(0, TaskLocality::NodeLocal)
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
