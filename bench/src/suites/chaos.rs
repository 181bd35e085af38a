//! The `chaos` suite: a stream of short tasks on `local-cluster[3,1,1024]` while executor
//! processes are killed (SIGKILL) at random, one every few seconds.
//!
//! - `chaos.tasks_lost`: tasks whose result never came (a failed job loses all of its);
//! - `chaos.tasks_duplicated`: results counted more than once: a partition's value seen
//!   twice in a job's output, or a second result the driver got for a partition already
//!   done ([`ember_scheduler::duplicate_results`]);
//! - `chaos.detect_ms_p50`: from a kill to the driver's removing that executor (its tasks
//!   then run elsewhere), polled every 0.2 ms;
//! - `chaos.tasks_per_s`: tasks per second over the whole stream, churn included;
//! - `chaos.kills`: executors killed during the stream.
//!
//! 1,000,000 tasks in jobs of 50,000, a kill every 2 s; `--quick`: 100,000 in jobs of
//! 10,000, a kill every 300 ms. The master starts a replacement for each killed executor.
//! A stream that ends before its first kill would measure nothing, so jobs go on past the
//! total until at least [`MIN_KILLS`] kills are over (for at most [`MAX_EXTRA`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember::{Context, RpcConf};
use ember_executor::builtin;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cli::{Options, SERVE_ARG};
use crate::error::BenchError;
use crate::report::Metric;
use crate::stats;
use crate::suites::tasks::{failed, registry, EXECUTOR_MODE};

/// Kills the stream waits for, however fast its tasks go.
const MIN_KILLS: usize = 2;

/// How long the stream may run past its total waiting for [`MIN_KILLS`].
const MAX_EXTRA: Duration = Duration::from_secs(60);

/// The executors a kill may hit: this process's executor children, with their ids.
fn executors() -> Vec<(u32, String)> {
    crate::suites::cluster::executor_pids()
        .into_iter()
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let words: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let at = words.iter().position(|w| *w == b"--executor-id")?;
            let id = std::str::from_utf8(words.get(at + 1)?).ok()?;
            Some((pid, id.to_string()))
        })
        .collect()
}

/// A small xorshift generator: which executor dies need not be cryptographic.
struct Dice(u64);

