//! The master's application registry: active applications by id, by driver address and
//! in registration order, and the finished ones kept for tools.

use rpc_env::{EndpointRef, RpcAddress};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ids::{AppId, WorkerId};
use crate::messages::{AppClientProtocol, AppSummary, ApplicationDescription, ExecutorState};

/// An application's state (Spark's `ApplicationState`).
///
/// ```text
/// Unknown --answered MasterChanged--> Waiting
///    \--silent until recovery ends--> Finished
/// Waiting --first executor launched / recovery ended--> Running --unregistered--> Finished
///    \______________________________________\---killed--> Killed
///                                            \--executors keep failing--> Failed
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppStatus {
    /// Read back by a recovering master, told `MasterChanged`, not answered yet.
    Unknown,
    /// Registered, no executor yet.
    Waiting,
    /// Has had an executor launched.
    Running,
    /// Unregistered by its driver, or its driver went away.
    Finished,
    /// Removed because its executors kept failing.
    Failed,
    /// Killed on request.
    Killed,
}

impl AppStatus {
    /// Spark's name for the state, also the text of `ApplicationRemoved`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AppStatus::Unknown => "UNKNOWN",
            AppStatus::Waiting => "WAITING",
            AppStatus::Running => "RUNNING",
            AppStatus::Finished => "FINISHED",
            AppStatus::Failed => "FAILED",
            AppStatus::Killed => "KILLED",
        }
    }
}

/// One executor of an application, as the master tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecutorInfo {
    pub(crate) worker: WorkerId,
    pub(crate) cores: u32,
    pub(crate) memory_mib: u32,
    pub(crate) state: ExecutorState,
    /// Its driver said it registered (`ExecutorRegistered`): it runs an Ember executor.
    pub(crate) registered: bool,
}

/// One application.
#[derive(Debug)]
pub(crate) struct AppInfo {
    id: AppId,
    description: ApplicationDescription,
    driver: EndpointRef<AppClientProtocol>,
    /// The address of the driver's env: the key of re-registration checks and disconnects.
    address: RpcAddress,
    status: AppStatus,
    /// `ember.cores.max`, else `ember.deploy.defaultCores`, else unlimited.
    requested_cores: u32,
    executors: BTreeMap<u32, ExecutorInfo>,
    next_executor_id: u32,
    cores_granted: u32,
    /// Executor failures since the last executor reached RUNNING.
    retry_count: u32,
    /// When it registered, in milliseconds since the Unix epoch.
    submitted_ms: u64,
    /// When it was removed, in milliseconds since the Unix epoch.
    ended_ms: Option<u64>,
    /// Why it cannot be placed, as last told to its driver (`ApplicationWaiting`): it is
    /// told again only when that changes.
    told_waiting: Option<String>,
    /// Executors removed by a kill whose worker has not yet reported their end: that report
    /// is expected, not news of an unknown executor.
    killed: BTreeSet<u32>,
}

impl AppInfo {
    /// A new, waiting application.
    pub(crate) fn new(
        id: AppId,
        description: ApplicationDescription,
        driver: EndpointRef<AppClientProtocol>,
        address: RpcAddress,
        default_cores: Option<u32>,
    ) -> AppInfo {
        let requested_cores = description.max_cores.or(default_cores).unwrap_or(u32::MAX);
        AppInfo {
            id,
            description,
            driver,
            address,
            status: AppStatus::Waiting,
            requested_cores,
            executors: BTreeMap::new(),
            next_executor_id: 0,
            cores_granted: 0,
            retry_count: 0,
            submitted_ms: millis_since_epoch(SystemTime::now()),
            ended_ms: None,
            told_waiting: None,
            killed: BTreeSet::new(),
        }
    }

