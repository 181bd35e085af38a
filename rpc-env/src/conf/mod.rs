//! Configuration of the RPC environment: a map of `ember.*` string settings, Spark's
//! value syntaxes (time strings such as `120s`, byte strings such as `128m`), the named
//! accessors with Spark's defaults, and [`RpcTimeout`], a duration that remembers which
//! setting produced it so timeout messages can name it.
//!
//! Settings stay strings until read, as in Spark's `SparkConf`: a bad value is reported
//! (with its key) by the getter that reads it, not when it is set.
//!
//! This module holds [`RpcConf`] and [`ConfError`]; `keys` names every setting, `strings`
//! parses the value syntaxes, `timeout` holds [`RpcTimeout`] and [`format_duration`], and
//! `limits` reads the caps on queued bytes and connections.

mod limits;
mod strings;
mod timeout;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub(crate) use limits::Limits;
use strings::{int_reason, parse_size, parse_time};
pub use strings::{SizeUnit, TimeUnit};
pub use timeout::{format_duration, RpcTimeout};

pub mod keys;

/// Default of [`keys::NETWORK_TIMEOUT`] and of every timeout that falls back to it.
pub(crate) const DEFAULT_NETWORK_TIMEOUT: Duration = Duration::from_secs(120);
/// Default of [`keys::MESSAGE_MAX_SIZE`], in MiB.
pub(crate) const DEFAULT_MESSAGE_MAX_SIZE_MIB: u32 = 128;
/// Upper bound of [`keys::MESSAGE_MAX_SIZE`], in MiB: Spark keeps a message below 2 GiB.
pub(crate) const MAX_MESSAGE_SIZE_MIB: u32 = 2047;
/// Default of [`keys::PORT_MAX_RETRIES`].
pub(crate) const DEFAULT_PORT_MAX_RETRIES: u32 = 16;

/// A setting that is missing or cannot be read as the type its getter wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfError {
    key: String,
    value: String,
    reason: String,
    // A missing required key has no value to quote, so it gets its own message.
    not_set: bool,
}

impl ConfError {
    /// An error for `key`, whose `value` is invalid because of `reason`.
    pub fn new(
        key: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConfError {
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
            not_set: false,
        }
    }

    /// An error for a required `key` that is not set (reason `"not set"`).
    pub fn not_set(key: impl Into<String>) -> Self {
        ConfError {
            key: key.into(),
            value: String::new(),
            reason: "not set".to_owned(),
            not_set: true,
        }
    }

    /// The key whose value is wrong or missing.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The offending value as written (empty when the key is not set).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Why the value was rejected.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether the error is a required key that is not set.
    pub fn is_not_set(&self) -> bool {
        self.not_set
    }
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.not_set {
            write!(f, "{} is not set", self.key)
        } else {
            write!(
                f,
                "Invalid value '{}' for {}: {}",
                self.value, self.key, self.reason
            )
        }
    }
}

impl std::error::Error for ConfError {}

/// The longest [`keys::SPIN_WAIT`] accepted: past a few milliseconds, polling is only heat.
const MAX_SPIN_WAIT: Duration = Duration::from_millis(10);

/// The `ember.*` settings of an RPC environment, as strings kept in key order.
#[derive(Clone, Default)]
pub struct RpcConf {
    settings: BTreeMap<String, String>,
}

/// Prints every setting, with the value of any that holds a secret replaced by
/// `<redacted>`, so a conf can be logged.
impl fmt::Debug for RpcConf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.settings {
            if keys::holds_secret(key) {
                map.entry(key, &"<redacted>");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

impl RpcConf {
    /// An empty configuration: every accessor returns its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.settings.insert(key.into(), value.into());
        self
    }

    /// Builder form of [`RpcConf::set`].
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// The raw value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// Whether `key` is set (to any value, even an empty one).
    pub fn contains(&self, key: &str) -> bool {
        self.settings.contains_key(key)
    }

    /// Unsets `key`, returning its old value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.settings.remove(key)
    }

