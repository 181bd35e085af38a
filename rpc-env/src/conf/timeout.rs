//! [`RpcTimeout`], a duration that names the setting it came from, and
//! [`format_duration`], which prints durations the way Spark's timeout messages do.

use std::fmt;
use std::time::Duration;

use super::{ConfError, RpcConf, TimeUnit};

/// A timeout together with the setting that controls it, so a timeout message can tell the
/// user which key to change (Spark's `RpcTimeout`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcTimeout {
    duration: Duration,
    key: String,
}

impl RpcTimeout {
    /// A timeout of `duration` attributed to the setting `key`.
    pub fn new(duration: Duration, key: impl Into<String>) -> Self {
        RpcTimeout {
            duration,
            key: key.into(),
        }
    }

    /// The value of the first of `keys` that is set (bare numbers in seconds), attributed to
    /// that key; when none is set, `default` attributed to `keys[0]`. An empty `keys` is an
    /// error, since there would be no key to name in timeout messages.
    pub fn from_conf(conf: &RpcConf, keys: &[&str], default: Duration) -> Result<Self, ConfError> {
        let Some(first) = keys.first() else {
            return Err(ConfError::new("(no key)", "", "no key given"));
        };
        let Some(key) = keys.iter().find(|key| conf.contains(key)) else {
            return Ok(RpcTimeout::new(default, *first));
        };
        let duration = conf.get_duration(key, default, TimeUnit::Seconds)?;
        Ok(RpcTimeout::new(duration, *key))
    }

    /// The value of `key` (bare numbers in seconds); an error if `key` is not set.
    pub fn from_conf_key(conf: &RpcConf, key: &str) -> Result<Self, ConfError> {
        if !conf.contains(key) {
            return Err(ConfError::not_set(key));
        }
        Self::from_conf(conf, &[key], Duration::ZERO)
    }

    /// How long to wait.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The setting that controls this timeout.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for RpcTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", format_duration(self.duration), self.key)
    }
}

/// Formats a duration the way Scala prints one, because Spark's timeout messages do:
/// `120 seconds`, `1 second`, `1500 milliseconds`, `3 microseconds`, `7 nanoseconds`, using
/// the largest of those units that divides it exactly. Zero is `0 seconds`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let (n, unit) = if nanos % 1_000_000_000 == 0 {
        (nanos / 1_000_000_000, "second")
    } else if nanos % 1_000_000 == 0 {
        (nanos / 1_000_000, "millisecond")
    } else if nanos % 1_000 == 0 {
        (nanos / 1_000, "microsecond")
    } else {
        (nanos, "nanosecond")
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural}")
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{k, one, MS};
    use super::*;

    /// Spark RpcEnvSuite 32: "construct RpcTimeout with conf property".
    #[test]
    fn construct_rpc_timeout_with_conf_property() {
        let test_prop = "ember.ask.test.timeout";
        let secondary_prop = "ember.ask.secondary.timeout";
        let c = one(test_prop, "30s").with(secondary_prop, "100s");
        let one_sec = Duration::from_secs(1);

        let t1 = RpcTimeout::from_conf_key(&c, test_prop).unwrap();
        assert_eq!(t1.duration(), Duration::from_secs(30));

        let props = ["ember.ask.invalid.timeout", test_prop, secondary_prop];
        let t2 = RpcTimeout::from_conf(&c, &props, one_sec).unwrap();
        assert_eq!((t2.duration(), t2.key()), (MS(30_000), test_prop));

        let default_prop = "ember.ask.default.timeout";
        let t3 = RpcTimeout::from_conf(&c, &[default_prop], one_sec).unwrap();
        assert_eq!(t3.duration(), one_sec);
        assert!(t3.key().contains(default_prop));

        let e = RpcTimeout::from_conf_key(&c, default_prop).unwrap_err();
        assert!(e.is_not_set());
        assert_eq!((e.key(), e.reason()), (default_prop, "not set"));
        assert_eq!(e.to_string(), "ember.ask.default.timeout is not set");
    }

    #[test]
    fn rpc_timeout_edge_cases() {
        let e = RpcTimeout::from_conf(&RpcConf::new(), &[], Duration::ZERO).unwrap_err();
        assert!(!e.is_not_set());
        assert!(RpcTimeout::from_conf_key(&k("x"), "k").is_err());
        let t = RpcTimeout::new(MS(1), "ember.rpc.short.timeout");
        assert_eq!(t.to_string(), "1 millisecond (ember.rpc.short.timeout)");
    }

    #[test]
    fn durations_print_like_scala() {
        let f = format_duration;
        assert_eq!(f(Duration::from_secs(120)), "120 seconds");
        assert_eq!(f(Duration::from_secs(1)), "1 second");
        assert_eq!(f(Duration::ZERO), "0 seconds");
        assert_eq!(f(MS(1)), "1 millisecond");
        assert_eq!(f(MS(1500)), "1500 milliseconds");
        assert_eq!(f(MS(2000)), "2 seconds");
        assert_eq!(f(Duration::from_micros(1)), "1 microsecond");
        assert_eq!(f(Duration::from_micros(1001)), "1001 microseconds");
        assert_eq!(f(Duration::from_nanos(1)), "1 nanosecond");
        assert_eq!(f(Duration::new(1, 1)), "1000000001 nanoseconds");
        let max = "18446744073709551615999999999 nanoseconds";
        assert_eq!(f(Duration::MAX), max);
    }
}
