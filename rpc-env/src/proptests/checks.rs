//! The checks the properties share: round trips, totality, and a frame decoder run on a
//! chunked stream and compared with a by-hand walk of the bytes.

use super::*;

/// Checks that `value` reads back as itself, that every strict prefix of its encoding is an
/// error (the encoding is self-delimiting, so a cut-short message never reads as another
/// value), and that one byte more is reported as trailing.
pub(super) fn assert_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Encode + Decode + PartialEq + Debug,
{
    let bytes = encode_to_bytes(value);
    match decode_from::<T>(bytes.clone()) {
        Ok(back) => prop_assert_eq!(&back, value),
        Err(e) => prop_assert!(false, "{:?} did not decode: {}", value, e),
    }
    for cut in 0..bytes.len() {
        let prefix = decode_from::<T>(bytes.slice(..cut));
        prop_assert!(
            prefix.is_err(),
            "the first {} bytes of {:?} decoded as {:?}",
            cut,
            value,
            prefix
        );
    }
    let mut longer = BytesMut::from(&bytes[..]);
    longer.put_u8(0);
    prop_assert_eq!(
        decode_from::<T>(longer.freeze()).err(),
        Some(DecodeError::TrailingBytes { count: 1 })
    );
    Ok(())
}

/// Decodes `bytes` as a `T`. It may fail but must not panic; what it reads must come back
/// unchanged from another trip through the codec; and for a type with one encoding per
/// value (`canonical`), re-encoding must give back exactly `bytes`.
pub(super) fn assert_total<T>(bytes: &Bytes, canonical: bool) -> Result<(), TestCaseError>
where
    T: Encode + Decode + PartialEq + Debug,
{
    if let Ok(value) = decode_from::<T>(bytes.clone()) {
        let encoded = encode_to_bytes(&value);
        if canonical {
            prop_assert_eq!(&encoded, bytes);
        }
        let again = decode_from::<T>(encoded);
        prop_assert_eq!(again.as_ref().ok(), Some(&value));
    }
    Ok(())
}

/// The frames a connection splits off `wire` when reads deliver it in chunks of `sizes`,
/// up to the first error, which ends the connection.
#[derive(Debug, PartialEq)]
pub(super) struct Outcome {
    pub(super) frames: Vec<(FrameKind, u64, Bytes)>,
    pub(super) error: Option<FrameError>,
    /// What is left in the read buffer when the stream ends without an error.
    pub(super) leftover: Bytes,
}

pub(super) fn run_decoder(decoder: &FrameDecoder, wire: &[u8], sizes: &[usize]) -> Outcome {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    let mut chunks = sizes.iter().cycle();
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => frames.push((f.kind, f.request_id, f.payload)),
                Ok(None) => break,
                Err(e) => {
                    return Outcome {
                        frames,
                        error: Some(e),
                        leftover: Bytes::new(),
                    }
                }
            }
        }
        if fed == wire.len() {
            return Outcome {
                frames,
                error: None,
                leftover: buf.freeze(),
            };
        }
        let n = chunks.next().copied().unwrap_or(1).min(wire.len() - fed);
        buf.extend_from_slice(&wire[fed..fed + n]);
        fed += n;
    }
}

pub(super) fn be_u32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// Walks `wire` by hand and checks every frame of `outcome` against the bytes it came from,
/// then checks that the error (or the leftover) is exactly what the next bytes call for.
pub(super) fn assert_consistent(
    wire: &[u8],
    max_payload: usize,
    outcome: &Outcome,
) -> Result<(), TestCaseError> {
    let mut at = 0;
    for (kind, id, payload) in &outcome.frames {
        let len = be_u32(&wire[at..]);
        prop_assert_eq!(len, FIXED_HEADER + payload.len(), "length field vs payload");
        prop_assert!(len <= max_payload + FIXED_HEADER);
        prop_assert_eq!(*kind as u8, wire[at + LENGTH_FIELD]);
        let id_at = at + LENGTH_FIELD + 1;
        prop_assert_eq!(
            *id,
            u64::from_be_bytes(wire[id_at..id_at + 8].try_into().unwrap_or([0; 8]))
        );
        let body_at = at + LENGTH_FIELD + FIXED_HEADER;
        prop_assert_eq!(&payload[..], &wire[body_at..at + LENGTH_FIELD + len]);
        at += LENGTH_FIELD + len;
    }
    let rest = &wire[at..];
    match &outcome.error {
        None => {
            // The rest is an incomplete but so far acceptable frame.
            prop_assert_eq!(&outcome.leftover[..], rest);
            if rest.len() >= LENGTH_FIELD {
                let len = be_u32(rest);
                prop_assert!((FIXED_HEADER..=max_payload + FIXED_HEADER).contains(&len));
                prop_assert!(rest.len() < LENGTH_FIELD + len);
            }
        }
        Some(error) => {
            prop_assert!(rest.len() >= LENGTH_FIELD);
            let len = be_u32(rest);
            let expected = if len > max_payload + FIXED_HEADER {
                FrameError::TooLarge {
                    len,
                    max: max_payload + FIXED_HEADER,
                }
            } else if len < FIXED_HEADER {
                FrameError::TooShort { len }
            } else {
                // Only a whole frame has its kind looked at.
                prop_assert!(rest.len() >= LENGTH_FIELD + len);
                FrameError::UnknownKind {
                    kind: rest[LENGTH_FIELD],
                }
            };
            prop_assert_eq!(error, &expected);
        }
    }
    Ok(())
}

/// A request or one-way frame carrying `body`, as the env writes one.
pub(super) fn message_frame(
    kind: FrameKind,
    id: u64,
    sender: Option<&RpcAddress>,
    receiver: &str,
    body: &[u8],
) -> BytesMut {
    let mut buf = BytesMut::new();
    put_message_frame(&mut buf, kind, id, sender, receiver, &|b| b.put_slice(body));
    buf
}
