//! The configuration keys the RPC environment reads (Spark's `spark.*` keys as `ember.*`).

/// Default for every network timeout; a bare number means seconds. Default `120s`.
pub const NETWORK_TIMEOUT: &str = "ember.network.timeout";
/// Timeout of `ask`; falls back to [`NETWORK_TIMEOUT`].
pub const ASK_TIMEOUT: &str = "ember.rpc.askTimeout";
/// Timeout of endpoint lookups; falls back to [`NETWORK_TIMEOUT`].
pub const LOOKUP_TIMEOUT: &str = "ember.rpc.lookupTimeout";
/// Timeout for opening a connection; falls back to [`NETWORK_TIMEOUT`].
pub const CONNECTION_CREATION_TIMEOUT: &str = "ember.rpc.io.connectionCreationTimeout";
/// Threads of the shared dispatcher loop; default `max(2, cores)`.
pub const DISPATCHER_NUM_THREADS: &str = "ember.rpc.dispatcher.numThreads";
/// Threads of the network I/O loop; default `min(cores, 8)`.
pub const IO_THREADS: &str = "ember.rpc.io.threads";
/// How long a thread that has just sent an ask, and an IO thread that has just handled
/// network events, poll for what comes next before they park (Ember's; Spark always parks).
/// Polling buys latency with CPU: an ask answered within the window skips the wakeups of
/// parked threads. `0` turns it off; a bare number is microseconds, at most `10ms`. The
/// window restarts only on activity, so an idle env never polls. Default `0`.
pub const SPIN_WAIT: &str = "ember.rpc.io.spinWait";
/// Largest message callers may send, in whole MiB; default 128, at most 2047.
pub const MESSAGE_MAX_SIZE: &str = "ember.rpc.message.maxSize";
/// How many bytes may wait to be written to one connection (Ember's; Spark has no cap).
/// A connection past it is closed and its pending asks fail naming this setting: a peer
/// that does not read what it asked for cannot grow us without bound. Default `16m`;
/// only a queue already past the cap refuses, so any one frame the message size allows
/// still goes (what waits stays under the cap plus one frame).
pub const OUTBOX_MAX_BYTES: &str = "ember.rpc.outbox.maxBytes";
/// How many bytes of remote messages may wait in one endpoint's inbox (Ember's). Past
/// it, the connections that bring more stop being read until the inbox drains to half,
/// so TCP pushes back on the senders. Default `8m`.
pub const INBOX_MAX_BYTES: &str = "ember.rpc.inbox.maxBytes";
/// How many connections one env may hold open at once (Ember's). An inbound connection
/// past it is closed at once, unless one still in its handshake can make room. Keep it
/// below the process's descriptor limit (`ulimit -n`). Default 4096.
pub const MAX_CONNECTIONS: &str = "ember.rpc.io.maxConnections";
/// How many ports after the requested one a server tries before giving up; default 16.
pub const PORT_MAX_RETRIES: &str = "ember.port.maxRetries";
/// Whether connections authenticate with a shared secret (Spark's `spark.authenticate`).
/// Default `false`; a server-mode env asked to bind an address that is not loopback
/// refuses to start unless this is set, to `true` or explicitly to `false`.
pub const AUTHENTICATE: &str = "ember.authenticate";
/// The shared secret itself. Prefer [`AUTHENTICATE_SECRET_FILE`] or the environment
/// variable [`AUTH_SECRET_ENV`]: a setting may end up on a command line.
pub const AUTHENTICATE_SECRET: &str = "ember.authenticate.secret";
/// A file holding the shared secret; it must not be readable by group or others. Takes
/// precedence over [`AUTHENTICATE_SECRET`] and [`AUTH_SECRET_ENV`].
pub const AUTHENTICATE_SECRET_FILE: &str = "ember.authenticate.secret.file";
/// Whether an authenticated connection is also encrypted. Default: on whenever
/// [`AUTHENTICATE`] is on (Spark's default is off, which became CVE-2025-55039).
pub const CRYPTO_ENABLED: &str = "ember.network.crypto.enabled";
/// How long a new connection may take to complete its handshake before it is closed.
pub const AUTH_TIMEOUT: &str = "ember.network.auth.timeout";
/// The environment variable that carries the shared secret to a process, the way a
/// worker hands it to the executors and drivers it launches (Spark's `_SPARK_AUTH_SECRET`).
/// Not a setting key: settings travel on command lines and in messages, the secret never.
pub const AUTH_SECRET_ENV: &str = "EMBER_AUTH_SECRET";
/// The environment variable that carries a process's security settings (not the secret)
/// to a child it starts: `key=value` lines of [`AUTHENTICATE`], [`CRYPTO_ENABLED`] and
/// [`AUTH_TIMEOUT`] only. See `Security::child_env` and `RpcConf::with_inherited_security`.
pub const SECURITY_CONF_ENV: &str = "EMBER_SECURITY_CONF";

/// Whether the setting `key` holds a secret, so its value must never leave the process:
/// not in a message, a command line, a log line or a `Debug` print.
pub fn holds_secret(key: &str) -> bool {
    key == AUTHENTICATE_SECRET
}

/// Every `ember.*` key above: what a properties file may set for the RPC environment
/// (checked against this file by a test).
pub const ALL: &[&str] = &[
    NETWORK_TIMEOUT,
    ASK_TIMEOUT,
    LOOKUP_TIMEOUT,
    CONNECTION_CREATION_TIMEOUT,
    DISPATCHER_NUM_THREADS,
    IO_THREADS,
    SPIN_WAIT,
    MESSAGE_MAX_SIZE,
    OUTBOX_MAX_BYTES,
    INBOX_MAX_BYTES,
    MAX_CONNECTIONS,
    PORT_MAX_RETRIES,
    AUTHENTICATE,
    AUTHENTICATE_SECRET,
    AUTHENTICATE_SECRET_FILE,
    CRYPTO_ENABLED,
    AUTH_TIMEOUT,
];

#[cfg(test)]
mod tests {
    #[test]
    fn all_lists_every_key_declared_here() {
        assert_eq!(
            super::ALL,
            ember_test_support::declared_keys(include_str!("keys.rs"))
        );
    }
}
