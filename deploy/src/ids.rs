//! Ids of the standalone cluster: workers, applications, drivers.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use rpc_env::{Decode, DecodeError, Encode, Reader};

macro_rules! text_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub String);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Encode for $name {
            fn encode(&self, buf: &mut BytesMut) {
                self.0.encode(buf);
            }
        }

        impl Decode for $name {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                String::decode(r).map($name)
            }
        }
    };
}

text_id!(
    /// A worker: `worker-<yyyyMMddHHmmss>-<host>-<port>`.
    WorkerId
);
text_id!(
    /// An application: `app-<yyyyMMddHHmmss>-<NNNN>`.
    AppId
);
text_id!(
    /// A driver submitted in cluster mode: `driver-<yyyyMMddHHmmss>-<NNNN>`.
    DriverId
);

/// `yyyyMMddHHmmss` in UTC, the stamp in worker, application and driver ids. Spark uses the
/// JVM's time zone; Ember has no time-zone database, and UTC ids sort the same on every
/// machine of a cluster.
pub(crate) fn id_timestamp(t: SystemTime) -> String {
    // A clock before 1970 (or past chrono's range, year 262143) is a broken clock; stamping
    // it as the epoch keeps ids well formed.
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let utc = i64::try_from(secs)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_default();
    utc.format("%Y%m%d%H%M%S").to_string()
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
        assert_eq!(id_timestamp(at(0)), "19700101000000");
        // 2000-02-29 12:34:56 UTC: a leap day of a century leap year.
        assert_eq!(id_timestamp(at(951_827_696)), "20000229123456");
        // 2024-02-29 12:34:56 UTC.
        assert_eq!(id_timestamp(at(1_709_210_096)), "20240229123456");
        // 2024-12-31 23:59:59 UTC.
        assert_eq!(id_timestamp(at(1_735_689_599)), "20241231235959");
        assert_eq!(
            id_timestamp(UNIX_EPOCH - Duration::from_secs(1)),
            "19700101000000"
        );
    }
}
