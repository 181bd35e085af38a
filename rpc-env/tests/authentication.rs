//! Authenticated and encrypted connections over real TCP: the Noise handshake keyed by
//! `ember.authenticate.secret` comes before any frame, both ways.
//!
//! Envs that share the secret talk as before (server to server, client mode, encrypted or
//! not); a wrong, missing or one-sided secret fails the asks with "Authentication failed"
//! and delivers nothing; a raw socket that never completes the handshake is closed at the
//! deadline; an idle flood of handshakes does not lock a real peer out; a relay shows the
//! bytes are encrypted, and a flipped byte closes the connection instead of being read.

pub mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rpc_env::{keys, RpcAddress, RpcConf, RpcEnvConfig, RpcError};
use util::{
    answer, echo, text, wait_until, Env, Event, Probe, ProbeHandle, ProbeProtocol, DEADLINE,
};

const SECRET: &str = "an-ember-test-secret-of-32-bytes";
const OTHER: &str = "another-test-secret-of-32-bytes!";

fn auth(secret: &str) -> RpcConf {
    RpcConf::new()
        .with(keys::AUTHENTICATE, "true")
        .with(keys::AUTHENTICATE_SECRET, secret)
        .with(keys::AUTH_TIMEOUT, "2s")
}

fn server(name: &str, conf: RpcConf) -> (Env, ProbeHandle) {
    let env = Env::server_with(name, conf);
    let (probe, h) = Probe::new();
    env.setup_endpoint("probe", probe).unwrap();
    (env, h)
}

fn client(name: &str, conf: RpcConf) -> Env {
    Env::create(RpcEnvConfig::client(name).with_conf(conf))
}

/// An ask to `server`'s probe from `from`, by address (no lookup: the ask itself is what
/// meets the handshake).
fn ask_probe(from: &Env, server: &RpcAddress, what: &str) -> Result<String, RpcError> {
    let ep = from.endpoint_ref_at::<ProbeProtocol>(server, "probe");
    answer(ep.ask(echo(what)))
}

fn is_auth_failure(e: &RpcError) -> bool {
    matches!(e, RpcError::AuthenticationFailed { .. })
        && e.to_string().contains("Authentication failed")
}

#[test]
fn envs_that_share_the_secret_talk_and_know_each_other_by_listen_address() {
    let (s1, h1) = server("auth-s1", auth(SECRET));
    let (s2, h2) = server("auth-s2", auth(SECRET));
    assert_eq!(ask_probe(&s1, &s2.addr(), "hi").unwrap(), "hi");
    // The accepting side learns the connecting env's listen address from the handshake.
    h2.wait_for_event(&Event::Connected(s1.addr()));
    let asked = h2.events().into_iter().find_map(|e| match e {
        Event::Asked { sender, .. } => sender,
        _ => None,
    });
    assert_eq!(asked, Some(s1.addr()));
    // And answers back over the connection it was asked on, or a new one of its own.
    assert_eq!(ask_probe(&s2, &s1.addr(), "back").unwrap(), "back");
    h1.wait_for_event(&Event::Connected(s2.addr()));
    // Lookups go through the verifier, which is behind the handshake too.
    let ep = s1
        .setup_endpoint_ref::<ProbeProtocol>(&s2.addr(), "probe")
        .unwrap();
    ep.send(text("one-way")).unwrap();
    h2.wait_for(
        "the one-way message",
        |e| matches!(e, Event::Text { text, .. } if text == "one-way"),
    );
}

#[test]
fn a_client_mode_env_with_the_secret_is_answered() {
    let (s, h) = server("auth-server", auth(SECRET));
    let c = client("auth-client", auth(SECRET));
    for i in 0..50 {
        let what = format!("ask-{i}");
        assert_eq!(ask_probe(&c, &s.addr(), &what).unwrap(), what);
    }
    assert_eq!(h.count(|e| matches!(e, Event::Asked { .. })), 50);
    // Without encryption (authenticated at connect time only) it works the same.
    let plain = |s: &str| auth(s).with(keys::CRYPTO_ENABLED, "false");
    let (s, _h) = server("auth-server-plain", plain(SECRET));
    let c = client("auth-client-plain", plain(SECRET));
    assert_eq!(ask_probe(&c, &s.addr(), "plain").unwrap(), "plain");
}

#[test]
fn a_wrong_secret_fails_the_ask_and_delivers_nothing() {
    let (s, h) = server("auth-right", auth(SECRET));
    let c = client("auth-wrong", auth(OTHER));
    let started = Instant::now();
    let e = ask_probe(&c, &s.addr(), "never").unwrap_err();
    assert!(is_auth_failure(&e), "{e}");
    assert!(e.to_string().contains(keys::AUTHENTICATE_SECRET), "{e}");
    // The responder closes at once on a bad message 1: no need to wait for the deadline.
    assert!(started.elapsed() < Duration::from_secs(2), "{e}");
    let wrong_server = Env::server_with("auth-wrong-server", auth(OTHER));
    let e = ask_probe(&wrong_server, &s.addr(), "never").unwrap_err();
    assert!(is_auth_failure(&e), "{e}");
    assert!(
        !h.events().iter().any(|e| matches!(
            e,
            Event::Asked { .. } | Event::Text { .. } | Event::Connected(_)
        )),
        "nothing reached the endpoint: {:?}",
        h.events()
    );
    // The env is fine for those who have the secret.
    let good = client("auth-good", auth(SECRET));
    assert_eq!(ask_probe(&good, &s.addr(), "yes").unwrap(), "yes");
}

