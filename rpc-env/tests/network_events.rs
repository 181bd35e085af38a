//! Network events, ported from Spark's `RpcEnvSuite`:
//!
//! - "network events in sever RpcEnv when another RpcEnv is in server mode"
//! - "network events in sever RpcEnv when another RpcEnv is in client mode"
//! - "network events in client RpcEnv when another RpcEnv is in server mode"
//! - "SPARK-14699: RpcEnv.shutdown should not fire onDisconnected events"
//!
//! plus `on_network_error`: a malformed frame closes that connection only, reporting an
//! error and a disconnect for the peer's socket address; and a peer that sends a message and
//! closes at once is seen to go.

pub mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use rpc_env::{encode_to_bytes, RpcAddress, RpcEnv};
use util::{answer, echo, text, Env, Event, Probe, ProbeHandle, ProbeProtocol, DEADLINE};

/// Registers a probe recording network events in `env`.
fn recorder(env: &RpcEnv) -> ProbeHandle {
    let (probe, h) = Probe::new();
    env.setup_endpoint("network-events", probe).unwrap();
    h
}

/// The sender the probe saw on its first `Text`.
fn first_sender(h: &ProbeHandle) -> RpcAddress {
    h.events()
        .into_iter()
        .find_map(|e| match e {
            Event::Text {
                sender: Some(s), ..
            } => Some(s),
            _ => None,
        })
        .expect("a message with a sender")
}

#[test]
fn a_server_sees_another_server_connect_and_go() {
    let server1 = Env::server("server1");
    let server2 = Env::server("server2");
    let events1 = recorder(&server1);
    let events2 = recorder(&server2);
    let ep = server1
        .setup_endpoint_ref::<ProbeProtocol>(&server2.addr(), "network-events")
        .unwrap();
    ep.send(text("hello")).unwrap();
    events1.wait_for_event(&Event::Connected(server2.addr()));
    // The accepting side learns the connecting server's advertised address from its header.
    events2.wait_for_event(&Event::Connected(server1.addr()));
    // Everything sent has been read: closing with unread bytes would reset the connection.
    events2.wait_for("hello arrives", |e| matches!(e, Event::Text { .. }));

    server2.stop_now();
    events1.wait_for_event(&Event::Disconnected(server2.addr()));
    assert_eq!(events1.count(|e| matches!(e, Event::NetworkError(_))), 0);
}

#[test]
fn the_accepting_server_sees_the_peer_go_by_socket_and_by_advertised_address() {
    let server1 = Env::server("server1");
    let server2 = Env::server("server2");
    let events2 = recorder(&server2);
    let ep = server1
        .setup_endpoint_ref::<ProbeProtocol>(&server2.addr(), "network-events")
        .unwrap();
    ep.send(text("hello")).unwrap();
    events2.wait_for_event(&Event::Connected(server1.addr()));
    server1.stop_now();
    events2.wait_for_event(&Event::Disconnected(server1.addr()));
    events2.wait_for(
        "a disconnect for the socket address too",
        |e| matches!(e, Event::Disconnected(a) if *a != server1.addr()),
    );
}

#[test]
fn a_server_sees_a_client_mode_env_connect_and_go() {
    let server = Env::server("server");
    let events = recorder(&server);
    let client = Env::client("client");
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "network-events")
        .unwrap();
    ep.send(text("hello")).unwrap();
    events.wait_for("hello arrives", |e| matches!(e, Event::Text { .. }));
    // A client-mode peer is known by its socket address, in events as in messages.
    let socket = first_sender(&events);
    events.wait_for_event(&Event::Connected(socket.clone()));

    client.stop_now();
    events.wait_for_event(&Event::Disconnected(socket));
}

#[test]
fn a_client_mode_env_sees_the_server_connect_and_go() {
    let server = Env::server("server");
    let (probe, _server_h) = Probe::new();
    server.setup_endpoint("network-events", probe).unwrap();
    let client = Env::client("client");
    let events = recorder(&client);
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "network-events")
        .unwrap();
    ep.send(text("hello")).unwrap();
    events.wait_for_event(&Event::Connected(server.addr()));

    server.stop_now();
    events.wait_for_event(&Event::Disconnected(server.addr()));
}

#[test]
fn shutdown_fires_no_disconnect_at_its_own_endpoints() {
    let env = Env::server("env");
    let (echo_probe, echo_h) = Probe::new();
    env.setup_endpoint("echo", echo_probe).unwrap();

    let another = Env::server("another");
    let (mock, mock_h) = Probe::new();
    another.setup_endpoint("mock", mock).unwrap();
    let ep = another
        .setup_endpoint_ref::<ProbeProtocol>(&env.addr(), "echo")
        .unwrap();
    assert_eq!(answer(ep.ask(echo("hello"))), Ok("hello".to_string()));
    mock_h.wait_for_event(&Event::Connected(env.addr()));

    another.stop_now();
    // Stopping works by name, even through a ref of the env that is gone.
    env.stop(&ep);
    echo_h.wait_for_event(&Event::Stop);

    // `stop_now` joined every thread of `another`: nothing more can reach the mock.
    assert!(mock_h.has(&Event::Stop), "on_stop ran");
    assert_eq!(
        mock_h.count(|e| matches!(e, Event::Disconnected(_) | Event::NetworkError(_))),
        0,
        "{:?}",
        mock_h.events()
    );
}

