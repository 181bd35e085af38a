//! The console progress bar (Spark's `ConsoleProgressBar`): while jobs run, one line per
//! job on stderr, `[Stage 3:=====>      (12 + 2) / 100]` (done + running, of all), redrawn
//! at most every 200 ms and cleared when the job ends.
//!
//! On only with `ember.ui.showConsoleProgress` and when stderr is a terminal, so logs and
//! redirected output never get it. As in Spark, a job shows only once it has run for
//! 500 ms, so short jobs never flash a bar. One thread per context looks at the jobs every
//! 200 ms: their own progress (`JobState`) and the driver endpoint's count of running
//! tasks (a control ask), and hands the numbers to `indicatif`, which draws.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::{Condvar, Mutex};
use rpc_env::{ConfError, ControlRef, RpcConf};

use ember_scheduler::{DriverControl, DriverProtocol, JobId, JobState};

use crate::keys::SHOW_CONSOLE_PROGRESS;

/// How often the bar is redrawn (Spark's `spark.ui.consoleProgress.update.interval`).
const UPDATE_INTERVAL: Duration = Duration::from_millis(200);
/// How long a job runs before its bar appears (Spark's `firstDelayMSec`).
const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The most bars shown at once; later jobs wait for a line (Spark shows three stages).
const MAX_BARS: usize = 3;

/// One job the bar knows of.
struct Tracked {
    job: Weak<JobState>,
    job_id: JobId,
    submitted: Instant,
}

/// A job as one line of the bar shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    /// The job (its stage has the same number).
    pub(crate) job_id: JobId,
    /// Partitions done.
    pub(crate) done: u64,
    /// Tasks running now.
    pub(crate) running: u64,
    /// Partitions in all.
    pub(crate) total: u64,
}

/// Which jobs get a line at `now`: running ones that have run for [`FIRST_DELAY`], oldest
/// first, at most [`MAX_BARS`]. `progress` gives a job's (done, total) and whether it
/// ended; `running` the driver's count of its running tasks.
pub(crate) fn visible_lines(
    jobs: &[(JobId, Instant, (usize, usize), bool)],
    running: &[(JobId, u32)],
    now: Instant,
) -> Vec<Line> {
    jobs.iter()
        .filter(|(_, submitted, _, ended)| {
            !ended && now.saturating_duration_since(*submitted) >= FIRST_DELAY
        })
        .take(MAX_BARS)
        .map(|&(job_id, _, (done, total), _)| Line {
            job_id,
            done: done as u64,
            running: running
                .iter()
                .find(|(j, _)| *j == job_id)
                .map_or(0, |(_, n)| u64::from(*n)),
            total: total as u64,
        })
        .collect()
}

/// The shared state of the bar's thread and the context.
struct Shared {
    jobs: Mutex<Vec<Tracked>>,
    /// The bars on the screen, by job: the thread draws them, and a job's caller clears
    /// its bar before it gets the results ([`ConsoleProgress::job_ended`]), so what it
    /// prints next is never drawn over.
    bars: Mutex<Bars>,
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// What is on the screen.
struct Bars {
    multi: MultiProgress,
    style: ProgressStyle,
    by_job: BTreeMap<JobId, ProgressBar>,
    /// Jobs whose caller has cleared their bar, kept only while a look the thread took
    /// before may still name them (so it does not draw them again).
    ended: BTreeSet<JobId>,
}

/// The console progress bar of one context.
pub(crate) struct ConsoleProgress {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ConsoleProgress {
    /// The bar `conf` asks for (`ember.ui.showConsoleProgress`), if stderr is a terminal.
    ///
    /// # Errors
    ///
    /// The setting is not a boolean.
    pub(crate) fn from_conf(
        conf: &RpcConf,
        driver: &ControlRef<DriverProtocol>,
    ) -> Result<Option<Arc<ConsoleProgress>>, ConfError> {
        Ok(if conf.get_bool(SHOW_CONSOLE_PROGRESS, false)? {
            ConsoleProgress::start(driver.clone()).map(Arc::new)
        } else {
            None
        })
    }

