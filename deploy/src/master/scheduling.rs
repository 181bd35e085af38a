//! Spark's `schedule()`: the master's registries turned into a [`plan_schedule`] input, and
//! the plan into launches.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use super::effects::Effects;
use super::endpoint::Master;
use super::phase::Phase;
use super::placement::{plan_schedule, AppDemand, DriverDemand, ScheduleInput, WorkerView};

impl Master {
    /// Spark's `schedule()`: in ALIVE only, place waiting drivers, then executors for each
    /// application in registration order, and launch what was placed.
    pub(super) fn schedule(&mut self) -> Effects {
        let mut out = Effects::none();
        if self.phase != Phase::Alive {
            return out;
        }
        // schedule() runs on every registration and every executor state change; its input
        // is a snapshot of every ALIVE worker. When nothing waits to be placed the plan is
        // empty, so the snapshot is skipped: otherwise a master of 10,000 workers spends
        // O(workers) on each of their events (issue 15: 22 s to take 10,000 RUNNING reports).
        if self.has_demand() {
            let input = self.schedule_input();
            self.workers_scanned += input.workers.len() as u64;
            let plan = plan_schedule(&input);
            for warning in &plan.warnings {
                log::warn!("{warning}");
            }
            for launch in plan.drivers {
                out.append(self.launch_driver(&launch.driver, &launch.worker));
            }
            for launch in plan.executors {
                out.append(self.launch_executor(launch));
            }
        }
        out.append(self.tell_waiting_apps());
        out
    }

    /// Whether a plan could place anything: a driver waits, or an application still wants
    /// at least one executor's worth of cores. Without either, [`plan_schedule`] plans
    /// nothing and warns of nothing (drivers and applications are all it places).
    fn has_demand(&self) -> bool {
        self.drivers.waiting().next().is_some()
            || self
                .apps
                .in_order()
                .any(|a| a.cores_left() >= a.description().cores_per_executor.unwrap_or(1))
    }

    fn schedule_input(&self) -> ScheduleInput {
        // By id, as the registry keeps them: Spark's order when drivers are packed.
        let mut workers: Vec<WorkerView> = self
            .workers
            .alive_iter()
            .map(|w| WorkerView {
                id: w.id().clone(),
                cores_free: w.cores_free(),
                memory_free_mib: w.memory_free_mib(),
                idle: w.is_idle(),
            })
            .collect();
        if self.settings.spread_out_drivers && self.drivers.waiting().next().is_some() {
            shuffle(&mut workers);
        }
        ScheduleInput {
            workers,
            waiting_drivers: self
                .drivers
                .waiting()
                .map(|d| DriverDemand {
                    id: d.id().clone(),
                    cores: d.description().cores,
                    memory_mib: d.description().memory_mib,
                })
                .collect(),
            running_drivers: self.drivers.running_count(),
            max_drivers: self
                .settings
                .max_drivers
                .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX)),
            spread_out_drivers: self.settings.spread_out_drivers,
            apps: self
                .apps
                .in_order()
                .map(|a| AppDemand {
                    id: a.id().clone(),
                    cores_left: a.cores_left(),
                    cores_per_executor: a.description().cores_per_executor,
                    memory_per_executor_mib: a.description().memory_per_executor_mib,
                    executors: a.executor_count(),
                    // Spark's per-profile target; unlimited until RequestExecutors exists.
                    executor_limit: usize::MAX,
                })
                .collect(),
            spread_out_apps: self.settings.spread_out_apps,
            policy: self.settings.worker_selection_policy,
        }
    }
}

/// Shuffles in place (Fisher-Yates), seeded from the standard library's per-process random
/// hasher keys: spreading drivers needs no stronger randomness than that.
fn shuffle<T>(items: &mut [T]) {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_usize(items.len());
    let mut state = hasher.finish() | 1;
    for i in (1..items.len()).rev() {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bound = u64::try_from(i + 1).unwrap_or(u64::MAX);
        let j = usize::try_from(state % bound).unwrap_or(0);
        items.swap(i, j);
    }
}
