//! What the scheduler knows of the executors: their hosts, racks and running attempts.

use crate::ids::{ExecutorId, FastMap, FastSet, TaskId};
use crate::task_set_manager::ClusterView;
use crate::task_table::TaskTable;

type RackResolver = Box<dyn Fn(&str) -> Option<String> + Send>;

/// Executors, hosts and racks, learned from offers and forgotten on executor loss.
#[derive(Default)]
pub struct Cluster {
    executors: FastMap<ExecutorId, ExecutorState>,
    hosts: FastMap<String, FastSet<ExecutorId>>,
    racks: FastMap<String, FastSet<String>>,
    /// The executor of each running attempt (a dense window of recent ids).
    task_to_executor: TaskTable<ExecutorId>,
    rack_resolver: Option<RackResolver>,
}

struct ExecutorState {
    host: String,
    /// Disconnected, the real reason yet to come: no offers go to it, its attempts stay.
    pending_loss: bool,
}

impl Cluster {
    pub(crate) fn set_rack_resolver(&mut self, resolver: RackResolver) {
        self.rack_resolver = Some(resolver);
    }

    /// Records an executor seen in an offer; `true` if it is new.
    pub(crate) fn learn(&mut self, executor: &ExecutorId, host: &str) -> bool {
        match self.executors.get(executor).map(|s| s.host == host) {
            Some(true) => false,
            // The same id on another host: it is a new executor there.
            Some(false) => {
                self.forget_host_link(executor);
                self.link(executor, host);
                true
            }
            None => {
                self.link(executor, host);
                true
            }
        }
    }

    fn link(&mut self, executor: &ExecutorId, host: &str) {
        // Its running attempts, if it had any, stay in `task_to_executor`.
        self.executors.insert(
            executor.clone(),
            ExecutorState {
                host: host.to_string(),
                pending_loss: false,
            },
        );
        self.hosts
            .entry(host.to_string())
            .or_default()
            .insert(executor.clone());
        if let Some(rack) = self.resolve_rack(host) {
            self.racks.entry(rack).or_default().insert(host.to_string());
        }
    }

    fn forget_host_link(&mut self, executor: &ExecutorId) {
        let Some(host) = self.executors.get(executor).map(|s| s.host.clone()) else {
            return;
        };
        if let Some(set) = self.hosts.get_mut(&host) {
            set.remove(executor);
            if set.is_empty() {
                self.hosts.remove(&host);
                if let Some(rack) = self.resolve_rack(&host) {
                    if let Some(hosts) = self.racks.get_mut(&rack) {
                        hosts.remove(&host);
                        if hosts.is_empty() {
                            self.racks.remove(&rack);
                        }
                    }
                }
            }
        }
    }

    fn resolve_rack(&self, host: &str) -> Option<String> {
        self.rack_resolver.as_ref().and_then(|r| r(host))
    }

    /// Launches and ends touch only the per-task table: a set of attempts per executor
    /// cost two more hash lookups per task, at 1,000 executors two cache misses (issue
    /// 15). What runs on one executor is found by a scan instead, on its loss.
    pub(crate) fn task_started(&mut self, executor: &ExecutorId, task: TaskId) {
        self.task_to_executor.insert(task, executor.clone());
    }

    pub(crate) fn task_ended(&mut self, task: TaskId) {
        self.task_to_executor.remove(&task);
    }

    /// The host of an executor the scheduler knows.
    pub fn host_of(&self, executor: &ExecutorId) -> Option<&str> {
        self.executors.get(executor).map(|s| s.host.as_str())
    }

    /// How many attempts run on `executor`. O(attempts running anywhere).
    pub fn running_on(&self, executor: &ExecutorId) -> usize {
        self.attempts_on(executor).len()
    }

    /// The attempts running on `executor`, in increasing order. O(attempts running
    /// anywhere): for an executor's loss, not for every task.
    pub fn attempts_on(&self, executor: &ExecutorId) -> Vec<TaskId> {
        if !self.executors.contains_key(executor) {
            return Vec::new();
        }
        let mut ids: Vec<TaskId> = self
            .task_to_executor
            .iter()
            .filter(|(_, e)| *e == executor)
            .map(|(task, _)| task)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The executors known, in no particular order.
    pub fn executors(&self) -> impl Iterator<Item = &ExecutorId> {
        self.executors.keys()
    }

    pub(crate) fn mark_pending_loss(&mut self, executor: &ExecutorId) {
        if let Some(state) = self.executors.get_mut(executor) {
            state.pending_loss = true;
        }
    }

    /// Forgets an executor; returns the attempts that were running on it.
    pub(crate) fn remove_executor(&mut self, executor: &ExecutorId) -> Vec<TaskId> {
        let running = self.attempts_on(executor);
        self.forget_host_link(executor);
        if self.executors.remove(executor).is_none() {
            return Vec::new();
        }
        for task in &running {
            self.task_to_executor.remove(task);
        }
        running
    }
}

impl ClusterView for Cluster {
    fn is_executor_alive(&self, executor: &ExecutorId) -> bool {
        self.executors
            .get(executor)
            .is_some_and(|s| !s.pending_loss)
    }

    fn has_executors_alive_on_host(&self, host: &str) -> bool {
        self.hosts
            .get(host)
            .is_some_and(|set| set.iter().any(|e| self.is_executor_alive(e)))
    }

    fn has_hosts_alive_on_rack(&self, rack: &str) -> bool {
        self.racks
            .get(rack)
            .is_some_and(|hosts| hosts.iter().any(|h| self.has_executors_alive_on_host(h)))
    }

    fn rack_for_host(&self, host: &str) -> Option<String> {
        self.resolve_rack(host)
    }

    fn knows_racks(&self) -> bool {
        self.rack_resolver.is_some()
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("executors", &self.executors.len())
            .field("hosts", &self.hosts.len())
            .finish()
    }
}
