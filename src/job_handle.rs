//! [`JobHandle`]: a submitted job as its caller holds it.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpc_env::{decode_from, ControlRef, Decode};

use ember_scheduler::{DriverControl, DriverProtocol, JobId, JobState};

use crate::error::Error;
use crate::progress::ConsoleProgress;

/// A submitted job: wait for its outputs, watch its progress, or cancel it.
pub struct JobHandle<Out> {
    pub(crate) job: Arc<JobState>,
    pub(crate) driver: ControlRef<DriverProtocol>,
    /// The console progress bar, cleared of this job before its outcome is handed out.
    pub(crate) progress: Option<Arc<ConsoleProgress>>,
    pub(crate) _out: PhantomData<fn() -> Out>,
}

impl<Out: Decode + 'static> JobHandle<Out> {
    /// The job's id.
    pub fn job_id(&self) -> JobId {
        self.job.job_id()
    }

    /// (partitions done, partitions in all).
    pub fn progress(&self) -> (usize, usize) {
        self.job.progress()
    }

    /// Whether the job has ended.
    pub fn is_done(&self) -> bool {
        self.job.is_done()
    }

    /// Cancels the job: running tasks are killed and [`wait`](Self::wait) fails.
    pub fn cancel(&self, reason: &str) {
        let _ = self.driver.send(DriverControl::CancelJob {
            job_id: self.job.job_id(),
            reason: reason.to_string(),
        });
    }

    /// Waits for the outputs, in partition order.
    pub fn wait(self) -> Result<Vec<Out>, Error> {
        let outcome = self.job.wait(None);
        self.clear_progress();
        match outcome {
            Some(outcome) => decode_all(outcome?),
            None => Err(Error::Timeout("the job".into())),
        }
    }

    /// Waits at most `timeout`; gives the handle back if the job has not ended.
    pub fn wait_timeout(
        self,
        timeout: Duration,
    ) -> Result<Result<Vec<Out>, Error>, JobHandle<Out>> {
        match self.job.wait(Some(Instant::now() + timeout)) {
            Some(outcome) => {
                self.clear_progress();
                Ok(outcome.map_err(Error::from).and_then(decode_all))
            }
            None => Err(self),
        }
    }

    /// Takes this job's bar off the console, before the caller prints anything after it.
    fn clear_progress(&self) {
        if let Some(progress) = &self.progress {
            progress.job_ended(self.job.job_id());
        }
    }
}

fn decode_all<Out: Decode>(results: Vec<bytes::Bytes>) -> Result<Vec<Out>, Error> {
    results
        .into_iter()
        .enumerate()
        .map(|(partition, bytes)| {
            decode_from::<Out>(bytes).map_err(|e| Error::BadResult {
                partition,
                message: e.to_string(),
            })
        })
        .collect()
}

impl<Out> std::fmt::Debug for JobHandle<Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobHandle({:?})", self.job)
    }
}
