//! The master's driver registry (cluster deploy mode): active drivers by id, the waiting
//! queue, and the finished ones kept for tools.

use crate::ids::{DriverId, WorkerId};
use crate::messages::{DriverDescription, DriverState, DriverSummary};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::SystemTime;

use super::apps::millis_since_epoch;

/// One driver.
#[derive(Debug, Clone)]
pub(crate) struct DriverInfo {
    id: DriverId,
    description: DriverDescription,
    state: DriverState,
    worker: Option<WorkerId>,
    exception: Option<String>,
    /// When it was submitted, in milliseconds since the Unix epoch.
    submitted_ms: u64,
}

impl DriverInfo {
    /// A SUBMITTED driver, submitted now.
    pub(crate) fn new(id: DriverId, description: DriverDescription) -> Self {
        DriverInfo {
            id,
            description,
            state: DriverState::Submitted,
            worker: None,
            exception: None,
            submitted_ms: millis_since_epoch(SystemTime::now()),
        }
    }

    /// The same driver, submitted at `submitted_ms` (read back by a recovering master).
    pub(crate) fn submitted_at(mut self, submitted_ms: u64) -> Self {
        self.submitted_ms = submitted_ms;
        self
    }

    pub(crate) fn submitted_ms(&self) -> u64 {
        self.submitted_ms
    }

    pub(crate) fn id(&self) -> &DriverId {
        &self.id
    }

    pub(crate) fn description(&self) -> &DriverDescription {
        &self.description
    }

    pub(crate) fn state(&self) -> DriverState {
        self.state
    }

    pub(crate) fn worker(&self) -> Option<&WorkerId> {
        self.worker.as_ref()
    }

    pub(crate) fn exception(&self) -> Option<&str> {
        self.exception.as_deref()
    }

    pub(crate) fn summary(&self) -> DriverSummary {
        DriverSummary {
            id: self.id.clone(),
            state: self.state,
            worker: self.worker.clone(),
        }
    }
}

/// Active drivers (waiting or running) by id, the waiting ones in submission order
/// (Spark's `waitingDrivers`), and at most `retained` finished ones. Only
/// [`insert`](Self::insert), [`launch`](Self::launch), [`dequeue`](Self::dequeue) and
/// [`remove`](Self::remove) change them.
#[derive(Debug)]
pub(crate) struct Drivers {
    active: BTreeMap<DriverId, DriverInfo>,
    waiting: VecDeque<DriverId>,
    completed: VecDeque<DriverInfo>,
    retained: usize,
}

impl Drivers {
    /// An empty registry remembering at most `retained` finished drivers.
    pub(crate) fn new(retained: usize) -> Drivers {
        Drivers {
            active: BTreeMap::new(),
            waiting: VecDeque::new(),
            completed: VecDeque::new(),
            retained,
        }
    }

    /// Queues a new driver for placement.
    pub(crate) fn insert(&mut self, driver: DriverInfo) {
        self.waiting.push_back(driver.id.clone());
        self.active.insert(driver.id.clone(), driver);
    }

    /// Marks a waiting driver RUNNING on `worker`.
    pub(crate) fn launch(&mut self, id: &DriverId, worker: WorkerId) -> Option<&DriverInfo> {
        let driver = self.active.get_mut(id)?;
        self.waiting.retain(|w| w != id);
        driver.worker = Some(worker);
        driver.state = DriverState::Running;
        Some(driver)
    }

