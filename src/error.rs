//! The errors a user of [`Context`](crate::Context) sees.

use std::fmt;

use ember_scheduler::JobError;
use rpc_env::{ConfError, RpcError};

use crate::master_url::MasterUrlError;

/// Everything that can go wrong creating a context or running a job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or malformed.
    Conf(String),
    /// The master URL is not one Ember knows.
    MasterUrl(MasterUrlError),
    /// The RPC environment failed.
    Rpc(RpcError),
    /// The job failed or was cancelled.
    Job(JobError),
    /// The task function is not registered, or not with these types.
    Task(String),
    /// A result did not decode as the job's output type.
    BadResult {
        /// The partition.
        partition: usize,
        /// Why.
        message: String,
    },
    /// The context was stopped.
    Stopped,
    /// A deadline passed.
    Timeout(String),
    /// `ember::testing`: an executor process that is not there, could not be signalled, or
    /// outlived its test cluster.
    Process(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Conf(m) | Error::Task(m) | Error::Process(m) => f.write_str(m),
            Error::MasterUrl(e) => e.fmt(f),
            Error::Rpc(e) => e.fmt(f),
            Error::Job(e) => e.fmt(f),
            Error::BadResult { partition, message } => {
                write!(
                    f,
                    "The result of partition {partition} does not decode: {message}"
                )
            }
            Error::Stopped => f.write_str("The context has been stopped"),
            Error::Timeout(m) => write!(f, "Timed out: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ConfError> for Error {
    fn from(e: ConfError) -> Self {
        Error::Conf(e.to_string())
    }
}

impl From<RpcError> for Error {
    fn from(e: RpcError) -> Self {
        Error::Rpc(e)
    }
}

impl From<JobError> for Error {
    fn from(e: JobError) -> Self {
        Error::Job(e)
    }
}

impl From<MasterUrlError> for Error {
    fn from(e: MasterUrlError) -> Self {
        Error::MasterUrl(e)
    }
}
