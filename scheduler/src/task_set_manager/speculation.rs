//! Speculation: spotting slow tasks and queueing one extra copy of each (Spark's
//! `checkSpeculatableTasks`).
//!
//! Once `max(floor(quantile × tasks), 1)` tasks have succeeded, a task whose only attempt has
//! run longer than `max(multiplier × median successful duration, minTaskRuntime)` is marked
//! speculatable and queued in the speculative pending lists. A copy never runs on a host
//! where an attempt of the task already ran. Not ported: the absolute duration threshold
//! (`spark.speculation.task.duration.threshold`), efficiency-based speculation (it needs
//! per-task record counts Ember does not report) and decommission-driven speculation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::conf::SchedulerConf;
use crate::ids::{FastMap, TaskId};

use super::records::IndexStatus;
use super::TaskSetManager;

/// A host, interned per task set so that remembering where attempts ran costs no string
/// allocation per launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostId(u32);

/// Hosts seen by a task set's launches.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostTable {
    ids: FastMap<Box<str>, HostId>,
}

impl HostTable {
    /// The id of `host`, allocating one the first time.
    pub(crate) fn intern(&mut self, host: &str) -> HostId {
        if let Some(&id) = self.ids.get(host) {
            return id;
        }
        let id = HostId(u32::try_from(self.ids.len()).unwrap_or(u32::MAX));
        self.ids.insert(host.into(), id);
        id
    }

    /// The id of `host` if a launch ever went there.
    pub(crate) fn get(&self, host: &str) -> Option<HostId> {
        self.ids.get(host).copied()
    }
}

/// The hosts an attempt of one task ran on. Most tasks run once, so the first host is kept
/// inline and only further ones allocate; those sit behind one pointer, so that every task's
/// record stays small (issue 15: a record per task of a 10^6-task set, touched at each
/// launch and end).
#[derive(Debug, Clone, Default)]
pub(crate) struct HostsTried {
    first: Option<HostId>,
    more: Option<Box<MoreHosts>>,
}

/// The hosts after the first, behind a thin pointer: a task record holds 8 bytes for them,
/// not a `Vec`'s 24.
#[derive(Debug, Clone, Default)]
struct MoreHosts(Vec<HostId>);

impl HostsTried {
    /// Remembers that an attempt ran on `host`.
    pub(crate) fn insert(&mut self, host: HostId) {
        match self.first {
            None => self.first = Some(host),
            Some(first) if first == host => {}
            Some(_) => {
                let more = &mut self.more.get_or_insert_with(Box::default).0;
                if !more.contains(&host) {
                    more.push(host);
                }
            }
        }
    }

    /// Whether an attempt ran on `host`.
    pub(crate) fn contains(&self, host: HostId) -> bool {
        self.first == Some(host)
            || self
                .more
                .as_ref()
                .is_some_and(|more| more.0.contains(&host))
    }
}

/// The median of the inserted durations (Spark's `PercentileHeap` at 0.5: the element at
/// `len / 2` of the sorted values, so the upper median for an even count). O(log n) insert,
/// O(1) lookup.
#[derive(Debug, Clone, Default)]
pub(crate) struct MedianHeap {
    /// The smaller `len / 2` values (max-heap).
    low: BinaryHeap<Duration>,
    /// The rest (min-heap); its top is the median.
    high: BinaryHeap<Reverse<Duration>>,
}

