//! # ember-executor: where tasks run
//!
//! - [`TaskRegistry`]: task functions by name, with their [`TaskContext`] and [`TaskError`];
//! - [`Executor`]: a thread pool sized to the executor's cores, running [`TaskRunner`]s;
//! - the local backend ([`LocalExecutorHandle`], [`DriverReporter`]) for `local[N]`;
//! - the coarse-grained executor backend process ([`run_executor`], [`ExecutorArgs`]) with
//!   its [`WorkerWatcher`]; the `ember-executor` binary is that process with a few
//!   built-in tasks ([`builtin`]).

mod args;
mod backend;
pub mod builtin;
mod executor;
mod local;
mod registry;
mod task_files;
mod worker_watcher;

// The public interface.
pub use args::{
    asks_for_help, local_hostname, looks_like_executor, usage, ArgsError, ExecutorArgs,
};
pub use backend::{run_executor, ExecutorBackend, EXIT_HEARTBEAT_FAILURE};
pub use executor::{Executor, StatusReporter, TaskRunner};
pub use local::{DriverReporter, LocalExecutorHandle};
pub use registry::{TaskContext, TaskError, TaskRegistry};
pub use task_files::{Fetcher, TaskFiles, FILES_DIR};
pub use worker_watcher::{WatchedProtocol, WorkerWatcher, EXIT_WORKER_LOST};
