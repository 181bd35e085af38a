//! The caps that bound what a peer can make an env hold, over real TCP:
//!
//! - a peer that asks and never reads the answers: once `ember.rpc.outbox.maxBytes` wait
//!   for it, its connection closes;
//! - a flood of messages to a slow endpoint: past `ember.rpc.inbox.maxBytes` the flooding
//!   connection is no longer read (TCP pushes back), other peers are still served, and once
//!   the endpoint catches up every message arrives, in order;
//! - idle sockets: past `ember.rpc.io.maxConnections` an unauthenticated env refuses new
//!   connections at once, and an authenticated one closes the oldest unauthenticated socket
//!   to make room, so a real peer gets in while the flood is held open;
//! - running out of file descriptors (a child process under `ulimit -n`): the listener
//!   backs off and accepts again by itself once descriptors are free.

pub mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rpc_env::{keys, RpcAddress, RpcConf, RpcEnv, RpcEnvConfig, Threading};
use util::staller::{StallAsk, StallMessage, StallProtocol, Staller};
use util::{answer, echo, recording_relay, wait_until, Env, Probe, ProbeProtocol, DEADLINE};

const SECRET: &str = "an-ember-test-secret-of-32-bytes";

fn unauthenticated() -> RpcConf {
    RpcConf::new().with(keys::AUTHENTICATE, "false")
}

fn authenticated() -> RpcConf {
    RpcConf::new()
        .with(keys::AUTHENTICATE, "true")
        .with(keys::AUTHENTICATE_SECRET, SECRET)
}

fn socket_addr(address: &RpcAddress) -> SocketAddr {
    address.host_port().parse().expect("a loopback address")
}

#[test]
fn a_peer_that_asks_and_never_reads_is_closed_at_the_cap() {
    let server = Env::server_with(
        "never-read-server",
        unauthenticated().with(keys::OUTBOX_MAX_BYTES, "1m"),
    );
    let (probe, _h) = Probe::new();
    server.setup_endpoint("probe", probe).unwrap();
    // One real ask, recorded on its way: a 16 KiB echo.
    let (relay, recorded) = recording_relay(server.addr());
    let client =
        Env::create(RpcEnvConfig::client("never-read-recorder").with_conf(unauthenticated()));
    let payload = "x".repeat(16 * 1024);
    let echoed = answer(
        client
            .endpoint_ref_at::<ProbeProtocol>(&relay, "probe")
            .ask(echo(&payload)),
    );
    assert_eq!(echoed.unwrap().len(), payload.len());
    let ask = recorded.lock().unwrap().clone();

    // A raw socket replays it over and over and never reads an answer.
    let mut flooder = TcpStream::connect(socket_addr(&server.addr())).unwrap();
    flooder.set_write_timeout(Some(DEADLINE)).unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut sent = 0usize;
    let closed = loop {
        assert!(
            Instant::now() < deadline,
            "the server never closed the flooder"
        );
        match flooder.write_all(&ask) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            closed.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "{closed}"
    );
    assert_eq!(server.network_stats().outbox_overflows, 1);
    // The answers waiting when it closed were about 1 MiB (the cap) plus the socket
    // buffers: far fewer than the asks sent.
    eprintln!("{sent} asks of 16 KiB sent before the server closed the connection");
    // Other peers are served as before.
    assert_eq!(
        answer(
            client
                .endpoint_ref_at::<ProbeProtocol>(&server.addr(), "probe")
                .ask(echo("hi"))
        )
        .unwrap(),
        "hi"
    );
}

const PAYLOAD: usize = 1024;
/// 8 MiB of payload: 128 times the inbox cap below.
const MESSAGES: u64 = 8 * 1024;

#[test]
fn a_flood_to_a_slow_endpoint_pauses_reading_yet_every_message_arrives_in_order() {
    let server = Env::server_with(
        "slow-server",
        unauthenticated().with(keys::INBOX_MAX_BYTES, "64k"),
    );
    // On a loop of its own, so while it stalls the IO threads keep reading and its inbox
    // fills: the case the inbox cap is for.
    let (slow, stall) = Staller::new(Threading::Dedicated, PAYLOAD);
    server.setup_endpoint("slow", slow).unwrap();
    let (probe, _probe_handle) = Probe::new();
    server.setup_endpoint("probe", probe).unwrap();

    let flooder = Env::create(RpcEnvConfig::client("flooder").with_conf(unauthenticated()));
    let slow = flooder.endpoint_ref_at::<StallProtocol>(&server.addr(), "slow");
    let data = Bytes::from(vec![7u8; PAYLOAD]);
    for seq in 0..MESSAGES {
        slow.send(StallMessage::Numbered {
            seq,
            data: data.clone(),
        })
        .expect("queued");
    }
    wait_until("the endpoint to stall", DEADLINE, || stall.stalled());
    wait_until("reading the flooder to pause", DEADLINE, || {
        server.network_stats().read_pauses > 0
    });
    // Another peer is still served while the flooder waits.
    let other = Env::create(RpcEnvConfig::client("other").with_conf(unauthenticated()));
    let probe = other.endpoint_ref_at::<ProbeProtocol>(&server.addr(), "probe");
    assert_eq!(
        answer(probe.ask(echo("still served"))).unwrap(),
        "still served"
    );

    stall.open();
    let tally = answer(slow.ask(|reply| StallAsk::Tally { reply })).expect("tally");
    assert_eq!(tally, (MESSAGES, true), "every message, in order, once");
}

