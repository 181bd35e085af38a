//! Endpoint refs inside messages, ported from Spark's `RpcEnvSuite` "send a RpcEndpointRef",
//! and Spark's client mode: a client-mode env's ref sent to a server binds to the connection
//! it came on, and the server sends and asks back through it.

pub mod util;

use std::sync::mpsc;

use rpc_env::EndpointRef;
use util::registry::{Registered, Registry, RegistryAsk, RegistryProtocol};
use util::{answer, echo, text, Env, Event, Probe, ProbeAsk, ProbeProtocol, DEADLINE};

/// A server env with a registry, and a client-mode env with a probe `receiver` and a ref to
/// the registry.
struct Setup {
    server: Env,
    _client: Env,
    registry: EndpointRef<RegistryProtocol>,
    registered: mpsc::Receiver<Registered>,
    receiver: EndpointRef<ProbeProtocol>,
    receiver_h: util::ProbeHandle,
}

fn setup() -> Setup {
    let server = Env::server("server");
    let (registry, registered) = Registry::new();
    server.setup_endpoint("registry", registry).unwrap();
    let client = Env::client("client");
    let (probe, receiver_h) = Probe::new();
    let receiver = client.setup_endpoint("receiver", probe).unwrap();
    let registry = client
        .setup_endpoint_ref::<RegistryProtocol>(&server.addr(), "registry")
        .unwrap();
    Setup {
        server,
        _client: client,
        registry,
        registered,
        receiver,
        receiver_h,
    }
}

#[test]
fn a_ref_sent_as_a_local_reply_works() {
    let env = Env::server("local");
    let (probe, _h) = Probe::new();
    let ep = env.setup_endpoint("send-ref", probe).unwrap();
    let that = answer(ep.ask(|reply| ProbeAsk::SelfRef { reply })).unwrap();
    assert_eq!(that, ep);
    assert_eq!(answer(that.ask(echo("Echo"))), Ok("Echo".to_string()));
}

#[test]
fn a_ref_sent_as_a_remote_reply_works() {
    let server = Env::server("server");
    let (probe, h) = Probe::new();
    server.setup_endpoint("send-ref", probe).unwrap();
    let client = Env::client("client");
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "send-ref")
        .unwrap();
    let that = answer(ep.ask(|reply| ProbeAsk::SelfRef { reply })).unwrap();
    assert_eq!(that, ep);
    assert_eq!(
        that.address().to_string(),
        format!("ember://send-ref@{}", server.addr())
    );
    assert_eq!(answer(that.ask(echo("Echo"))), Ok("Echo".to_string()));
    that.send(text("through the decoded ref")).unwrap();
    h.wait_for("the message through the decoded ref", |e| {
        matches!(e, Event::Text { .. })
    });
}

#[test]
fn a_server_sends_and_asks_back_through_a_client_mode_ref() {
    let s = setup();
    let registered = s.registry.ask(|reply| RegistryAsk::Register {
        ep: s.receiver.clone(),
        reply,
    });
    assert_eq!(answer(registered), Ok("okay".to_string()));
    // The registry's send from inside its handler went back over the client's connection.
    s.receiver_h.wait_for_event(&Event::Text {
        text: "welcome".into(),
        sender: Some(s.server.addr()),
    });

    let (on_server, _) = s.registered.recv_timeout(DEADLINE).expect("registered");
    assert_eq!(on_server.address().to_string(), "ember-client://receiver");
    assert_eq!(on_server.rpc_address(), None);
    assert_eq!(on_server, s.receiver);
    assert_eq!(answer(on_server.ask(echo("back"))), Ok("back".to_string()));
    s.receiver_h.wait_for_event(&Event::Asked {
        what: "Echo",
        sender: Some(s.server.addr()),
    });
    on_server.send(text("again")).unwrap();
    s.receiver_h.wait_for(
        "the second send",
        |e| matches!(e, Event::Text { text, .. } if text == "again"),
    );
}

#[test]
fn a_client_mode_env_gets_its_own_ref_back_and_it_still_reaches_the_endpoint() {
    // Spark: "A client-mode env sees its own refs as local" (`NettyRpcEnv`'s client mode). A ref that names an
    // endpoint of this client-mode env can only mean that endpoint: no other env can serve
    // it, certainly not the server it came back from.
    let s = setup();
    let bounced = s.registry.ask(|reply| RegistryAsk::Bounce {
        ep: s.receiver.clone(),
        reply,
    });
    let back = answer(bounced).expect("the ref comes back");
    assert_eq!(back, s.receiver);
    assert_eq!(answer(back.ask(echo("home"))), Ok("home".to_string()));
    back.send(text("home again")).unwrap();
    s.receiver_h.wait_for(
        "the message through the bounced ref",
        |e| matches!(e, Event::Text { text, .. } if text == "home again"),
    );
}
