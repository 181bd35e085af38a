//! The caps that bound what peers can make an env hold: bytes queued for a connection,
//! bytes waiting in an inbox, connections open (Ember's; Spark has none of them).

use super::{keys, ConfError, RpcConf, SizeUnit};

/// Default of [`keys::OUTBOX_MAX_BYTES`]: room for bursts of a fast local sender to a
/// receiver a little slower, yet a peer that never reads costs at most this much.
const DEFAULT_OUTBOX_MAX_BYTES: u64 = 16 << 20;
/// Default of [`keys::INBOX_MAX_BYTES`].
const DEFAULT_INBOX_MAX_BYTES: u64 = 8 << 20;
/// Default of [`keys::MAX_CONNECTIONS`].
const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// The smallest byte cap accepted: below a few frames, nothing useful gets through.
const MIN_BYTES: u64 = 64 << 10;

/// The resource caps of one env, read once at its creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// [`keys::OUTBOX_MAX_BYTES`].
    pub(crate) outbox_max_bytes: usize,
    /// [`keys::INBOX_MAX_BYTES`].
    pub(crate) inbox_max_bytes: usize,
    /// [`keys::MAX_CONNECTIONS`].
    pub(crate) max_connections: usize,
}

impl Limits {
    /// The caps `conf` sets, or their defaults.
    pub(crate) fn from_conf(conf: &RpcConf) -> Result<Limits, ConfError> {
        Ok(Limits {
            outbox_max_bytes: byte_cap(conf, keys::OUTBOX_MAX_BYTES, DEFAULT_OUTBOX_MAX_BYTES)?,
            inbox_max_bytes: byte_cap(conf, keys::INBOX_MAX_BYTES, DEFAULT_INBOX_MAX_BYTES)?,
            max_connections: match conf.get_usize(keys::MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS)? {
                0 => return Err(conf.invalid(keys::MAX_CONNECTIONS, "must be at least 1")),
                n => n,
            },
        })
    }
}

fn byte_cap(conf: &RpcConf, key: &str, default: u64) -> Result<usize, ConfError> {
    let bytes = conf.get_size_bytes(key, default, SizeUnit::Bytes)?;
    if bytes < MIN_BYTES {
        return Err(conf.invalid(key, "must be at least 64k"));
    }
    usize::try_from(bytes).map_err(|_| conf.invalid(key, "too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_settings() {
        let limits = Limits::from_conf(&RpcConf::new()).unwrap();
        assert_eq!(limits.outbox_max_bytes, 16 << 20);
        assert_eq!(limits.inbox_max_bytes, 8 << 20);
        assert_eq!(limits.max_connections, 4096);
        let conf = RpcConf::new()
            .with(keys::OUTBOX_MAX_BYTES, "1m")
            .with(keys::INBOX_MAX_BYTES, "128k")
            .with(keys::MAX_CONNECTIONS, "10");
        let limits = Limits::from_conf(&conf).unwrap();
        assert_eq!(
            (
                limits.outbox_max_bytes,
                limits.inbox_max_bytes,
                limits.max_connections
            ),
            (1 << 20, 128 << 10, 10)
        );
    }

    #[test]
    fn nonsense_is_refused_naming_the_setting() {
        for (key, value) in [
            (keys::OUTBOX_MAX_BYTES, "1k"),
            (keys::INBOX_MAX_BYTES, "lots"),
            (keys::MAX_CONNECTIONS, "0"),
        ] {
            let err = Limits::from_conf(&RpcConf::new().with(key, value)).unwrap_err();
            assert_eq!(err.key(), key);
        }
    }
}
