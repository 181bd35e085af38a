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

mod checks;
mod strategies;
/// `WIRE.md`'s worked examples, byte for byte.
mod wire_examples;

use checks::*;
use strategies::*;

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
    /// A message enum with a unit, a scalar, two nested and two tuple variants: every shape
    /// the codec has, in one type.
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
        Single(Inner),
        Pair(u32, Option<String>),
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
    type Control = crate::NoMessage;
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
