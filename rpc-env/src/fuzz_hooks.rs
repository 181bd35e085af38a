//! Entry points for the fuzz targets in `fuzz/`: the crate-private decoders a socket's bytes
//! go through, driven exactly as the connection drives them. Not part of the API; nothing on
//! the hot path calls this module.

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

/// Feeds `wire` to a [`FrameDecoder`] of limit `max_frame` in reads of `chunk` bytes (as a
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
                // The verifier is the one endpoint every env has: its decoder sees any body.
                let _ = crate::decode_from::<crate::verifier::VerifierAsk>(body);
            }
        }
        FrameKind::Failure => {
            let _ = parse_failure(payload);
        }
        FrameKind::Response => {}
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
}
