//! Where drivers and executors go: Spark's `schedule()` and `scheduleExecutorsOnWorkers`
//! as pure functions of a snapshot of the cluster.
//!
//! Nothing here touches the registries, the network or the clock. The endpoint takes a
//! [`ScheduleInput`] snapshot, [`plan_schedule`] returns a [`SchedulePlan`], and the endpoint
//! applies it by updating its registries and sending `LaunchDriver` / `LaunchExecutor`. The
//! same input always gives the same plan (the endpoint does the shuffling Spark's
//! `spreadOutDrivers` asks for before it builds the input), so the tables of Spark's
//! MasterSuite and WorkerSelectionSuite can be checked number for number.

use crate::ids::{AppId, DriverId, WorkerId};

use super::config::WorkerSelectionPolicy;

/// A worker that can take work, as placement sees it (ALIVE workers only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkerView {
    /// The worker.
    pub(crate) id: WorkerId,
    /// Cores not used by its executors and drivers.
    pub(crate) cores_free: u32,
    /// Memory not used by its executors and drivers, MiB.
    pub(crate) memory_free_mib: u32,
    /// It runs no executor and no driver (only for Spark's "requires more resource" warning).
    pub(crate) idle: bool,
}

/// A driver waiting for a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DriverDemand {
    /// The driver.
    pub(crate) id: DriverId,
    /// Cores it needs.
    pub(crate) cores: u32,
    /// Memory it needs, MiB.
    pub(crate) memory_mib: u32,
}

/// What an application still wants, in Spark's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppDemand {
    /// The application.
    pub(crate) id: AppId,
    /// `(ember.cores.max or ember.deploy.defaultCores) - cores granted`.
    pub(crate) cores_left: u32,
    /// `ember.executor.cores` when the application set it: then each executor gets exactly
    /// this many cores and a worker may run several; `None` means one executor per worker
    /// taking every core it can get.
    pub(crate) cores_per_executor: Option<u32>,
    /// Memory per executor, MiB.
    pub(crate) memory_per_executor_mib: u32,
    /// Executors it has now.
    pub(crate) executors: usize,
    /// The most executors it may have (Spark's target per resource profile; unlimited
    /// until `RequestExecutors` exists).
    pub(crate) executor_limit: usize,
}

/// A snapshot of everything `schedule()` looks at.
#[derive(Debug, Clone)]
pub(crate) struct ScheduleInput {
    /// ALIVE workers, in the order drivers visit them: shuffled when drivers are spread
    /// out, by id otherwise (the caller's job, so that planning stays deterministic).
    pub(crate) workers: Vec<WorkerView>,
    /// Drivers waiting for a worker, in submission order.
    pub(crate) waiting_drivers: Vec<DriverDemand>,
    /// Drivers running now.
    pub(crate) running_drivers: usize,
    /// `ember.deploy.maxDrivers`.
    pub(crate) max_drivers: usize,
    /// `ember.deploy.spreadOutDrivers`: round-robin from where the last driver went, rather
    /// than first fit from the first worker.
    pub(crate) spread_out_drivers: bool,
    /// Active applications in registration order (Spark's `waitingApps`).
    pub(crate) apps: Vec<AppDemand>,
    /// `ember.deploy.spreadOut`.
    pub(crate) spread_out_apps: bool,
    /// `ember.deploy.workerSelectionPolicy`.
    pub(crate) policy: WorkerSelectionPolicy,
}

/// Start a driver on a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DriverLaunch {
    /// The driver.
    pub(crate) driver: DriverId,
    /// Where.
    pub(crate) worker: WorkerId,
}

/// Start one executor of an application on a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecutorLaunch {
    /// The application.
    pub(crate) app: AppId,
    /// Where.
    pub(crate) worker: WorkerId,
    /// Its cores.
    pub(crate) cores: u32,
    /// Its memory, MiB.
    pub(crate) memory_mib: u32,
}

/// What one `schedule()` decided, in the order Spark would launch things.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SchedulePlan {
    /// Drivers to launch, first (drivers take strict precedence over executors).
    pub(crate) drivers: Vec<DriverLaunch>,
    /// Executors to launch, application by application.
    pub(crate) executors: Vec<ExecutorLaunch>,
    /// Spark's "requires more resource than any of Workers could have" warnings.
    pub(crate) warnings: Vec<String>,
}

/// Spark's `schedule()` without its side effects: drivers first, then executors for each
/// application in FIFO order, each placement using up the capacity the next one sees.
pub(crate) fn plan_schedule(input: &ScheduleInput) -> SchedulePlan {
    let mut workers = input.workers.clone();
    let mut plan = SchedulePlan::default();
    plan_drivers(input, &mut workers, &mut plan);
    plan_executors(input, &mut workers, &mut plan);
    plan
}

