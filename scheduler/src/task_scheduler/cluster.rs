//! What the scheduler knows of the executors: their hosts, racks and running attempts.

use crate::ids::{ExecutorId, FastMap, FastSet, TaskId, TaskIdSet};
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
    running: TaskIdSet,
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
        let running = self
            .executors
            .remove(executor)
            .map(|s| s.running)
            .unwrap_or_default();
        self.executors.insert(
            executor.clone(),
            ExecutorState {
                host: host.to_string(),
                running,
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

    pub(crate) fn task_started(&mut self, executor: &ExecutorId, task: TaskId) {
        if let Some(state) = self.executors.get_mut(executor) {
            state.running.insert(task);
        }
        self.task_to_executor.insert(task, executor.clone());
    }

    pub(crate) fn task_ended(&mut self, task: TaskId) {
        if let Some(executor) = self.task_to_executor.remove(&task) {
            if let Some(state) = self.executors.get_mut(&executor) {
                state.running.remove(&task);
            }
        }
    }

    /// The host of an executor the scheduler knows.
    pub fn host_of(&self, executor: &ExecutorId) -> Option<&str> {
        self.executors.get(executor).map(|s| s.host.as_str())
    }

    /// How many attempts run on `executor`.
    pub fn running_on(&self, executor: &ExecutorId) -> usize {
        self.executors.get(executor).map_or(0, |s| s.running.len())
    }

    /// The attempts running on `executor`, in increasing order.
    pub fn attempts_on(&self, executor: &ExecutorId) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self
            .executors
            .get(executor)
            .map(|s| s.running.iter().copied().collect())
            .unwrap_or_default();
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
        self.forget_host_link(executor);
        let Some(state) = self.executors.remove(executor) else {
            return Vec::new();
        };
        let running: Vec<TaskId> = state.running.into_iter().collect();
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
