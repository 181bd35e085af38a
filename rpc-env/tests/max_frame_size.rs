//! Oversized and malformed input over real TCP, against a server whose
//! `ember.rpc.message.maxSize` is 1 MiB and which hosts a probe called `echo`:
//!
//! - a frame header announcing more than the limit closes that connection, at once;
//! - garbage (random bytes, unknown kinds, short lengths, bad headers, bodies that are not
//!   the endpoint's messages) closes that connection only: the server, a client env and an
//!   idle raw connection all go on;
//! - a client env refuses to send a message over the limit (`MessageTooLarge`) and sends
//!   nothing; a message exactly at the limit gets through.
//!
//! Raw frames are built by hand from the layout in `WIRE.md`: `u32` length of what follows,
//! `u8` kind (1 request, 2 response, 3 failure, 4 one-way), `u64` request id, payload. The
//! payload of a request or one-way is the endpoint header (`Option<RpcAddress>` sender, then
//! the receiver's name as a `u32`-prefixed string) followed by the message body.

pub mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use rpc_env::{keys, EndpointRef, RpcAddress, RpcConf, RpcEnvConfig, RpcError};
use util::{answer, echo, text, wait_until, Env, Event, Probe, ProbeAsk, ProbeHandle};
use util::{ProbeProtocol, DEADLINE};

const MIB: usize = 1 << 20;

const REQUEST: u8 = 1;
const RESPONSE: u8 = 2;
const FAILURE: u8 = 3;
const ONE_WAY: u8 = 4;

/// Bytes of the frame header after the length field: kind and request id.
const FIXED_HEADER: usize = 9;

/// The settings of every env here: a 1 MiB limit, and asks that give up well before a
/// test's own deadline would.
fn conf() -> RpcConf {
    RpcConf::new()
        .with(keys::MESSAGE_MAX_SIZE, "1")
        .with(keys::ASK_TIMEOUT, "30s")
}

/// The server, and the record of its `echo` probe.
fn server() -> (Env, ProbeHandle) {
    let server = Env::server_with("server", conf());
    let (probe, h) = Probe::new();
    server.setup_endpoint("echo", probe).unwrap();
    (server, h)
}

/// A client-mode env with the same limit, and its ref to the server's `echo`.
fn client(server: &Env, name: &str) -> (Env, EndpointRef<ProbeProtocol>) {
    let client = Env::create(RpcEnvConfig::client(name).with_conf(conf()));
    let echo = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "echo")
        .unwrap();
    (client, echo)
}

/// Asks `echo` through `ep` and returns the sender address the probe saw: for a client-mode
/// env, the socket address of its connection, so an unchanged address means the same
/// connection is still in use.
#[track_caller]
fn echo_round_trip(ep: &EndpointRef<ProbeProtocol>, h: &ProbeHandle, what: &str) -> RpcAddress {
    let before = h.count(|e| matches!(e, Event::Asked { what: "Echo", .. }));
    assert_eq!(answer(ep.ask(echo(what))), Ok(what.to_string()));
    // The probe records the ask before it answers, so the event is there now.
    let asked: Vec<Event> = h
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Asked { what: "Echo", .. }))
        .collect();
    assert_eq!(asked.len(), before + 1, "one more Echo was handled");
    match asked.last() {
        Some(Event::Asked {
            sender: Some(sender),
            ..
        }) => sender.clone(),
        other => panic!("the probe recorded no sender: {other:?}"),
    }
}

// ---- raw frames ----------------------------------------------------------------------------

