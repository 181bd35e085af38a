//! The handshake and records with byte buffers only: no sockets, no threads.

use super::*;

fn secret(s: &str) -> Secret {
    Secret::new(s.as_bytes().to_vec(), "test").unwrap()
}

const A: &str = "0123456789abcdef-secret-a";
const B: &str = "0123456789abcdef-secret-b";

/// Runs a full handshake, moving bytes both ways, and returns both transports, the
/// responder's view of the initiator's address, and the bytes left over on each side.
fn handshake(
    init: &Secret,
    resp: &Secret,
    listen: Option<&str>,
) -> Result<(NoiseTransport, NoiseTransport, Option<String>), NoiseError> {
    let mut to_resp = Vec::new();
    let mut i = Handshake::initiator(init, listen.map(str::to_owned), &mut to_resp)?;
    let mut r = Handshake::responder(resp)?;
    let mut to_init = Vec::new();
    let mut r_in = BytesMut::from(&to_resp[..]);
    assert!(matches!(
        r.feed(&mut r_in, &mut to_init)?,
        Progress::Pending
    ));
    let mut i_in = BytesMut::from(&to_init[..]);
    let mut to_resp = Vec::new();
    let Progress::Done {
        transport: ti,
        peer_listen: None,
    } = i.feed(&mut i_in, &mut to_resp)?
    else {
        panic!("the initiator is done after message 2")
    };
    let mut r_in = BytesMut::from(&to_resp[..]);
    let mut none = Vec::new();
    let Progress::Done {
        transport: tr,
        peer_listen,
    } = r.feed(&mut r_in, &mut none)?
    else {
        panic!("the responder is done after the address record")
    };
    assert!(none.is_empty() && r_in.is_empty());
    Ok((ti, tr, peer_listen))
}

#[test]
fn same_secret_authenticates_and_carries_the_listen_address() {
    let (_, _, peer) = handshake(&secret(A), &secret(A), Some("10.0.0.1:7077")).unwrap();
    assert_eq!(peer.as_deref(), Some("10.0.0.1:7077"));
    let (_, _, peer) = handshake(&secret(A), &secret(A), None).unwrap();
    assert_eq!(peer, None);
}

#[test]
fn different_secrets_fail_the_handshake() {
    let err = handshake(&secret(A), &secret(B), None).err().unwrap();
    assert!(
        matches!(err, NoiseError::AuthenticationFailed(_)),
        "{err:?}"
    );
}

#[test]
fn the_responder_is_not_done_before_the_address_record() {
    let s = secret(A);
    let mut out = Vec::new();
    let _i = Handshake::initiator(&s, None, &mut out).unwrap();
    let mut r = Handshake::responder(&s).unwrap();
    // A replayed message 1 gets a reply, never "done".
    let mut reply = Vec::new();
    let mut input = BytesMut::from(&out[..]);
    assert!(matches!(
        r.feed(&mut input, &mut reply).unwrap(),
        Progress::Pending
    ));
    assert!(!reply.is_empty());
}

#[test]
fn plaintext_is_refused_and_big_lengths_are_not_buffered() {
    let mut r = Handshake::responder(&secret(A)).unwrap();
    // A well-formed frame header is no handshake: its length prefix is huge.
    let mut input = BytesMut::from(&[0xff, 0xff, 0, 0][..]);
    assert!(r.feed(&mut input, &mut Vec::new()).is_err());
    let mut r = Handshake::responder(&secret(A)).unwrap();
    let mut input = BytesMut::from(&[0, 48][..]);
    input.extend_from_slice(&[7u8; 48]);
    assert!(r.feed(&mut input, &mut Vec::new()).is_err());
}

#[test]
fn records_round_trip_in_chunks_and_byte_by_byte() {
    let (mut ti, mut tr, _) = handshake(&secret(A), &secret(A), None).unwrap();
    let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    ti.seal(&plain, &mut wire);
    // 200,000 bytes is 4 records, each within the Noise limit.
    assert_eq!(wire.len(), plain.len() + 4 * (2 + TAG));
    let mut got = BytesMut::new();
    let mut input = BytesMut::new();
    for b in &wire {
        input.put_u8(*b);
        tr.open(&mut input, &mut got).unwrap();
    }
    assert_eq!(&got[..], &plain[..]);
    // The other direction too.
    let mut wire = Vec::new();
    tr.seal(b"reply", &mut wire);
    let mut got = BytesMut::new();
    ti.open(&mut BytesMut::from(&wire[..]), &mut got).unwrap();
    assert_eq!(&got[..], b"reply");
}

#[test]
fn the_marker_does_not_appear_on_the_wire() {
    let (mut ti, _, _) = handshake(&secret(A), &secret(A), None).unwrap();
    let mut wire = Vec::new();
    ti.seal(b"xx MARKER-7f3a xx", &mut wire);
    assert!(!wire.windows(11).any(|w| w == b"MARKER-7f3a"));
}

#[test]
fn a_flipped_byte_or_a_replayed_record_fails() {
    let (mut ti, mut tr, _) = handshake(&secret(A), &secret(A), None).unwrap();
    let mut wire = Vec::new();
    ti.seal(b"first", &mut wire);
    let first = wire.clone();
    let mut flipped = wire.clone();
    flipped[5] ^= 1;
    assert!(tr
        .open(&mut BytesMut::from(&flipped[..]), &mut BytesMut::new())
        .is_err());

    let (mut ti, mut tr, _) = handshake(&secret(A), &secret(A), None).unwrap();
    let mut wire = Vec::new();
    ti.seal(b"first", &mut wire);
    let mut got = BytesMut::new();
    tr.open(&mut BytesMut::from(&wire[..]), &mut got).unwrap();
    assert!(tr.open(&mut BytesMut::from(&wire[..]), &mut got).is_err());
    assert_ne!(first, wire, "fresh ephemeral keys give fresh ciphertext");
}
