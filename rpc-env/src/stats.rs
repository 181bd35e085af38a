//! Counters of what the network did to an env that an operator wants to see: refused
//! peers, bad traffic, caps reached. Lines about such things are rate-limited
//! (`log_limit.rs`); the counters are exact.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of an env's network counters, from [`RpcEnv::network_stats`](crate::RpcEnv::network_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Connections closed before their handshake completed: wrong or missing secret, a
    /// timeout, or evicted to make room for newer peers.
    pub auth_failures: u64,
    /// Messages for an endpoint this env does not have.
    pub unroutable_messages: u64,
    /// Connections closed for a protocol error: a malformed frame, a forged sender, a
    /// message that does not decode.
    pub protocol_errors: u64,
    /// Connections closed because more than `ember.rpc.outbox.maxBytes` waited to be
    /// written to them.
    pub outbox_overflows: u64,
    /// Inbound connections closed at once because the env had
    /// `ember.rpc.io.maxConnections` already.
    pub connections_refused: u64,
    /// Times the listener could not accept (out of file descriptors, say) and backed off.
    pub accept_failures: u64,
    /// Times reading from a connection paused because an endpoint's inbox was over
    /// `ember.rpc.inbox.maxBytes`.
    pub read_pauses: u64,
}

/// The live counters behind [`NetworkStats`].
#[derive(Default)]
pub(crate) struct NetworkCounters {
    pub(crate) auth_failures: AtomicU64,
    pub(crate) unroutable_messages: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) outbox_overflows: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) accept_failures: AtomicU64,
    pub(crate) read_pauses: AtomicU64,
}

/// Adds one to `counter`.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl NetworkCounters {
    /// The counters now.
    pub(crate) fn snapshot(&self) -> NetworkStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NetworkStats {
            auth_failures: get(&self.auth_failures),
            unroutable_messages: get(&self.unroutable_messages),
            protocol_errors: get(&self.protocol_errors),
            outbox_overflows: get(&self.outbox_overflows),
            connections_refused: get(&self.connections_refused),
            accept_failures: get(&self.accept_failures),
            read_pauses: get(&self.read_pauses),
        }
    }
}
