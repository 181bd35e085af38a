//! Entry points for the fuzz targets in `fuzz/`: the crate-private decoders a socket's bytes
//! go through, driven exactly as the connection drives them. Not part of the API; nothing on
//! the hot path calls this module.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::frame::{parse_failure, EndpointHeader, FrameDecoder, FrameKind};

/// What [`split_and_parse`] saw, so a target can assert on it.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Whole frames split off the input.
    pub frames: usize,
    /// Whether splitting stopped on a framing error (the connection would close).
    pub framing_error: bool,
}

/// Feeds `wire` to a `FrameDecoder` of limit `max_frame` in reads of `chunk` bytes (as a
/// socket delivers them), then parses each frame's endpoint header, sender address and
/// failure text as the io loop does. Panics only if a decoder breaks its own contract.
pub fn split_and_parse(wire: &[u8], chunk: usize, max_frame: usize) -> Outcome {
    let decoder = FrameDecoder::new(max_frame);
    let mut buf = BytesMut::new();
    let mut outcome = Outcome::default();
    for piece in wire.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    outcome.frames += 1;
                    parse_payload(frame.kind, frame.payload);
                }
                Ok(None) => break,
                Err(_) => {
                    outcome.framing_error = true;
                    return outcome;
                }
            }
        }
    }
    outcome
}

fn parse_payload(kind: FrameKind, payload: Bytes) {
    match kind {
        FrameKind::Request | FrameKind::OneWay => {
            if let Ok(header) = EndpointHeader::parse(payload) {
                let _ = header.sender();
                let _ = header.receiver_name();
                let _ = header.sender_raw();
                let body = header.into_body();
                // The verifier is the one endpoint every env has, and the file server the
                // one every serving env has: their decoders see any body.
                let _ = crate::decode_from::<crate::file_server::FileServerAsk>(body.clone());
                let _ = crate::decode_from::<crate::verifier::VerifierAsk>(body);
            }
        }
        FrameKind::Failure => {
            let _ = parse_failure(payload);
        }
        FrameKind::Response => {
            // The one answer every env decodes whatever it asked: a lookup's.
            let _ = crate::decode_from::<crate::verifier::ProtocolCheck>(payload);
        }
    }
}

/// Splits a recorded byte stream into its frames' raw bytes (length field included), for
/// building a corpus from captured traffic. Stops at the first incomplete or bad frame.
pub fn split_frames(wire: &[u8], max_frame: usize) -> Vec<Vec<u8>> {
    let decoder = FrameDecoder::new(max_frame);
    let mut buf = BytesMut::from(wire);
    let mut frames = Vec::new();
    let mut at = 0;
    while let Ok(Some(_frame)) = decoder.decode(&mut buf) {
        let end = wire.len() - buf.len();
        frames.push(wire[at..end].to_vec());
        at = end;
    }
    frames
}

/// The message body of a request or one-way frame's payload (the frame minus its length
/// field and fixed header), for seeding message-decoder corpora.
pub fn frame_body(frame: &[u8]) -> Option<Vec<u8>> {
    let payload = frame.get(crate::frame::LENGTH_FIELD + crate::frame::FIXED_HEADER..)?;
    let header = EndpointHeader::parse(Bytes::copy_from_slice(payload)).ok()?;
    Some(header.into_body().to_vec())
}

/// What [`handshake`] reached, so a target can assert on it.
#[derive(Debug, Default)]
pub struct HandshakeOutcome {
    /// The responder finished the handshake (only possible with a real initiator).
    pub authenticated: bool,
    /// The listen address the responder learned, when it finished.
    pub peer_listen: Option<String>,
    /// Frames split from the decrypted stream after the handshake.
    pub frames: usize,
    /// Whether the responder refused the bytes (the connection would close).
    pub refused: bool,
}

