//! The outbox of one remote peer: lazy connect, then one connection for everything sent to
//! that peer, in FIFO order.
//!
//! ```text
//!  Connecting { queued frames } --connected--> Connected(conn) --conn closed--> (removed)
//!        \--connect failed: queued asks fail with the cause, no retry--> (removed)
//! ```
//! The next message to a removed peer creates a fresh outbox and a fresh connect attempt.
//!
//! The outbox holds no socket and starts no thread: the env dials and reports the outcome.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::address::RpcAddress;
use crate::connection::Connection;
use crate::error::RpcError;
use crate::frame::LENGTH_FIELD;

enum OutboxState {
    /// Frames waiting for the connection, each with its ask's request id (0: one-way).
    Connecting {
        queued: Vec<(Bytes, u64)>,
    },
    Connected(Arc<Connection>),
    /// The connection could not be made; messages that still find this outbox fail with
    /// the cause (the next ones get a fresh outbox and a fresh attempt).
    Failed(RpcError),
    Stopped,
}

/// Messages on their way to one peer.
pub(crate) struct Outbox {
    /// Asks sent through this outbox carry this route id, so they fail with it.
    pub(crate) route: u64,
    pub(crate) address: RpcAddress,
    state: Mutex<OutboxState>,
}

impl Outbox {
    /// A new outbox, connecting; the env dials the peer (`env/dial.rs`) and reports back
    /// with [`connected`](Self::connected) or [`failed`](Self::failed).
    pub(crate) fn new(route: u64, address: RpcAddress) -> Outbox {
        Outbox {
            route,
            address,
            state: Mutex::new(OutboxState::Connecting { queued: Vec::new() }),
        }
    }

    /// Sends a frame encoded by `encode`: straight to the connection once there is one,
    /// queued in order until then.
    pub(crate) fn send(
        &self,
        max_frame: usize,
        request_id: u64,
        encode: &mut dyn FnMut(&mut BytesMut),
    ) -> Result<(), RpcError> {
        let mut state = self.state.lock();
        match &mut *state {
            OutboxState::Connected(conn) => {
                let conn = Arc::clone(conn);
                drop(state);
                conn.send_frame(encode)
            }
            OutboxState::Connecting { queued } => {
                let mut buf = BytesMut::new();
                // No connection yet: nothing encoded now travels over one a ref came on.
                crate::connection::encode_for(0, || encode(&mut buf));
                let frame_len = buf.len().saturating_sub(LENGTH_FIELD);
                if frame_len > max_frame {
                    return Err(RpcError::MessageTooLarge {
                        size: frame_len,
                        max: max_frame,
                    });
                }
                queued.push((buf.freeze(), request_id));
                Ok(())
            }
            OutboxState::Failed(error) => Err(error.clone()),
            OutboxState::Stopped => Err(RpcError::OutboxStopped),
        }
    }

    /// Drops whatever is queued and returns the request ids of the asks among it; later
    /// sends fail with `OutboxStopped`.
    pub(crate) fn stop(&self) -> Vec<u64> {
        let previous = std::mem::replace(&mut *self.state.lock(), OutboxState::Stopped);
        match previous {
            // The connection closes with the rest of the network at the end of shutdown,
            // after pending asks have failed as the env's stop, not as a lost connection.
            OutboxState::Connected(_) => Vec::new(),
            OutboxState::Connecting { queued, .. } => queued
                .into_iter()
                .map(|(_, id)| id)
                .filter(|id| *id != 0)
                .collect(),
            OutboxState::Failed(_) | OutboxState::Stopped => Vec::new(),
        }
    }