/// A frame of `kind` whose length field tells the truth.
fn frame(kind: u8, id: u64, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(FIXED_HEADER + payload.len()).expect("a test frame fits in u32");
    let mut f = Vec::with_capacity(4 + FIXED_HEADER + payload.len());
    f.extend_from_slice(&len.to_be_bytes());
    f.push(kind);
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A string as the codec writes one: `u32` byte length, then UTF-8.
fn string(s: &str) -> Vec<u8> {
    let mut v = u32::try_from(s.len())
        .expect("short")
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

/// The payload of a request or one-way from a sender with no address (as a client-mode env
/// writes it) to `receiver`, carrying `body`.
fn to_endpoint(receiver: &str, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8]; // Option<RpcAddress>::None
    p.extend_from_slice(&string(receiver));
    p.extend_from_slice(body);
    p
}

/// The body of `ProbeAsk::Echo { text, reply }`: tag 0, the text; the reply port takes no
/// bytes.
fn echo_body(text: &str) -> Vec<u8> {
    let mut b = 0u16.to_be_bytes().to_vec();
    b.extend_from_slice(&string(text));
    b
}

/// Deterministic noise (xorshift64*), so a failure can be replayed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// A raw connection to `server`.
fn connect(server: &Env) -> TcpStream {
    let stream = TcpStream::connect(server.addr().host_port()).expect("connects");
    stream.set_nodelay(true).expect("nodelay");
    // A server that stopped reading must fail the test, not hang it.
    stream.set_write_timeout(Some(DEADLINE)).expect("timeout");
    stream
}

/// Writes `bytes`, ignoring a failure: the server may close the connection before it has
/// read them all, which is what the tests are waiting for anyway.
fn write_ignoring_close(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
}

/// Whether the server has closed `stream` (end of stream, or a reset). Whatever the server
/// sent before closing (a failure frame, say) is read and dropped. `stream` must be
/// non-blocking.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// Waits until the server has closed `stream`.
#[track_caller]
fn assert_closed_by_server(stream: &mut TcpStream, what: &str) {
    stream.set_nonblocking(true).expect("non-blocking");
    wait_until(
        &format!("the server closes the connection that sent {what}"),
        DEADLINE,
        || closed_by_server(stream),
    );
}

/// Reads one whole frame, waiting at most [`DEADLINE`]: `(kind, request id, payload)`.
#[track_caller]
fn read_frame(stream: &mut TcpStream) -> (u8, u64, Vec<u8>) {
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut head = [0u8; 4 + FIXED_HEADER];
    stream
        .read_exact(&mut head)
        .expect("a frame header arrives");
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let id = u64::from_be_bytes(head[5..13].try_into().expect("8 bytes"));
    let mut payload = vec![0u8; len - FIXED_HEADER];
    stream
        .read_exact(&mut payload)
        .expect("the payload arrives");
    (head[4], id, payload)
}

/// An idle raw connection that proves it is still served: each [`check`](Self::check) asks
/// the server's `endpoint-verifier` whether `echo` exists and reads the answer.
struct Bystander {
    stream: TcpStream,
    next_id: u64,
}

impl Bystander {
    fn connect(server: &Env) -> Bystander {
        let mut b = Bystander {
            stream: connect(server),
            next_id: 1,
        };
        b.check();
        b
    }

    #[track_caller]
    fn check(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        // VerifierAsk::CheckExistence { name, reply }: tag 0, the name.
        let mut body = 0u16.to_be_bytes().to_vec();
        body.extend_from_slice(&string("echo"));
        let request = frame(REQUEST, id, &to_endpoint("endpoint-verifier", &body));
        self.stream
            .write_all(&request)
            .expect("the bystander writes");
        assert_eq!(read_frame(&mut self.stream), (RESPONSE, id, vec![1]));
    }
}

// ---- tests ---------------------------------------------------------------------------------

/// (a) A header announcing 2 MiB is refused on its first four bytes: the server closes that
/// connection without waiting for the rest, and a client env keeps being answered on its own
/// connection before and after.
#[test]
fn oversized_frame_header_closes_only_that_connection() {
    let (server, h) = server();
    let (_client, ep) = client(&server, "client");
    let mut bystander = Bystander::connect(&server);
    let before = echo_round_trip(&ep, &h, "before");

    let mut raw = connect(&server);
    let mut header = u32::try_from(2 * MIB).expect("fits").to_be_bytes().to_vec();
    header.push(REQUEST);
    header.extend_from_slice(&7u64.to_be_bytes());
    raw.write_all(&header).expect("writes the header");
    assert_closed_by_server(&mut raw, "a 2 MiB frame header");

    assert_eq!(echo_round_trip(&ep, &h, "after"), before, "same connection");
    bystander.check();
}

/// (b) Each kind of garbage, on a connection of its own, closes that connection only.
#[test]
fn garbage_closes_only_its_own_connection() {
    let (server, h) = server();
    let (_client, ep) = client(&server, "client");
    let mut bystander = Bystander::connect(&server);
    let first = echo_round_trip(&ep, &h, "first");

    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for seed in [1, 0x5eed, 0xdead_beef] {
        cases.push((
            format!("64 KiB of noise (seed {seed:#x})"),
            noise(seed, 64 * 1024),
        ));
    }
    for kind in [0u8, 5, 77, 255] {
        let mut f = frame(kind, 1, &to_endpoint("echo", &echo_body("x")));
        f.extend_from_slice(&noise(u64::from(kind), 64));
        cases.push((format!("a frame of unknown kind {kind}"), f));
    }
    cases.push((
        "a length field below the fixed header".into(),
        vec![0, 0, 0, 3, REQUEST, 0, 0],
    ));
    for (kind, name) in [(REQUEST, "request"), (ONE_WAY, "one-way")] {
        // An option flag other than 0 or 1 can never be a sender.
        let mut payload = noise(u64::from(kind) + 100, 200);
        payload[0] |= 0x80;
        cases.push((
            format!("a {name} with a noise header"),
            frame(kind, 9, &payload),
        ));
    }
    cases.push((
        "a request whose body is not a ProbeAsk (tag 99)".into(),
        frame(REQUEST, 11, &to_endpoint("echo", &[0, 99])),
    ));
    let mut cut = echo_body("truncated");
    cut.truncate(cut.len() - 2);
    cases.push((
        "a request whose body is a cut-short Echo".into(),
        frame(REQUEST, 12, &to_endpoint("echo", &cut)),
    ));
    let mut trailing = echo_body("x");
    trailing.push(0);
    cases.push((
        "a request whose body has a trailing byte".into(),
        frame(REQUEST, 13, &to_endpoint("echo", &trailing)),
    ));
    cases.push((
        "a one-way whose body is not a ProbeMessage (tag 1000)".into(),
        frame(ONE_WAY, 0, &to_endpoint("echo", &1000u16.to_be_bytes())),
    ));
    cases.push((
        "a failure whose text is not UTF-8".into(),
        frame(FAILURE, 5, &[0, 0, 0, 0, 0, 2, 0xc3, 0x28]),
    ));

    for (what, bytes) in &cases {
        let mut raw = connect(&server);
        write_ignoring_close(&mut raw, bytes);
        assert_closed_by_server(&mut raw, what);
        assert_eq!(echo_round_trip(&ep, &h, what), first, "after {what}");
        bystander.check();
    }
    // Nothing of the garbage reached the probe's handlers.
    assert!(h.texts().is_empty(), "{:?}", h.texts());
}

/// What is not an error leaves the connection open: a request to an unknown endpoint is
/// answered with a failure, and answers to requests nobody made are dropped.
#[test]
fn unknown_endpoints_and_stray_answers_keep_the_connection() {
    let (server, _h) = server();
    let mut raw = connect(&server);
    raw.write_all(&frame(REQUEST, 21, &to_endpoint("nobody", &[])))
        .expect("writes");
    let (kind, id, payload) = read_frame(&mut raw);
    assert_eq!((kind, id), (FAILURE, 21));
    // Failure payload: kind 2 (EndpointNotFound), then the name.
    let mut not_found = 2u16.to_be_bytes().to_vec();
    not_found.extend_from_slice(&string("nobody"));
    assert_eq!(payload, not_found);

    let mut stray = frame(RESPONSE, 0xdead, b"whatever");
    let mut late = 0u16.to_be_bytes().to_vec();
    late.extend_from_slice(&string("late"));
    stray.extend_from_slice(&frame(FAILURE, 0xbeef, &late));
    stray.extend_from_slice(&frame(ONE_WAY, 0, &to_endpoint("nobody", b"?")));
    stray.extend_from_slice(&frame(
        REQUEST,
        22,
        &to_endpoint("echo", &echo_body("alive")),
    ));
    raw.write_all(&stray).expect("writes");
    let (kind, id, payload) = read_frame(&mut raw);
    assert_eq!((kind, id, payload), (RESPONSE, 22, string("alive")));
}

/// (c) A message over the limit fails locally, for a one-way and an ask alike, and nothing
/// reaches the server: the same connection goes on, and so do the server's other clients.
#[test]
fn too_large_message_fails_locally_and_sends_nothing() {
    let (server, h) = server();
    let (_client, ep) = client(&server, "client");
    let (_other, other_ep) = client(&server, "other");
    let first = echo_round_trip(&ep, &h, "first");
    let other_first = echo_round_trip(&other_ep, &h, "other first");

    let big = "x".repeat(MIB);
    match ep.send(text(&big)) {
        Err(RpcError::MessageTooLarge { size, max }) => {
            assert_eq!(max, MIB);
            assert!(size > MIB, "{size}");
        }
        other => panic!("a 1 MiB text was not refused: {other:?}"),
    }
    let asked = answer(ep.ask(|reply| ProbeAsk::Echo {
        text: big.clone(),
        reply,
    }));
    assert!(
        matches!(asked, Err(RpcError::MessageTooLarge { max, .. }) if max == MIB),
        "{asked:?}"
    );

    ep.send(text("small")).expect("a small text goes");
    assert_eq!(answer(ep.ask(|reply| ProbeAsk::Count { reply })), Ok(1));
    assert_eq!(h.texts(), ["small"], "only the small text arrived");
    assert_eq!(echo_round_trip(&ep, &h, "after"), first, "same connection");
    assert_eq!(echo_round_trip(&other_ep, &h, "other after"), other_first);
}

/// (d) A message whose frame length field is exactly the limit gets through and is
/// answered; one byte more is refused by the sender, which names that size.
#[test]
fn message_exactly_at_max_size_gets_through() {
    let (server, h) = server();
    let (_client, ep) = client(&server, "client");
    // Length field = 9 (kind, id) + 1 (no sender) + 4 + 4 ("echo") + 2 (tag) + 4 + text.
    let overhead = FIXED_HEADER + 1 + string("echo").len() + 2 + 4;
    let at_limit = "a".repeat(MIB - overhead);
    let answered = answer(ep.ask(|reply| ProbeAsk::Echo {
        text: at_limit.clone(),
        reply,
    }));
    assert!(answered.as_ref() == Ok(&at_limit), "the answer differs");

    let over = "a".repeat(MIB - overhead + 1);
    let refused = answer(ep.ask(|reply| ProbeAsk::Echo { text: over, reply }));
    assert_eq!(
        refused,
        Err(RpcError::MessageTooLarge {
            size: MIB + 1,
            max: MIB
        })
    );
    echo_round_trip(&ep, &h, "still fine");

    // The receiver takes a raw frame whose length field is exactly the limit too.
    let mut raw = connect(&server);
    let raw_overhead = FIXED_HEADER + to_endpoint("echo", &[]).len() + 2 + 4;
    let text = "r".repeat(MIB - raw_overhead);
    let request = frame(REQUEST, 31, &to_endpoint("echo", &echo_body(&text)));
    assert_eq!(request.len(), 4 + MIB);
    raw.write_all(&request).expect("writes");
    let (kind, id, payload) = read_frame(&mut raw);
    assert_eq!((kind, id), (RESPONSE, 31));
    assert!(payload == string(&text), "the raw answer differs");
}

/// The receiver refuses what the sender refuses: a length field over
/// `ember.rpc.message.maxSize` closes the connection (`WIRE.md`: both sides apply the same
/// bound to the same field). 9 bytes over: the most an earlier decoder let through.
#[test]
fn receiver_refuses_a_length_field_just_over_max_size() {
    let (server, _h) = server();
    let mut raw = connect(&server);
    let raw_overhead = FIXED_HEADER + to_endpoint("echo", &[]).len() + 2 + 4;
    let text = "o".repeat(MIB + 9 - raw_overhead);
    let request = frame(REQUEST, 41, &to_endpoint("echo", &echo_body(&text)));
    assert_eq!(request.len(), 4 + MIB + 9, "length field = maxSize + 9");
    write_ignoring_close(&mut raw, &request);
    raw.set_nonblocking(false).expect("blocking");
    raw.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut first = [0u8; 5];
    match raw.read(&mut first) {
        // End of stream, or a reset: refused.
        Ok(0) => {}
        Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!(
            "the server did not close a connection whose frame's length field is maxSize + 9: \
             read gave {other:?}, first bytes {first:?} (kind 2 = it answered)"
        ),
    }
}

/// An answer counts only on the connection its request went out on. A stranger's connection
/// that sends a response with the id of an ask in flight elsewhere must not end that ask.
/// Request ids are `generation << 32 | slot`, easy to guess, so the receiver must check the
/// connection an answer came on, not only its id.
#[test]
fn a_response_on_another_connection_does_not_answer_an_ask() {
    let (server, _h) = server();
    let peer = Env::server_with("peer", conf());
    let (holder, held) = Probe::new();
    peer.setup_endpoint("holder", holder).unwrap();
    let to_holder = server
        .setup_endpoint_ref::<ProbeProtocol>(&peer.addr(), "holder")
        .unwrap();
    let handle = to_holder.ask(|reply| ProbeAsk::Hold { reply });
    wait_until("the peer holds the ask", DEADLINE, || held.held() == 1);

    // A stranger answers every id the server's first few asks can have had, then asks the
    // verifier something, so that once that answer is back the forgeries have been read.
    let mut stranger = connect(&server);
    let mut forged = Vec::new();
    for generation in 1..=4u64 {
        for slot in 0..4u64 {
            forged.extend_from_slice(&frame(RESPONSE, generation << 32 | slot, &string("forged")));
        }
    }
    stranger.write_all(&forged).expect("writes");
    let mut body = 0u16.to_be_bytes().to_vec();
    body.extend_from_slice(&string("echo"));
    stranger
        .write_all(&frame(REQUEST, 1, &to_endpoint("endpoint-verifier", &body)))
        .expect("writes");
    assert_eq!(read_frame(&mut stranger), (RESPONSE, 1, vec![1]));

    let handle = match handle.poll() {
        Ok(result) => panic!("the ask to the peer was ended by a stranger's frame: {result:?}"),
        Err(still_waiting) => still_waiting,
    };
    held.release_held("genuine");
    assert_eq!(answer(handle), Ok("genuine".to_string()));
}
