//! Backpressure from an inbox to the connections that fill it: past its cap
//! (`ember.rpc.inbox.maxBytes`) of remote messages waiting, the connection that brought the
//! last one stops being read; once the inbox has drained to half the cap, every connection
//! paused on it is read again. TCP then pushes back on a sender faster than the endpoint,
//! instead of the inbox queueing without bound.
//!
//! ```text
//!  reading --a message takes the inbox past its cap--> paused (on this inbox)
//!  paused  --the inbox drains to half its cap, or stops--> reading
//! ```
//!
//! Only remote messages count: local senders are the process itself.

use std::sync::Arc;

use crate::connection::Connection;

/// What a remote message of `body` bytes is taken to weigh, when its decoded value takes
/// `slot` bytes in the queue: the body twice (what it decodes to, and the read buffer it
/// may keep alive until then), the slot twice (a growing queue holds up to twice what it
/// uses), and the sender's address. A flood of empty messages is bounded too: measured
/// with 2-byte `MasterMessage`s (a 152-byte slot), a weight of body + 64 let the master
/// grow by about eight times the cap.
pub(super) fn weight(body: usize, slot: usize) -> usize {
    2 * body + 2 * slot + 64
}

/// The remote bytes an inbox holds and the connections paused on it.
#[derive(Default)]
pub(super) struct Backpressure {
    /// Weights of the remote messages queued or being handled.
    bytes: usize,
    /// Connections not being read until this inbox drains.
    paused: Vec<Arc<Connection>>,
}

impl Backpressure {
    /// A message of `weight` from `conn` was queued: pauses `conn` if the inbox is now past
    /// `cap`. `true` when it paused it.
    pub(super) fn add(
        &mut self,
        weight: usize,
        conn: Option<&Arc<Connection>>,
        cap: usize,
    ) -> bool {
        self.bytes += weight;
        let Some(conn) = conn else {
            return false;
        };
        if self.bytes <= cap || !conn.pause_reading() {
            return false;
        }
        self.paused.push(Arc::clone(conn));
        true
    }

    /// Messages of total `weight` were handled: the connections to read again, if the
    /// inbox has drained to half of `cap`.
    pub(super) fn release(&mut self, weight: usize, cap: usize) -> Vec<Arc<Connection>> {
        self.bytes = self.bytes.saturating_sub(weight);
        if self.bytes > cap / 2 {
            return Vec::new();
        }
        std::mem::take(&mut self.paused)
    }

    /// The inbox stopped (later messages are dropped, so it cannot fill): every paused
    /// connection, to read again.
    pub(super) fn release_all(&mut self) -> Vec<Arc<Connection>> {
        std::mem::take(&mut self.paused)
    }
}

/// Reads the connections again (outside the inbox lock: it wakes IO threads).
pub(super) fn resume(conns: Vec<Arc<Connection>>) {
    for conn in conns {
        conn.resume_reading();
    }
}
