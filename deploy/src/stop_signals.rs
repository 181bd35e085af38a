//! How the daemons (`ember-master`, `ember-worker`) stop on SIGTERM or SIGINT: the signals
//! are blocked in every thread, and one thread waits for them and stops the daemon cleanly,
//! instead of the process dying wherever it is.

use nix::sys::signal::{SigSet, Signal};

/// SIGTERM and SIGINT, blocked in the thread that made this and every thread it starts
/// after (threads inherit the signal mask). Child processes inherit the mask too: a daemon
/// that starts children must clear it in them.
#[derive(Debug)]
pub struct StopSignals(SigSet);

impl StopSignals {
    /// Blocks SIGTERM and SIGINT in the calling thread. Call it first thing in `main`,
    /// before any thread starts. `None` when the mask cannot be set: the signals then keep
    /// their default action and kill the process.
    pub fn block() -> Option<StopSignals> {
        let mut signals = SigSet::empty();
        signals.add(Signal::SIGTERM);
        signals.add(Signal::SIGINT);
        signals.thread_block().ok().map(|()| StopSignals(signals))
    }

    /// Starts a thread named `name` that waits for the first stop signal, logs
    /// `RECEIVED SIGNAL <signal>` (as Spark's daemons do; scripts look for it) and calls
    /// `stop`. A thread that cannot be started is logged: the daemon then runs until it
    /// stops by itself, or is killed.
    pub fn watch(self, name: &str, stop: impl FnOnce() + Send + 'static) {
        let spawned = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                if let Ok(signal) = self.0.wait() {
                    log::info!("RECEIVED SIGNAL {signal}");
                    stop();
                }
            });
        if let Err(e) = spawned {
            log::warn!("Cannot watch for stop signals: {e}");
        }
    }
}