#[test]
fn one_sided_authentication_fails_both_ways() {
    // The server authenticates, the client does not: its frames are no handshake.
    let (s, h) = server("auth-only-server", auth(SECRET));
    let c = Env::client("no-auth-client");
    let e = ask_probe(&c, &s.addr(), "plain").unwrap_err();
    assert!(
        matches!(e, RpcError::ConnectionClosed { .. }),
        "the server hangs up: {e}"
    );
    assert!(h.events().iter().all(|e| !matches!(e, Event::Asked { .. })));
    // The client authenticates, the server does not: no handshake reply ever comes, and the
    // deadline ends the wait with the cause.
    let (plain_server, plain_h) = server("no-auth-server", RpcConf::new());
    let c = client("auth-only-client", auth(SECRET));
    let started = Instant::now();
    let e = ask_probe(&c, &plain_server.addr(), "never").unwrap_err();
    assert!(is_auth_failure(&e), "{e}");
    assert!(e.to_string().contains(keys::AUTH_TIMEOUT), "{e}");
    assert!(started.elapsed() >= Duration::from_secs(1), "{e}");
    assert!(plain_h
        .events()
        .iter()
        .all(|e| !matches!(e, Event::Asked { .. })));
}

#[test]
fn a_raw_socket_that_does_not_handshake_is_closed_at_the_deadline() {
    let (s, h) = server("auth-deadline", auth(SECRET).with(keys::AUTH_TIMEOUT, "1s"));
    let port = s.addr().port();
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Half a handshake message: the server waits for the rest, but only until the deadline.
    idle.write_all(&[0, 48, 1, 2, 3]).unwrap();
    idle.set_read_timeout(Some(DEADLINE)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = match idle.read(&mut buf) {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => 0,
        Err(e) => panic!("the server should close the socket: {e}"),
    };
    assert_eq!(n, 0, "closed without an answer");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < DEADLINE,
        "{waited:?}"
    );
    // A plaintext frame from a raw socket is refused at once and reaches nobody.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let frame = [
        0u8, 0, 0, 20, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, b'p', b'r',
    ];
    raw.write_all(&frame).unwrap();
    raw.set_read_timeout(Some(DEADLINE)).unwrap();
    assert!(matches!(raw.read(&mut buf), Ok(0) | Err(_)));
    assert!(h.events().iter().all(|e| matches!(e, Event::Start)));
}

#[test]
fn idle_handshakes_do_not_lock_a_real_peer_out() {
    let (s, _h) = server("auth-flood", auth(SECRET).with(keys::AUTH_TIMEOUT, "60s"));
    let port = s.addr().port();
    // More idle connections than there are handshake slots, each holding one open.
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let c = client("auth-flood-client", auth(SECRET));
    assert_eq!(ask_probe(&c, &s.addr(), "through").unwrap(), "through");
    // The oldest idle ones were closed to make room, long before their deadline.
    let mut first = idle.into_iter().next().unwrap();
    first.set_read_timeout(Some(DEADLINE)).unwrap();
    assert!(matches!(first.read(&mut [0u8; 8]), Ok(0) | Err(_)));
}

/// What a relay direction records, and the flag that makes it flip a byte.
type Tap = (Arc<Mutex<Vec<u8>>>, Arc<AtomicBool>);

/// A TCP relay between a client and `target` that records what passes from the client,
/// and flips one byte of it once `flip` is set.
struct Relay {
    port: u16,
    seen: Arc<Mutex<Vec<u8>>>,
    flip: Arc<AtomicBool>,
}

impl Relay {
    fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let flip = Arc::new(AtomicBool::new(false));
        let (seen2, flip2) = (Arc::clone(&seen), Arc::clone(&flip));
        thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { return };
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)) else {
                    return;
                };
                let (seen, flip) = (Arc::clone(&seen2), Arc::clone(&flip2));
                let (in2, out2) = (inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                thread::spawn(move || pipe(inbound, outbound, Some((seen, flip))));
                thread::spawn(move || pipe(out2, in2, None));
            }
        });
        Relay { port, seen, flip }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, record: Option<Tap>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((seen, flip)) = &record {
            seen.lock().unwrap().extend_from_slice(&buf[..n]);
            if flip.swap(false, Ordering::SeqCst) {
                buf[n - 1] ^= 0x40;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

#[test]
fn traffic_is_encrypted_and_a_flipped_byte_closes_the_connection() {
    const MARKER: &str = "MARKER-7f3a-visible-in-plaintext";
    let (s, h) = server("auth-relay", auth(SECRET));
    let relay = Relay::start(s.addr().port());
    let via = RpcAddress::new("127.0.0.1", relay.port);
    let c = client("auth-relay-client", auth(SECRET));
    assert_eq!(ask_probe(&c, &via, MARKER).unwrap(), MARKER);
    let seen = relay.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        !seen.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "the marker must not cross the wire in the clear"
    );
    // A byte flipped on the way: the record does not open, the connection closes, and the
    // message is never delivered.
    relay.flip.store(true, Ordering::SeqCst);
    let e = ask_probe(&c, &via, "tampered").unwrap_err();
    assert!(matches!(e, RpcError::ConnectionClosed { .. }), "{e}");
    assert_eq!(h.count(|e| matches!(e, Event::Asked { .. })), 1);
    wait_until("the server saw the bad record", DEADLINE, || {
        h.count(|e| matches!(e, Event::NetworkError(_))) >= 1
    });

    // Without encryption the marker is visible: that is what the setting trades.
    let plain = auth(SECRET).with(keys::CRYPTO_ENABLED, "false");
    let (s, _h) = server("plain-relay", plain.clone());
    let relay = Relay::start(s.addr().port());
    let c = client("plain-relay-client", plain);
    let via = RpcAddress::new("127.0.0.1", relay.port);
    assert_eq!(ask_probe(&c, &via, MARKER).unwrap(), MARKER);
    let seen = relay.seen.lock().unwrap().clone();
    assert!(seen.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));
}
