//! The table of asks an env is waiting on, by request id: sans-IO, with time passed in.
//!
//! Every ask (local or remote) gets an entry here with its deadline. A reply takes the entry
//! out; [`PendingAsks::take_expired`] takes out the ones whose deadline passed. Entries sit in
//! a slab (O(1) insert and removal by id) and their deadlines in a heap; removal leaves a
//! stale heap entry behind, skipped when it surfaces and swept once stale ones outnumber live
//! ones by [`SWEEP_SLACK`], so memory stays proportional to the asks in flight.
//!
//! Request ids are `generation << 32 | slot`: a slot reused for a new ask gets a new
//! generation, so a reply that arrives after its ask timed out can never complete another.
//!
//! The table has no lock, no thread and no clock: [`AskRegistry`](crate::ask_registry)
//! wraps it with those.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{DecodeContext, DecodeError};
use crate::error::{RpcError, TimeoutOrigin};

/// Something waiting for the answer to one ask.
pub(crate) trait PendingAsk: Send {
    /// The response body arrived: decode it and complete the ask.
    fn complete(self: Box<Self>, body: Bytes, ctx: &dyn DecodeContext) -> Result<(), DecodeError>;
    /// The ask failed.
    fn fail(self: Box<Self>, error: RpcError);
}

/// What a timeout error says: who did not answer, after how long, and what set the timeout.
#[derive(Debug, Clone)]
pub(crate) struct TimeoutInfo {
    pub(crate) to: Arc<str>,
    pub(crate) after: Duration,
    pub(crate) origin: TimeoutOrigin,
}

impl TimeoutInfo {
    /// The error an ask that ran out of time fails with.
    pub(crate) fn error(&self) -> RpcError {
        RpcError::Timeout {
            to: self.to.to_string(),
            after: self.after,
            origin: self.origin.clone(),
        }
    }
}

/// No connection: the entry is failed only by its timeout, its reply or an abort.
pub(crate) const NO_ROUTE: u64 = 0;

/// How many stale deadlines beyond twice the live asks the heap keeps before a sweep.
pub(crate) const SWEEP_SLACK: usize = 1024;

/// One ask waiting: who to tell, the route it travelled on, and what its timeout says.
pub(crate) struct Entry {
    pub(crate) target: Box<dyn PendingAsk>,
    /// The outbox or connection carrying the ask, so a closed connection fails its asks.
    pub(crate) route: u64,
    pub(crate) timeout: TimeoutInfo,
}

struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

/// The asks of one env, by request id, with their deadlines.
#[derive(Default)]
pub(crate) struct PendingAsks {
    slots: Vec<Slot>,
    free: Vec<u32>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    live: usize,
}

fn split_id(id: u64) -> (usize, u32) {
    ((id & 0xffff_ffff) as usize, (id >> 32) as u32)
}

impl PendingAsks {
    /// Adds an ask whose deadline is `now + timeout.after`; returns its request id.
    pub(crate) fn insert(
        &mut self,
        target: Box<dyn PendingAsk>,
        route: u64,
        timeout: TimeoutInfo,
        now: Instant,
    ) -> u64 {
        let deadline = now + timeout.after;
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.slots.push(Slot {
                    generation: 1,
                    entry: None,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.entry = Some(Entry {
            target,
            route,
            timeout,
        });
        let id = (u64::from(slot.generation) << 32) | index as u64;
        self.live += 1;
        self.sweep_if_stale();
        self.deadlines.push(Reverse((deadline, id)));
        id
    }

    /// Takes the ask with this id out, if it is still waiting.
    pub(crate) fn take(&mut self, id: u64) -> Option<Entry> {
        let (index, generation) = split_id(id);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let entry = slot.entry.take()?;
        // Generation 0 is skipped on wrap-around, so no live ask ever has request id 0 (the
        // id of one-way frames).
        slot.generation = slot.generation.wrapping_add(1).max(1);
        self.free.push(index as u32);
        self.live -= 1;
        Some(entry)
    }

    /// Takes out the ask with this id if it travelled on one of `routes`: an answer counts
    /// only on the connection its ask went out on, so no other peer can answer it.
    pub(crate) fn take_answered_on(&mut self, id: u64, routes: [u64; 2]) -> Option<Entry> {
        let travelled_here = self
            .live_entry(id)
            .is_some_and(|e| e.route != NO_ROUTE && routes.contains(&e.route));
        if !travelled_here {
            return None;
        }
        self.take(id)
    }

    /// Takes out every ask travelling on `route` (a closed connection or a failed outbox).
    pub(crate) fn take_route(&mut self, route: u64) -> Vec<Entry> {
        if route == NO_ROUTE {
            return Vec::new();
        }
        let ids: Vec<u64> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.entry.as_ref().is_some_and(|e| e.route == route))
            .map(|(i, s)| (u64::from(s.generation) << 32) | i as u64)
            .collect();
        ids.into_iter().filter_map(|id| self.take(id)).collect()
    }

    /// Moves the asks whose deadline is at or before `now` into `expired`.
    pub(crate) fn take_expired(&mut self, now: Instant, expired: &mut Vec<Entry>) {
        while let Some(Reverse((deadline, id))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if let Some(entry) = self.take(id) {
                expired.push(entry);
            }
        }
    }

    /// The earliest deadline still in the heap (possibly of an ask already answered: waking
    /// for it early costs one empty pass).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((d, _))| *d)
    }