impl MedianHeap {
    pub(crate) fn insert(&mut self, value: Duration) {
        match self.high.peek() {
            Some(&Reverse(median)) if value < median => self.low.push(value),
            _ => self.high.push(Reverse(value)),
        }
        let want_low = self.len() / 2;
        while self.low.len() > want_low {
            if let Some(v) = self.low.pop() {
                self.high.push(Reverse(v));
            }
        }
        while self.low.len() < want_low {
            match self.high.pop() {
                Some(Reverse(v)) => self.low.push(v),
                None => break,
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.low.len() + self.high.len()
    }

    pub(crate) fn median(&self) -> Option<Duration> {
        self.high.peek().map(|&Reverse(v)| v)
    }
}

/// Speculation settings and the successful durations they are judged against.
#[derive(Debug, Clone)]
pub(crate) struct Speculation {
    enabled: bool,
    multiplier: f64,
    min_runtime: Duration,
    /// Successes needed before anything is speculated: `max(floor(quantile × tasks), 1)`.
    min_finished: usize,
    /// Durations of attempts that succeeded here (recorded only when enabled).
    durations: MedianHeap,
}

impl Speculation {
    pub(crate) fn new(conf: &SchedulerConf, num_tasks: usize) -> Speculation {
        // A float-to-int `as` saturates (and maps NaN to 0), so odd settings cannot panic.
        let quantile_count = (conf.speculation_quantile * num_tasks as f64).floor() as usize;
        Speculation {
            enabled: conf.speculation,
            multiplier: conf.speculation_multiplier,
            min_runtime: conf.speculation_min_task_runtime,
            min_finished: quantile_count.max(1),
            durations: MedianHeap::default(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Records the duration of an attempt that succeeded.
    pub(crate) fn record_success(&mut self, duration: Duration) {
        if self.enabled {
            self.durations.insert(duration);
        }
    }

    /// How long a task must have run to be speculated, once enough tasks succeeded.
    fn threshold(&self) -> Option<Duration> {
        if self.durations.len() < self.min_finished {
            return None;
        }
        let median = self.durations.median()?;
        let scaled = median.as_secs_f64() * self.multiplier;
        // A negative or NaN multiplier means no scaling floor; an enormous one, never.
        let scaled = Duration::try_from_secs_f64(scaled).unwrap_or(if scaled > 0.0 {
            Duration::MAX
        } else {
            Duration::ZERO
        });
        Some(scaled.max(self.min_runtime))
    }
}

impl TaskSetManager {
    /// Marks slow tasks speculatable (Spark's `checkSpeculatableTasks`); true if any new.
    /// O(running attempts).
    pub fn check_speculatable_tasks(&mut self, now: Instant) -> bool {
        // With one task there is no median to compare against (Spark speculates it only
        // with an absolute duration threshold, which Ember does not have).
        if !self.speculation.enabled() || !self.is_active() || self.task_set.tasks.len() == 1 {
            return false;
        }
        let Some(threshold) = self.speculation.threshold() else {
            return false;
        };
        let mut slow: Vec<(TaskId, u32)> = self
            .running
            .iter()
            .filter(|(_, attempt)| {
                let single = self.tasks.get(attempt.index as usize).map(|t| t.status)
                    == Some(IndexStatus::Running {
                        copies: 1,
                        speculatable: false,
                    });
                single && now.saturating_duration_since(attempt.launched_at) > threshold
            })
            .map(|(tid, attempt)| (tid, attempt.index))
            .collect();
        // Mark in task-id order so that which copy launches first does not depend on hashing.
        slow.sort_unstable();
        for &(tid, index) in &slow {
            self.mark_speculatable(index);
            log::info!(
                "Marking task {index} in stage {} (TID {tid}) as speculatable because it ran \
                 more than {threshold:?} ({} speculatable tasks in this task set now)",
                self.task_set.stage_name(),
                self.speculatable
            );
        }
        !slow.is_empty()
    }

    /// Queues one speculative copy of `index`, whose single attempt is running.
    pub(crate) fn mark_speculatable(&mut self, index: u32) {
        let Some(record) = self.tasks.get_mut(index as usize) else {
            return;
        };
        if record.status
            != (IndexStatus::Running {
                copies: 1,
                speculatable: false,
            })
        {
            return;
        }
        record.status = IndexStatus::Running {
            copies: 1,
            speculatable: true,
        };
        self.speculatable += 1;
        if let Some(spec) = self.task_set.tasks.get(index as usize) {
            self.speculative
                .push(index, &spec.preferred_locations, &self.racks);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn median_is_the_upper_middle_like_sparks_percentile_heap() {
        let mut heap = MedianHeap::default();
        assert_eq!(heap.median(), None);
        for v in [5, 1, 9, 3] {
            heap.insert(ms(v));
        }
        // sorted 1 3 5 9: element 4 / 2 = 2 is 5.
        assert_eq!(heap.median(), Some(ms(5)));
        heap.insert(ms(4));
        // sorted 1 3 4 5 9: element 2 is 4.
        assert_eq!(heap.median(), Some(ms(4)));
        for v in [0, 0, 0] {
            heap.insert(ms(v));
        }
        // sorted 0 0 0 1 3 4 5 9: element 4 is 3.
        assert_eq!(heap.median(), Some(ms(3)));
    }

    #[test]
    fn hosts_tried_remembers_every_host_once() {
        let mut table = HostTable::default();
        let (a, b) = (table.intern("a"), table.intern("b"));
        assert_eq!(table.intern("a"), a);
        let mut tried = HostsTried::default();
        tried.insert(a);
        tried.insert(a);
        assert!(tried.contains(a) && !tried.contains(b));
        tried.insert(b);
        assert!(tried.contains(b));
        assert_eq!(tried.more.as_ref().map(|more| more.0.len()), Some(1));
    }

    #[test]
    fn a_task_record_stays_small() {
        // One per task of the set: 56 bytes while the extra hosts were an inline Vec.
        assert!(std::mem::size_of::<super::super::records::TaskRecord>() <= 40);
        assert_eq!(std::mem::size_of::<HostsTried>(), 16);
    }

    #[test]
    fn threshold_waits_for_the_quantile_and_respects_the_floor() {
        let conf = SchedulerConf {
            speculation: true,
            speculation_quantile: 0.5,
            speculation_multiplier: 2.0,
            speculation_min_task_runtime: ms(100),
            ..SchedulerConf::default()
        };
        let mut spec = Speculation::new(&conf, 4);
        spec.record_success(ms(10));
        assert_eq!(spec.threshold(), None);
        spec.record_success(ms(300));
        assert_eq!(spec.threshold(), Some(ms(600)));
        let mut floor = Speculation::new(&conf, 2);
        floor.record_success(ms(10));
        assert_eq!(floor.threshold(), Some(ms(100)));
        let odd = SchedulerConf {
            speculation_multiplier: f64::NAN,
            ..conf
        };
        let mut odd = Speculation::new(&odd, 2);
        odd.record_success(ms(10));
        assert_eq!(odd.threshold(), Some(ms(100)));
    }
}
