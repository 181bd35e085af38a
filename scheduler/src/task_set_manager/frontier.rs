//! The tasks of a set not yet in its pending lists (issue 15).
//!
//! Spark builds every pending list when a task set is created: for 10^6 tasks of three
//! preferred hosts each, 3 × 10^6 hash lookups and pushes, and a record per task, before the
//! first task can launch (196–281 ms here, against a goal of 50). The frontier indexes the
//! tasks in index order, a batch at a time, when an offer needs them.
//!
//! Invariant: tasks `[0, next)` are indexed (they have a record and sit in the lists), tasks
//! `[next, len)` are pending and in no list. Those have higher indices than every indexed
//! task, so a full index would hold them below every indexed entry of each list: the lists
//! built so far are the full lists without their bottoms. A list with a task to take gives
//! the task the full list would; an empty one asks for more ([`Frontier::may_hold`]) when
//! the frontier may hold tasks for it, and the search goes on once they are indexed. So
//! offers launch exactly what a full index would launch.
//!
//! Two questions must be answered exactly for the tasks behind the frontier, without
//! indexing them all:
//!
//! - whether one of them could run at a level (delay scheduling skips a level with none,
//!   SPARK-4939): the last index that could run at each level, from one scan at creation
//!   that reads the preferences' kinds and hashes nothing (racks: on first need);
//! - whether one of them names a key (executor, host, rack) that is alive, for the valid
//!   locality levels: a scan of the next batch of tasks for one, else a summary of
//!   every key's last index, built once and exact from then on as the frontier moves.

use crate::ids::{ExecutorId, FastMap};
use crate::locality::{TaskLocality, TaskLocation};
use crate::task::TaskSpec;

use super::pending::{LevelFlags, LevelMask, PendingCounts, PendingLists, RackCache, Source};
use super::records::TaskRecord;
use super::ClusterView;

/// Tasks indexed at a time: enough that the first offer round on 1,000 executors of 4 cores
/// needs only a few batches, few enough that one batch costs well under a millisecond.
pub(crate) const BATCH: u32 = 4096;

/// Which of a task's preferences a key-liveness question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Executor-cache and HDFS-cache locations (PROCESS_LOCAL).
    Process,
    /// Every location's host (NODE_LOCAL).
    Node,
    /// The rack of every location's host (RACK_LOCAL).
    Rack,
}

/// The last index behind the frontier of every key a list is kept by, built once.
#[derive(Debug, Clone, Default)]
struct SuffixKeys {
    executors: FastMap<Box<str>, u32>,
    cached_hosts: FastMap<Box<str>, u32>,
    hosts: FastMap<Box<str>, u32>,
    racks: FastMap<Box<str>, u32>,
}

impl SuffixKeys {
    /// Whether some task at `next` or above names a live key of this kind.
    fn any_alive(&self, kind: Kind, next: u32, view: &dyn ClusterView) -> bool {
        let live = |map: &FastMap<Box<str>, u32>, alive: &dyn Fn(&str) -> bool| {
            map.iter().any(|(key, &last)| last >= next && alive(key))
        };
        match kind {
            Kind::Process => {
                live(&self.executors, &|e| {
                    view.is_executor_alive(&ExecutorId::new(e))
                }) || live(&self.cached_hosts, &|h| view.has_executors_alive_on_host(h))
            }
            Kind::Node => live(&self.hosts, &|h| view.has_executors_alive_on_host(h)),
            Kind::Rack => live(&self.racks, &|r| view.has_hosts_alive_on_rack(r)),
        }
    }
}

/// The tasks of a set not indexed yet, and what must be known of them.
#[derive(Debug, Clone)]
pub(crate) struct Frontier {
    /// The first task not indexed.
    next: u32,
    /// Tasks in the set.
    len: u32,
    /// Tasks indexed at a time.
    batch: u32,
    /// The last task that could run PROCESS_LOCAL (has a cache location), if any.
    last_process: Option<u32>,
    /// The last task with a preference, if any.
    last_node: Option<u32>,
    /// The last task without preferences, if any.
    last_no_pref: Option<u32>,
    /// The last task with a preferred host in a known rack; `None` until first needed.
    last_rack: Option<Option<u32>>,
    /// Every key's last index, once a question needed it.
    summary: Option<Box<SuffixKeys>>,
}

