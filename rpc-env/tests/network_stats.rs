//! `RpcEnv::network_stats` counts real traffic: the bytes and frames a peer sent arrive in
//! the receiver's counters and leave through the sender's, connections are counted while
//! open, and messages waiting for a busy endpoint show as queued until it handles them.

pub mod util;

use rpc_env::{keys, RpcConf, RpcEnvConfig};
use util::{text, wait_until, Env, Probe, ProbeAsk, ProbeProtocol, DEADLINE};

#[test]
fn traffic_connections_and_queued_messages_are_counted() {
    let conf = RpcConf::new().with(keys::AUTHENTICATE, "false");
    let server = Env::server_with("stats-server", conf.clone());
    let (probe, handle) = Probe::new();
    server.setup_endpoint("probe", probe).expect("registered");
    let client = Env::create(RpcEnvConfig::client("stats-client").with_conf(conf));
    let before = (server.network_stats(), client.network_stats());
    assert_eq!((before.0.bytes_read, before.0.frames_read), (0, 0));
    assert_eq!(before.1.bytes_written, 0);

    // One ask that blocks the probe's handler, then messages that queue behind it.
    let probe_ref = client.endpoint_ref_at::<ProbeProtocol>(&server.addr(), "probe");
    let blocked = probe_ref.ask(|reply| ProbeAsk::Block {
        text: "done".to_string(),
        reply,
    });
    wait_until("the handler to block", DEADLINE, || handle.blocked() == 1);
    const MESSAGES: u64 = 1000;
    let body = "x".repeat(1000);
    for _ in 0..MESSAGES {
        probe_ref.send(text(&body)).expect("queued");
    }
    wait_until(
        "every message to wait in the probe's inbox",
        DEADLINE,
        || server.network_stats().inbox_messages == MESSAGES,
    );
    let server_stats = server.network_stats();
    let client_stats = client.network_stats();
    assert_eq!(server_stats.frames_read, MESSAGES + 1);
    assert_eq!(
        client_stats.frames_written, server_stats.frames_read,
        "every frame written arrived"
    );
    assert!(
        server_stats.bytes_read >= MESSAGES * 1000,
        "{server_stats:?}"
    );
    assert!(
        client_stats.bytes_written >= server_stats.bytes_read,
        "what arrived was written: {client_stats:?} {server_stats:?}"
    );
    assert_eq!(server_stats.open_connections, 1);
    assert_eq!(client_stats.open_connections, 1);

    handle.open_latch();
    assert_eq!(util::answer(blocked).expect("answered"), "done");
    wait_until("the inbox to drain", DEADLINE, || {
        server.network_stats().inbox_messages == 0
    });
    let client_stats = client.network_stats();
    assert_eq!(client_stats.frames_read, 1, "the one answer");
    let server_stats = server.network_stats();
    assert!(server_stats.bytes_written > 0);
    assert_eq!(server_stats.frames_written, 1, "the one answer");

    client.shutdown();
    wait_until("the server to see the connection close", DEADLINE, || {
        server.network_stats().open_connections == 0
    });
}