fn can_launch(worker: &WorkerView, cores: u32, memory_mib: u32) -> bool {
    worker.memory_free_mib >= memory_mib && worker.cores_free >= cores
}

fn take(worker: &mut WorkerView, cores: u32, memory_mib: u32) {
    // `can_launch` was checked first, so these never saturate.
    worker.cores_free = worker.cores_free.saturating_sub(cores);
    worker.memory_free_mib = worker.memory_free_mib.saturating_sub(memory_mib);
    worker.idle = false;
}

fn driver_warning(driver: &DriverId) -> String {
    format!("Driver {driver} requires more resource than any of Workers could have.")
}

/// Drivers: round-robin over the (shuffled) workers with a cursor kept across drivers when
/// spreading out; first fit over the workers sorted by id otherwise. Either way a driver is
/// skipped while `max_drivers` run.
fn plan_drivers(input: &ScheduleInput, workers: &mut [WorkerView], plan: &mut SchedulePlan) {
    let mut running = input.running_drivers;
    let mut cursor = 0;
    for driver in &input.waiting_drivers {
        if running >= input.max_drivers {
            continue;
        }
        let placed = if input.spread_out_drivers {
            // Spark warns only when the last worker it looked at was idle: a busy cluster
            // may simply be full for now.
            let mut idle = true;
            let mut placed = None;
            for _ in 0..workers.len() {
                let w = &workers[cursor];
                idle = w.idle;
                if can_launch(w, driver.cores, driver.memory_mib) {
                    placed = Some(cursor);
                }
                cursor = (cursor + 1) % workers.len();
                if placed.is_some() {
                    break;
                }
            }
            if placed.is_none() && idle {
                plan.warnings.push(driver_warning(&driver.id));
            }
            placed
        } else {
            let placed = workers
                .iter()
                .position(|w| can_launch(w, driver.cores, driver.memory_mib));
            if placed.is_none() {
                plan.warnings.push(driver_warning(&driver.id));
            }
            placed
        };
        if let Some(pos) = placed {
            take(&mut workers[pos], driver.cores, driver.memory_mib);
            running += 1;
            plan.drivers.push(DriverLaunch {
                driver: driver.id.clone(),
                worker: workers[pos].id.clone(),
            });
        }
    }
}

/// Spark's `startExecutorsOnWorkers` and `allocateWorkerResourceToExecutors`.
fn plan_executors(input: &ScheduleInput, workers: &mut [WorkerView], plan: &mut SchedulePlan) {
    for app in &input.apps {
        let min_cores = app.cores_per_executor.unwrap_or(1);
        // A remainder smaller than one executor is never allocated.
        if app.cores_left < min_cores {
            continue;
        }
        let mut usable: Vec<usize> = (0..workers.len())
            .filter(|&i| can_launch(&workers[i], min_cores, app.memory_per_executor_mib))
            .collect();
        order_by_policy(&mut usable, workers, input.policy);
        let may_hang = input.apps.len() == 1 && app.executors == 0 && usable.is_empty();
        if may_hang {
            plan.warnings.push(format!(
                "App {} requires more resource than any of Workers could have.",
                app.id
            ));
        }
        let views: Vec<WorkerView> = usable.iter().map(|&i| workers[i].clone()).collect();
        let assigned = schedule_executors_on_workers(app, &views, input.spread_out_apps);
        for (&pos, &cores) in usable.iter().zip(&assigned) {
            if cores == 0 {
                continue;
            }
            // With cores per executor set, the worker's cores split evenly into executors of
            // that size; otherwise one executor takes them all.
            let (count, each) = match app.cores_per_executor {
                Some(per) => (cores / per, per),
                None => (1, cores),
            };
            for _ in 0..count {
                take(&mut workers[pos], each, app.memory_per_executor_mib);
                plan.executors.push(ExecutorLaunch {
                    app: app.id.clone(),
                    worker: workers[pos].id.clone(),
                    cores: each,
                    memory_mib: app.memory_per_executor_mib,
                });
            }
        }
    }
}