/// Drives a responder's handshake and record opening as an accepting connection does.
///
/// `data[0]` picks the case. Even: `data[1..]` are an unauthenticated peer's raw bytes, fed
/// in reads of `data[0] / 2 + 1` bytes. Odd: a real initiator with the same secret (so the
/// fuzzer reaches past the cryptography) sends `data[1..split]` as its listen address and
/// then `data[split..]` sealed as transport records, which the responder opens and splits
/// into frames. Panics only if a decoder breaks its own contract.
pub fn handshake(data: &[u8]) -> HandshakeOutcome {
    use crate::security::noise::{Handshake, Progress};
    let mut outcome = HandshakeOutcome::default();
    let Some((&mode, rest)) = data.split_first() else {
        return outcome;
    };
    // Invariant: a constant secret of more than 16 bytes is accepted.
    let secret = crate::Secret::new(b"fuzzing-secret-0123456789".to_vec(), "fuzz")
        .expect("a long enough secret");
    let Ok(mut responder) = Handshake::responder(&secret) else {
        return outcome;
    };
    let mut wire = Vec::new();
    let mut plain = Vec::new();
    if mode % 2 == 0 {
        wire.extend_from_slice(rest);
    } else {
        let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let listen = String::from_utf8_lossy(&rest[..split]).into_owned();
        plain.extend_from_slice(rest.get(split + 1..).unwrap_or_default());
        let mut to_responder = Vec::new();
        let Ok(mut initiator) = Handshake::initiator(&secret, Some(listen), &mut to_responder)
        else {
            return outcome;
        };
        let mut reply = Vec::new();
        let mut input = BytesMut::from(&to_responder[..]);
        if responder.feed(&mut input, &mut reply).is_err() {
            outcome.refused = true;
            return outcome;
        }
        let mut input = BytesMut::from(&reply[..]);
        let mut record = Vec::new();
        match initiator.feed(&mut input, &mut record) {
            Ok(Progress::Done { mut transport, .. }) => {
                wire = record;
                transport.seal(&plain, &mut wire);
            }
            _ => return outcome,
        }
    }
    let chunk = usize::from(mode / 2) + 1;
    let mut input = BytesMut::new();
    let mut opener = None;
    let mut frames = BytesMut::new();
    let decoder = FrameDecoder::new(64 * 1024);
    for piece in wire.chunks(chunk) {
        input.extend_from_slice(piece);
        let opened = match &mut opener {
            None => match responder.feed(&mut input, &mut Vec::new()) {
                Ok(Progress::Pending) => continue,
                Ok(Progress::Done {
                    transport,
                    peer_listen,
                }) => {
                    outcome.authenticated = true;
                    outcome.peer_listen = peer_listen;
                    let mut receiving = transport.receiving;
                    let opened = receiving.open(&mut input, &mut frames);
                    opener = Some(receiving);
                    opened
                }
                Err(_) => Err(crate::security::noise::NoiseError::BadRecord(String::new())),
            },
            Some(receiving) => receiving.open(&mut input, &mut frames),
        };
        if opened.is_err() {
            outcome.refused = true;
            return outcome;
        }
        while let Ok(Some(_)) = decoder.decode(&mut frames) {
            outcome.frames += 1;
        }
    }
    outcome
}

/// What [`decode_arrived`] decodes in: a client-mode env and a connection (closed, so an
/// answer goes nowhere), made once per process.
struct ArrivalContext {
    env: crate::RpcEnv,
    conn: Arc<crate::connection::Connection>,
    /// The connection's other end, kept open for the life of the process.
    _peer: std::net::TcpStream,
}

/// An IO thread that is never asked anything that matters: the connection is closed.
struct NoIoThread;

impl crate::connection::IoThread for NoIoThread {
    fn request_flush(&self, _token: mio::Token) {}
    fn request_close(&self, _token: mio::Token, _reason: Option<crate::RpcError>) {}
    fn request_resume(&self, _token: mio::Token) {}
}

