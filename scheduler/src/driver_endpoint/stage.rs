//! Where an executor is in its life with the driver: registered, launched (it takes tasks),
//! or disconnected with its loss reason still to come. Removal is not a stage: a removed
//! executor is no longer known.

use std::time::Instant;

/// An executor's stage. Only a launched one gets offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Registered, `LaunchedExecutor` not yet come: it takes no tasks yet.
    Registered,
    /// `LaunchedExecutor` came: it takes tasks.
    Launched,
    /// Disconnected, its real loss reason yet to come: it gets no offers, and its tasks wait
    /// for that reason. At `until` it is removed as disassociated; with `None` only the
    /// reason removes it.
    Disconnected {
        /// When it is removed if no reason came.
        until: Option<Instant>,
    },
}

impl Stage {
    /// Whether it gets offers.
    pub(super) fn takes_tasks(self) -> bool {
        self == Stage::Launched
    }

    /// Whether its loss is pending.
    pub(super) fn is_disconnected(self) -> bool {
        matches!(self, Stage::Disconnected { .. })
    }

    /// `LaunchedExecutor` came. A disconnected executor stays disconnected: the executor
    /// announced itself before its connection dropped, and it gets nothing new.
    pub(super) fn launched(self) -> Stage {
        match self {
            Stage::Registered | Stage::Launched => Stage::Launched,
            disconnected @ Stage::Disconnected { .. } => disconnected,
        }
    }

    /// Its loss reason is pending, to wait for until `until`. Hearing it again changes
    /// nothing: the first wait, and its deadline, stay.
    pub(super) fn disconnected(self, until: Option<Instant>) -> Stage {
        match self {
            Stage::Registered | Stage::Launched => Stage::Disconnected { until },
            Stage::Disconnected { .. } => self,
        }
    }

    /// When it is to be removed as disassociated, if it waits with a deadline.
    pub(super) fn removal_due(self) -> Option<Instant> {
        match self {
            Stage::Disconnected { until } => until,
            Stage::Registered | Stage::Launched => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn registered_launched_disconnected_then_due() {
        let now = Instant::now();
        let at = now + Duration::from_secs(5);
        let registered = Stage::Registered;
        assert!(!registered.takes_tasks() && !registered.is_disconnected());
        assert_eq!(registered.removal_due(), None);

        let launched = registered.launched();
        assert_eq!(launched, Stage::Launched);
        assert!(launched.takes_tasks() && !launched.is_disconnected());
        assert_eq!(
            launched.launched(),
            Stage::Launched,
            "a repeated launch changes nothing"
        );

        let disconnected = launched.disconnected(Some(at));
        assert!(!disconnected.takes_tasks() && disconnected.is_disconnected());
        assert_eq!(disconnected.removal_due(), Some(at));
    }

    #[test]
    fn an_executor_may_disconnect_before_it_launched() {
        let at = Instant::now();
        let stage = Stage::Registered.disconnected(Some(at));
        assert_eq!(stage, Stage::Disconnected { until: Some(at) });
    }

    #[test]
    fn a_late_launch_does_not_bring_a_disconnected_executor_back() {
        let at = Instant::now();
        for before in [Stage::Registered, Stage::Launched] {
            let stage = before.disconnected(Some(at)).launched();
            assert_eq!(stage, Stage::Disconnected { until: Some(at) });
            assert!(!stage.takes_tasks());
        }
    }

    #[test]
    fn a_pending_reason_without_a_deadline_waits_for_the_reason_alone() {
        let stage = Stage::Launched.disconnected(None);
        assert!(stage.is_disconnected() && !stage.takes_tasks());
        assert_eq!(stage.removal_due(), None);
    }

    #[test]
    fn the_first_wait_stays() {
        let now = Instant::now();
        let first = now + Duration::from_secs(1);
        let later = now + Duration::from_secs(9);
        let stage = Stage::Launched.disconnected(Some(first));
        assert_eq!(stage.disconnected(None), stage);
        assert_eq!(stage.disconnected(Some(later)), stage);
        let stage = Stage::Launched.disconnected(None);
        assert_eq!(stage.disconnected(Some(later)), stage);
    }
}