    /// An application read back by a recovering master: UNKNOWN, registered at
    /// `submitted_ms`, its next executor numbered `next_executor_id`.
    pub(crate) fn recovered(mut self, submitted_ms: u64, next_executor_id: u32) -> AppInfo {
        self.status = AppStatus::Unknown;
        self.submitted_ms = submitted_ms;
        self.next_executor_id = next_executor_id;
        self
    }

    pub(crate) fn id(&self) -> &AppId {
        &self.id
    }

    pub(crate) fn description(&self) -> &ApplicationDescription {
        &self.description
    }

    pub(crate) fn driver(&self) -> &EndpointRef<AppClientProtocol> {
        &self.driver
    }

    pub(crate) fn status(&self) -> AppStatus {
        self.status
    }

    /// The address of its driver's env.
    pub(crate) fn address(&self) -> &RpcAddress {
        &self.address
    }

    pub(crate) fn submitted_ms(&self) -> u64 {
        self.submitted_ms
    }

    /// When it was removed, if it has been.
    pub(crate) fn ended_ms(&self) -> Option<u64> {
        self.ended_ms
    }

    /// The most cores it may hold, `None` when unlimited.
    pub(crate) fn max_cores(&self) -> Option<u32> {
        (self.requested_cores != u32::MAX).then_some(self.requested_cores)
    }

    /// Cores its executors hold now.
    pub(crate) fn cores_granted(&self) -> u32 {
        self.cores_granted
    }

    pub(crate) fn next_executor_id(&self) -> u32 {
        self.next_executor_id
    }

    /// Recovery: the application answered (UNKNOWN → WAITING), or recovery ended
    /// (WAITING → RUNNING). Other changes go through the registry.
    pub(crate) fn recovery_step(&mut self, from: AppStatus, to: AppStatus) -> bool {
        if self.status == from {
            self.status = to;
            return true;
        }
        false
    }

    pub(crate) fn cores_left(&self) -> u32 {
        self.requested_cores.saturating_sub(self.cores_granted)
    }

    /// Records why it cannot be placed now (`None`: it can); returns the reason when its
    /// driver has not been told this one yet.
    pub(crate) fn waiting_because(&mut self, reason: Option<String>) -> Option<String> {
        if reason == self.told_waiting {
            return None;
        }
        self.told_waiting.clone_from(&reason);
        reason
    }

    pub(crate) fn executor_count(&self) -> usize {
        self.executors.len()
    }

    pub(crate) fn executor(&self, id: u32) -> Option<&ExecutorInfo> {
        self.executors.get(&id)
    }

