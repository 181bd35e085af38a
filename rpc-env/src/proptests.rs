//! Property tests of the two layers that read bytes a peer controls: the message codec and
//! the frame codec.
//!
//! The properties are totality (no input panics, whatever its chunking) and faithfulness
//! (what is written reads back as itself, and a cut-short input never reads as some other
//! value). They live inside the crate because the frame codec is crate-private.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::{btree_map, hash_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::address::{EndpointAddress, RpcAddress};
use crate::codec::{decode_from, encode_to_bytes, Decode, DecodeError, Encode};
use crate::endpoint::Protocol;
use crate::endpoint_ref::EndpointRef;
use crate::frame::{
    finish_frame, parse_failure, put_failure_frame, put_message_frame, start_frame, EndpointHeader,
    FrameDecoder, FrameError, FrameKind, FIXED_HEADER, LENGTH_FIELD,
};
use crate::{message, Reply, RpcError};

/// `WIRE.md`'s worked examples, byte for byte.
mod wire_examples;

message! {
    /// A struct inside [`Nested`], so structs inside vectors inside enums are covered.
    #[derive(Debug, Clone, PartialEq)]
    struct Inner {
        id: u64,
        tags: Vec<String>,
        address: Option<RpcAddress>,
    }
}

message! {
    /// A message enum with a unit, a scalar and two nested variants: every shape the codec
    /// has, in one type.
    #[derive(Debug, Clone, PartialEq)]
    enum Nested {
        Empty,
        Scalar { a: u8, b: i64, c: bool },
        Text { s: String, maybe: Option<u32>, blob: Bytes },
        Deep {
            inners: Vec<Inner>,
            index: BTreeMap<u16, Vec<u8>>,
            counts: HashMap<String, u64>,
            target: EndpointAddress,
            triple: (u8, String, u64),
            wait: Duration,
        },
    }
}

message! {
    /// An ask enum: its reply ports only decode inside an env, so outside one every input
    /// must fail.
    enum ProbeAsk {
        Get { key: String, reply: Reply<u64> },
        Put { key: String, value: Bytes, reply: Reply<bool> },
    }
}

/// A protocol to type endpoint refs with.
struct ProbeProtocol;

impl Protocol for ProbeProtocol {
    type Message = Nested;
    type Ask = ProbeAsk;
}

// ---- strategies ----------------------------------------------------------------------------

/// Short strings of any characters, control and astral ones included.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,8}",
        vec(any::<char>(), 0..12).prop_map(String::from_iter),
    ]
}

/// Hosts as people write them, and as attackers do: names, IPv4, IPv6 in canonical and
/// non-canonical forms with and without brackets, stray brackets and colons, anything.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.-]{1,16}",
        any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
        any::<[u16; 8]>().prop_map(|s| Ipv6Addr::from(s).to_string()),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", Ipv6Addr::from(s))),
        // Every group written out, so normalisation has work to do.
        any::<[u16; 8]>().prop_map(|s| s.map(|g| format!("{g:x}")).join(":")),
        prop::sample::select(vec![
            "",
            "[",
            "]",
            "[]",
            "[::1",
            "::1]",
            "a:b",
            "[a:b]",
            "[[::1]]",
            "fe80::1%eth0",
            "[::ffff:1.2.3.4]",
        ])
        .prop_map(String::from),
        text(),
    ]
}

fn rpc_address() -> impl Strategy<Value = RpcAddress> {
    (host(), any::<u16>()).prop_map(|(h, p)| RpcAddress::new(&h, p))
}

fn endpoint_address() -> impl Strategy<Value = EndpointAddress> {
    (option::of(rpc_address()), text()).prop_map(|(a, n)| EndpointAddress::new(a, n))
}

fn duration() -> impl Strategy<Value = Duration> {
    (any::<u64>(), 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n))
}

fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..32).prop_map(Bytes::from)
}

fn inner() -> impl Strategy<Value = Inner> {
    (any::<u64>(), vec(text(), 0..4), option::of(rpc_address()))
        .prop_map(|(id, tags, address)| Inner { id, tags, address })
}

fn nested() -> impl Strategy<Value = Nested> {
    prop_oneof![
        Just(Nested::Empty),
        (any::<u8>(), any::<i64>(), any::<bool>()).prop_map(|(a, b, c)| Nested::Scalar { a, b, c }),
        (text(), any::<Option<u32>>(), blob()).prop_map(|(s, maybe, blob)| Nested::Text {
            s,
            maybe,
            blob
        }),
        (
            vec(inner(), 0..3),
            btree_map(any::<u16>(), vec(any::<u8>(), 0..8), 0..4),
            hash_map(text(), any::<u64>(), 0..4),
            endpoint_address(),
            (any::<u8>(), text(), any::<u64>()),
            duration(),
        )
            .prop_map(
                |(inners, index, counts, target, triple, wait)| Nested::Deep {
                    inners,
                    index,
                    counts,
                    target,
                    triple,
                    wait,
                }
            ),
    ]
}

