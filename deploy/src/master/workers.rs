//! The master's worker registry: every worker by id (DEAD ones too, until culled) and the
//! live ones by RPC address, kept in step by the registry's own mutators.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use rpc_env::{EndpointRef, RpcAddress};

use crate::ids::{AppId, DriverId, WorkerId};
use crate::messages::{WorkerProtocol, WorkerSummary};

/// One executor of one application: how a worker and the master's app records name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ExecutorKey {
    /// The application.
    pub(crate) app: AppId,
    /// The executor's id within it.
    pub(crate) exec_id: u32,
}

/// A worker's lifecycle as the master sees it.
///
/// ```text
/// Unknown --answered MasterChanged / registered again--> Alive
///    │                                                     │ no heartbeat for
///    │ silent until recovery ends / disconnected           │ ember.worker.timeout /
///    ▼                                                     ▼ disconnected
///   Dead <─────────────────────────────────────────────────┘
///    └──culled──> (gone)
/// ```
///
/// Decommission will add `Decommissioned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkerStatus {
    /// Registered and heartbeating: it may get work.
    Alive,
    /// Read back by a recovering master, told `MasterChanged`, not answered yet. It gets
    /// no work, but its address is taken.
    Unknown,
    /// Lost: kept only so tools can show it, and so a late heartbeat is told to reconnect.
    Dead,
}

impl WorkerStatus {
    /// Spark's name for the state.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WorkerStatus::Alive => "ALIVE",
            WorkerStatus::Unknown => "UNKNOWN",
            WorkerStatus::Dead => "DEAD",
        }
    }
}

/// What a worker brings when it registers.
#[derive(Debug, Clone)]
pub(crate) struct NewWorker {
    pub(crate) id: WorkerId,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The address of the env the worker's endpoint lives in: the key of duplicate-address
    /// checks and of disconnect events.
    pub(crate) address: RpcAddress,
    pub(crate) endpoint: EndpointRef<WorkerProtocol>,
    pub(crate) cores: u32,
    pub(crate) memory_mib: u32,
    /// Its status page as it reported it; empty for a worker read back by a recovering
    /// master (the stored record predates the UI).
    pub(crate) web_ui_url: String,
}

/// One worker. Its id, address and status never change through `&mut WorkerInfo`: only
/// [`Workers`] may change what its indexes are keyed by.
#[derive(Debug)]
pub(crate) struct WorkerInfo {
    info: NewWorker,
    status: WorkerStatus,
    executors: BTreeMap<ExecutorKey, (u32, u32)>,
    drivers: BTreeMap<DriverId, (u32, u32)>,
    cores_used: u32,
    memory_used_mib: u32,
    last_heartbeat: Instant,
}

impl WorkerInfo {
    pub(crate) fn id(&self) -> &WorkerId {
        &self.info.id
    }

    pub(crate) fn host(&self) -> &str {
        &self.info.host
    }

    pub(crate) fn port(&self) -> u16 {
        self.info.port
    }

    pub(crate) fn cores(&self) -> u32 {
        self.info.cores
    }

    pub(crate) fn memory_mib(&self) -> u32 {
        self.info.memory_mib
    }

    pub(crate) fn web_ui_url(&self) -> &str {
        &self.info.web_ui_url
    }

    pub(crate) fn host_port(&self) -> String {
        RpcAddress::new(&self.info.host, self.info.port).host_port()
    }

    pub(crate) fn address(&self) -> &RpcAddress {
        &self.info.address
    }

    pub(crate) fn endpoint(&self) -> &EndpointRef<WorkerProtocol> {
        &self.info.endpoint
    }

    pub(crate) fn status(&self) -> WorkerStatus {
        self.status
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.status == WorkerStatus::Alive
    }

    /// ALIVE or UNKNOWN: not lost (yet).
    pub(crate) fn is_live(&self) -> bool {
        self.status != WorkerStatus::Dead
    }

    pub(crate) fn cores_used(&self) -> u32 {
        self.cores_used
    }

