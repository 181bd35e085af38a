//! A running job as its caller sees it: results by partition, progress, and the outcome.
//!
//! The driver endpoint fills it in; the caller waits on it. Nothing here decodes results:
//! they stay the task function's encoded output until the caller, who knows their type,
//! decodes them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::events::{DriverEvent, EventSink};
use crate::ids::JobId;

/// Why a job did not produce its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// A task set was aborted (`Task 1 in stage 0.0 failed 4 times, ...`).
    Failed {
        /// The abort message.
        message: String,
    },
    /// The job was cancelled.
    Cancelled {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Failed { message } => {
                write!(f, "Job aborted due to stage failure: {message}")
            }
            JobError::Cancelled { reason } => write!(f, "Job cancelled: {reason}"),
        }
    }
}

impl std::error::Error for JobError {}

/// Results that came for a partition already done, in this process: the task set managers
/// should never send one (a partition succeeds once), so anything here means a result was
/// about to be counted twice. Benchmarks and tests read it.
static DUPLICATE_RESULTS: AtomicU64 = AtomicU64::new(0);

/// How many results came for a partition already done, in this process, so far (each was
/// dropped; only the first result of a partition counts).
pub fn duplicate_results() -> u64 {
    DUPLICATE_RESULTS.load(Ordering::Relaxed)
}

struct Progress {
    results: Vec<Option<Bytes>>,
    finished: usize,
    outcome: Option<Result<(), JobError>>,
}

/// The shared state of one job.
pub struct JobState {
    job_id: JobId,
    progress: Mutex<Progress>,
    changed: Condvar,
    /// Told once, when the job ends, however it ends (its result, an abort, a cancel, the
    /// driver stopping): the one place every ending passes.
    sink: Option<Arc<dyn EventSink>>,
}

impl JobState {
    /// A job of `partitions` partitions, none done.
    pub fn new(job_id: JobId, partitions: usize) -> JobState {
        JobState {
            job_id,
            progress: Mutex::new(Progress {
                results: vec![None; partitions],
                finished: 0,
                outcome: if partitions == 0 { Some(Ok(())) } else { None },
            }),
            changed: Condvar::new(),
            sink: None,
        }
    }

    /// The same job, whose end `sink` hears of ([`DriverEvent::JobEnd`]).
    pub fn with_event_sink(mut self, sink: Arc<dyn EventSink>) -> JobState {
        self.sink = Some(sink);
        self
    }

    /// Tells the sink, if any, how the job ended. Called once, outside the lock.
    fn ended(&self, result: Result<(), JobError>) {
        if let Some(sink) = &self.sink {
            sink.post(DriverEvent::JobEnd {
                job_id: self.job_id,
                result,
            });
        }
    }

    /// The job's id.
    pub fn job_id(&self) -> JobId {
        self.job_id
    }

    /// Records a partition's result; the first one for a partition wins. Returns whether the
    /// job is now complete.
    pub fn task_succeeded(&self, partition: u32, result: Bytes) -> bool {
        let mut p = self.progress.lock();
        match &p.outcome {
            // Every partition has its result already (they may have been taken away).
            Some(Ok(())) => {
                DUPLICATE_RESULTS.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "Job {} got a result for partition {partition} after it completed",
                    self.job_id
                );
                return true;
            }
            Some(Err(_)) => return true,
            None => {}
        }
        let Some(slot) = p.results.get_mut(partition as usize) else {
            log::warn!(
                "Job {} got a result for unknown partition {partition}",
                self.job_id
            );
            return false;
        };
        if slot.is_none() {
            *slot = Some(result);
            p.finished += 1;
        } else {
            DUPLICATE_RESULTS.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "Job {} got a second result for partition {partition}; the first one counts",
                self.job_id
            );
        }
        let complete = p.finished == p.results.len();
        if complete {
            p.outcome = Some(Ok(()));
            drop(p);
            self.changed.notify_all();
            self.ended(Ok(()));
        }
        complete
    }

    /// Ends the job with `error`, unless it already ended.
    pub fn fail(&self, error: JobError) {
        let mut p = self.progress.lock();
        if p.outcome.is_none() {
            p.outcome = Some(Err(error.clone()));
            drop(p);
            self.changed.notify_all();
            self.ended(Err(error));
        }
    }

    /// (partitions done, partitions in all).
    pub fn progress(&self) -> (usize, usize) {
        let p = self.progress.lock();
        (p.finished, p.results.len())
    }

    /// Whether the job has ended.
    pub fn is_done(&self) -> bool {
        self.progress.lock().outcome.is_some()
    }

    /// Waits for the outcome, until `deadline` if one is given (`None` once it passes).
    /// On success, the results in partition order.
    pub fn wait(&self, deadline: Option<Instant>) -> Option<Result<Vec<Bytes>, JobError>> {
        let mut p = self.progress.lock();
        loop {
            match &p.outcome {
                Some(Ok(())) => {
                    let results = std::mem::take(&mut p.results);
                    // Partitions with no result cannot remain once the job succeeded.
                    return Some(Ok(results
                        .into_iter()
                        .map(Option::unwrap_or_default)
                        .collect()));
                }
                Some(Err(e)) => return Some(Err(e.clone())),
                None => match deadline {
                    Some(at) => {
                        if self.changed.wait_until(&mut p, at).timed_out() && p.outcome.is_none() {
                            return None;
                        }
                    }
                    None => self.changed.wait(&mut p),
                },
            }
        }
    }
}

impl fmt::Debug for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (done, total) = self.progress();
        write!(f, "JobState({}: {done}/{total})", self.job_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn results_come_back_in_partition_order_first_result_wins() {
        // Only this test of the binary gives a job a second result.
        let before = duplicate_results();
        let job = JobState::new(JobId(0), 3);
        assert!(!job.task_succeeded(2, Bytes::from_static(b"c")));
        assert!(!job.task_succeeded(0, Bytes::from_static(b"a")));
        assert!(!job.task_succeeded(0, Bytes::from_static(b"late")));
        assert_eq!(job.progress(), (2, 3));
        assert!(job.task_succeeded(1, Bytes::from_static(b"b")));
        assert!(job.task_succeeded(1, Bytes::from_static(b"after the end")));
        assert_eq!(
            duplicate_results() - before,
            2,
            "both extra results are counted"
        );
        let results = job.wait(None).expect("done").expect("succeeded");
        assert_eq!(
            results,
            vec![
                Bytes::from_static(b"a"),
                Bytes::from_static(b"b"),
                Bytes::from_static(b"c")
            ]
        );
    }

    #[test]
    fn a_failure_ends_the_job_and_wakes_the_waiter() {
        let job = Arc::new(JobState::new(JobId(1), 2));
        let waiter = {
            let job = Arc::clone(&job);
            std::thread::spawn(move || job.wait(None))
        };
        job.fail(JobError::Failed {
            message: "boom".into(),
        });
        job.fail(JobError::Cancelled {
            reason: "second".into(),
        });
        let outcome = waiter.join().expect("waiter").expect("ended");
        assert_eq!(
            outcome,
            Err(JobError::Failed {
                message: "boom".into()
            })
        );
        assert!(job.is_done());
    }

    #[test]
    fn a_wait_with_a_deadline_gives_up() {
        let job = JobState::new(JobId(2), 1);
        assert!(job.wait(Some(Instant::now())).is_none());
        let empty = JobState::new(JobId(3), 0);
        assert_eq!(empty.wait(None), Some(Ok(Vec::new())));
    }
}