/// Opens `n` raw sockets to `addr` that each send `bytes` and then sit idle; those the
/// kernel could not even queue are left out.
fn idle_sockets(addr: SocketAddr, n: usize, bytes: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
            let _ = s.write_all(bytes);
            Some(s)
        })
        .collect()
}

#[test]
fn past_the_connection_cap_an_unauthenticated_env_refuses_new_connections_at_once() {
    let server = Env::server_with(
        "capped-plain",
        unauthenticated().with(keys::MAX_CONNECTIONS, "4"),
    );
    let held = idle_sockets(socket_addr(&server.addr()), 4, &[0, 0]);
    assert_eq!(held.len(), 4);
    let mut refused = TcpStream::connect(socket_addr(&server.addr())).unwrap();
    refused
        .set_read_timeout(Some(DEADLINE))
        .expect("a read timeout");
    let mut byte = [0u8; 1];
    // Closed by the server: end of stream (or a reset), never a timeout.
    match refused.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the fifth connection was kept: {other:?}"),
    }
    assert_eq!(server.network_stats().connections_refused, 1);
}

#[test]
fn an_authenticated_env_at_its_cap_makes_room_for_a_real_peer_while_a_flood_is_held_open() {
    let server = Env::server_with(
        "capped-auth",
        authenticated()
            .with(keys::MAX_CONNECTIONS, "16")
            .with(keys::AUTH_TIMEOUT, "60s"),
    );
    let (probe, _h) = Probe::new();
    server.setup_endpoint("probe", probe).unwrap();
    // Half a handshake message each: a length prefix and nothing more.
    let flood = idle_sockets(socket_addr(&server.addr()), 200, &[0]);
    assert!(flood.len() >= 100, "only {} sockets opened", flood.len());
    wait_until("the flood to fill the cap", DEADLINE, || {
        server.network_stats().auth_failures >= 100
    });
    let client = Env::create(RpcEnvConfig::client("real-peer").with_conf(authenticated()));
    let started = Instant::now();
    let probe = client.endpoint_ref_at::<ProbeProtocol>(&server.addr(), "probe");
    assert_eq!(answer(probe.ask(echo("in"))).unwrap(), "in");
    eprintln!(
        "a real peer was answered {:?} into a flood of {} idle sockets",
        started.elapsed(),
        flood.len()
    );
    assert_eq!(server.network_stats().connections_refused, 0);
    drop(flood);
}

const CHILD_VAR: &str = "EMBER_LIMITS_CHILD";

/// The child of the descriptor test: an unauthenticated env with a probe, run under a low
/// `ulimit -n`. Prints `PORT <n>`, serves until stdin closes, then prints its accept
/// failures.
#[test]
fn child_fd_server() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let env = RpcEnv::create(
        RpcEnvConfig::server("fd-child", "127.0.0.1", 0).with_conf(unauthenticated()),
    )
    .unwrap();
    let (probe, _h) = Probe::new();
    env.setup_endpoint("probe", probe).unwrap();
    println!("PORT {}", env.address().unwrap().port());
    std::io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    println!("ACCEPT_FAILURES {}", env.network_stats().accept_failures);
    std::io::stdout().flush().unwrap();
    env.shutdown();
    env.await_termination();
}

#[test]
fn out_of_descriptors_the_listener_accepts_again_by_itself_once_they_free_up() {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" --exact child_fd_server --nocapture --test-threads 1")
        .arg(&exe)
        .env(CHILD_VAR, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let port: u16 = read_tagged(&mut stdout, "PORT ").parse().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // More idle sockets than the child has descriptors: it accepts until it runs out.
    let flood = idle_sockets(addr, 100, &[0, 0]);
    assert!(flood.len() > 64, "only {} sockets opened", flood.len());
    drop(flood);

    // Every descriptor freed: a real peer is served without anyone restarting anything.
    let client = Env::create(RpcEnvConfig::client("after-the-flood").with_conf(unauthenticated()));
    let probe =
        client.endpoint_ref_at::<ProbeProtocol>(&RpcAddress::new("127.0.0.1", port), "probe");
    assert_eq!(answer(probe.ask(echo("back"))).unwrap(), "back");

    drop(child.stdin.take());
    let failures: u64 = read_tagged(&mut stdout, "ACCEPT_FAILURES ")
        .parse()
        .unwrap();
    assert!(failures > 0, "the child never ran out of descriptors");
    let _ = child.wait();
}

/// What follows `tag` on the first line of `out` that has it (the test harness may print
/// the test's name before it on the same line).
fn read_tagged(out: &mut impl std::io::BufRead, tag: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child exited before {tag}"
        );
        if let Some(at) = line.find(tag) {
            return line[at + tag.len()..].trim_end().to_string();
        }
    }
}
