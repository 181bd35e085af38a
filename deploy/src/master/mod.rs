//! The standalone master (Spark's `Master`): a single-threaded state machine that keeps
//! the registry of workers, applications and cluster-mode drivers, places drivers and
//! executors on workers, and notices lost workers.
//!
//! Layout, top-down:
//!
//! - `handle`: [`start_master`] and [`MasterHandle`], what the rest of Ember calls;
//! - `config` and `cli`: [`MasterConfig`], the `ember.*` settings, `ember-master`'s flags;
//! - `endpoint`: the `Master` endpoint, its state, and `perform`, the one place it sends;
//! - `dispatch`: which handler each message reaches, one arm per (phase, message), after
//!   `senders` has checked that its sender may send it;
//! - `on_workers`, `on_apps`, `on_drivers`: the handlers, which return their `effects`
//!   (what to send to whom) instead of sending;
//! - `scheduling`: `schedule()`, a placement plan turned into launches;
//! - `workers`, `apps`, `drivers`: registries that own their maps and indexes;
//! - `placement`: `schedule()` and `scheduleExecutorsOnWorkers` as pure functions;
//! - `view`: what the status UI (`crate::ui`) shows, answered to its control ask;
//! - `waiting`: why an application cannot be placed at all, told to its driver;
//! - `phase`, `id_gen`: the master's phase, and application and driver ids;
//! - `on_recovery`, `leader`, `persistence`, `record`, `recovery_files`, `stored`: leader
//!   election, what is stored for a successor and how (a record file's format and MAC, the
//!   guarded reads and writes of the recovery directory), and recovery after a restart or
//!   failover (recovery mode FILESYSTEM; nothing in NONE).
//!
//! The protocol is [`crate::messages`]: workers and applications register with one-way
//! sends answered by sends; `ExecutorStateChanged` and the tools' requests are asks.

mod apps;
mod cli;
mod config;
mod dispatch;
mod drivers;
mod effects;
mod endpoint;
mod handle;
mod id_gen;
mod leader;
mod on_apps;
mod on_drivers;
mod on_recovery;
mod on_workers;
mod persistence;
mod phase;
mod placement;
mod program_store;
mod record;
mod recovery_files;
mod scheduling;
mod senders;
mod stored;
mod view;
mod waiting;
mod workers;

#[cfg(test)]
mod on_apps_tests;
#[cfg(test)]
mod on_drivers_tests;
#[cfg(test)]
mod on_workers_tests;
#[cfg(test)]
mod persistence_file_tests;
#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod senders_tests;
#[cfg(test)]
mod test_dir;
#[cfg(test)]
mod tests;

pub use cli::{parse_master_args, MasterCliError, MasterCommand, MASTER_USAGE};
pub use config::{
    keys, MasterConfig, MasterSettings, RecoveryMode, WorkerSelectionPolicy, DEFAULT_MASTER_HOST,
    DEFAULT_MASTER_PORT, DEFAULT_MASTER_WEBUI_PORT,
};
pub use handle::{start_master, MasterHandle};
