//! The worker's registration with its masters, as a sans-IO state machine (Spark's
//! `registerWithMaster` / `reregisterWithMaster` / `changeMaster` / `masterDisconnected`).
//!
//! The machine never touches a socket, a timer or the clock: each event returns the
//! [`Action`]s the worker endpoint then performs (send `RegisterWorker`, arm or cancel the
//! retry timer, start heartbeats, give up). The retry schedule is a pure function of the
//! attempt number and a fuzz factor drawn once per worker, so tests can check it exactly.
//!
//! ```text
//!            start / master lost / ReconnectWorker
//!   Idle ─────────────────────────────────────────► Registering { attempt }
//!                                                     │   │  retry tick: attempt += 1,
//!                RegisteredWorker / MasterChanged     │   │  register again (quick interval
//!   Registered ◄──────────────────────────────────────┘   │  up to `initial` attempts, then
//!       │                                                 │  the prolonged one)
//!       └── master lost / ReconnectWorker ──► Registering │
//!                                                         ▼
//!                               attempt > max, or RegisterWorkerFailed while unregistered
//!                                                      GaveUp
//! ```

use std::time::Duration;

use rpc_env::RpcAddress;

/// The fuzz factor's range: Spark draws `nextDouble + 0.5`, in `[0.5, 1.5)`.
const FUZZ_MIN: f64 = 0.5;
/// The width of the fuzz factor's range.
const FUZZ_WIDTH: f64 = 1.0;

/// When registration is retried: a quick interval for the first attempts, then a longer
/// one, and a limit after which the worker gives up (Spark's registration constants).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RetrySchedule {
    /// The quick interval, already fuzzed (Spark: 10 s × fuzz → 5–15 s).
    pub(crate) initial_interval: Duration,
    /// The interval after `initial_retries` attempts, already fuzzed (60 s × fuzz → 30–90 s).
    pub(crate) prolonged_interval: Duration,
    /// How many retries use the quick interval (6).
    pub(crate) initial_retries: u32,
    /// The last retry; one more tick gives up (16).
    pub(crate) max_retries: u32,
}

impl RetrySchedule {
    /// The schedule for base intervals `initial` and `prolonged`, each multiplied by `fuzz`,
    /// which is clamped into `[0.5, 1.5)` and should be drawn once per worker so that
    /// workers started together do not retry in lockstep.
    pub(crate) fn new(
        initial: Duration,
        prolonged: Duration,
        initial_retries: u32,
        max_retries: u32,
        fuzz: f64,
    ) -> RetrySchedule {
        let fuzz = if fuzz.is_finite() {
            fuzz.clamp(FUZZ_MIN, FUZZ_MIN + FUZZ_WIDTH)
        } else {
            1.0
        };
        // Rounded to whole milliseconds, as Spark rounds its seconds.
        let fuzzed =
            |d: Duration| Duration::from_millis((d.as_millis() as f64 * fuzz).round() as u64);
        RetrySchedule {
            initial_interval: fuzzed(initial),
            prolonged_interval: fuzzed(prolonged),
            initial_retries,
            max_retries,
        }
    }

    /// The fuzz factor for a random `u64`: uniform in `[0.5, 1.5)`.
    pub(crate) fn fuzz_from(random: u64) -> f64 {
        // The top 52 bits: a uniform value in [0, 1) whose sum with 0.5 is exact in
        // [0.5, 1.5) (53 bits could round up to 1.5).
        FUZZ_MIN + FUZZ_WIDTH * ((random >> 12) as f64 / (1u64 << 52) as f64)
    }

    /// The interval the retry timer runs at after retry `attempt` (0 = the first try):
    /// quick until the `initial_retries`-th retry, prolonged from then on.
    pub(crate) fn interval_after(&self, attempt: u32) -> Duration {
        if attempt < self.initial_retries {
            self.initial_interval
        } else {
            self.prolonged_interval
        }
    }