    pub(crate) fn cores_free(&self) -> u32 {
        self.info.cores.saturating_sub(self.cores_used)
    }

    pub(crate) fn memory_used_mib(&self) -> u32 {
        self.memory_used_mib
    }

    pub(crate) fn memory_free_mib(&self) -> u32 {
        self.info.memory_mib.saturating_sub(self.memory_used_mib)
    }

    /// Runs no executor and no driver.
    pub(crate) fn is_idle(&self) -> bool {
        self.executors.is_empty() && self.drivers.is_empty()
    }

    pub(crate) fn last_heartbeat(&self) -> Instant {
        self.last_heartbeat
    }

    pub(crate) fn has_executor(&self, key: &ExecutorKey) -> bool {
        self.executors.contains_key(key)
    }

    pub(crate) fn has_driver(&self, id: &DriverId) -> bool {
        self.drivers.contains_key(id)
    }

    // Only the debug-build consistency check calls this.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) fn executors(&self) -> impl Iterator<Item = (&ExecutorKey, u32)> + '_ {
        self.executors.iter().map(|(k, &(cores, _))| (k, cores))
    }

    // Only the debug-build consistency check calls this.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) fn drivers(&self) -> impl Iterator<Item = (&DriverId, u32)> + '_ {
        self.drivers.iter().map(|(k, &(cores, _))| (k, cores))
    }

    pub(crate) fn heartbeat(&mut self, now: Instant) {
        self.last_heartbeat = now;
    }

    /// Accounts an executor's cores and memory to this worker.
    pub(crate) fn add_executor(&mut self, key: ExecutorKey, cores: u32, memory_mib: u32) {
        if self.executors.insert(key, (cores, memory_mib)).is_none() {
            self.use_resources(cores, memory_mib);
        }
    }

    /// Frees an executor's cores and memory; false if the worker did not run it.
    pub(crate) fn remove_executor(&mut self, key: &ExecutorKey) -> bool {
        match self.executors.remove(key) {
            Some((cores, memory)) => {
                self.free_resources(cores, memory);
                true
            }
            None => false,
        }
    }

    /// Accounts a driver's cores and memory to this worker.
    pub(crate) fn add_driver(&mut self, id: DriverId, cores: u32, memory_mib: u32) {
        if self.drivers.insert(id, (cores, memory_mib)).is_none() {
            self.use_resources(cores, memory_mib);
        }
    }

    /// Frees a driver's cores and memory; false if the worker did not run it.
    pub(crate) fn remove_driver(&mut self, id: &DriverId) -> bool {
        match self.drivers.remove(id) {
            Some((cores, memory)) => {
                self.free_resources(cores, memory);
                true
            }
            None => false,
        }
    }

    fn use_resources(&mut self, cores: u32, memory_mib: u32) {
        self.cores_used = self.cores_used.saturating_add(cores);
        self.memory_used_mib = self.memory_used_mib.saturating_add(memory_mib);
    }

    fn free_resources(&mut self, cores: u32, memory_mib: u32) {
        self.cores_used = self.cores_used.saturating_sub(cores);
        self.memory_used_mib = self.memory_used_mib.saturating_sub(memory_mib);
    }

    pub(crate) fn summary(&self) -> WorkerSummary {
        WorkerSummary {
            id: self.info.id.clone(),
            host_port: self.host_port(),
            state: self.status.as_str().to_string(),
            cores: self.info.cores,
            cores_used: self.cores_used,
            memory_mib: self.info.memory_mib,
            memory_used_mib: self.memory_used_mib,
        }
    }
}

/// Why a worker could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// A live worker has this id.
    DuplicateId,
    /// A live worker has this RPC address.
    DuplicateAddress(RpcAddress),
}

/// What a worker held when it was declared dead.
#[derive(Debug, Default)]
pub(crate) struct LostWork {
    pub(crate) host: String,
    pub(crate) executors: Vec<ExecutorKey>,
    pub(crate) drivers: Vec<DriverId>,
}

