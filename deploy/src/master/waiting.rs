//! Why an application gets no executor at all, told to its driver (`ApplicationWaiting`).
//!
//! Spark's master only logs "App requires more resource than any of Workers could have",
//! where the person who started the driver never looks; the driver then waits in silence.
//! Ember's master says why to the driver, which says it after
//! `ember.scheduler.starvationTimeout` (the app client's starvation check).

use super::effects::Effects;
use super::endpoint::Master;
use crate::messages::AppClientMessage;

/// A worker's whole size (not what is free: a busy cluster is not a reason to tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkerSize {
    pub(crate) cores: u32,
    pub(crate) memory_mib: u32,
}

/// Why no executor of `cores` cores and `memory_mib` MiB can ever start on `workers` (the
/// alive ones), or `None` when one could (it may only have to wait for free resources).
pub(crate) fn why_unplaceable(
    cores: u32,
    memory_mib: u32,
    workers: &[WorkerSize],
) -> Option<String> {
    if workers.is_empty() {
        return Some("no worker is registered".to_string());
    }
    if workers
        .iter()
        .any(|w| w.cores >= cores && w.memory_mib >= memory_mib)
    {
        return None;
    }
    let most_memory = workers.iter().map(|w| w.memory_mib).max().unwrap_or(0);
    let most_cores = workers.iter().map(|w| w.cores).max().unwrap_or(0);
    Some(if most_memory < memory_mib {
        format!(
            "each executor needs {memory_mib} MiB of memory (ember.executor.memory), more than \
             any worker offers (the most: {most_memory} MiB)"
        )
    } else if most_cores < cores {
        format!(
            "each executor needs {cores} cores (ember.executor.cores), more than any worker \
             offers (the most: {most_cores})"
        )
    } else {
        format!(
            "each executor needs {cores} cores and {memory_mib} MiB of memory; no worker offers \
             both"
        )
    })
}

impl Master {
    /// Tells each application that has no executor and cannot get one why, when that
    /// changed since it was last told. Run after each `schedule()`.
    pub(super) fn tell_waiting_apps(&mut self) -> Effects {
        let mut out = Effects::none();
        let ids: Vec<_> = self
            .apps
            .in_order()
            .filter(|a| a.executor_count() == 0)
            .map(|a| a.id().clone())
            .collect();
        // Only applications with no executor can be waiting: most schedule() calls have
        // none, and need not walk every worker (issue 15).
        if ids.is_empty() {
            return out;
        }
        let workers: Vec<WorkerSize> = self
            .workers
            .alive_iter()
            .map(|w| WorkerSize {
                cores: w.cores(),
                memory_mib: w.memory_mib(),
            })
            .collect();
        self.workers_scanned += workers.len() as u64;
        for id in ids {
            let Some(app) = self.apps.get_mut(&id) else {
                continue;
            };
            let description = app.description();
            let reason = why_unplaceable(
                description.cores_per_executor.unwrap_or(1),
                description.memory_per_executor_mib,
                &workers,
            );
            if let Some(reason) = app.waiting_because(reason) {
                // Info: placement already warns in Spark's words; this is what the driver hears.
                log::info!("Application {id} cannot be placed: {reason}");
                out.tell_app(
                    app.driver(),
                    AppClientMessage::ApplicationWaiting { reason },
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W512: WorkerSize = WorkerSize {
        cores: 1,
        memory_mib: 512,
    };
    const W2048: WorkerSize = WorkerSize {
        cores: 4,
        memory_mib: 2048,
    };
    const W2048_ONE_CORE: WorkerSize = WorkerSize {
        cores: 1,
        memory_mib: 2048,
    };
    const W512_FOUR_CORES: WorkerSize = WorkerSize {
        cores: 4,
        memory_mib: 512,
    };

    #[test]
    fn the_reason_names_what_is_missing_and_both_numbers() {
        assert_eq!(
            why_unplaceable(1, 1024, &[]).as_deref(),
            Some("no worker is registered")
        );
        assert_eq!(
            why_unplaceable(1, 1024, &[W512]).as_deref(),
            Some(
                "each executor needs 1024 MiB of memory (ember.executor.memory), more than any \
                 worker offers (the most: 512 MiB)"
            )
        );
        assert_eq!(
            why_unplaceable(8, 256, &[W512, W2048]).as_deref(),
            Some(
                "each executor needs 8 cores (ember.executor.cores), more than any worker \
                 offers (the most: 4)"
            )
        );
        assert_eq!(
            why_unplaceable(2, 1024, &[W2048_ONE_CORE, W512_FOUR_CORES]).as_deref(),
            Some("each executor needs 2 cores and 1024 MiB of memory; no worker offers both")
        );
        assert_eq!(
            why_unplaceable(4, 2048, &[W512, W2048]),
            None,
            "fits, once free"
        );
    }
}
