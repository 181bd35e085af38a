//! Client mode (Spark's `NettyRpcEnv` with `clientMode = true`; Spark's executors run this
//! way):
//! a client-mode env has no address and no listener, its refs are `ember-client://name`,
//! and they are reachable only over the connection they were sent on. Once that connection
//! is gone, messages to such a ref fail, and asks waiting on it fail at once.

pub mod util;

use std::time::Duration;

use rpc_env::{keys, RpcConf, RpcEnvConfig, RpcError, RpcTimeout};
use util::registry::{Registered, Registry, RegistryAsk, RegistryProtocol};
use util::{answer, echo, text, wait_until, Env, Event, Probe, ProbeAsk, DEADLINE};

/// Far longer than any deadline here: these asks must end some other way.
fn long() -> RpcTimeout {
    RpcTimeout::new(Duration::from_secs(600), "ember.rpc.askTimeout")
}

/// A server with a registry; a client-mode env with a probe `receiver` registered there.
/// Returns the server, the client, the server's view of the receiver, and the probe.
fn registered_receiver() -> (Env, Env, Registered, util::ProbeHandle) {
    let server = Env::server("server");
    let (registry, registered) = Registry::new();
    server.setup_endpoint("registry", registry).unwrap();
    let client = Env::client("client");
    let (probe, h) = Probe::new();
    let receiver = client.setup_endpoint("receiver", probe).unwrap();
    let registry = client
        .setup_endpoint_ref::<RegistryProtocol>(&server.addr(), "registry")
        .unwrap();
    let ask = registry.ask(|reply| RegistryAsk::Register {
        ep: receiver,
        reply,
    });
    assert_eq!(answer(ask), Ok("okay".to_string()));
    let on_server = registered.recv_timeout(DEADLINE).expect("registered");
    (server, client, on_server, h)
}

#[test]
fn a_client_mode_env_has_no_address_and_client_refs() {
    let client = Env::client("client");
    assert_eq!(client.address(), None);
    let (probe, _h) = Probe::new();
    let ep = client.setup_endpoint("receiver", probe).unwrap();
    assert_eq!(ep.address().to_string(), "ember-client://receiver");
    assert!(ep.address().is_client());
    assert_eq!(ep.rpc_address(), None);
    assert_eq!(answer(ep.ask(echo("local"))), Ok("local".to_string()));
    ep.send(text("local")).unwrap();
}

#[test]
fn a_client_mode_endpoint_cannot_be_looked_up() {
    let client = Env::client("client");
    let (probe, _h) = Probe::new();
    client.setup_endpoint("receiver", probe).unwrap();
    let server = Env::server("server");
    let result = server.setup_endpoint_ref_by_uri::<util::ProbeProtocol>("ember-client://receiver");
    let Err(RpcError::Address(error)) = result else {
        panic!("expected an address error, got {result:?}");
    };
    assert_eq!(
        error.to_string(),
        "Invalid Ember URL: ember-client://receiver"
    );
}

#[test]
fn the_server_knows_a_client_mode_peer_by_its_socket_address() {
    let (server, _client, (on_server, sender), _h) = registered_receiver();
    assert_eq!(on_server.address().to_string(), "ember-client://receiver");
    assert_eq!(sender.host(), "127.0.0.1");
    assert_ne!(sender, server.addr());
}

#[test]
fn messages_to_a_client_ref_fail_once_its_connection_is_gone() {
    let (server, client, (on_server, _), _h) = registered_receiver();
    let (watcher, watcher_h) = Probe::new();
    server.setup_endpoint("watcher", watcher).unwrap();
    client.stop_now();
    watcher_h.wait_for("the server sees the client go", |e| {
        matches!(e, Event::Disconnected(_))
    });
    let sent = on_server.send(text("too late"));
    assert!(
        matches!(sent, Err(RpcError::ConnectionClosed { .. })),
        "{sent:?}"
    );
    let asked = answer(on_server.ask_with_rpc_timeout(echo("too late"), &long()));
    assert!(
        matches!(asked, Err(RpcError::ConnectionClosed { .. })),
        "{asked:?}"
    );
}

#[test]
fn an_ask_waiting_on_a_client_fails_at_once_when_the_client_goes() {
    let (_server, client, (on_server, sender), h) = registered_receiver();
    let pending = on_server.ask_with_rpc_timeout(|reply| ProbeAsk::Hold { reply }, &long());
    wait_until("the client holds the reply", DEADLINE, || h.held() == 1);
    client.stop_now();
    let error = answer(pending).unwrap_err();
    assert_eq!(
        error,
        RpcError::ConnectionClosed {
            peer: sender.host_port()
        }
    );
}

#[test]
fn a_client_ask_waiting_on_the_server_fails_at_once_when_the_server_goes() {
    let server = Env::server("server");
    let (probe, h) = Probe::new();
    server.setup_endpoint("holder", probe).unwrap();
    let client = Env::client("client");
    let ep = client
        .setup_endpoint_ref::<util::ProbeProtocol>(&server.addr(), "holder")
        .unwrap();
    let pending = ep.ask_with_rpc_timeout(|reply| ProbeAsk::Hold { reply }, &long());
    wait_until("the server holds the reply", DEADLINE, || h.held() == 1);
    server.stop_now();
    let error = answer(pending).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("Connection from {} closed", server.addr())
    );
}

#[test]
fn a_client_reconnects_to_a_server_that_comes_back_on_its_port() {
    let server = Env::server("server");
    let port = server.addr().port();
    let (probe, _h) = Probe::new();
    server.setup_endpoint("echo", probe).unwrap();
    let client = Env::client("client");
    let (watcher, watcher_h) = Probe::new();
    client.setup_endpoint("watcher", watcher).unwrap();
    let ep = client
        .setup_endpoint_ref::<util::ProbeProtocol>(&server.addr(), "echo")
        .unwrap();
    assert_eq!(answer(ep.ask(echo("first"))), Ok("first".to_string()));
    server.stop_now();
    watcher_h.wait_for_event(&Event::Disconnected(server.addr()));

    let back = Env::create(
        RpcEnvConfig::server("server-again", "127.0.0.1", port)
            .with_conf(RpcConf::new().with(keys::PORT_MAX_RETRIES, "0")),
    );
    let (probe, _h) = Probe::new();
    back.setup_endpoint("echo", probe).unwrap();
    // The same ref: a fresh connection is made for it.
    assert_eq!(answer(ep.ask(echo("again"))), Ok("again".to_string()));
    wait_until("the client has connected twice", DEADLINE, || {
        watcher_h.count(|e| *e == Event::Connected(back.addr())) == 2
    });
}