    /// The connection is made: queued frames go first, then every later send goes straight
    /// to it. An outbox stopped meanwhile closes it instead.
    pub(crate) fn connected(&self, conn: Arc<Connection>) {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, OutboxState::Connected(Arc::clone(&conn))) {
            // Queued frames go first, under the lock, so later sends follow them.
            OutboxState::Connecting { queued, .. } => {
                conn.send_encoded(queued.into_iter().map(|(frame, _)| frame).collect())
            }
            OutboxState::Stopped => {
                *state = OutboxState::Stopped;
                drop(state);
                conn.close(None);
            }
            OutboxState::Connected(_) | OutboxState::Failed(_) => {}
        }
    }

    /// The connection could not be made: later sends that still find this outbox fail with
    /// `error`.
    pub(crate) fn failed(&self, error: &RpcError) {
        let mut state = self.state.lock();
        if !matches!(*state, OutboxState::Stopped) {
            *state = OutboxState::Failed(error.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::connection::test_pair::{pair, Request, MAX_FRAME};
    use crate::frame::{finish_frame, start_frame, FrameDecoder, FrameKind};

    fn outbox() -> Outbox {
        Outbox::new(3, RpcAddress::new("peer", 7077))
    }

    fn frame(seq: u64) -> impl FnMut(&mut BytesMut) {
        move |buf: &mut BytesMut| {
            let start = start_frame(buf, FrameKind::OneWay, seq);
            buf.extend_from_slice(b"payload");
            finish_frame(buf, start);
        }
    }

    fn received(peer: &mut std::net::TcpStream, count: usize) -> Vec<u64> {
        let decoder = FrameDecoder::new(MAX_FRAME);
        let mut buf = BytesMut::new();
        let mut ids = Vec::new();
        let mut chunk = [0u8; 4096];
        while ids.len() < count {
            match decoder.decode(&mut buf).expect("frames") {
                Some(f) => ids.push(f.request_id),
                None => {
                    let n = peer.read(&mut chunk).expect("in time");
                    assert!(n > 0, "closed after {} frames", ids.len());
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        ids
    }

    #[test]
    fn frames_sent_while_connecting_go_first_and_in_order() {
        let outbox = outbox();
        for seq in 1..=3 {
            outbox.send(MAX_FRAME, 0, &mut frame(seq)).expect("queued");
        }
        let (conn, io, mut peer) = pair();
        outbox.connected(Arc::clone(&conn));
        outbox.send(MAX_FRAME, 0, &mut frame(4)).expect("sent");
        // A send right after the first write is a burst, left to the IO thread: play it.
        for request in io.take() {
            assert!(matches!(request, Request::Flush), "{request:?}");
            conn.on_writable();
        }
        assert_eq!(received(&mut peer, 4), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_while_connecting() {
        let outbox = outbox();
        let error = outbox
            .send(8, 0, &mut frame(1))
            .expect_err("9 + 7 bytes is over 8");
        assert_eq!(error, RpcError::MessageTooLarge { size: 16, max: 8 });
        assert!(outbox.stop().is_empty(), "nothing was queued");
    }

    #[test]
    fn a_failed_connect_fails_later_sends_with_its_cause() {
        let outbox = outbox();
        let cause = RpcError::ConnectFailed {
            peer: "peer:7077".into(),
            reason: "Connection refused".into(),
        };
        outbox.failed(&cause);
        assert_eq!(outbox.send(MAX_FRAME, 0, &mut frame(1)), Err(cause));
    }

    #[test]
    fn stop_gives_back_the_asks_still_queued_and_refuses_later_sends() {
        let outbox = outbox();
        outbox.send(MAX_FRAME, 0, &mut frame(1)).expect("one-way");
        outbox.send(MAX_FRAME, 11, &mut frame(2)).expect("ask");
        outbox.send(MAX_FRAME, 12, &mut frame(3)).expect("ask");
        assert_eq!(
            outbox.stop(),
            vec![11, 12],
            "the asks, not the one-way frame"
        );
        assert_eq!(
            outbox.send(MAX_FRAME, 0, &mut frame(4)),
            Err(RpcError::OutboxStopped)
        );
        // A connect finishing after the stop closes its connection instead of using it.
        let (conn, io, _peer) = pair();
        outbox.connected(conn);
        assert!(matches!(io.take().as_slice(), [Request::Close(None)]));
        // A failure after the stop does not replace it.
        outbox.failed(&RpcError::EnvStopped);
        assert_eq!(
            outbox.send(MAX_FRAME, 0, &mut frame(5)),
            Err(RpcError::OutboxStopped)
        );
    }
}