    /// Starts the bar's thread, unless stderr is not a terminal (then there is no bar).
    pub(crate) fn start(driver: ControlRef<DriverProtocol>) -> Option<ConsoleProgress> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let style =
            ProgressStyle::with_template("[Stage {prefix}:{wide_bar}({pos} + {msg}) / {len}]")
                .map(|s| s.progress_chars("=> "))
                .map_err(|e| log::warn!("No console progress bar: {e}"))
                .ok()?;
        let shared = Arc::new(Shared {
            jobs: Mutex::new(Vec::new()),
            bars: Mutex::new(Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(5)),
                style,
                by_job: BTreeMap::new(),
                ended: BTreeSet::new(),
            }),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        let looking = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("console-progress".into())
            .spawn(move || draw_until_stopped(&looking, &driver))
            .map_err(|e| log::warn!("No console progress bar: {e}"))
            .ok()?;
        Some(ConsoleProgress {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Shows `job` once it has run for a while.
    pub(crate) fn track(&self, job: &Arc<JobState>) {
        self.shared.jobs.lock().push(Tracked {
            job: Arc::downgrade(job),
            job_id: job.job_id(),
            submitted: Instant::now(),
        });
    }

    /// Clears `job_id`'s bar, now: its caller is about to get the results (Spark's
    /// `finishAll` at the end of `runJob`).
    pub(crate) fn job_ended(&self, job_id: JobId) {
        let mut bars = self.shared.bars.lock();
        if let Some(bar) = bars.by_job.remove(&job_id) {
            bar.finish_and_clear();
        }
        bars.ended.insert(job_id);
        drop(bars);
        self.shared.jobs.lock().retain(|t| t.job_id != job_id);
    }

    /// Clears the bar and stops its thread. Idempotent.
    pub(crate) fn stop(&self) {
        *self.shared.stopped.lock() = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ConsoleProgress {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a redraw waits for the running tasks before drawing without them.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// The thread: every [`UPDATE_INTERVAL`], the lines now, drawn; at the stop, cleared.
fn draw_until_stopped(shared: &Shared, driver: &ControlRef<DriverProtocol>) {
    loop {
        {
            let mut stopped = shared.stopped.lock();
            if !*stopped {
                shared.wake.wait_for(&mut stopped, UPDATE_INTERVAL);
            }
            if *stopped {
                break;
            }
        }
        let jobs = snapshot(&shared.jobs);
        if jobs.is_empty() && shared.bars.lock().by_job.is_empty() {
            continue;
        }
        let running = driver
            .ask_with_timeout(|reply| DriverControl::RunningTasks { reply }, ASK_TIMEOUT)
            .wait()
            .unwrap_or_default();
        let lines = visible_lines(&jobs, &running, Instant::now());
        draw(&mut shared.bars.lock(), &lines);
    }
    let bars = shared.bars.lock();
    for bar in bars.by_job.values() {
        bar.finish_and_clear();
    }
    let _ = bars.multi.clear();
}

/// Puts `lines` on the screen: new bars for new jobs, the numbers of the others, and the
/// bars of jobs no longer shown cleared.
fn draw(bars: &mut Bars, lines: &[Line]) {
    let ended = std::mem::take(&mut bars.ended);
    bars.ended = ended
        .into_iter()
        .filter(|id| lines.iter().any(|l| l.job_id == *id))
        .collect();
    let lines: Vec<&Line> = lines
        .iter()
        .filter(|l| !bars.ended.contains(&l.job_id))
        .collect();
    bars.by_job.retain(|job_id, bar| {
        let shown = lines.iter().any(|l| l.job_id == *job_id);
        if !shown {
            bar.finish_and_clear();
        }
        shown
    });
    for line in lines {
        let Bars {
            multi,
            style,
            by_job,
            ..
        } = &mut *bars;
        let bar = by_job.entry(line.job_id).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(line.total));
            bar.set_style(style.clone());
            bar.set_prefix(line.job_id.0.to_string());
            bar
        });
        bar.set_position(line.done);
        bar.set_message(line.running.to_string());
    }
}

/// The tracked jobs now, dropping those gone or ended for a while: (id, submitted,
/// progress, ended).
fn snapshot(jobs: &Mutex<Vec<Tracked>>) -> Vec<(JobId, Instant, (usize, usize), bool)> {
    let mut seen = Vec::new();
    // One pass: an ended job is reported (so its bar is cleared) once more, then forgotten,
    // and so is one whose state is gone.
    jobs.lock().retain(|t| {
        let Some(job) = t.job.upgrade() else {
            return false;
        };
        let ended = job.is_done();
        seen.push((t.job_id, t.submitted, job.progress(), ended));
        !ended
    });
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_shows_after_half_a_second_until_it_ends_three_at_most() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let jobs = vec![
            (JobId(0), t0, (12, 100), false),
            (JobId(1), at(300), (0, 10), false),
            (JobId(2), t0, (5, 5), true),
            (JobId(3), t0, (1, 4), false),
            (JobId(4), t0, (0, 4), false),
            (JobId(5), t0, (0, 4), false),
        ];
        let running = vec![(JobId(0), 2), (JobId(3), 1)];
        let lines = visible_lines(&jobs, &running, at(600));
        assert_eq!(
            lines,
            vec![
                Line {
                    job_id: JobId(0),
                    done: 12,
                    running: 2,
                    total: 100
                },
                Line {
                    job_id: JobId(3),
                    done: 1,
                    running: 1,
                    total: 4
                },
                Line {
                    job_id: JobId(4),
                    done: 0,
                    running: 0,
                    total: 4
                },
            ],
            "job 1 is too young, job 2 ended, job 5 waits for a line"
        );
        assert!(visible_lines(&jobs, &running, at(499)).is_empty());
        assert_eq!(visible_lines(&jobs, &running, at(800))[1].job_id, JobId(1));
    }
}