    /// All settings as `(key, value)` in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Reads Spark's `spark-defaults.conf` format: one `key value` per line, the key ending
    /// at the first whitespace, `=` or `:`; `#` and `!` lines are comments; blank lines are
    /// skipped; a key alone gets the value `""`; a later line wins over an earlier one.
    /// Values are trimmed, as Spark trims them. Escapes and line continuations are not
    /// supported. A line with no key (such as `= 5`) is an error naming its line number.
    pub fn from_properties(text: &str) -> Result<RpcConf, ConfError> {
        let mut conf = RpcConf::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim_start();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let key_end = line
                .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
                .unwrap_or(line.len());
            let (key, rest) = line.split_at(key_end);
            if key.is_empty() {
                return Err(ConfError::new(
                    format!("line {}", index + 1),
                    raw.trim(),
                    "missing key",
                ));
            }
            // As in java.util.Properties: blanks, then at most one separator, then the value.
            let rest = rest.trim_start();
            let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
            conf.set(key, rest.trim());
        }
        Ok(conf)
    }

    /// Reads `key` with `parse`, or returns `default` when it is unset.
    fn parsed<T>(
        &self,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfError> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => parse(value).map_err(|reason| ConfError::new(key, value, reason)),
        }
    }

    /// `key` as a Spark time string (`120s`, `100ms`, `2min`, `1h`, `1d`, `250us`); a bare
    /// number is in `bare_unit`. Returns `default` when unset.
    pub fn get_duration(
        &self,
        key: &str,
        default: Duration,
        bare_unit: TimeUnit,
    ) -> Result<Duration, ConfError> {
        self.parsed(key, default, |v| parse_time(v, bare_unit))
    }

    /// `key` as `true` or `false` (any case). Returns `default` when unset.
    pub fn get_bool(&self, key: &str, default: bool) -> Result<bool, ConfError> {
        self.parsed(key, default, |v| {
            let v = v.trim();
            if v.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if v.eq_ignore_ascii_case("false") {
                Ok(false)
            } else {
                Err("expected true or false".to_owned())
            }
        })
    }

    /// `key` as a non-negative integer. Returns `default` when unset.
    pub fn get_usize(&self, key: &str, default: usize) -> Result<usize, ConfError> {
        self.parsed(key, default, |v| v.trim().parse().map_err(int_reason))
    }

    /// `key` as a non-negative 32-bit integer. Returns `default` when unset.
    pub fn get_u32(&self, key: &str, default: u32) -> Result<u32, ConfError> {
        self.parsed(key, default, |v| v.trim().parse().map_err(int_reason))
    }

    /// `key` as a finite number. Returns `default` when unset.
    pub fn get_f64(&self, key: &str, default: f64) -> Result<f64, ConfError> {
        self.parsed(key, default, |v| match v.trim().parse::<f64>() {
            // Rust also parses "inf" and "NaN"; no setting means either, so refuse them.
            Ok(n) if n.is_finite() => Ok(n),
            Ok(_) => Err("expected a finite number".to_owned()),
            Err(_) => Err("expected a number".to_owned()),
        })
    }

    /// `key` as a Spark byte string (`512b`, `64k`, `128m`, `1g`, `1t`, powers of 1024), in
    /// bytes; a bare number is in `bare_unit`. Returns `default_bytes` when unset.
    pub fn get_size_bytes(
        &self,
        key: &str,
        default_bytes: u64,
        bare_unit: SizeUnit,
    ) -> Result<u64, ConfError> {
        self.parsed(key, default_bytes, |v| parse_size(v, bare_unit))
    }

    /// [`keys::NETWORK_TIMEOUT`], default 120 s, bare numbers in seconds.
    pub fn network_timeout(&self) -> Result<Duration, ConfError> {
        self.get_duration(
            keys::NETWORK_TIMEOUT,
            DEFAULT_NETWORK_TIMEOUT,
            TimeUnit::Seconds,
        )
    }

    /// The default `ask` timeout: [`keys::ASK_TIMEOUT`], else [`keys::NETWORK_TIMEOUT`],
    /// else 120 s. Its key is the first of the two that is set, else `ember.rpc.askTimeout`.
    pub fn ask_timeout(&self) -> Result<RpcTimeout, ConfError> {
        RpcTimeout::from_conf(
            self,
            &[keys::ASK_TIMEOUT, keys::NETWORK_TIMEOUT],
            DEFAULT_NETWORK_TIMEOUT,
        )
    }

    /// The endpoint lookup timeout: as [`RpcConf::ask_timeout`] with [`keys::LOOKUP_TIMEOUT`].
    pub fn lookup_timeout(&self) -> Result<RpcTimeout, ConfError> {
        RpcTimeout::from_conf(
            self,
            &[keys::LOOKUP_TIMEOUT, keys::NETWORK_TIMEOUT],
            DEFAULT_NETWORK_TIMEOUT,
        )
    }

    /// How long opening a connection may take: [`keys::CONNECTION_CREATION_TIMEOUT`], else
    /// the network timeout.
    pub fn connect_timeout(&self) -> Result<Duration, ConfError> {
        let timeout = RpcTimeout::from_conf(
            self,
            &[keys::CONNECTION_CREATION_TIMEOUT, keys::NETWORK_TIMEOUT],
            DEFAULT_NETWORK_TIMEOUT,
        )?;
        Ok(timeout.duration())
    }

    /// Threads of the shared dispatcher loop: [`keys::DISPATCHER_NUM_THREADS`] (at least 1)
    /// if set, else `max(2, available_cores)` so one slow handler cannot stall the rest.
    pub fn dispatcher_threads(&self, available_cores: usize) -> Result<usize, ConfError> {
        self.thread_count(keys::DISPATCHER_NUM_THREADS, available_cores.max(2))
    }

    /// Threads of the network I/O loop: [`keys::IO_THREADS`] (at least 1) if set, else
    /// `min(available_cores, 8)` and at least 1, as Spark caps its default transport pools.
    pub fn io_threads(&self, available_cores: usize) -> Result<usize, ConfError> {
        self.thread_count(keys::IO_THREADS, available_cores.clamp(1, 8))
    }

    /// How long threads poll before parking: [`keys::SPIN_WAIT`], `0` (off) by default, at
    /// most `10ms`; a bare number is microseconds.
    pub fn spin_wait(&self) -> Result<Duration, ConfError> {
        let spin = self.get_duration(keys::SPIN_WAIT, Duration::ZERO, TimeUnit::Microseconds)?;
        if spin > MAX_SPIN_WAIT {
            return Err(self.invalid(keys::SPIN_WAIT, "must be at most 10ms"));
        }
        Ok(spin)
    }

    fn thread_count(&self, key: &str, default: usize) -> Result<usize, ConfError> {
        match self.get_usize(key, default)? {
            0 => Err(self.invalid(key, "must be at least 1")),
            n => Ok(n),
        }
    }

    /// An error for the current value of `key`.
    fn invalid(&self, key: &str, reason: &str) -> ConfError {
        ConfError::new(key, self.get(key).unwrap_or(""), reason)
    }

    /// The largest message callers may send, in bytes: [`keys::MESSAGE_MAX_SIZE`] is a whole
    /// number of MiB in `1..=2047` (default 128), as in Spark.
    pub fn max_message_size(&self) -> Result<usize, ConfError> {
        let key = keys::MESSAGE_MAX_SIZE;
        let mib = self.get_u32(key, DEFAULT_MESSAGE_MAX_SIZE_MIB)?;
        if !(1..=MAX_MESSAGE_SIZE_MIB).contains(&mib) {
            return Err(self.invalid(key, "must be between 1 and 2047 (MiB)"));
        }
        // Only a 16-bit target could fail here, but the conversion must not panic.
        usize::try_from(u64::from(mib) << 20).map_err(|_| self.invalid(key, "too large"))
    }

    /// [`keys::PORT_MAX_RETRIES`], default 16.
    pub fn port_max_retries(&self) -> Result<u32, ConfError> {
        self.get_u32(keys::PORT_MAX_RETRIES, DEFAULT_PORT_MAX_RETRIES)
    }
}

