//! The master's phase: whether it leads the cluster, and how far it has recovered.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::ids::{AppId, WorkerId};

/// The master's phase (Spark's `RecoveryState`).
///
/// ```text
///                    elected, nothing stored
/// Standby ───────────────────────────────────────────────────────────────► Alive
///    │ elected, something stored                                            ▲
///    ▼                                                                      │
/// Recovering { unknown_workers, unknown_apps } ──all answered / timeout──► CompletingRecovery
/// ```
///
/// Only an ALIVE master schedules. A STANDBY one answers workers with `MasterInStandby`,
/// ignores applications and refuses driver requests. A RECOVERING one has sent
/// `MasterChanged` to every stored worker and application and waits for their answers
/// (registrations are accepted meanwhile); COMPLETING_RECOVERY drops what did not
/// answer, and lasts no longer than the handler that enters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not the leader: turns work away, polls the leader election.
    Standby,
    /// The leader, waiting for stored workers and applications to answer.
    Recovering {
        /// Stored workers that have not answered `MasterChanged` yet (one that
        /// registered again meanwhile is ALIVE, but still owes its executors).
        unknown_workers: BTreeSet<WorkerId>,
        /// Stored applications that have not answered `MasterChanged` yet.
        unknown_apps: BTreeSet<AppId>,
        /// When recovery began, for the log line that ends it.
        since: Instant,
    },
    /// Dropping what did not answer; becomes `Alive` in the same handler.
    CompletingRecovery,
    /// The leader: registers, schedules, launches.
    Alive,
}

impl Phase {
    /// Spark's name for the phase, as `RequestMasterState` reports it.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Phase::Standby => "STANDBY",
            Phase::Recovering { .. } => "RECOVERING",
            Phase::CompletingRecovery => "COMPLETING_RECOVERY",
            Phase::Alive => "ALIVE",
        }
    }

    /// Whether this master leads (in any phase after the election).
    pub(crate) fn leads(&self) -> bool {
        !matches!(self, Phase::Standby)
    }
}
