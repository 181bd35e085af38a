//! # Ember: a Rust re-creation of the core of Apache Spark's standalone cluster
//!
//! A driver program registers its task functions by name in an [`App`], then runs jobs of
//! them through a [`Context`]: one task per input, results in partition order. The same
//! binary becomes an executor when a worker (or a test) launches it with executor
//! arguments, so no closure is ever shipped.
//!
//! Master URLs are Spark's ([`MasterUrl`]): `local`, `local[N]`, `local[*]`, `local[N,M]`,
//! `local-cluster[N,C,M]`, `ember://host:port[,host:port]`.

mod app;
mod context;
mod error;
pub mod event_log;
mod job_handle;
mod keys;
mod master_url;
mod progress;
mod setup;
mod standalone_backend;
pub mod testing;

// The public interface.
pub use app::{App, CONF_ENV, MASTER_ENV};
pub use context::Context;
pub use error::Error;
pub use job_handle::JobHandle;
pub use keys::*;
pub use master_url::{LocalThreads, MasterUrl, MasterUrlError, ACCEPTED_FORMS};

pub use ember_executor::{TaskContext, TaskError, TaskRegistry};
pub use ember_scheduler::{JobError, JobId, TaskLocation};
pub use rpc_env;
pub use rpc_env::{Decode, Encode, RpcConf};
