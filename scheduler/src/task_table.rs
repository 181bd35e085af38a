//! A map keyed by task id for the attempts in flight, stored densely (issue 15).
//!
//! Task ids are handed out in order and most attempts end soon after they start, so the ids
//! in flight form a narrow window that moves up. A hash map scatters neighbouring ids over
//! its whole table: at 1,000 executors (4,000 attempts in flight) every launch and every
//! status update missed the cache once per map, and the cost per task grew with the
//! cluster. Here the window is a `VecDeque` of slots indexed by `id - base`: neighbouring ids
//! share cache lines and the window moves as its oldest attempts end.
//!
//! A straggler would hold the window open behind it, and the slots of every id launched
//! since would stay allocated. So the window is kept within [`SPAN_FACTOR`] times the
//! entries it holds (at least [`MIN_SPAN`]): past that, its oldest entries move to a small
//! hash map of their own, and memory stays proportional to the entries.

use std::collections::VecDeque;

use crate::ids::{TaskId, TaskIdMap};

/// The window may span this many times the entries it holds before its oldest move out.
const SPAN_FACTOR: usize = 4;
/// A window this wide is never trimmed: small sets of attempts need no hash map at all.
const MIN_SPAN: usize = 1024;

/// Values by task id: a dense window for the recent ids, a hash map for old stragglers.
#[derive(Debug, Clone)]
pub(crate) struct TaskTable<V> {
    /// The id of `slots[0]`.
    base: u64,
    slots: VecDeque<Option<V>>,
    /// Entries in `slots`.
    in_window: usize,
    /// Entries with ids below `base`.
    old: TaskIdMap<V>,
}

impl<V> Default for TaskTable<V> {
    fn default() -> Self {
        TaskTable {
            base: 0,
            slots: VecDeque::new(),
            in_window: 0,
            old: TaskIdMap::default(),
        }
    }
}