fn arrival_context() -> Option<&'static ArrivalContext> {
    static CONTEXT: std::sync::OnceLock<Option<ArrivalContext>> = std::sync::OnceLock::new();
    CONTEXT
        .get_or_init(|| {
            let conf = crate::RpcConf::new().with(crate::keys::AUTHENTICATE, "false");
            let env =
                crate::RpcEnv::create(crate::RpcEnvConfig::client("fuzz").with_conf(conf)).ok()?;
            let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
            let ours = std::net::TcpStream::connect(listener.local_addr().ok()?).ok()?;
            let (peer, address) = listener.accept().ok()?;
            ours.set_nonblocking(true).ok()?;
            let conn = Arc::new(crate::connection::Connection::new(
                env.shared.next_id(),
                mio::net::TcpStream::from_std(ours),
                address,
                crate::connection::Direction::Inbound,
                None,
                Arc::new(NoIoThread),
                env.shared.max_frame,
                usize::MAX,
                false,
                Arc::default(),
            ));
            conn.mark_closed();
            Some(ArrivalContext {
                env,
                conn,
                _peer: peer,
            })
        })
        .as_ref()
}

/// Decodes `body` as `T` the way a message that arrived on a connection is: with the env,
/// the connection and a call as context, so the refs and reply ports inside it decode (and
/// the fields after them are reached) instead of failing for want of context. `None` if the
/// context could not be made (no loopback).
pub fn decode_arrived<T: crate::Decode>(body: Bytes) -> Option<Result<T, crate::DecodeError>> {
    let context = arrival_context()?;
    let arrival = crate::env::Arrival {
        env: Arc::clone(&context.env.shared),
        conn: Some(Arc::clone(&context.conn)),
        call: Some(Arc::new(crate::ask::RemoteCall::new(
            Arc::clone(&context.conn),
            1,
            Arc::from("fuzz"),
        ))),
    };
    let mut r = crate::Reader::with_context(body, &arrival);
    Some(T::decode(&mut r).and_then(|value| r.finish().map(|()| value)))
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::*;
    use crate::frame::put_message_frame;
    use crate::RpcAddress;

    #[test]
    fn splits_real_frames_whatever_the_read_size_and_stops_at_a_bad_one() {
        let addr = RpcAddress::new("localhost", 7077);
        let mut wire = BytesMut::new();
        for body in [&b"one"[..], b"two", b""] {
            put_message_frame(&mut wire, FrameKind::OneWay, 0, Some(&addr), "echo", &|b| {
                b.put_slice(body)
            });
        }
        let frames = split_frames(&wire, 1024);
        assert_eq!(frames.len(), 3);
        assert_eq!(frame_body(&frames[1]).as_deref(), Some(&b"two"[..]));
        for chunk in [1, 5, 1000] {
            let outcome = split_and_parse(&wire, chunk, 1024);
            assert_eq!((outcome.frames, outcome.framing_error), (3, false));
        }
        wire.put_slice(&[0, 0, 0, 9, 99, 0, 0, 0, 0, 0, 0, 0, 0]);
        let outcome = split_and_parse(&wire, 7, 1024);
        assert_eq!((outcome.frames, outcome.framing_error), (3, true));
    }

    #[test]
    fn the_handshake_hook_authenticates_a_real_initiator_and_refuses_garbage() {
        let addr = RpcAddress::new("localhost", 7077);
        let mut frames = BytesMut::new();
        put_message_frame(
            &mut frames,
            FrameKind::OneWay,
            0,
            Some(&addr),
            "echo",
            &|b| b.put_slice(b"hi"),
        );
        for mode in [1u8, 7, 255] {
            let mut data = vec![mode];
            data.extend_from_slice(b"10.0.0.1:7077\0");
            data.extend_from_slice(&frames);
            let outcome = handshake(&data);
            assert!(outcome.authenticated && !outcome.refused, "{outcome:?}");
            assert_eq!(outcome.peer_listen.as_deref(), Some("10.0.0.1:7077"));
            assert_eq!(outcome.frames, 1);
        }
        let outcome = handshake(&[0, 0, 48, 1, 2, 3]);
        assert!(!outcome.authenticated);
        let mut garbage = vec![2u8, 0, 48];
        garbage.extend_from_slice(&[9u8; 48]);
        let outcome = handshake(&garbage);
        assert!(outcome.refused && !outcome.authenticated);
    }
}