/// Bytes a hostile or broken peer might send: uniformly random ones (whose length prefixes
/// are mostly huge), ones from a small alphabet (whose lengths and tags are mostly small,
/// so decoders get deep), and valid encodings with a few bytes overwritten.
fn hostile_bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        vec(any::<u8>(), 0..256).prop_map(Bytes::from),
        vec(
            prop_oneof![Just(0u8), Just(1u8), 0u8..4, any::<u8>()],
            0..96
        )
        .prop_map(Bytes::from),
        (nested(), vec((any::<Index>(), any::<u8>()), 0..4)).prop_map(|(value, edits)| {
            let mut bytes = encode_to_bytes(&value).to_vec();
            if !bytes.is_empty() {
                for (at, b) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = b;
                }
            }
            Bytes::from(bytes)
        }),
    ]
}

/// One frame as a peer might send it, possibly lying: the kind may be unknown (0 or 5) and
/// the length field may disagree with the bytes that follow.
fn raw_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..=5,
        any::<u64>(),
        vec(any::<u8>(), 0..48),
        prop_oneof![4 => Just(0i64), 1 => -12i64..12],
    )
        .prop_map(|(kind, id, payload, skew)| {
            let len = (FIXED_HEADER + payload.len()) as i64 + skew;
            let mut frame = Vec::with_capacity(LENGTH_FIELD + FIXED_HEADER + payload.len());
            frame.extend_from_slice(&u32::try_from(len.max(0)).unwrap_or(0).to_be_bytes());
            frame.push(kind);
            frame.extend_from_slice(&id.to_be_bytes());
            frame.extend_from_slice(&payload);
            frame
        })
}

/// A byte stream on a connection: noise, or a run of plausible frames.
fn wire() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..256),
        vec(raw_frame(), 0..6).prop_map(|frames| frames.concat()),
    ]
}

/// How reads split a stream: chunk sizes, used in turn and cycled.
fn chunking() -> impl Strategy<Value = Vec<usize>> {
    vec(1usize..64, 1..16)
}

// ---- helpers -------------------------------------------------------------------------------

/// Checks that `value` reads back as itself, that every strict prefix of its encoding is an
/// error (the encoding is self-delimiting, so a cut-short message never reads as another
/// value), and that one byte more is reported as trailing.
fn assert_round_trip<T>(value: &T) -> Result<(), TestCaseError>
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
fn assert_total<T>(bytes: &Bytes, canonical: bool) -> Result<(), TestCaseError>
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
struct Outcome {
    frames: Vec<(FrameKind, u64, Bytes)>,
    error: Option<FrameError>,
    /// What is left in the read buffer when the stream ends without an error.
    leftover: Bytes,
}