    // Only the debug-build consistency check calls this.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) fn executors(&self) -> impl Iterator<Item = (u32, &ExecutorInfo)> + '_ {
        self.executors.iter().map(|(&id, e)| (id, e))
    }

    pub(crate) fn has_running_executor(&self) -> bool {
        self.executors
            .values()
            .any(|e| e.state == ExecutorState::Running)
    }

    /// Adds a LAUNCHING executor with the next id (counting from 0) and makes the
    /// application RUNNING, as Spark does when it launches one.
    pub(crate) fn add_executor(&mut self, worker: WorkerId, cores: u32, memory_mib: u32) -> u32 {
        let id = self.next_executor_id;
        self.next_executor_id = self.next_executor_id.saturating_add(1);
        self.executors.insert(
            id,
            ExecutorInfo {
                worker,
                cores,
                memory_mib,
                state: ExecutorState::Launching,
                registered: false,
            },
        );
        self.cores_granted = self.cores_granted.saturating_add(cores);
        self.status = AppStatus::Running;
        id
    }

    /// Re-adds an executor a worker reported after a master change, with its own id (the
    /// next id moves past it). Leaves the application's status alone, as Spark does.
    /// False if the id is taken.
    pub(crate) fn add_recovered_executor(&mut self, id: u32, exec: ExecutorInfo) -> bool {
        if self.executors.contains_key(&id) {
            return false;
        }
        self.next_executor_id = self.next_executor_id.max(id.saturating_add(1));
        self.cores_granted = self.cores_granted.saturating_add(exec.cores);
        self.executors.insert(id, exec);
        true
    }

    /// Notes that executor `id` registered with the driver; whether it is one of this
    /// application's executors.
    pub(crate) fn mark_registered(&mut self, id: u32) -> bool {
        match self.executors.get_mut(&id) {
            Some(exec) => {
                exec.registered = true;
                true
            }
            None => false,
        }
    }

    /// Sets an executor's state; returns the old one.
    pub(crate) fn set_executor_state(
        &mut self,
        id: u32,
        state: ExecutorState,
    ) -> Option<ExecutorState> {
        self.executors
            .get_mut(&id)
            .map(|e| std::mem::replace(&mut e.state, state))
    }

    /// Forgets an executor and gives its cores back to what the application may still get.
    pub(crate) fn remove_executor(&mut self, id: u32) -> Option<ExecutorInfo> {
        let exec = self.executors.remove(&id)?;
        self.cores_granted = self.cores_granted.saturating_sub(exec.cores);
        Some(exec)
    }

    /// Removes an executor the master is about to have killed; its worker's reports until
    /// its end are then expected ([`take_killed`](Self::take_killed)).
    pub(crate) fn kill_executor(&mut self, id: u32) -> Option<ExecutorInfo> {
        let exec = self.remove_executor(id)?;
        self.killed.insert(id);
        Some(exec)
    }

    /// Whether a report about `id` is one of a killed executor whose end was not yet
    /// reported: a state it reached before the kill (`finished` false), or its end, after
    /// which it is forgotten.
    pub(crate) fn take_killed(&mut self, id: u32, finished: bool) -> bool {
        if finished {
            self.killed.remove(&id)
        } else {
            self.killed.contains(&id)
        }
    }

    /// Counts one more failed executor; returns the count.
    pub(crate) fn increment_retry_count(&mut self) -> u32 {
        self.retry_count = self.retry_count.saturating_add(1);
        self.retry_count
    }

    pub(crate) fn reset_retry_count(&mut self) {
        self.retry_count = 0;
    }

    pub(crate) fn summary(&self) -> AppSummary {
        AppSummary {
            id: self.id.clone(),
            name: self.description.name.clone(),
            state: self.status.as_str().to_string(),
            cores_granted: self.cores_granted,
            executors: u32::try_from(self.executors.len()).unwrap_or(u32::MAX),
        }
    }
}

/// Milliseconds since the Unix epoch; a clock before 1970 reads as the epoch.
pub(crate) fn millis_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An application just removed: what the master must still clean up.
#[derive(Debug)]
pub(crate) struct RemovedApp {
    pub(crate) id: AppId,
    pub(crate) driver: EndpointRef<AppClientProtocol>,
    /// The executors it had, to be killed on their workers.
    pub(crate) executors: Vec<(u32, ExecutorInfo)>,
}

/// Active applications by id (the primary map) and by driver address, their registration
/// order (Spark's `waitingApps`: an application stays in it, waiting for more cores or not,
/// until it is removed), and the finished ones, at most `retained` of them.
/// Only [`insert`](Self::insert) and [`remove`](Self::remove) change which applications
/// there are.
#[derive(Debug)]
pub(crate) struct Apps {
    active: BTreeMap<AppId, AppInfo>,
    by_address: HashMap<RpcAddress, AppId>,
    waiting: VecDeque<AppId>,
    completed: VecDeque<AppInfo>,
    retained: usize,
}

impl Apps {
    /// An empty registry remembering at most `retained` finished applications.
    pub(crate) fn new(retained: usize) -> Apps {
        Apps {
            active: BTreeMap::new(),
            by_address: HashMap::new(),
            waiting: VecDeque::new(),
            completed: VecDeque::new(),
            retained,
        }
    }