    #[cfg(test)]
    /// When retry `attempt` (1-based) happens, counted from the first try; `None` for the
    /// tick that gives up instead (`attempt > max_retries`).
    pub(crate) fn retry_time(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || attempt > self.max_retries {
            return None;
        }
        Some(self.tick_time(attempt))
    }

    #[cfg(test)]
    /// When tick `n` (1-based) of the retry timer fires, counted from the first try.
    pub(crate) fn tick_time(&self, n: u32) -> Duration {
        let quick = n.min(self.initial_retries);
        let slow = n - quick;
        self.initial_interval * quick + self.prolonged_interval * slow
    }
}

/// Where a registration attempt goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Targets {
    /// Every configured master.
    All,
    /// Only the master the worker was registered with before it lost it.
    Known(RpcAddress),
}

/// What the worker endpoint must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send `RegisterWorker` to these masters.
    Register(Targets),
    /// (Re)start the retry timer at this interval, replacing any running one.
    ArmRetryTimer(Duration),
    /// Stop the retry timer.
    CancelRetryTimer,
    /// Start the heartbeat (and work-dir cleanup) timers; asked for once per worker life.
    StartTimers,
    /// Send `WorkerLatestState` to the master just registered with.
    SendLatestState,
    /// Log `All masters are unresponsive! Giving up.` and exit 1.
    GiveUp,
}

/// The registration phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not started.
    Idle,
    /// Trying to register; the retry timer runs and has ticked `attempt` times.
    Registering {
        /// Retries so far (Spark's `connectionAttemptCount`).
        attempt: u32,
    },
    /// Registered with `master` and connected to it: heartbeats go out.
    Registered,
    /// Registration failed for good; the worker exits.
    GaveUp,
}

/// The registration state machine.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    schedule: RetrySchedule,
    phase: Phase,
    /// The master last registered with (Spark's `master`), kept after its loss so that
    /// retries go to it alone, and so that `LaunchExecutor` from it is still accepted.
    master: Option<RpcAddress>,
    /// Heartbeat and cleanup timers are started once for the worker's life (SPARK-54312).
    timers_started: bool,
}

impl Registration {
    /// A machine that has not started.
    pub(crate) fn new(schedule: RetrySchedule) -> Registration {
        Registration {
            schedule,
            phase: Phase::Idle,
            master: None,
            timers_started: false,
        }
    }

    /// The current phase.
    #[cfg(test)]
    pub(crate) fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The master last registered with, if any.
    pub(crate) fn master(&self) -> Option<&RpcAddress> {
        self.master.as_ref()
    }

    /// Whether the worker is registered and connected (heartbeats go out only then).
    pub(crate) fn is_connected(&self) -> bool {
        self.phase == Phase::Registered
    }

    /// The worker starts, or must register again (its master was lost, or asked it to
    /// reconnect): register with every master and arm the retry timer, unless an attempt
    /// is already under way.
    pub(crate) fn register(&mut self) -> Vec<Action> {
        match self.phase {
            Phase::Registering { .. } => {
                log::info!(
                    "Not spawning another attempt to register with the master, since there \
                     is an attempt scheduled already."
                );
                Vec::new()
            }
            Phase::GaveUp => Vec::new(),
            Phase::Idle | Phase::Registered => {
                self.phase = Phase::Registering { attempt: 0 };
                vec![
                    Action::Register(Targets::All),
                    Action::ArmRetryTimer(self.schedule.interval_after(0)),
                ]
            }
        }
    }

    /// The retry timer ticked (`ReregisterWithMaster`).
    pub(crate) fn retry_tick(&mut self) -> Vec<Action> {
        let Phase::Registering { attempt } = self.phase else {
            // A tick queued before the timer was cancelled.
            return match self.phase {
                Phase::Registered => vec![Action::CancelRetryTimer],
                _ => Vec::new(),
            };
        };
        let attempt = attempt + 1;
        if attempt > self.schedule.max_retries {
            self.phase = Phase::GaveUp;
            return vec![Action::CancelRetryTimer, Action::GiveUp];
        }
        log::info!("Retrying connection to master (attempt # {attempt})");
        self.phase = Phase::Registering { attempt };
        let targets = match &self.master {
            Some(master) => Targets::Known(master.clone()),
            None => Targets::All,
        };
        let mut actions = vec![Action::Register(targets)];
        if attempt == self.schedule.initial_retries {
            actions.push(Action::ArmRetryTimer(self.schedule.interval_after(attempt)));
        }
        actions
    }