/// Orders worker positions as `ember.deploy.workerSelectionPolicy` says. The descending
/// policies reverse the ascending sort by (free, id), so ties go to the larger id, as in
/// Spark.
pub(crate) fn order_by_policy(
    positions: &mut [usize],
    workers: &[WorkerView],
    policy: WorkerSelectionPolicy,
) {
    let by_cores = |&a: &usize, &b: &usize| {
        (workers[a].cores_free, &workers[a].id).cmp(&(workers[b].cores_free, &workers[b].id))
    };
    let by_memory = |&a: &usize, &b: &usize| {
        (workers[a].memory_free_mib, &workers[a].id)
            .cmp(&(workers[b].memory_free_mib, &workers[b].id))
    };
    match policy {
        WorkerSelectionPolicy::CoresFreeAsc => positions.sort_by(by_cores),
        WorkerSelectionPolicy::CoresFreeDesc => positions.sort_by(|a, b| by_cores(b, a)),
        WorkerSelectionPolicy::MemoryFreeAsc => positions.sort_by(by_memory),
        WorkerSelectionPolicy::MemoryFreeDesc => positions.sort_by(|a, b| by_memory(b, a)),
        WorkerSelectionPolicy::WorkerId => {
            positions.sort_by(|&a, &b| workers[a].id.cmp(&workers[b].id))
        }
    }
}

/// How many cores `app` gets on each of the `usable` workers (in their order), exactly as
/// Spark's `scheduleExecutorsOnWorkers`.
///
/// Cores are handed out in units of `cores_per_executor` (1 when unset). Spreading out
/// gives each worker at most one unit per pass over the workers; packing keeps giving a
/// worker units until it can take no more. A unit that would start a new executor also
/// needs the memory for it and must stay under the executor limit; a unit that only grows
/// a worker's single executor (cores per executor unset) needs only the cores.
///
/// Units are whole executors when cores per executor is set, never single cores
/// (SPARK-8881): with 4 workers of 16 cores, `ember.cores.max` 48 and 16 cores per executor,
/// one core at a time would give each worker 12 cores and launch nothing.
pub(crate) fn schedule_executors_on_workers(
    app: &AppDemand,
    usable: &[WorkerView],
    spread_out: bool,
) -> Vec<u32> {
    let min_cores = u64::from(app.cores_per_executor.unwrap_or(1));
    let one_per_worker = app.cores_per_executor.is_none();
    let memory = u64::from(app.memory_per_executor_mib);
    let mut assigned_cores = vec![0u64; usable.len()];
    let mut assigned_execs = vec![0u64; usable.len()];
    let free_total: u64 = usable.iter().map(|w| u64::from(w.cores_free)).sum();
    let mut cores_to_assign = u64::from(app.cores_left).min(free_total);

    // `planned` is the sum of `execs`, kept as executors are assigned: Spark sums the whole
    // array on every check, which makes one placement quadratic in the workers (issue 15:
    // half a second for 10,000 workers).
    let can_take_unit =
        |pos: usize, cores_to_assign: u64, cores: &[u64], execs: &[u64], planned: u64| {
            let keep_going = cores_to_assign >= min_cores;
            let enough_cores = u64::from(usable[pos].cores_free) >= cores[pos] + min_cores;
            let new_executor = !one_per_worker || execs[pos] == 0;
            if !new_executor {
                return keep_going && enough_cores;
            }
            let enough_memory = u64::from(usable[pos].memory_free_mib) >= (execs[pos] + 1) * memory;
            let under_limit = usize::try_from(planned)
                .map(|p| p.saturating_add(app.executors) < app.executor_limit)
                .unwrap_or(false);
            keep_going && enough_cores && enough_memory && under_limit
        };

    let mut planned = 0u64;
    let mut free: Vec<usize> = (0..usable.len())
        .filter(|&pos| {
            can_take_unit(
                pos,
                cores_to_assign,
                &assigned_cores,
                &assigned_execs,
                planned,
            )
        })
        .collect();
    while !free.is_empty() {
        for &pos in &free {
            while can_take_unit(
                pos,
                cores_to_assign,
                &assigned_cores,
                &assigned_execs,
                planned,
            ) {
                cores_to_assign -= min_cores;
                assigned_cores[pos] += min_cores;
                if !one_per_worker || assigned_execs[pos] == 0 {
                    planned += 1;
                }
                if one_per_worker {
                    assigned_execs[pos] = 1;
                } else {
                    assigned_execs[pos] += 1;
                }
                if spread_out {
                    break;
                }
            }
        }
        free.retain(|&pos| {
            can_take_unit(
                pos,
                cores_to_assign,
                &assigned_cores,
                &assigned_execs,
                planned,
            )
        });
    }
    // Each worker's share is at most its free cores, a u32.
    assigned_cores
        .into_iter()
        .map(|c| u32::try_from(c).unwrap_or(u32::MAX))
        .collect()
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