    /// Adds an application; refused with the id of the one already registered from the
    /// same driver address (a driver runs one application).
    pub(crate) fn insert(&mut self, app: AppInfo) -> Result<(), AppId> {
        if let Some(existing) = self.by_address.get(&app.address) {
            return Err(existing.clone());
        }
        if self.active.contains_key(&app.id) {
            return Err(app.id);
        }
        self.by_address.insert(app.address.clone(), app.id.clone());
        self.waiting.push_back(app.id.clone());
        self.active.insert(app.id.clone(), app);
        Ok(())
    }

    /// Removes an active application with its final status and keeps it among the
    /// finished ones (dropping the oldest tenth when full, as Spark does). Its executors
    /// are handed back for killing.
    pub(crate) fn remove(&mut self, id: &AppId, status: AppStatus) -> Option<RemovedApp> {
        let mut app = self.active.remove(id)?;
        self.by_address.remove(&app.address);
        self.waiting.retain(|w| w != id);
        app.status = status;
        app.ended_ms = Some(millis_since_epoch(SystemTime::now()));
        let executors: Vec<(u32, ExecutorInfo)> = std::mem::take(&mut app.executors)
            .into_iter()
            .map(|(exec_id, mut e)| {
                e.state = ExecutorState::Killed;
                (exec_id, e)
            })
            .collect();
        app.cores_granted = 0;
        let removed = RemovedApp {
            id: app.id.clone(),
            driver: app.driver.clone(),
            executors,
        };
        if self.retained > 0 {
            if self.completed.len() >= self.retained {
                let drop = (self.retained / 10).max(1);
                self.completed.drain(..drop.min(self.completed.len()));
            }
            self.completed.push_back(app);
        }
        Some(removed)
    }

    pub(crate) fn get(&self, id: &AppId) -> Option<&AppInfo> {
        self.active.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &AppId) -> Option<&mut AppInfo> {
        self.active.get_mut(id)
    }

    /// The active application whose driver's env has this address.
    pub(crate) fn at(&self, address: &RpcAddress) -> Option<&AppId> {
        self.by_address.get(address)
    }

    /// Active applications in registration order.
    pub(crate) fn in_order(&self) -> impl Iterator<Item = &AppInfo> + '_ {
        self.waiting.iter().filter_map(|id| self.active.get(id))
    }

    /// Finished applications, oldest first.
    pub(crate) fn completed(&self) -> impl Iterator<Item = &AppInfo> + '_ {
        self.completed.iter()
    }

    /// Whether `id` is a finished application still remembered.
    pub(crate) fn is_completed(&self, id: &AppId) -> bool {
        self.completed.iter().any(|a| a.id() == id)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.active.len()
    }

    // Only the debug-build consistency check calls this.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    /// Checks that the address index and the order hold exactly the active applications.
    pub(crate) fn check_indexes(&self) -> Result<(), String> {
        let active: BTreeSet<&AppId> = self.active.keys().collect();
        let by_address: BTreeSet<&AppId> = self.by_address.values().collect();
        let ordered: BTreeSet<&AppId> = self.waiting.iter().collect();
        if active != by_address || self.by_address.len() != active.len() {
            return Err(format!("active {active:?} but by address {by_address:?}"));
        }
        if active != ordered || self.waiting.len() != active.len() {
            return Err(format!("active {active:?} but in order {:?}", self.waiting));
        }
        for (address, id) in &self.by_address {
            if &self.active[id].address != address {
                return Err(format!("{id} is indexed under {address}"));
            }
        }
        for (id, app) in &self.active {
            let cores: u32 = app.executors.values().map(|e| e.cores).sum();
            if &app.id != id || cores != app.cores_granted {
                return Err(format!(
                    "{id}: granted {} but runs {cores}",
                    app.cores_granted
                ));
            }
        }
        if self.completed.len() > self.retained {
            return Err(format!(
                "{} finished apps kept, limit {}",
                self.completed.len(),
                self.retained
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "apps_tests.rs"]
mod tests;