    /// A master accepted the registration (`RegisteredWorker`).
    pub(crate) fn registered(&mut self, master: RpcAddress) -> Vec<Action> {
        if self.phase == Phase::GaveUp {
            return Vec::new();
        }
        let mut actions = self.change_master(master);
        if !self.timers_started {
            self.timers_started = true;
            actions.push(Action::StartTimers);
        }
        actions.push(Action::SendLatestState);
        actions
    }

    /// A new master leads after a failover (`MasterChanged`).
    pub(crate) fn master_changed(&mut self, master: RpcAddress) -> Vec<Action> {
        if self.phase == Phase::GaveUp {
            return Vec::new();
        }
        self.change_master(master)
    }

    fn change_master(&mut self, master: RpcAddress) -> Vec<Action> {
        self.master = Some(master);
        let was_registering = matches!(self.phase, Phase::Registering { .. });
        self.phase = Phase::Registered;
        if was_registering {
            vec![Action::CancelRetryTimer]
        } else {
            Vec::new()
        }
    }

    /// A master refused the registration (`RegisterWorkerFailed`): fatal unless the
    /// worker is already registered (another master accepted it).
    pub(crate) fn register_failed(&mut self) -> Vec<Action> {
        match self.phase {
            Phase::Registered | Phase::GaveUp => Vec::new(),
            Phase::Idle | Phase::Registering { .. } => {
                self.phase = Phase::GaveUp;
                vec![Action::CancelRetryTimer, Action::GiveUp]
            }
        }
    }

