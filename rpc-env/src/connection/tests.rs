//! The connection's write path on a real loopback socket, with a stand-in for the IO thread
//! that records what it is asked and does it when the test says so.

use std::io::Read;
use std::net::TcpStream as StdStream;
use std::time::Duration;

use super::test_pair::{pair, Request, MAX_FRAME};
use super::write_queue::WriteState;
use super::*;
use crate::frame::{finish_frame, start_frame, FrameDecoder, FrameKind};

/// Sends a one-way frame whose request id is `seq` and whose payload is `len` bytes.
fn send(conn: &Arc<Connection>, seq: u64, len: usize) -> Result<(), RpcError> {
    conn.send_frame(&mut |buf| {
        let start = start_frame(buf, FrameKind::OneWay, seq);
        buf.resize(buf.len() + len, (seq % 251) as u8);
        finish_frame(buf, start);
    })
}

/// Reads frames off `peer` until `count` have come, and returns their request ids.
fn receive(peer: &mut StdStream, count: usize) -> Vec<u64> {
    let decoder = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while seen.len() < count {
        match decoder.decode(&mut buf).expect("well-formed frames") {
            Some(frame) => seen.push(frame.request_id),
            None => {
                let n = peer.read(&mut chunk).expect("the frames arrive in time");
                assert!(n > 0, "the connection closed after {} frames", seen.len());
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
    seen
}

fn state(conn: &Connection) -> WriteState {
    conn.queue.lock().state()
}

#[test]
fn a_lone_send_is_written_by_the_sender_without_the_io_thread() {
    let (conn, io, mut peer) = pair();
    send(&conn, 1, 10).expect("sent");
    assert_eq!(state(&conn), WriteState::Idle);
    assert!(!conn.queue.lock().has_data(), "written at once");
    assert!(io.take().is_empty(), "nothing asked of the IO thread");
    assert_eq!(receive(&mut peer, 1), vec![1]);
}

#[test]
fn sends_during_a_read_chunk_leave_with_the_io_thread_at_its_end() {
    let (conn, io, mut peer) = pair();
    conn.begin_read_chunk();
    for seq in 1..=3 {
        send(&conn, seq, 10).expect("queued");
    }
    assert_eq!(state(&conn), WriteState::LeftToIoThread);
    assert!(conn.queue.lock().has_data(), "only queued");
    assert!(
        io.take().is_empty(),
        "no wakeup: the IO thread is right here"
    );
    conn.end_read_chunk();
    assert_eq!(state(&conn), WriteState::Idle);
    assert_eq!(receive(&mut peer, 3), vec![1, 2, 3]);
}

#[test]
fn corked_sends_are_written_once_when_the_cork_ends() {
    let (conn, io, mut peer) = pair();
    let cork = Cork::new();
    for seq in 1..=4 {
        send(&conn, seq, 10).expect("queued");
    }
    assert_eq!(state(&conn), WriteState::Idle);
    assert!(conn.queue.lock().has_data(), "corked: only queued");
    drop(cork);
    assert!(!conn.queue.lock().has_data(), "written at the uncork");
    assert!(io.take().is_empty());
    assert_eq!(receive(&mut peer, 4), vec![1, 2, 3, 4]);
}

#[test]
fn a_full_socket_blocks_senders_until_writable_then_everything_arrives_in_order() {
    let (conn, io, mut peer) = pair();
    // Nobody reads the peer: keep sending until the socket fills and the queue blocks.
    let mut sent = 0u64;
    while state(&conn) != WriteState::Blocked {
        sent += 1;
        send(&conn, sent, 64 * 1024).expect("queued");
        // Sends in a burst hand writing to the IO thread: play it.
        for request in io.take() {
            assert!(matches!(request, Request::Flush), "{request:?}");
            conn.on_writable();
        }
        assert!(sent < 4096, "256 MiB sent and the socket never filled");
    }
    let blocked_at = sent;
    for _ in 0..4 {
        sent += 1;
        send(&conn, sent, 64 * 1024).expect("queued");
    }
    assert_eq!(state(&conn), WriteState::Blocked, "senders only queue");
    assert!(io.take().is_empty(), "no futile wakeups while blocked");
    let reader = std::thread::spawn(move || receive(&mut peer, sent as usize));
    // The IO thread's writable events, until the queue is drained.
    let deadline = Instant::now() + Duration::from_secs(60);
    while conn.queue.lock().has_data() || state(&conn) != WriteState::Idle {
        assert!(Instant::now() < deadline, "the queue never drained");
        conn.on_writable();
        std::thread::yield_now();
    }
    let order = reader.join().expect("reader");
    assert_eq!(
        order,
        (1..=sent).collect::<Vec<_>>(),
        "blocked at {blocked_at}"
    );
}

#[test]
fn a_frame_over_the_limit_is_refused_and_nothing_is_queued() {
    let (conn, _io, _peer) = pair();
    let error = send(&conn, 1, MAX_FRAME).expect_err("too large");
    assert!(
        matches!(error, RpcError::MessageTooLarge { max: MAX_FRAME, .. }),
        "{error}"
    );
    assert!(!conn.queue.lock().has_data());
    // Exactly at the limit is fine: the length field counts kind, id and payload.
    send(&conn, 2, MAX_FRAME - 9).expect("at the limit");
}

#[test]
fn a_closed_connection_refuses_sends() {
    let (conn, io, _peer) = pair();
    assert!(conn.mark_closed());
    assert!(!conn.mark_closed(), "closed once");
    let error = send(&conn, 1, 10).expect_err("closed");
    assert!(
        matches!(error, RpcError::ConnectionClosed { .. }),
        "{error}"
    );
    conn.close(None);
    assert!(
        io.take().is_empty(),
        "closing a closed connection asks nothing"
    );
}

#[test]
fn a_failed_write_asks_the_io_thread_to_close_and_later_sends_are_refused() {
    let (conn, io, peer) = pair();
    drop(peer);
    // The first writes may still land in the kernel's buffer; the reset makes a later one
    // fail.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seq = 0;
    let error = loop {
        seq += 1;
        match send(&conn, seq, 1024) {
            Ok(()) => {}
            Err(e) => break e,
        }
        for request in io.take() {
            match request {
                Request::Flush => conn.on_writable(),
                Request::Close(reason) => {
                    let reason = reason.expect("a close for a failed write has a reason");
                    assert!(reason.to_string().contains("Failed to send to"), "{reason}");
                }
                Request::Resume => panic!("nothing paused reading"),
            }
        }
        assert!(Instant::now() < deadline, "no write failed");
    };
    assert!(
        matches!(error, RpcError::ConnectionClosed { .. }),
        "{error}"
    );
    assert_eq!(state(&conn), WriteState::Broken);
}
