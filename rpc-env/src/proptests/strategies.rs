//! Strategies: the values, hosts, frames and hostile bytes the properties run on.

use super::*;

/// Short strings of any characters, control and astral ones included.
pub(super) fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,8}",
        vec(any::<char>(), 0..12).prop_map(String::from_iter),
    ]
}

/// Hosts as people write them, and as attackers do: names, IPv4, IPv6 in canonical and
/// non-canonical forms with and without brackets, stray brackets and colons, anything.
pub(super) fn host() -> impl Strategy<Value = String> {
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

pub(super) fn rpc_address() -> impl Strategy<Value = RpcAddress> {
    (host(), any::<u16>()).prop_map(|(h, p)| RpcAddress::new(&h, p))
}

pub(super) fn endpoint_address() -> impl Strategy<Value = EndpointAddress> {
    (option::of(rpc_address()), text()).prop_map(|(a, n)| EndpointAddress::new(a, n))
}

pub(super) fn duration() -> impl Strategy<Value = Duration> {
    (any::<u64>(), 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n))
}

pub(super) fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..32).prop_map(Bytes::from)
}

pub(super) fn inner() -> impl Strategy<Value = Inner> {
    (any::<u64>(), vec(text(), 0..4), option::of(rpc_address()))
        .prop_map(|(id, tags, address)| Inner { id, tags, address })
}

pub(super) fn nested() -> impl Strategy<Value = Nested> {
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
        inner().prop_map(Nested::Single),
        (any::<u32>(), option::of(text())).prop_map(|(n, s)| Nested::Pair(n, s)),
    ]
}

/// Bytes a hostile or broken peer might send: uniformly random ones (whose length prefixes
/// are mostly huge), ones from a small alphabet (whose lengths and tags are mostly small,
/// so decoders get deep), and valid encodings with a few bytes overwritten.
pub(super) fn hostile_bytes() -> impl Strategy<Value = Bytes> {
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
pub(super) fn raw_frame() -> impl Strategy<Value = Vec<u8>> {
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
pub(super) fn wire() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..256),
        vec(raw_frame(), 0..6).prop_map(|frames| frames.concat()),
    ]
}

/// How reads split a stream: chunk sizes, used in turn and cycled.
pub(super) fn chunking() -> impl Strategy<Value = Vec<usize>> {
    vec(1usize..64, 1..16)
}
