//! Application and driver ids: `app-<yyyyMMddHHmmss>-<NNNN>`, `driver-<yyyyMMddHHmmss>-<NNNN>`,
//! numbered per master from 0.

use std::time::SystemTime;

use crate::ids::{id_timestamp, AppId, DriverId};

/// Hands out the master's application and driver ids.
#[derive(Debug, Default)]
pub(crate) struct IdGenerator {
    next_app: u64,
    next_driver: u64,
}

impl IdGenerator {
    /// The next application id, stamped with `now`.
    pub(crate) fn next_app_id(&mut self, now: SystemTime) -> AppId {
        let n = self.next_app;
        self.next_app += 1;
        AppId(format!("app-{}-{n:04}", id_timestamp(now)))
    }

    /// The next driver id, stamped with `now`.
    pub(crate) fn next_driver_id(&mut self, now: SystemTime) -> DriverId {
        let n = self.next_driver;
        self.next_driver += 1;
        DriverId(format!("driver-{}-{n:04}", id_timestamp(now)))
    }

    /// Numbers later application ids past a recovered one, so that a master restarted
    /// within the same second cannot hand out an id that is already taken.
    pub(crate) fn observe_app(&mut self, id: &AppId) {
        if let Some(n) = sequence_number(&id.0) {
            self.next_app = self.next_app.max(n.saturating_add(1));
        }
    }

    /// As [`observe_app`](Self::observe_app), for drivers.
    pub(crate) fn observe_driver(&mut self, id: &DriverId) {
        if let Some(n) = sequence_number(&id.0) {
            self.next_driver = self.next_driver.max(n.saturating_add(1));
        }
    }
}

/// The number after an id's last `-`, if it is one.
fn sequence_number(id: &str) -> Option<u64> {
    id.rsplit_once('-').and_then(|(_, n)| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn ids_count_from_zero_per_kind() {
        let mut ids = IdGenerator::default();
        let t = at(1_735_689_599);
        assert_eq!(ids.next_app_id(t).0, "app-20241231235959-0000");
        assert_eq!(ids.next_app_id(t).0, "app-20241231235959-0001");
        assert_eq!(ids.next_driver_id(t).0, "driver-20241231235959-0000");
    }

    #[test]
    fn recovered_ids_push_the_counters_past_them() {
        let mut ids = IdGenerator::default();
        let t = at(1_735_689_599);
        ids.observe_app(&AppId("app-20241231235959-0007".into()));
        ids.observe_app(&AppId("app-20241231235959-0003".into()));
        ids.observe_app(&AppId("my-app-name".into()));
        ids.observe_driver(&DriverId("driver-20241231235959-0001".into()));
        assert_eq!(ids.next_app_id(t).0, "app-20241231235959-0008");
        assert_eq!(ids.next_driver_id(t).0, "driver-20241231235959-0002");
    }
}