    /// Takes a driver out of the waiting queue; false if it was not waiting.
    pub(crate) fn dequeue(&mut self, id: &DriverId) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|w| w != id);
        before != self.waiting.len()
    }

    /// Ends an active driver with its final state and keeps it among the finished ones
    /// (dropping the oldest tenth when full). Returns it as finished.
    pub(crate) fn remove(
        &mut self,
        id: &DriverId,
        state: DriverState,
        exception: Option<String>,
    ) -> Option<DriverInfo> {
        let mut driver = self.active.remove(id)?;
        self.waiting.retain(|w| w != id);
        driver.state = state;
        driver.exception = exception;
        if self.retained > 0 {
            if self.completed.len() >= self.retained {
                let drop = (self.retained / 10).max(1);
                self.completed.drain(..drop.min(self.completed.len()));
            }
            self.completed.push_back(driver.clone());
        }
        Some(driver)
    }

    pub(crate) fn get(&self, id: &DriverId) -> Option<&DriverInfo> {
        self.active.get(id)
    }

    /// An active or finished driver.
    pub(crate) fn find(&self, id: &DriverId) -> Option<&DriverInfo> {
        self.active
            .get(id)
            .or_else(|| self.completed.iter().rev().find(|d| &d.id == id))
    }

    pub(crate) fn is_waiting(&self, id: &DriverId) -> bool {
        self.waiting.contains(id)
    }

    /// Waiting drivers in submission order.
    pub(crate) fn waiting(&self) -> impl Iterator<Item = &DriverInfo> + '_ {
        self.waiting.iter().filter_map(|id| self.active.get(id))
    }

    /// Drivers running now (active and not waiting).
    pub(crate) fn running_count(&self) -> usize {
        self.active.len() - self.waiting.len()
    }

    /// Active drivers by id.
    pub(crate) fn active(&self) -> impl Iterator<Item = &DriverInfo> + '_ {
        self.active.values()
    }

    /// Finished drivers, oldest first.
    pub(crate) fn completed(&self) -> impl Iterator<Item = &DriverInfo> + '_ {
        self.completed.iter()
    }

    // Only the debug-build consistency check calls this.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    /// Checks that the waiting queue holds exactly the active drivers without a worker.
    pub(crate) fn check_indexes(&self) -> Result<(), String> {
        let unplaced: BTreeSet<&DriverId> = self
            .active
            .values()
            .filter(|d| d.worker.is_none())
            .map(|d| &d.id)
            .collect();
        let waiting: BTreeSet<&DriverId> = self.waiting.iter().collect();
        if unplaced != waiting || waiting.len() != self.waiting.len() {
            return Err(format!(
                "unplaced {unplaced:?} but waiting {:?}",
                self.waiting
            ));
        }
        for (id, d) in &self.active {
            let expected = if d.worker.is_some() {
                DriverState::Running
            } else {
                DriverState::Submitted
            };
            if &d.id != id || d.state != expected {
                return Err(format!("{id} is {:?} on {:?}", d.state, d.worker));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Command;

    fn driver(n: u32) -> DriverInfo {
        let description = DriverDescription {
            memory_mib: 512,
            cores: 1,
            supervise: false,
            command: Command {
                program: "true".into(),
                args: Vec::new(),
                env: BTreeMap::new(),
            },
            program_digest: None,
        };
        DriverInfo::new(DriverId(format!("driver-{n}")), description)
    }

    #[test]
    fn indexes_agree_through_the_lifecycle() {
        let mut drivers = Drivers::new(200);
        for n in 0..3 {
            drivers.insert(driver(n));
            drivers.check_indexes().expect("after insert");
        }
        let d1 = DriverId("driver-1".into());
        let running = drivers.launch(&d1, WorkerId("w".into())).expect("active");
        assert_eq!(running.state(), DriverState::Running);
        drivers.check_indexes().expect("after launch");
        assert_eq!(drivers.running_count(), 1);
        let order: Vec<&str> = drivers.waiting().map(|d| d.id().0.as_str()).collect();
        assert_eq!(order, ["driver-0", "driver-2"]);

        let done = drivers
            .remove(&d1, DriverState::Finished, None)
            .expect("active");
        assert_eq!(done.state(), DriverState::Finished);
        drivers.check_indexes().expect("after remove");
        assert_eq!(
            drivers.find(&d1).map(|d| d.state()),
            Some(DriverState::Finished)
        );

        let d0 = DriverId("driver-0".into());
        assert!(drivers.dequeue(&d0));
        drivers
            .remove(&d0, DriverState::Killed, None)
            .expect("still active");
        drivers.check_indexes().expect("after kill");
        assert_eq!(drivers.active().count(), 1);
        assert!(drivers.get(&d0).is_none());
    }

    #[test]
    fn completed_drivers_are_capped() {
        let mut drivers = Drivers::new(10);
        for n in 0..11 {
            drivers.insert(driver(n));
            drivers.remove(
                &DriverId(format!("driver-{n}")),
                DriverState::Finished,
                None,
            );
        }
        let kept: Vec<&str> = drivers.completed().map(|d| d.id().0.as_str()).collect();
        assert_eq!(kept.len(), 10);
        assert_eq!(kept.first(), Some(&"driver-1"));
    }
}