impl Dice {
    fn seeded() -> Dice {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Dice(nanos | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What the killer thread saw.
#[derive(Default)]
struct Kills {
    /// Kill-to-removal times, in ms.
    detect_ms: Vec<f64>,
    /// Kills whose removal was not seen within the wait.
    undetected: usize,
}

/// Kills a random executor every `every` until `stop`, timing how long the driver takes to
/// drop each and counting the kills that are over (removed or given up on) in `over`.
fn killer(
    ctx: &Context,
    every: Duration,
    stop: &AtomicBool,
    over: &AtomicUsize,
) -> Result<Kills, BenchError> {
    let mut kills = Kills::default();
    let mut dice = Dice::seeded();
    let mut next = Instant::now() + every;
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        next = Instant::now() + every;
        let known = ctx.executor_ids().map_err(failed("listing executors"))?;
        // Only executors the driver has: a kill then always has a removal to wait for.
        let candidates: Vec<(u32, String)> = executors()
            .into_iter()
            .filter(|(_, id)| known.contains(id))
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let (pid, id) = candidates[dice.below(candidates.len())].clone();
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        let killed_at = Instant::now();
        if kill(Pid::from_raw(raw), Signal::SIGKILL).is_err() {
            continue;
        }
        let deadline = killed_at + Duration::from_secs(30);
        loop {
            let known = ctx.executor_ids().map_err(failed("listing executors"))?;
            if !known.contains(&id) {
                kills
                    .detect_ms
                    .push(killed_at.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if Instant::now() > deadline {
                kills.undetected += 1;
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        over.fetch_add(1, Ordering::Relaxed);
        eprintln!(
            "[chaos] killed executor {id} (pid {pid}); removed after {:.1} ms",
            killed_at.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(kills)
}

/// Tallies of one job's results against its inputs.
#[derive(Default, Debug, PartialEq)]
struct Tally {
    lost: u64,
    duplicated: u64,
}

/// Checks a job's output over `first..first + count` (the no-op task returns its input):
/// every value must be there once.
fn tally(first: u64, count: u64, out: &[u64]) -> Tally {
    let mut seen = vec![false; count as usize];
    let mut tally = Tally::default();
    for &v in out {
        match v.checked_sub(first).filter(|i| *i < count) {
            Some(i) if !seen[i as usize] => seen[i as usize] = true,
            // Twice, or a value no task of this job had: a result counted where it is not.
            _ => tally.duplicated += 1,
        }
    }
    tally.lost = seen.iter().filter(|s| !**s).count() as u64;
    tally
}

fn conf() -> Result<RpcConf, BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::io("finding ember-bench", e))?;
    Ok(RpcConf::new()
        .with(ember::MASTER, "local-cluster[3,1,1024]")
        .with(ember::APP_NAME, "ember-bench-chaos")
        .with(ember::EXECUTOR_PROGRAM, exe.to_string_lossy())
        .with(
            ember::EXECUTOR_PROGRAM_ARGS,
            format!("{SERVE_ARG} {EXECUTOR_MODE}"),
        ))
}

/// Runs the suite.
pub(crate) fn run(opts: &Options) -> Result<Vec<Metric>, BenchError> {
    let total = opts.iterations(1_000_000, 100_000) as u64;
    let per_job = opts.iterations(50_000, 10_000) as u64;
    let every = if opts.quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(2)
    };
    let ctx = Context::new(conf()?, registry()).map_err(failed("starting local-cluster"))?;
    let result = (|| {
        ctx.wait_for_executors(3, Duration::from_secs(30))
            .map_err(failed("waiting for the executors"))?;
        let duplicates_before = ember_scheduler::duplicate_results();
        eprintln!(
            "[chaos] {total} tasks in jobs of {per_job}, killing an executor every {} ms ...",
            every.as_millis()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let kills_over = Arc::new(AtomicUsize::new(0));
        let killer_thread = {
            let (ctx, stop, over) = (ctx.clone(), Arc::clone(&stop), Arc::clone(&kills_over));
            std::thread::Builder::new()
                .name("chaos-killer".into())
                .spawn(move || killer(&ctx, every, &stop, &over))
                .map_err(|e| BenchError::io("starting the killer thread", e))?
        };
        let start = Instant::now();
        let mut tallied = Tally::default();
        let mut first = 0;
        let mut past_total: Option<Instant> = None;
        loop {
            if first >= total {
                let since = *past_total.get_or_insert_with(Instant::now);
                if kills_over.load(Ordering::Relaxed) >= MIN_KILLS || since.elapsed() > MAX_EXTRA {
                    break;
                }
            }
            let count = if first < total {
                per_job.min(total - first)
            } else {
                per_job
            };
            match ctx.run_job::<u64, u64>(builtin::NOOP, (first..first + count).collect()) {
                Ok(out) => {
                    let t = tally(first, count, &out);
                    tallied.lost += t.lost;
                    tallied.duplicated += t.duplicated;
                }
                Err(e) => {
                    eprintln!("[chaos] a job of {count} tasks failed: {e}");
                    tallied.lost += count;
                }
            }
            first += count;
        }
        let took = start.elapsed();
        if first > total {
            eprintln!("[chaos] ran {first} tasks in all to see {MIN_KILLS} kills over");
        }
        stop.store(true, Ordering::Relaxed);
        let kills = killer_thread
            .join()
            .map_err(|_| BenchError::new("the killer thread panicked"))??;
        let mut detect = kills.detect_ms;
        if detect.is_empty() {
            return Err(BenchError::new(
                "no executor was killed and removed during the stream",
            ));
        }
        if kills.undetected > 0 {
            eprintln!(
                "[chaos] {} killed executors were never removed within 30 s",
                kills.undetected
            );
        }
        let duplicated =
            tallied.duplicated + ember_scheduler::duplicate_results() - duplicates_before;
        let kill_count = (detect.len() + kills.undetected) as f64;
        stats::sort_samples(&mut detect);
        Ok(vec![
            Metric::new("chaos.tasks_lost", tallied.lost as f64, "tasks"),
            Metric::new("chaos.tasks_duplicated", duplicated as f64, "tasks"),
            Metric::new(
                "chaos.detect_ms_p50",
                stats::percentile(&detect, 50.0),
                "ms",
            ),
            Metric::new(
                "chaos.tasks_per_s",
                (first as f64 / took.as_secs_f64()).round(),
                "tasks/s",
            ),
            Metric::new("chaos.kills", kill_count, "kills"),
        ])
    })();
    ctx.stop();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_finds_missing_doubled_and_foreign_values() {
        assert_eq!(tally(10, 3, &[10, 11, 12]), Tally::default());
        assert_eq!(
            tally(10, 3, &[10, 10, 12]),
            Tally {
                lost: 1,
                duplicated: 1
            }
        );
        assert_eq!(
            tally(10, 3, &[10, 11, 99]),
            Tally {
                lost: 1,
                duplicated: 1
            }
        );
    }
}