impl Frontier {
    /// Nothing of `specs` indexed; `batch` tasks are indexed at a time. Scans the
    /// preferences' kinds once (hashing nothing).
    pub(crate) fn new(specs: &[TaskSpec], batch: u32) -> Frontier {
        let mut frontier = Frontier {
            next: 0,
            len: u32::try_from(specs.len()).unwrap_or(u32::MAX),
            batch: batch.max(1),
            last_process: None,
            last_node: None,
            last_no_pref: None,
            last_rack: None,
            summary: None,
        };
        // Forwards, in the order the specs were allocated, so that the reads of their
        // preference lists stream; only the kinds are read, nothing is hashed.
        for (index, spec) in specs.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let preferences = &spec.preferred_locations;
            if preferences.is_empty() {
                frontier.last_no_pref = Some(index);
                continue;
            }
            frontier.last_node = Some(index);
            if preferences
                .iter()
                .any(|location| !matches!(location, TaskLocation::Host(_)))
            {
                frontier.last_process = Some(index);
            }
        }
        frontier
    }

    /// Whether every task is indexed.
    pub(crate) fn is_done(&self) -> bool {
        self.next >= self.len
    }

    /// Tasks not indexed yet (all pending).
    pub(crate) fn remaining(&self) -> usize {
        (self.len - self.next.min(self.len)) as usize
    }

    /// Tasks indexed so far.
    #[cfg(test)]
    pub(crate) fn indexed(&self) -> usize {
        self.next as usize
    }

    /// Indexes the next batch: each task's record, its counts and its list entries.
    pub(crate) fn index_batch(
        &mut self,
        specs: &[TaskSpec],
        records: &mut Vec<TaskRecord>,
        counts: &mut PendingCounts,
        lists: &mut PendingLists,
        racks: &mut RackCache,
        view: &dyn ClusterView,
    ) {
        let end = self.next.saturating_add(self.batch).min(self.len);
        for index in self.next..end {
            let Some(spec) = specs.get(index as usize) else {
                break;
            };
            let preferences = &spec.preferred_locations;
            racks.learn(preferences, view);
            let mask = LevelMask::of(preferences, racks);
            counts.add(mask);
            records.push(TaskRecord::new(mask));
            lists.append(index, preferences, racks);
        }
        self.next = end;
    }

    fn behind(&self, last: Option<u32>) -> bool {
        last.is_some_and(|last| last >= self.next)
    }

    /// The last task with a host in a known rack, found on first need by a backward scan
    /// (the last task usually has one, so it usually stops at once).
    fn last_rack(
        &mut self,
        specs: &[TaskSpec],
        racks: &mut RackCache,
        view: &dyn ClusterView,
    ) -> Option<u32> {
        if !racks.enabled() {
            return None;
        }
        if let Some(last) = self.last_rack {
            return last;
        }
        let mut found = None;
        for index in (self.next..self.len).rev() {
            let Some(spec) = specs.get(index as usize) else {
                continue;
            };
            racks.learn(&spec.preferred_locations, view);
            if LevelMask::of(&spec.preferred_locations, racks).at(TaskLocality::RackLocal) {
                found = Some(index);
                break;
            }
        }
        // Exact from now on: the frontier only moves up, and `found` is the highest.
        self.last_rack = Some(found);
        found
    }

    /// For each level (by `TaskLocality as usize`), whether a task behind the frontier could
    /// run there. Exact.
    pub(crate) fn levels_present(
        &mut self,
        specs: &[TaskSpec],
        racks: &mut RackCache,
        view: &dyn ClusterView,
    ) -> [bool; 5] {
        if self.is_done() {
            return [false; 5];
        }
        let rack = self.last_rack(specs, racks, view);
        [
            self.behind(self.last_process),
            self.behind(self.last_node),
            self.behind(self.last_no_pref),
            self.behind(rack),
            true,
        ]
    }

    /// Whether tasks behind the frontier may be in the list `source` names. Never `false`
    /// when one is (a `true` only costs indexing a batch more).
    pub(crate) fn may_hold(&self, source: Source<'_>) -> bool {
        if self.is_done() {
            return false;
        }
        let keyed = |pick: fn(&SuffixKeys) -> &FastMap<Box<str>, u32>, key: &str| {
            self.summary.as_ref().is_none_or(|summary| {
                pick(summary)
                    .get(key)
                    .is_some_and(|&last| last >= self.next)
            })
        };
        let racks = match self.last_rack {
            Some(last) => self.behind(last),
            // Not looked for yet: there may be some.
            None => true,
        };
        match source {
            Source::Executor(e) => self.behind(self.last_process) && keyed(|s| &s.executors, e),
            Source::CachedHost(h) => {
                self.behind(self.last_process) && keyed(|s| &s.cached_hosts, h)
            }
            Source::Host(h) => self.behind(self.last_node) && keyed(|s| &s.hosts, h),
            Source::NoPref => self.behind(self.last_no_pref),
            Source::AnyRack => racks,
            Source::Rack(r) => racks && keyed(|s| &s.racks, r),
            Source::All => true,
        }
    }

    /// The valid-level flags the tasks behind the frontier add to `known` (what the lists
    /// give): exactly those a full index would add. Flags already set are not looked into.
    pub(crate) fn valid_levels(
        &mut self,
        known: LevelFlags,
        specs: &[TaskSpec],
        racks: &mut RackCache,
        view: &dyn ClusterView,
    ) -> LevelFlags {
        if self.is_done() {
            return known;
        }
        let mut flags = known;
        flags.no_pref |= self.behind(self.last_no_pref);
        if !flags.process && self.behind(self.last_process) {
            flags.process = self.any_alive(Kind::Process, specs, racks, view);
        }
        if !flags.node && self.behind(self.last_node) {
            flags.node = self.any_alive(Kind::Node, specs, racks, view);
        }
        if !flags.rack {
            let last = self.last_rack(specs, racks, view);
            if self.behind(last) {
                flags.rack = self.any_alive(Kind::Rack, specs, racks, view);
            }
        }
        flags
    }

    /// Whether a task behind the frontier names a live key of `kind`: a short scan for one,
    /// else the summary (built on first need).
    fn any_alive(
        &mut self,
        kind: Kind,
        specs: &[TaskSpec],
        racks: &mut RackCache,
        view: &dyn ClusterView,
    ) -> bool {
        if let Some(summary) = &self.summary {
            return summary.any_alive(kind, self.next, view);
        }
        // As many as a batch: a scan costs no more than indexing them would.
        let end = self.next.saturating_add(self.batch).min(self.len);
        for index in self.next..end {
            let Some(spec) = specs.get(index as usize) else {
                break;
            };
            if kind == Kind::Rack {
                racks.learn(&spec.preferred_locations, view);
            }
            if names_live_key(kind, &spec.preferred_locations, racks, view) {
                return true;
            }
        }
        if end == self.len {
            return false;
        }
        self.summarize(specs, racks, view);
        let next = self.next;
        self.summary
            .as_ref()
            .is_some_and(|summary| summary.any_alive(kind, next, view))
    }

    /// Builds the summary of every key's last index if there is none yet and tasks are left
    /// behind the frontier; whether it built one.
    pub(crate) fn summarize_once(
        &mut self,
        specs: &[TaskSpec],
        racks: &mut RackCache,
        view: &dyn ClusterView,
    ) -> bool {
        if self.summary.is_some() || self.is_done() {
            return false;
        }
        self.summarize(specs, racks, view);
        true
    }

    /// Records every key's last index behind the frontier: one pass, once per task set.
    fn summarize(&mut self, specs: &[TaskSpec], racks: &mut RackCache, view: &dyn ClusterView) {
        let mut keys = SuffixKeys::default();
        let note = |map: &mut FastMap<Box<str>, u32>, key: &str, index: u32| match map.get_mut(key)
        {
            Some(last) => *last = index,
            None => {
                map.insert(key.into(), index);
            }
        };
        for index in self.next..self.len {
            let Some(spec) = specs.get(index as usize) else {
                break;
            };
            racks.learn(&spec.preferred_locations, view);
            for location in &spec.preferred_locations {
                match location {
                    TaskLocation::ExecutorCache { executor_id, .. } => {
                        note(&mut keys.executors, executor_id, index)
                    }
                    TaskLocation::HdfsCache(host) => note(&mut keys.cached_hosts, host, index),
                    TaskLocation::Host(_) => {}
                }
                note(&mut keys.hosts, location.host(), index);
                if let Some(rack) = racks.rack_of(location.host()) {
                    note(&mut keys.racks, rack, index);
                }
            }
        }
        self.summary = Some(Box::new(keys));
    }
}

/// Whether these preferences name a live key of `kind` (the lists' test in
/// [`PendingLists::valid_levels`], for one task).
fn names_live_key(
    kind: Kind,
    preferences: &[TaskLocation],
    racks: &RackCache,
    view: &dyn ClusterView,
) -> bool {
    preferences.iter().any(|location| match kind {
        Kind::Process => match location {
            TaskLocation::ExecutorCache { executor_id, .. } => {
                view.is_executor_alive(&ExecutorId::new(executor_id))
            }
            TaskLocation::HdfsCache(host) => view.has_executors_alive_on_host(host),
            TaskLocation::Host(_) => false,
        },
        Kind::Node => view.has_executors_alive_on_host(location.host()),
        Kind::Rack => racks
            .rack_of(location.host())
            .is_some_and(|rack| view.has_hosts_alive_on_rack(rack)),
    })
}
