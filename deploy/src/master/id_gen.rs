//! Application and driver ids: `app-<yyyyMMddHHmmss>-<NNNN>`, `driver-<yyyyMMddHHmmss>-<NNNN>`,
//! numbered per master from 0.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::ids::{AppId, DriverId};

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
        AppId(format!("app-{}-{n:04}", timestamp(now)))
    }

    /// The next driver id, stamped with `now`.
    pub(crate) fn next_driver_id(&mut self, now: SystemTime) -> DriverId {
        let n = self.next_driver;
        self.next_driver += 1;
        DriverId(format!("driver-{}-{n:04}", timestamp(now)))
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

/// `yyyyMMddHHmmss` in UTC. Spark uses the JVM's time zone; Ember has no time-zone
/// database, and UTC ids sort the same on every machine of a cluster.
pub(crate) fn timestamp(t: SystemTime) -> String {
    // A clock before 1970 is a broken clock; stamping it as the epoch keeps ids well formed.
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // d is in 1..=31 and m in 1..=12 by construction.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn timestamps_are_utc_calendar_times() {
        assert_eq!(timestamp(at(0)), "19700101000000");
        // 2000-02-29 12:34:56 UTC: a leap day of a century leap year.
        assert_eq!(timestamp(at(951_827_696)), "20000229123456");
        // 2024-12-31 23:59:59 UTC.
        assert_eq!(timestamp(at(1_735_689_599)), "20241231235959");
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
