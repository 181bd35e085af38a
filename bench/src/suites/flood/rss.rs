//! A process's resident memory from `/proc/<pid>/status`: now (`VmRSS`), its peak so far
//! (`VmHWM`), and a sampler that tracks the peak of `VmRSS` while a flood runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::error::BenchError;

/// How often the sampler reads `VmRSS`: often enough to see a burst that lasts a few
/// scheduler ticks, rarely enough that reading /proc costs the machine nothing.
const SAMPLE_PERIOD: Duration = Duration::from_millis(10);

/// The value of `field` (e.g. `VmRSS`) in `/proc/<pid>/status`, in KiB.
pub(crate) fn status_kib(pid: u32, field: &str) -> Result<f64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
    parse_status_kib(&status, field).ok_or_else(|| BenchError::new(format!("no {field} in {path}")))
}

/// `field`'s value in the text of a `/proc/<pid>/status` file (`VmRSS:   1234 kB`).
fn parse_status_kib(status: &str, field: &str) -> Option<f64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
}

/// KiB to MiB.
pub(crate) fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// Samples a process's `VmRSS` every [`SAMPLE_PERIOD`] on a thread of its own until
/// stopped, keeping the largest value.
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<f64>,
}

impl Sampler {
    /// Starts sampling `pid`.
    pub(crate) fn start(pid: u32) -> Result<Sampler, BenchError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                let mut peak = 0.0f64;
                loop {
                    // A failed read means the process is gone; the caller finds out itself.
                    if let Ok(kib) = status_kib(pid, "VmRSS") {
                        peak = peak.max(kib);
                    }
                    if flag.load(Ordering::Relaxed) {
                        return peak;
                    }
                    // Not synchronisation: the sampling period.
                    thread::sleep(SAMPLE_PERIOD);
                }
            })
            .map_err(|e| BenchError::io("starting the rss-sampler thread", e))?;
        Ok(Sampler { stop, thread })
    }

    /// Stops sampling and returns the peak `VmRSS` seen, in KiB (0 if none was read).
    pub(crate) fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_of_a_status_file() {
        let status = "Name:\tember\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(10240.0));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(20480.0));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        assert_eq!(mib(10240.0), 10.0);
    }

    #[test]
    fn samples_this_process() {
        let me = std::process::id();
        let sampler = Sampler::start(me).unwrap();
        let peak = sampler.stop();
        assert!(peak > 0.0);
        assert!(status_kib(me, "VmHWM").unwrap() >= status_kib(me, "VmRSS").unwrap() / 2.0);
    }
}