fn run_decoder(decoder: &FrameDecoder, wire: &[u8], sizes: &[usize]) -> Outcome {
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

fn be_u32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// Walks `wire` by hand and checks every frame of `outcome` against the bytes it came from,
/// then checks that the error (or the leftover) is exactly what the next bytes call for.
fn assert_consistent(
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
fn message_frame(
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

// ---- properties ----------------------------------------------------------------------------

proptest! {
    /// (a) However the stream is split into reads, the decoder never panics, agrees with
    /// itself, and every frame it yields is exactly the bytes its length field covers.
    #[test]
    fn frame_decoder_is_total_and_consistent(
        wire in wire(),
        sizes in chunking(),
        max_payload in prop_oneof![0usize..64, Just(1usize << 20)],
    ) {
        let decoder = FrameDecoder::new(max_payload + FIXED_HEADER);
        let chunked = run_decoder(&decoder, &wire, &sizes);
        assert_consistent(&wire, max_payload, &chunked)?;
        let whole = run_decoder(&decoder, &wire, &[usize::MAX]);
        prop_assert_eq!(&chunked, &whole);
    }

    /// (b) Header and failure parsing never panic, and a parsed header is a faithful split
    /// of its payload.
    #[test]
    fn header_and_failure_parsing_are_total(
        payload in prop_oneof![
            hostile_bytes(),
            // A valid header in front of noise, so parsing gets past the sender.
            (option::of(rpc_address()), text(), vec(any::<u8>(), 0..32)).prop_map(
                |(sender, name, tail)| {
                    let mut b = BytesMut::new();
                    sender.encode(&mut b);
                    name.encode(&mut b);
                    b.put_slice(&tail);
                    b.freeze()
                }
            ),
        ],
        cut in any::<Index>(),
    ) {
        let payload = payload.slice(..cut.index(payload.len() + 1));
        if let Ok(header) = EndpointHeader::parse(payload.clone()) {
            let name_len = header.receiver().len();
            let sender_len = header.sender_raw().len();
            prop_assert_eq!(&payload[..sender_len], header.sender_raw());
            prop_assert!(header.sender().is_ok());
            prop_assert_eq!(header.receiver_name().as_bytes(), header.receiver());
            prop_assert!(std::str::from_utf8(header.receiver()).is_ok());
            let body = header.into_body();
            prop_assert_eq!(sender_len + 4 + name_len + body.len(), payload.len());
            prop_assert_eq!(&payload[payload.len() - body.len()..], &body[..]);
        }
        // A failure that parses is one of the kinds that travel; it never panics.
        let _ = parse_failure(payload.clone());
    }

    /// (c) Decoding arbitrary bytes as any message type never panics; what decodes survives
    /// re-encoding; and types with one encoding per value re-encode to the same bytes.
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in hostile_bytes()) {
        assert_total::<u8>(&bytes, true)?;
        assert_total::<u16>(&bytes, true)?;
        assert_total::<u32>(&bytes, true)?;
        assert_total::<u64>(&bytes, true)?;
        assert_total::<i64>(&bytes, true)?;
        assert_total::<bool>(&bytes, true)?;
        assert_total::<String>(&bytes, true)?;
        assert_total::<Bytes>(&bytes, true)?;
        assert_total::<Vec<String>>(&bytes, true)?;
        assert_total::<Option<u32>>(&bytes, true)?;
        assert_total::<(u8, String, u64)>(&bytes, true)?;
        assert_total::<Duration>(&bytes, true)?;
        // Maps may repeat keys on the wire, and hosts are normalised: not canonical.
        assert_total::<HashMap<String, u64>>(&bytes, false)?;
        assert_total::<BTreeMap<u16, Vec<u8>>>(&bytes, false)?;
        assert_total::<RpcAddress>(&bytes, false)?;
        assert_total::<EndpointAddress>(&bytes, false)?;
        assert_total::<Inner>(&bytes, false)?;
        assert_total::<Nested>(&bytes, false)?;
        // Reply ports and refs need an env: outside one nothing decodes.
        prop_assert!(decode_from::<ProbeAsk>(bytes.clone()).is_err());
        prop_assert!(decode_from::<EndpointRef<ProbeProtocol>>(bytes.clone()).is_err());
    }

    /// (d) Scalars, strings and containers round-trip.
    #[test]
    fn scalars_and_containers_round_trip(
        a in any::<u8>(),
        b in any::<u16>(),
        c in any::<u32>(),
        d in any::<u64>(),
        e in any::<i64>(),
        f in any::<bool>(),
        s in text(),
        blob in blob(),
        strings in vec(text(), 0..6),
        maybe in any::<Option<u32>>(),
        counts in hash_map(text(), any::<u64>(), 0..6),
        index in btree_map(any::<u16>(), vec(any::<u8>(), 0..8), 0..6),
        triple in (any::<u8>(), text(), any::<u64>()),
        wait in duration(),
    ) {
        assert_round_trip(&a)?;
        assert_round_trip(&b)?;
        assert_round_trip(&c)?;
        assert_round_trip(&d)?;
        assert_round_trip(&e)?;
        assert_round_trip(&f)?;
        assert_round_trip(&s)?;
        assert_round_trip(&blob)?;
        assert_round_trip(&strings)?;
        assert_round_trip(&maybe)?;
        assert_round_trip(&counts)?;
        assert_round_trip(&index)?;
        assert_round_trip(&triple)?;
        assert_round_trip(&wait)?;
    }

    /// (d) Addresses and message enums round-trip, including hosts that get normalised.
    #[test]
    fn addresses_and_messages_round_trip(
        address in rpc_address(),
        endpoint in endpoint_address(),
        value in nested(),
    ) {
        assert_round_trip(&address)?;
        assert_round_trip(&endpoint)?;
        assert_round_trip(&value)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// (e) Request, one-way, response and failure frames come back whole through the decoder
    /// (with the limit set to the largest payload, so "at the limit" is exercised) and the
    /// header parser, however the reads split them.
    #[test]
    fn frames_round_trip_through_decoder_and_header(
        sender in option::of(rpc_address()),
        receiver in text(),
        body in vec(any::<u8>(), 0..64),
        one_way in any::<bool>(),
        id in any::<u64>(),
        response in vec(any::<u8>(), 0..64),
        failure in text(),
        sizes in chunking(),
    ) {
        let (kind, id) = if one_way { (FrameKind::OneWay, 0) } else { (FrameKind::Request, id) };
        let mut wire = message_frame(kind, id, sender.as_ref(), &receiver, &body);
        prop_assert_eq!(be_u32(&wire), wire.len() - LENGTH_FIELD);
        let start = start_frame(&mut wire, FrameKind::Response, id);
        wire.put_slice(&response);
        let response_len = finish_frame(&mut wire, start);
        prop_assert_eq!(response_len, FIXED_HEADER + response.len());
        put_failure_frame(&mut wire, id, &RpcError::failure(failure.clone()));

        let header_len = encode_to_bytes(&sender).len() + encode_to_bytes(&receiver).len();
        let largest = (header_len + body.len())
            .max(response.len())
            .max(encode_to_bytes(&failure).len() + 2);
        let out = run_decoder(&FrameDecoder::new(largest + FIXED_HEADER), &wire, &sizes);
        prop_assert_eq!(&out.error, &None);
        prop_assert!(out.leftover.is_empty());
        prop_assert_eq!(out.frames.len(), 3);

        let (k, i, payload) = &out.frames[0];
        prop_assert_eq!((*k, *i), (kind, id));
        let header = EndpointHeader::parse(payload.clone());
        prop_assert!(header.is_ok(), "{:?}", header);
        if let Ok(header) = header {
            prop_assert_eq!(header.sender().ok(), Some(sender.clone()));
            prop_assert_eq!(header.receiver_name(), receiver.as_str());
            prop_assert_eq!(&header.into_body()[..], &body[..]);
        }
        prop_assert_eq!(&out.frames[1], &(FrameKind::Response, id, Bytes::from(response)));
        let (k, i, payload) = &out.frames[2];
        prop_assert_eq!((*k, *i), (FrameKind::Failure, id));
        prop_assert_eq!(parse_failure(payload.clone()).ok(), Some(RpcError::failure(failure)));

        // One byte under the largest payload, that frame is refused.
        let tight = run_decoder(
            &FrameDecoder::new(largest.saturating_sub(1) + FIXED_HEADER),
            &wire,
            &sizes,
        );
        if largest > 0 {
            prop_assert!(
                matches!(tight.error, Some(FrameError::TooLarge { .. })),
                "{:?}",
                tight.error
            );
        }
    }

    /// (f) A valid frame cut anywhere is "need more bytes" and consumes nothing; a frame whose
    /// payload was cut (with a length field that agrees) never parses as a different header,
    /// and its body never decodes as a message.
    #[test]
    fn truncated_frames_never_decode_as_something_else(
        sender in option::of(rpc_address()),
        receiver in text(),
        value in nested(),
        id in any::<u64>(),
    ) {
        let body = encode_to_bytes(&value);
        let wire = message_frame(FrameKind::Request, id, sender.as_ref(), &receiver, &body);
        let decoder = FrameDecoder::new(1 << 20);
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            let decoded = decoder.decode(&mut buf);
            prop_assert!(matches!(decoded, Ok(None)), "cut at {}: {:?}", cut, decoded);
            prop_assert_eq!(buf.len(), cut);
        }

        let payload = wire.freeze().slice(LENGTH_FIELD + FIXED_HEADER..);
        for cut in 0..payload.len() {
            let mut reframed = BytesMut::new();
            let start = start_frame(&mut reframed, FrameKind::Request, id);
            reframed.put_slice(&payload[..cut]);
            finish_frame(&mut reframed, start);
            let frame = decoder.decode(&mut reframed);
            let Ok(Some(frame)) = frame else {
                prop_assert!(false, "cut at {}: {:?}", cut, frame);
                continue;
            };
            let Ok(header) = EndpointHeader::parse(frame.payload) else {
                continue;
            };
            prop_assert_eq!(header.sender().ok(), Some(sender.clone()));
            prop_assert_eq!(header.receiver_name(), receiver.as_str());
            let got = header.into_body();
            prop_assert!(got.len() < body.len());
            prop_assert_eq!(&got[..], &body[..got.len()]);
            prop_assert!(decode_from::<Nested>(got).is_err());
        }
    }
}