    /// Takes out every ask.
    pub(crate) fn drain(&mut self) -> Vec<Entry> {
        self.deadlines.clear();
        self.free.clear();
        self.live = 0;
        self.slots.drain(..).filter_map(|s| s.entry).collect()
    }

    /// How many asks are waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    fn live_entry(&self, id: u64) -> Option<&Entry> {
        let (index, generation) = split_id(id);
        self.slots
            .get(index)
            .filter(|s| s.generation == generation)
            .and_then(|s| s.entry.as_ref())
    }

    /// Drops the deadlines of asks that are no longer waiting, once they outnumber the live
    /// ones: amortised O(1) per ask, and memory proportional to the asks in flight.
    fn sweep_if_stale(&mut self) {
        if self.deadlines.len() <= 2 * self.live + SWEEP_SLACK {
            return;
        }
        let PendingAsks {
            deadlines, slots, ..
        } = self;
        deadlines.retain(|Reverse((_, id))| {
            let (index, generation) = split_id(*id);
            slots
                .get(index)
                .is_some_and(|s| s.generation == generation && s.entry.is_some())
        });
    }

    #[cfg(test)]
    fn stale_deadlines(&self) -> usize {
        self.deadlines.len() - self.live
    }

    #[cfg(test)]
    fn slot_count(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A pending ask that reports how it ended on a channel (also the ask registry's).
    pub(crate) struct Probe(pub(crate) mpsc::Sender<Result<Bytes, RpcError>>);

    impl PendingAsk for Probe {
        fn complete(
            self: Box<Self>,
            body: Bytes,
            _ctx: &dyn DecodeContext,
        ) -> Result<(), DecodeError> {
            let _ = self.0.send(Ok(body));
            Ok(())
        }
        fn fail(self: Box<Self>, error: RpcError) {
            let _ = self.0.send(Err(error));
        }
    }

    /// Timeout details of an ask to `h:1` under the default setting.
    pub(crate) fn info(after: Duration) -> TimeoutInfo {
        TimeoutInfo {
            to: Arc::from("h:1"),
            after,
            origin: TimeoutOrigin::Setting(Arc::from("ember.rpc.askTimeout")),
        }
    }

    fn probe() -> (Box<dyn PendingAsk>, mpsc::Receiver<Result<Bytes, RpcError>>) {
        let (tx, rx) = mpsc::channel();
        (Box::new(Probe(tx)), rx)
    }

    #[test]
    fn asks_expire_at_their_deadline_and_not_before() {
        let mut table = PendingAsks::default();
        let t0 = Instant::now();
        let (short, _) = probe();
        let (long, _) = probe();
        let short_id = table.insert(short, NO_ROUTE, info(Duration::from_millis(5)), t0);
        table.insert(long, NO_ROUTE, info(Duration::from_millis(50)), t0);
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_millis(5)));

        let mut expired = Vec::new();
        table.take_expired(t0 + Duration::from_millis(4), &mut expired);
        assert!(expired.is_empty(), "one millisecond early");
        table.take_expired(t0 + Duration::from_millis(5), &mut expired);
        assert_eq!(expired.len(), 1, "exactly at the deadline");
        assert!(table.take(short_id).is_none(), "an expired ask is gone");
        assert_eq!(table.len(), 1);
        assert_eq!(
            expired[0].timeout.error().to_string(),
            "Cannot receive any reply from h:1 in 5 milliseconds. \
             This timeout is controlled by ember.rpc.askTimeout"
        );
    }

    #[test]
    fn taken_asks_never_expire_and_ids_are_not_reused() {
        let mut table = PendingAsks::default();
        let t0 = Instant::now();
        let (first, _) = probe();
        let first_id = table.insert(first, NO_ROUTE, info(Duration::from_millis(1)), t0);
        assert!(table.take(first_id).is_some());
        assert!(table.take(first_id).is_none(), "taken once");
        let (second, _) = probe();
        let second_id = table.insert(second, NO_ROUTE, info(Duration::from_secs(60)), t0);
        assert_ne!(first_id, second_id, "the reused slot has a new generation");
        assert_eq!(table.slot_count(), 1, "the slot is reused");
        assert!(table.take(first_id).is_none(), "a stale id takes nothing");
        let mut expired = Vec::new();
        table.take_expired(t0 + Duration::from_secs(1), &mut expired);
        assert!(
            expired.is_empty(),
            "the taken ask's old deadline expires nothing"
        );
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn answers_count_only_on_the_route_their_ask_took() {
        let mut table = PendingAsks::default();
        let t0 = Instant::now();
        let (on_seven, _) = probe();
        let (local, _) = probe();
        let id = table.insert(on_seven, 7, info(Duration::from_secs(60)), t0);
        let local_id = table.insert(local, NO_ROUTE, info(Duration::from_secs(60)), t0);
        assert!(
            table.take_answered_on(id, [8, 9]).is_none(),
            "another connection"
        );
        assert!(
            table
                .take_answered_on(local_id, [NO_ROUTE, NO_ROUTE])
                .is_none(),
            "a local ask is never answered from the network"
        );
        assert!(table.take_answered_on(id, [8, 7]).is_some());
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_closed_route_takes_only_its_asks() {
        let mut table = PendingAsks::default();
        let t0 = Instant::now();
        let (a, _) = probe();
        let (b, _) = probe();
        let (c, _) = probe();
        table.insert(a, 7, info(Duration::from_secs(60)), t0);
        table.insert(b, 8, info(Duration::from_secs(60)), t0);
        table.insert(c, 7, info(Duration::from_secs(60)), t0);
        assert_eq!(table.take_route(7).len(), 2);
        assert!(table.take_route(NO_ROUTE).is_empty());
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn stale_deadlines_are_swept_past_the_slack() {
        let mut table = PendingAsks::default();
        let t0 = Instant::now();
        let (kept, _) = probe();
        table.insert(kept, NO_ROUTE, info(Duration::from_secs(120)), t0);
        for _ in 0..10 * SWEEP_SLACK {
            let (target, _) = probe();
            let id = table.insert(target, NO_ROUTE, info(Duration::from_secs(120)), t0);
            assert!(table.take(id).is_some());
        }
        assert_eq!(table.len(), 1);
        assert!(table.slot_count() <= 2, "slots are reused");
        // After a sweep the heap holds the live asks; it then grows again until the stale
        // entries pass twice the live ones plus the slack.
        assert!(
            table.stale_deadlines() <= 2 * table.len() + SWEEP_SLACK,
            "{} stale deadlines for {} live asks",
            table.stale_deadlines(),
            table.len()
        );
    }

    #[test]
    fn drain_takes_everything() {
        let mut table = PendingAsks::default();
        let t0 = Instant::now();
        for route in [NO_ROUTE, 3, 4] {
            let (target, _) = probe();
            table.insert(target, route, info(Duration::from_secs(60)), t0);
        }
        assert_eq!(table.drain().len(), 3);
        assert_eq!(table.len(), 0);
        assert_eq!(table.next_deadline(), None);
    }
}
