//! Valid locality levels and delay scheduling (Spark's `myLocalityLevels`, `localityWaits`,
//! `currentLocalityIndex`, `getAllowedLocalityLevel`, `recomputeLocality`).
//!
//! A task set starts at its most local valid level and only offers tasks at that level until
//! the level's wait has passed since the timer was last reset; then it moves one level out.
//! Levels with nothing left to run are skipped at once (SPARK-4939). The timer is reset by
//! the scheduler after an offer round without delay rejects (SPARK-18886), or on every launch
//! in the legacy mode.

use std::time::{Duration, Instant};

use crate::conf::SchedulerConf;
use crate::locality::TaskLocality;

/// The valid locality levels of a task set, most local first, always ending with ANY.
/// Inline (no allocation): there are at most five.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LevelSet {
    levels: [TaskLocality; 5],
    len: usize,
}

impl LevelSet {
    /// The levels for which the flags are set, in order, plus ANY.
    pub(crate) fn from_flags(process: bool, node: bool, no_pref: bool, rack: bool) -> LevelSet {
        let mut set = LevelSet {
            levels: [TaskLocality::Any; 5],
            len: 0,
        };
        let flagged = [
            (process, TaskLocality::ProcessLocal),
            (node, TaskLocality::NodeLocal),
            (no_pref, TaskLocality::NoPref),
            (rack, TaskLocality::RackLocal),
            (true, TaskLocality::Any),
        ];
        for (on, level) in flagged {
            if on {
                set.levels[set.len] = level;
                set.len += 1;
            }
        }
        set
    }

    /// The levels, most local first.
    pub(crate) fn as_slice(&self) -> &[TaskLocality] {
        &self.levels[..self.len]
    }

    /// The position of `level`, or of the next less local level present when `level` is
    /// not (Spark's `getLocalityIndex`; ANY is always last, so there always is one).
    pub(crate) fn index_of(&self, level: TaskLocality) -> usize {
        self.as_slice()
            .iter()
            .position(|&l| level <= l)
            .unwrap_or(self.len.saturating_sub(1))
    }

    fn contains(&self, level: TaskLocality) -> bool {
        self.as_slice().contains(&level)
    }
}

/// Delay-scheduling state of one task set.
#[derive(Debug, Clone)]
pub(crate) struct DelayScheduler {
    levels: LevelSet,
    /// The wait at each level of `levels`.
    waits: [Duration; 5],
    /// Index into `levels` of the current level.
    current: usize,
    /// When the wait at the current level started.
    last_reset: Instant,
    /// The per-level waits from the configuration.
    conf_waits: [Duration; 5],
    /// SPARK-18886: whether no offer was rejected by delay scheduling since the last reset.
    /// Kept here for the task scheduler, which drives the resets.
    no_rejects_since_last_reset: bool,
}

impl DelayScheduler {
    /// Starts at the most local of `levels`, with the timer reset at `now`.
    pub(crate) fn new(levels: LevelSet, conf: &SchedulerConf, now: Instant) -> DelayScheduler {
        let conf_waits = TaskLocality::ALL.map(|level| conf.locality_wait(level));
        let mut delay = DelayScheduler {
            levels,
            waits: [Duration::ZERO; 5],
            current: 0,
            last_reset: now,
            conf_waits,
            no_rejects_since_last_reset: true,
        };
        delay.refresh_waits();
        delay
    }

    /// The valid levels.
    pub(crate) fn levels(&self) -> &[TaskLocality] {
        self.levels.as_slice()
    }

    /// The level tasks may be launched at now (Spark's `getAllowedLocalityLevel`).
    /// `has_tasks_at(level)` says whether a pending task could run at that level.
    pub(crate) fn allowed(
        &mut self,
        now: Instant,
        has_tasks_at: impl Fn(TaskLocality) -> bool,
    ) -> TaskLocality {
        let levels = self.levels.as_slice();
        while self.current + 1 < levels.len() {
            let level = levels[self.current];
            let wait = self.waits[self.current];
            if !has_tasks_at(level) {
                // Nothing to wait for at this level (SPARK-4939): move on now and start the
                // next level's wait from now.
                self.last_reset = now;
                self.current += 1;
            } else if now.saturating_duration_since(self.last_reset) >= wait {
                // Advance by exactly the wait, not to `now`, so that the next level's wait
                // counts from when this one expired.
                self.last_reset = self.last_reset.checked_add(wait).unwrap_or(now);
                self.current += 1;
            } else {
                return level;
            }
        }
        levels[self.current]
    }