/// Writes `bytes` on a raw connection to `server` and checks that the server reports a
/// network error and a disconnect for that socket, and closes it.
fn malformed_frame_closes_the_connection(bytes: &[u8]) {
    let server = Env::server("server");
    let events = recorder(&server);
    let client = Env::client("bystander");
    let bystander = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "network-events")
        .unwrap();

    let mut raw = TcpStream::connect(server.addr().host_port()).unwrap();
    let local = raw.local_addr().unwrap();
    let socket = RpcAddress::new(&local.ip().to_string(), local.port());
    events.wait_for_event(&Event::Connected(socket.clone()));
    raw.write_all(bytes).unwrap();
    events.wait_for_event(&Event::NetworkError(socket.clone()));
    events.wait_for_event(&Event::Disconnected(socket));

    raw.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 64];
    let read = raw.read(&mut buf);
    assert!(
        matches!(read, Ok(0))
            || read
                .is_err_and(|e| !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "the server closed the connection"
    );
    // Other connections are untouched.
    assert_eq!(answer(bystander.ask(echo("fine"))), Ok("fine".to_string()));
}

#[test]
fn an_unknown_frame_kind_is_a_network_error_of_that_connection_only() {
    // Length 9 (just the fixed header), kind 99, request id 0.
    let mut frame = vec![0, 0, 0, 9, 99];
    frame.extend_from_slice(&[0; 8]);
    malformed_frame_closes_the_connection(&frame);
}

#[test]
fn a_too_large_frame_is_a_network_error_of_that_connection_only() {
    malformed_frame_closes_the_connection(&[0x7f, 0xff, 0xff, 0xff, 1]);
}

/// A one-way frame (`WIRE.md`) carrying `msg` to `receiver`, with no sender address (as a
/// client-mode env sends): `u32` length, kind 4, request id 0, header, body.
fn one_way_frame(receiver: &str, msg: &util::ProbeMessage) -> Vec<u8> {
    let mut payload = encode_to_bytes(&None::<RpcAddress>).to_vec();
    payload.extend_from_slice(&encode_to_bytes(receiver));
    payload.extend_from_slice(&encode_to_bytes(msg));
    let mut frame = ((9 + payload.len()) as u32).to_be_bytes().to_vec();
    frame.push(4);
    frame.extend_from_slice(&0u64.to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

#[test]
fn a_peer_that_sends_and_closes_at_once_is_seen_to_go() {
    let server = Env::server("server");
    let events = recorder(&server);
    // Each peer's message and close reach the server together, often before it even
    // accepts; many peers, so that whatever the timing some of them do.
    let peers: Vec<(TcpStream, RpcAddress)> = (0..50)
        .map(|i| {
            let mut raw = TcpStream::connect(server.addr().host_port()).unwrap();
            let frame = one_way_frame("network-events", &text(&format!("bye {i}")));
            raw.write_all(&frame).unwrap();
            raw.shutdown(std::net::Shutdown::Write).unwrap();
            let local = raw.local_addr().unwrap();
            (raw, RpcAddress::new(&local.ip().to_string(), local.port()))
        })
        .collect();
    for (i, (raw, socket)) in peers.into_iter().enumerate() {
        let mut raw = raw;
        events.wait_for_event(&Event::Text {
            text: format!("bye {i}"),
            sender: Some(socket.clone()),
        });
        events.wait_for_event(&Event::Disconnected(socket));
        raw.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buf = [0u8; 16];
        assert!(
            matches!(raw.read(&mut buf), Ok(0)),
            "the server closed its side"
        );
    }
}

#[test]
fn a_client_mode_env_that_sends_and_leaves_at_once_is_seen_to_go() {
    let server = Env::server("server");
    let events = recorder(&server);
    for _ in 0..20 {
        let before = events.count(|e| matches!(e, Event::Disconnected(_)));
        let client = Env::client("client");
        let ep = client
            .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "network-events")
            .unwrap();
        ep.send(text("bye")).unwrap();
        client.stop_now();
        util::wait_until("the server sees the client go", DEADLINE, || {
            events.count(|e| matches!(e, Event::Disconnected(_))) > before
        });
    }
}

#[test]
fn events_are_ordered_with_the_messages_of_their_connection() {
    let server = Env::server("server");
    let events = recorder(&server);
    let client = Env::client("client");
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "network-events")
        .unwrap();
    for i in 0..100 {
        ep.send(text(&i.to_string())).unwrap();
    }
    client.stop_now();
    events.wait_for("the client goes", |e| matches!(e, Event::Disconnected(_)));
    let socket = first_sender(&events);
    let all = events.events();
    let at = |wanted: &Event| all.iter().position(|e| e == wanted).expect("recorded");
    let connected = at(&Event::Connected(socket.clone()));
    let disconnected = at(&Event::Disconnected(socket.clone()));
    let first = at(&Event::Text {
        text: "0".into(),
        sender: Some(socket.clone()),
    });
    let last = at(&Event::Text {
        text: "99".into(),
        sender: Some(socket),
    });
    assert!(
        connected < first && first < last && last < disconnected,
        "{all:?}"
    );
}