/// Every known worker by id (the primary map, DEAD ones included), the live ones (ALIVE
/// or UNKNOWN) by address, and the DEAD ones' ids. Only [`insert`](Self::insert),
/// [`insert_unknown`](Self::insert_unknown), [`mark_known`](Self::mark_known),
/// [`mark_dead`](Self::mark_dead) and [`cull`](Self::cull) change which workers there are
/// or their status.
#[derive(Debug, Default)]
pub(crate) struct Workers {
    by_id: BTreeMap<WorkerId, WorkerInfo>,
    live_by_address: HashMap<RpcAddress, WorkerId>,
    /// The DEAD workers' ids. A registration drops the dead ones of its id or its host and
    /// port; looking among these only spares it a walk of every worker, which made
    /// registering N workers quadratic (issue 15: 9 s for 10,000).
    dead: BTreeSet<WorkerId>,
}

impl Workers {
    /// Adds a live worker, heartbeating as of `now`. DEAD workers of the same host and port
    /// (or the same id) are dropped first, as Spark does: a restarted worker replaces its
    /// dead self in the listing.
    pub(crate) fn insert(&mut self, new: NewWorker, now: Instant) -> Result<(), InsertError> {
        self.add(new, WorkerStatus::Alive, now)
    }

    /// Adds a worker read back by a recovering master: UNKNOWN until it answers.
    pub(crate) fn insert_unknown(
        &mut self,
        new: NewWorker,
        now: Instant,
    ) -> Result<(), InsertError> {
        self.add(new, WorkerStatus::Unknown, now)
    }

    fn add(
        &mut self,
        new: NewWorker,
        status: WorkerStatus,
        now: Instant,
    ) -> Result<(), InsertError> {
        if self.live(&new.id).is_some() {
            return Err(InsertError::DuplicateId);
        }
        if self.live_by_address.contains_key(&new.address) {
            return Err(InsertError::DuplicateAddress(new.address));
        }
        let replaced: Vec<WorkerId> = self
            .dead
            .iter()
            .filter(|id| {
                **id == new.id
                    || self
                        .by_id
                        .get(*id)
                        .is_some_and(|w| w.info.host == new.host && w.info.port == new.port)
            })
            .cloned()
            .collect();
        for id in replaced {
            self.dead.remove(&id);
            self.by_id.remove(&id);
        }
        self.live_by_address
            .insert(new.address.clone(), new.id.clone());
        self.by_id.insert(
            new.id.clone(),
            WorkerInfo {
                info: new,
                status,
                executors: BTreeMap::new(),
                drivers: BTreeMap::new(),
                cores_used: 0,
                memory_used_mib: 0,
                last_heartbeat: now,
            },
        );
        Ok(())
    }

    /// An UNKNOWN worker answered: it is ALIVE, heartbeating as of `now`. False if it was
    /// not UNKNOWN.
    pub(crate) fn mark_known(&mut self, id: &WorkerId, now: Instant) -> bool {
        match self.by_id.get_mut(id) {
            Some(w) if w.status == WorkerStatus::Unknown => {
                w.status = WorkerStatus::Alive;
                w.last_heartbeat = now;
                true
            }
            _ => false,
        }
    }

    /// Declares a live (ALIVE or UNKNOWN) worker DEAD: it leaves the address index, and
    /// gives up the executors and drivers it ran (returned, so their owners can be told).
    /// `None` when no live worker has this id.
    pub(crate) fn mark_dead(&mut self, id: &WorkerId) -> Option<LostWork> {
        let worker = self.by_id.get_mut(id).filter(|w| w.is_live())?;
        worker.status = WorkerStatus::Dead;
        worker.cores_used = 0;
        worker.memory_used_mib = 0;
        let lost = LostWork {
            host: worker.info.host.clone(),
            executors: std::mem::take(&mut worker.executors).into_keys().collect(),
            drivers: std::mem::take(&mut worker.drivers).into_keys().collect(),
        };
        self.live_by_address.remove(&worker.info.address);
        self.dead.insert(id.clone());
        Some(lost)
    }

