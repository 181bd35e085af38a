//! Counters of what the network did to an env that an operator wants to see: its traffic,
//! refused peers, bad traffic, caps reached. Lines about such things are rate-limited
//! (`log_limit.rs`); the counters are exact.
//!
//! The traffic counters are added to once per read or write system call (or per chunk of
//! frames read), never per message, so they cost nothing the system call does not dwarf.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    /// Bytes read from peers, as they came off the wire (sealed, on encrypted connections).
    pub bytes_read: u64,
    /// Bytes written to peers, as they went on the wire.
    pub bytes_written: u64,
    /// Frames read from peers (messages, asks, answers).
    pub frames_read: u64,
    /// Frames written to peers (messages, asks, answers).
    pub frames_written: u64,
    /// Connections open now, in either direction, handshaking ones included.
    pub open_connections: u64,
    /// Messages waiting in this env's endpoints' inboxes now.
    pub inbox_messages: u64,
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
    pub(crate) bytes_read: AtomicU64,
    pub(crate) frames_read: AtomicU64,
    /// Shared with every connection, whichever thread writes for it.
    pub(crate) written: Arc<WriteCounters>,
}

/// What the env's connections wrote, counted by whichever thread writes.
#[derive(Default)]
pub(crate) struct WriteCounters {
    /// Bytes written to sockets.
    pub(crate) bytes: AtomicU64,
    /// Frames handed to sockets (counted per batch a writer takes).
    pub(crate) frames: AtomicU64,
}

/// Adds `n` to `counter`.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Adds one to `counter`.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl NetworkCounters {
    /// The counters now; the gauges (open connections, inbox messages) are the caller's.
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
            bytes_read: get(&self.bytes_read),
            bytes_written: get(&self.written.bytes),
            frames_read: get(&self.frames_read),
            frames_written: get(&self.written.frames),
            open_connections: 0,
            inbox_messages: 0,
        }
    }
}