    /// Resets the timer at `now` and, given a level, makes it the current one (Spark's
    /// `resetDelayScheduleTimer`).
    pub(crate) fn reset(&mut self, min_locality: Option<TaskLocality>, now: Instant) {
        self.last_reset = now;
        if let Some(level) = min_locality {
            self.current = self.levels.index_of(level);
        }
    }

    /// Switches to new valid levels after executors came or went (Spark's
    /// `recomputeLocality`): keeps the current level (or the next less local one), but if
    /// that moved it further out than before, jumps to the most local level that is new
    /// (SPARK-31837): a newly possible level is worth trying first.
    pub(crate) fn recompute(&mut self, levels: LevelSet) {
        let previous = self.levels;
        let previous_index = self.current;
        let previous_level =
            previous.as_slice()[previous_index.min(previous.len.saturating_sub(1))];
        self.levels = levels;
        self.refresh_waits();
        self.current = levels.index_of(previous_level);
        if self.current > previous_index {
            if let Some(&new_level) = levels.as_slice().iter().find(|l| !previous.contains(**l)) {
                self.current = levels.index_of(new_level);
            }
        }
    }

    pub(crate) fn no_rejects_since_last_reset(&self) -> bool {
        self.no_rejects_since_last_reset
    }

    pub(crate) fn set_no_rejects_since_last_reset(&mut self, value: bool) {
        self.no_rejects_since_last_reset = value;
    }

    fn refresh_waits(&mut self) {
        for (i, level) in self.levels.as_slice().iter().enumerate() {
            self.waits[i] = self.conf_waits[*level as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskLocality::*;

    fn conf() -> SchedulerConf {
        SchedulerConf {
            locality_wait_process: Duration::from_secs(1),
            locality_wait_node: Duration::from_secs(2),
            locality_wait_rack: Duration::from_secs(4),
            ..SchedulerConf::default()
        }
    }

    #[test]
    fn index_of_falls_to_the_next_less_local_level() {
        let set = LevelSet::from_flags(true, false, false, true);
        assert_eq!(set.as_slice(), &[ProcessLocal, RackLocal, Any]);
        assert_eq!(set.index_of(ProcessLocal), 0);
        assert_eq!(set.index_of(NodeLocal), 1);
        assert_eq!(set.index_of(Any), 2);
    }

    #[test]
    fn waits_add_up_level_by_level() {
        let t0 = Instant::now();
        let levels = LevelSet::from_flags(true, true, false, true);
        let mut delay = DelayScheduler::new(levels, &conf(), t0);
        let all = |_| true;
        assert_eq!(delay.allowed(t0, all), ProcessLocal);
        assert_eq!(
            delay.allowed(t0 + Duration::from_millis(999), all),
            ProcessLocal
        );
        assert_eq!(delay.allowed(t0 + Duration::from_secs(1), all), NodeLocal);
        // The node wait counts from t0 + 1 s, when the process wait expired.
        assert_eq!(delay.allowed(t0 + Duration::from_secs(3), all), RackLocal);
        assert_eq!(delay.allowed(t0 + Duration::from_secs(7), all), Any);
    }

    #[test]
    fn empty_levels_are_skipped_without_waiting() {
        let t0 = Instant::now();
        let levels = LevelSet::from_flags(true, true, false, false);
        let mut delay = DelayScheduler::new(levels, &conf(), t0);
        assert_eq!(delay.allowed(t0, |l| l != ProcessLocal), NodeLocal);
    }

    #[test]
    fn reset_moves_back_to_the_launched_level() {
        let t0 = Instant::now();
        let levels = LevelSet::from_flags(true, true, false, false);
        let mut delay = DelayScheduler::new(levels, &conf(), t0);
        let t = t0 + Duration::from_secs(10);
        assert_eq!(delay.allowed(t, |_| true), Any);
        delay.reset(Some(ProcessLocal), t);
        assert_eq!(delay.allowed(t, |_| true), ProcessLocal);
    }
}