    /// Forgets a DEAD worker for good. Live workers must be marked dead first.
    pub(crate) fn cull(&mut self, id: &WorkerId) -> bool {
        if self.by_id.get(id).is_some_and(|w| !w.is_live()) {
            self.by_id.remove(id);
            self.dead.remove(id);
            return true;
        }
        false
    }

    /// Any known worker, DEAD ones included.
    pub(crate) fn get(&self, id: &WorkerId) -> Option<&WorkerInfo> {
        self.by_id.get(id)
    }

    /// A live worker.
    pub(crate) fn alive(&self, id: &WorkerId) -> Option<&WorkerInfo> {
        self.by_id.get(id).filter(|w| w.is_alive())
    }

    /// A live worker, to account work to it.
    pub(crate) fn alive_mut(&mut self, id: &WorkerId) -> Option<&mut WorkerInfo> {
        self.by_id.get_mut(id).filter(|w| w.is_alive())
    }

    /// An ALIVE or UNKNOWN worker.
    pub(crate) fn live(&self, id: &WorkerId) -> Option<&WorkerInfo> {
        self.by_id.get(id).filter(|w| w.is_live())
    }

    /// An ALIVE or UNKNOWN worker, to record its heartbeat.
    pub(crate) fn live_mut(&mut self, id: &WorkerId) -> Option<&mut WorkerInfo> {
        self.by_id.get_mut(id).filter(|w| w.is_live())
    }

    /// The ALIVE or UNKNOWN worker whose env has this address.
    pub(crate) fn live_at(&self, address: &RpcAddress) -> Option<&WorkerInfo> {
        self.live_by_address
            .get(address)
            .and_then(|id| self.by_id.get(id))
    }

    /// Every known worker by id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &WorkerInfo> + '_ {
        self.by_id.values()
    }

    /// The live workers by id.
    pub(crate) fn alive_iter(&self) -> impl Iterator<Item = &WorkerInfo> + '_ {
        self.by_id.values().filter(|w| w.is_alive())
    }

    // Only the debug-build consistency check calls this.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    /// Checks that the address index holds exactly the live (ALIVE or UNKNOWN) workers,
    /// each under its own address, that each worker's usage is the sum of what it runs,
    /// and that only ALIVE workers run anything.
    pub(crate) fn check_indexes(&self) -> Result<(), String> {
        let live: BTreeSet<&WorkerId> = self
            .by_id
            .values()
            .filter(|w| w.is_live())
            .map(|w| w.id())
            .collect();
        let indexed: BTreeSet<&WorkerId> = self.live_by_address.values().collect();
        if live != indexed || live.len() != self.live_by_address.len() {
            return Err(format!(
                "live workers {live:?} but the address index holds {indexed:?}"
            ));
        }
        let dead: BTreeSet<&WorkerId> = self
            .by_id
            .values()
            .filter(|w| !w.is_live())
            .map(|w| w.id())
            .collect();
        if dead != self.dead.iter().collect::<BTreeSet<_>>() {
            return Err(format!(
                "dead workers {dead:?} but the dead index holds {:?}",
                self.dead
            ));
        }
        for (address, id) in &self.live_by_address {
            let worker = &self.by_id[id];
            if worker.address() != address {
                return Err(format!("{id} is indexed under {address}"));
            }
        }
        for (id, w) in &self.by_id {
            if w.id() != id {
                return Err(format!("{} is stored under {id}", w.id()));
            }
            if !w.is_alive() && !w.is_idle() {
                return Err(format!("{id} is {} but runs work", w.status.as_str()));
            }
            let cores: u32 = w
                .executors
                .values()
                .chain(w.drivers.values())
                .map(|r| r.0)
                .sum();
            let memory: u32 = w
                .executors
                .values()
                .chain(w.drivers.values())
                .map(|r| r.1)
                .sum();
            if (cores, memory) != (w.cores_used, w.memory_used_mib) {
                return Err(format!(
                    "{id} counts {}/{} used but runs {cores}/{memory}",
                    w.cores_used, w.memory_used_mib
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "workers_tests.rs"]
mod tests;