#[cfg(test)]
mod test_support {
    //! Helpers shared by the tests of `conf` and its submodules.
    use super::*;

    pub(super) const SECS: TimeUnit = TimeUnit::Seconds;
    pub(super) const MS: fn(u64) -> Duration = Duration::from_millis;

    /// A conf with the single setting `key = value`.
    pub(super) fn one(key: &str, value: &str) -> RpcConf {
        RpcConf::new().with(key, value)
    }

    /// A conf with the single setting `k = value`.
    pub(super) fn k(value: &str) -> RpcConf {
        one("k", value)
    }

    /// The reason of an error, or a text that fails any comparison with one.
    pub(super) fn reason<T: fmt::Debug>(r: Result<T, ConfError>) -> String {
        r.map_or_else(
            |e| e.reason().to_owned(),
            |v| format!("unexpected Ok({v:?})"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{k, one, reason, MS, SECS};
    use super::*;

    #[test]
    fn spin_wait_is_off_by_default_and_bounded() {
        use std::time::Duration;
        let spin = |v: &str| one(keys::SPIN_WAIT, v).spin_wait();
        assert_eq!(RpcConf::new().spin_wait(), Ok(Duration::ZERO));
        assert_eq!(
            spin("50"),
            Ok(Duration::from_micros(50)),
            "bare: microseconds"
        );
        assert_eq!(spin("2ms"), Ok(MS(2)));
        assert_eq!(spin("10ms"), Ok(MS(10)));
        assert_eq!(reason(spin("11ms")), "must be at most 10ms");
        assert!(
            reason(spin("soon")).starts_with("time must be"),
            "{}",
            reason(spin("soon"))
        );
    }

    #[test]
    fn map_operations() {
        let mut c = RpcConf::new();
        c.set("ember.b", "2")
            .set("ember.a", "1")
            .set("ember.a", "one");
        assert!(c.contains("ember.b") && !c.contains("ember.c"));
        assert_eq!((c.get("ember.a"), c.get("ember.c")), (Some("one"), None));
        let all: Vec<_> = c.iter().collect();
        assert_eq!(all, [("ember.a", "one"), ("ember.b", "2")]);
        assert_eq!(c.remove("ember.a"), Some("one".to_owned()));
        assert_eq!(c.remove("ember.a"), None);
        assert_eq!(RpcConf::new().with("x", "").get("x"), Some(""));
    }

    #[test]
    fn properties_format() {
        let text = "# comment\n  ! comment\n\nember.a 1\nember.b=2\nember.c:3\n\
                    ember.d \t = spaced value  \nember.e\nember.f=\nember.a   again\r\n\
                    ember.g = = x\n\tember.h\tv\n";
        let c = RpcConf::from_properties(text).unwrap();
        let all: Vec<_> = c.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let want = "ember.a=again ember.b=2 ember.c=3 ember.d=spaced value ember.e= \
                    ember.f= ember.g== x ember.h=v";
        assert_eq!(all.join(" "), want);
        assert_eq!(RpcConf::from_properties("").unwrap().iter().count(), 0);
        let e = RpcConf::from_properties("ember.a 1\n  = 5\n").unwrap_err();
        assert_eq!(e.to_string(), "Invalid value '= 5' for line 2: missing key");
        assert!(RpcConf::from_properties(":x").is_err());
    }

    #[test]
    fn unset_keys_give_defaults() {
        let c = RpcConf::new();
        assert_eq!(c.get_duration("k", MS(7), SECS).unwrap(), MS(7));
        assert!(c.get_bool("k", true).unwrap());
        assert_eq!(c.get_usize("k", 3).unwrap(), 3);
        assert_eq!(c.get_u32("k", 4).unwrap(), 4);
        assert_eq!(c.get_f64("k", 0.5).unwrap(), 0.5);
        assert_eq!(c.get_size_bytes("k", 9, SizeUnit::MiB).unwrap(), 9);
    }

    #[test]
    fn booleans_and_numbers() {
        for (text, want) in [("true", true), ("FALSE", false), (" True ", true)] {
            assert_eq!(k(text).get_bool("k", !want).unwrap(), want);
        }
        let want = "expected true or false";
        for text in ["yes", "1", "", "truee"] {
            assert_eq!(reason(k(text).get_bool("k", false)), want);
        }
        assert_eq!(k(" 12 ").get_usize("k", 0).unwrap(), 12);
        assert_eq!(k("4294967295").get_u32("k", 0).unwrap(), u32::MAX);
        let too_large = reason(k("4294967296").get_u32("k", 0));
        assert_eq!(too_large, "number is too large");
        for text in ["-1", "1.0", "x", "", "1e3"] {
            let want = "expected a non-negative integer";
            assert_eq!(reason(k(text).get_usize("k", 0)), want, "{text}");
            assert_eq!(reason(k(text).get_u32("k", 0)), want, "{text}");
        }
        assert_eq!(k(" 0.25 ").get_f64("k", 0.0).unwrap(), 0.25);
        assert_eq!(k("-3").get_f64("k", 0.0).unwrap(), -3.0);
        for text in ["NaN", "inf", "-infinity", "x", ""] {
            assert!(k(text).get_f64("k", 0.0).is_err(), "{text}");
        }
    }

    #[test]
    fn named_defaults() {
        let c = RpcConf::new();
        let two_min = Duration::from_secs(120);
        assert_eq!(c.network_timeout().unwrap(), two_min);
        let ask = c.ask_timeout().unwrap();
        assert_eq!(ask, RpcTimeout::new(two_min, keys::ASK_TIMEOUT));
        let lookup = c.lookup_timeout().unwrap();
        assert_eq!(lookup, RpcTimeout::new(two_min, keys::LOOKUP_TIMEOUT));
        assert_eq!(c.connect_timeout().unwrap(), two_min);
        let dispatcher: Vec<_> = [0, 1, 16].map(|n| c.dispatcher_threads(n).ok()).into();
        assert_eq!(dispatcher, [Some(2), Some(2), Some(16)]);
        let io: Vec<_> = [0, 4, 64].map(|n| c.io_threads(n).ok()).into();
        assert_eq!(io, [Some(1), Some(4), Some(8)]);
        assert_eq!(c.max_message_size().unwrap(), 128 * 1024 * 1024);
        assert_eq!(c.port_max_retries().unwrap(), 16);
    }

    #[test]
    fn timeouts_fall_back_to_the_network_timeout() {
        let c = RpcConf::new().with(keys::NETWORK_TIMEOUT, "30");
        let thirty = Duration::from_secs(30);
        assert_eq!(c.network_timeout().unwrap(), thirty);
        let network = RpcTimeout::new(thirty, keys::NETWORK_TIMEOUT);
        assert_eq!(c.ask_timeout().unwrap(), network);
        assert_eq!(c.lookup_timeout().unwrap(), network);
        assert_eq!(c.connect_timeout().unwrap(), thirty);

        let c = c
            .with(keys::ASK_TIMEOUT, "5s")
            .with(keys::LOOKUP_TIMEOUT, "700ms")
            .with(keys::CONNECTION_CREATION_TIMEOUT, "2");
        let ask = c.ask_timeout().unwrap();
        assert_eq!((ask.duration(), ask.key()), (MS(5000), keys::ASK_TIMEOUT));
        assert_eq!(c.lookup_timeout().unwrap().duration(), MS(700));
        assert_eq!(c.connect_timeout().unwrap(), MS(2000));

        // A bad value in the key that wins is reported with that key.
        let e = one(keys::ASK_TIMEOUT, "soon").ask_timeout().unwrap_err();
        assert_eq!(e.key(), keys::ASK_TIMEOUT);
        let e = one(keys::NETWORK_TIMEOUT, "x")
            .connect_timeout()
            .unwrap_err();
        assert_eq!(e.key(), keys::NETWORK_TIMEOUT);
    }

    #[test]
    fn thread_counts_and_limits() {
        let c = RpcConf::new()
            .with(keys::DISPATCHER_NUM_THREADS, "1")
            .with(keys::IO_THREADS, "12");
        assert_eq!(c.dispatcher_threads(32).unwrap(), 1);
        assert_eq!(c.io_threads(2).unwrap(), 12);
        for key in [keys::DISPATCHER_NUM_THREADS, keys::IO_THREADS] {
            for value in ["0", "-2", "many"] {
                let c = one(key, value);
                let e = c.dispatcher_threads(4).and(c.io_threads(4)).unwrap_err();
                assert_eq!((e.key(), e.value()), (key, value));
            }
        }
        let e = one(keys::DISPATCHER_NUM_THREADS, "0").dispatcher_threads(4);
        let want = "Invalid value '0' for ember.rpc.dispatcher.numThreads: must be at least 1";
        assert_eq!(e.unwrap_err().to_string(), want);

        let max = |v: &str| one(keys::MESSAGE_MAX_SIZE, v).max_message_size();
        assert_eq!(max("1").unwrap(), 1 << 20);
        assert_eq!(max("2047").unwrap(), 2047 << 20);
        for bad in ["0", "2048", "-1", "128m", "1.5"] {
            assert_eq!(max(bad).unwrap_err().key(), keys::MESSAGE_MAX_SIZE, "{bad}");
        }
        let retries = |v: &str| one(keys::PORT_MAX_RETRIES, v).port_max_retries();
        assert_eq!(retries("100").unwrap(), 100);
        assert!(retries("-1").is_err());
    }

    #[test]
    fn conf_error_is_a_std_error() {
        let e = ConfError::new("ember.x", "v", "bad");
        assert_eq!((e.key(), e.value(), e.reason()), ("ember.x", "v", "bad"));
        let e: Box<dyn std::error::Error> = Box::new(e);
        assert_eq!(e.to_string(), "Invalid value 'v' for ember.x: bad");
    }

    #[test]
    fn debug_redacts_the_secret_and_keeps_the_rest() {
        let conf = RpcConf::new()
            .with(keys::AUTHENTICATE_SECRET, "hunter2-hunter2-hunter2")
            .with(keys::AUTHENTICATE, "true");
        let printed = format!("{conf:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
        assert!(
            printed.contains("\"ember.authenticate\": \"true\""),
            "{printed}"
        );
    }
}