impl<V> TaskTable<V> {
    /// Entries in all.
    pub(crate) fn len(&self) -> usize {
        self.in_window + self.old.len()
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot of `id` in the window, if the window reaches it.
    fn slot(&self, id: TaskId) -> Option<usize> {
        let offset = id.0.checked_sub(self.base)?;
        usize::try_from(offset)
            .ok()
            .filter(|&offset| offset < self.slots.len())
    }

    /// The value of `id`.
    pub(crate) fn get(&self, id: &TaskId) -> Option<&V> {
        if id.0 < self.base {
            return self.old.get(id);
        }
        self.slot(*id)
            .and_then(|slot| self.slots.get(slot))
            .and_then(Option::as_ref)
    }

    /// The value of `id`, to change.
    pub(crate) fn get_mut(&mut self, id: &TaskId) -> Option<&mut V> {
        if id.0 < self.base {
            return self.old.get_mut(id);
        }
        let slot = self.slot(*id)?;
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    /// Whether `id` has a value.
    pub(crate) fn contains_key(&self, id: &TaskId) -> bool {
        self.get(id).is_some()
    }

    /// Sets the value of `id`; the one it had, if any.
    pub(crate) fn insert(&mut self, id: TaskId, value: V) -> Option<V> {
        if self.slots.is_empty() && id.0 > self.base {
            // An empty window starts at the next id it is given (never lower: the old
            // entries are those below `base`).
            self.base = id.0;
        }
        if id.0 < self.base {
            return self.old.insert(id, value);
        }
        let limit = self.span_limit(self.in_window + 1);
        let offset = match usize::try_from(id.0 - self.base) {
            Ok(offset) if offset < limit => offset,
            // Far above the window (ids other task sets took meanwhile): the window's
            // entries become old ones and a new window starts here, rather than filling
            // the gap with empty slots.
            _ => {
                self.spill_window();
                self.base = id.0;
                0
            }
        };
        if offset == self.slots.len() {
            // The usual case: the next id after the newest.
            self.slots.push_back(Some(value));
            self.in_window += 1;
            self.bound_span();
            return None;
        }
        if offset > self.slots.len() {
            self.slots.resize_with(offset + 1, || None);
        }
        let previous = self.slots[offset].replace(value);
        if previous.is_none() {
            self.in_window += 1;
        }
        self.bound_span();
        previous
    }

    /// Removes `id`'s value and returns it.
    pub(crate) fn remove(&mut self, id: &TaskId) -> Option<V> {
        if id.0 < self.base {
            return self.old.remove(id);
        }
        let slot = self.slot(*id)?;
        let value = self.slots.get_mut(slot).and_then(Option::take)?;
        self.in_window -= 1;
        self.trim_front();
        Some(value)
    }

    /// Every entry: the old ones (in no order), then the window's in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (TaskId, &V)> {
        let base = self.base;
        let window = self
            .slots
            .iter()
            .enumerate()
            .filter_map(move |(offset, slot)| {
                slot.as_ref()
                    .map(|value| (TaskId(base + offset as u64), value))
            });
        self.old
            .iter()
            .map(|(id, value)| (*id, value))
            .chain(window)
    }

    /// Every id with a value (in [`iter`](Self::iter)'s order).
    pub(crate) fn keys(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.iter().map(|(id, _)| id)
    }

    /// How many slots a window of `entries` may span.
    fn span_limit(&self, entries: usize) -> usize {
        (SPAN_FACTOR * entries).max(MIN_SPAN)
    }

    /// Moves every entry of the window to the old ones and empties it.
    fn spill_window(&mut self) {
        let base = self.base;
        let span = self.slots.len() as u64;
        for (offset, slot) in self.slots.drain(..).enumerate() {
            if let Some(value) = slot {
                self.old.insert(TaskId(base + offset as u64), value);
            }
        }
        self.base = base + span;
        self.in_window = 0;
    }

    /// Drops the empty slots at the front, so the window starts at its oldest entry.
    fn trim_front(&mut self) {
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    /// Moves the oldest entries out of a window grown too sparse (a straggler holding it
    /// open), so that its slots stay proportional to its entries.
    fn bound_span(&mut self) {
        while self.slots.len() > self.span_limit(self.in_window) {
            if let Some(Some(value)) = self.slots.pop_front() {
                self.old.insert(TaskId(self.base), value);
                self.in_window -= 1;
            }
            self.base += 1;
            self.trim_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// SplitMix64: a fixed random sequence.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn it_answers_as_a_map_does() {
        for seed in 0..50 {
            let mut next = rng(seed);
            let mut table = TaskTable::default();
            let mut model = BTreeMap::new();
            let mut next_id = 0u64;
            for _ in 0..5_000 {
                match next() % 8 {
                    // Mostly new ids in order, sometimes after a jump (other sets' ids).
                    0..=2 => {
                        next_id += if next() % 50 == 0 { next() % 5_000 } else { 1 };
                        let value = next();
                        assert_eq!(table.insert(TaskId(next_id), value), None);
                        model.insert(next_id, value);
                    }
                    // Mostly the oldest ends first, sometimes any.
                    3..=5 => {
                        let pick = if next() % 4 == 0 {
                            model
                                .keys()
                                .nth((next() as usize) % model.len().max(1))
                                .copied()
                        } else {
                            model.keys().next().copied()
                        };
                        if let Some(id) = pick {
                            assert_eq!(table.remove(&TaskId(id)), model.remove(&id));
                        }
                    }
                    6 => {
                        let id = next() % (next_id + 2);
                        assert_eq!(table.get(&TaskId(id)), model.get(&id));
                        if let Some(v) = table.get_mut(&TaskId(id)) {
                            *v += 1;
                            *model.get_mut(&id).unwrap() += 1;
                        }
                    }
                    _ => {
                        let id = next() % (next_id + 2);
                        assert_eq!(table.remove(&TaskId(id)), model.remove(&id));
                    }
                }
                assert_eq!(table.len(), model.len());
            }
            let mut entries: Vec<(u64, u64)> = table.iter().map(|(id, v)| (id.0, *v)).collect();
            entries.sort_unstable();
            assert_eq!(entries, model.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_straggler_does_not_keep_every_later_slot() {
        let mut table = TaskTable::default();
        table.insert(TaskId(0), ());
        // 100,000 attempts launched and ended after it, four at a time in flight.
        for id in 1..=100_000u64 {
            table.insert(TaskId(id), ());
            if id > 4 {
                table.remove(&TaskId(id - 4));
            }
            assert!(
                table.slots.len() <= MIN_SPAN,
                "window of {} slots",
                table.slots.len()
            );
        }
        assert_eq!(table.len(), 5);
        assert!(table.contains_key(&TaskId(0)));
        assert_eq!(table.old.len(), 1);
        assert_eq!(table.remove(&TaskId(0)), Some(()));
    }

    #[test]
    fn neighbouring_ids_share_one_window() {
        let mut table = TaskTable::default();
        for id in 0..4_000u64 {
            table.insert(TaskId(id), id);
        }
        assert!(table.old.is_empty());
        assert_eq!(table.slots.len(), 4_000);
    }
}
