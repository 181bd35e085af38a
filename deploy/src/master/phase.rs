//! The master's phase: whether it leads the cluster.

/// The master's phase (Spark's `RecoveryState`).
///
/// ```text
/// Standby --elected leader, nothing stored--> Alive
/// ```
///
/// Only an ALIVE master schedules. A STANDBY one answers workers with `MasterInStandby`,
/// ignores applications and refuses driver requests. Recovery (a later issue) adds
/// `Recovering { .. }`, carrying the workers and applications that have not answered yet,
/// and `CompletingRecovery`, between `Standby` and `Alive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not the leader: turns work away.
    Standby,
    /// The leader: registers, schedules, launches.
    Alive,
}

impl Phase {
    /// Spark's name for the phase, as `RequestMasterState` reports it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Standby => "STANDBY",
            Phase::Alive => "ALIVE",
        }
    }
}