    /// The connection to `remote` closed: if it was the master's, register again.
    pub(crate) fn disconnected(&mut self, remote: &RpcAddress) -> Vec<Action> {
        if self.master.as_ref() != Some(remote) {
            return Vec::new();
        }
        log::info!("{remote} Disassociated !");
        log::error!("Connection to master failed! Waiting for master to reconnect...");
        self.register()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(fuzz: f64) -> RetrySchedule {
        RetrySchedule::new(
            Duration::from_secs(10),
            Duration::from_secs(60),
            6,
            16,
            fuzz,
        )
    }

    fn master() -> RpcAddress {
        RpcAddress::new("10.0.0.1", 7077)
    }

    #[test]
    fn fuzz_is_uniform_in_half_to_one_and_a_half() {
        assert_eq!(RetrySchedule::fuzz_from(0), 0.5);
        let top = RetrySchedule::fuzz_from(u64::MAX);
        assert!(top < 1.5 && top > 1.49, "{top}");
        assert!((RetrySchedule::fuzz_from(1 << 63) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn quick_retries_are_5_to_15_seconds_then_30_to_90() {
        for fuzz in [0.5, 0.75, 1.0, 1.2, 1.4999] {
            let s = schedule(fuzz);
            assert!(s.initial_interval >= Duration::from_secs(5), "{s:?}");
            assert!(s.initial_interval <= Duration::from_secs(15), "{s:?}");
            assert!(s.prolonged_interval >= Duration::from_secs(30), "{s:?}");
            assert!(s.prolonged_interval <= Duration::from_secs(90), "{s:?}");
        }
        // Out-of-range factors are clamped rather than trusted.
        assert_eq!(schedule(7.0).initial_interval, Duration::from_secs(15));
        assert_eq!(schedule(f64::NAN).initial_interval, Duration::from_secs(10));
    }

    #[test]
    fn the_schedule_is_six_quick_retries_then_ten_slow_ones() {
        let s = schedule(1.0);
        let times: Vec<u64> = (1..=16)
            .map(|n| s.retry_time(n).map(|d| d.as_secs()).unwrap_or(0))
            .collect();
        assert_eq!(
            times,
            [10, 20, 30, 40, 50, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 660]
        );
        assert_eq!(s.retry_time(17), None, "the 17th tick gives up");
        assert_eq!(s.tick_time(17).as_secs(), 720);
    }

    /// Drives the machine through the timer it asks for, counting registrations.
    #[test]
    fn the_machine_retries_on_schedule_and_gives_up_after_sixteen() {
        let mut r = Registration::new(schedule(1.0));
        let mut interval = None;
        let mut sends = 0;
        let mut ticks_at_quick = 0;
        let mut apply = |actions: Vec<Action>, interval: &mut Option<Duration>| {
            let mut gave_up = false;
            for a in actions {
                match a {
                    Action::Register(Targets::All) => sends += 1,
                    Action::ArmRetryTimer(d) => *interval = Some(d),
                    Action::GiveUp => gave_up = true,
                    Action::CancelRetryTimer => *interval = None,
                    other => panic!("unexpected {other:?}"),
                }
            }
            gave_up
        };
        assert!(!apply(r.register(), &mut interval));
        assert_eq!(interval, Some(Duration::from_secs(10)));
        let mut ticks = 0;
        loop {
            ticks += 1;
            if interval == Some(Duration::from_secs(10)) {
                ticks_at_quick += 1;
            }
            if apply(r.retry_tick(), &mut interval) {
                break;
            }
            assert!(ticks < 100, "never gives up");
        }
        assert_eq!(sends, 17, "the first try and 16 retries");
        assert_eq!(ticks, 17, "the 17th tick gives up");
        assert_eq!(ticks_at_quick, 6);
        assert_eq!(r.phase(), &Phase::GaveUp);
        assert_eq!(interval, None);
        assert!(r.retry_tick().is_empty(), "nothing after giving up");
        assert!(r.register().is_empty());
    }

    #[test]
    fn registration_stops_retries_and_starts_timers_once() {
        let mut r = Registration::new(schedule(1.0));
        r.register();
        r.retry_tick();
        assert_eq!(
            r.registered(master()),
            [
                Action::CancelRetryTimer,
                Action::StartTimers,
                Action::SendLatestState
            ]
        );
        assert!(r.is_connected());
        assert_eq!(r.retry_tick(), [Action::CancelRetryTimer], "a stale tick");
        // Lost and found again: the timers are not started a second time (SPARK-54312).
        assert_eq!(
            r.disconnected(&master()),
            [
                Action::Register(Targets::All),
                Action::ArmRetryTimer(Duration::from_secs(10))
            ]
        );
        assert!(!r.is_connected());
        assert_eq!(
            r.retry_tick(),
            [Action::Register(Targets::Known(master()))],
            "retries after a loss go to the known master only"
        );
        assert_eq!(
            r.registered(master()),
            [Action::CancelRetryTimer, Action::SendLatestState]
        );
    }

    #[test]
    fn a_second_attempt_is_not_spawned_while_one_is_scheduled() {
        let mut r = Registration::new(schedule(1.0));
        assert_eq!(r.register().len(), 2);
        assert!(r.register().is_empty());
        assert!(r.disconnected(&master()).is_empty(), "not our master");
    }

    #[test]
    fn refusal_is_fatal_only_before_registration() {
        let mut r = Registration::new(schedule(1.0));
        r.register();
        assert_eq!(
            r.register_failed(),
            [Action::CancelRetryTimer, Action::GiveUp]
        );
        let mut r = Registration::new(schedule(1.0));
        r.register();
        r.registered(master());
        assert!(r.register_failed().is_empty());
        assert!(r.is_connected());
    }

    #[test]
    fn reconnect_and_master_change() {
        let mut r = Registration::new(schedule(1.0));
        r.register();
        r.registered(master());
        // ReconnectWorker: register again with everyone.
        assert_eq!(r.register()[0], Action::Register(Targets::All));
        let other = RpcAddress::new("10.0.0.2", 7077);
        assert_eq!(r.master_changed(other.clone()), [Action::CancelRetryTimer]);
        assert_eq!(r.master(), Some(&other));
        assert!(r.is_connected());
    }
}
