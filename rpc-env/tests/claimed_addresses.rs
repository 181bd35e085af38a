//! Network events are attributed to the connection they happened on, never to an address a
//! frame claimed: a raw socket that replays another process's frames (naming that process
//! as their sender) and hangs up does not make an endpoint believe that process went away.
//! Only the first live connection that names a listen address speaks for it in events.

pub mod util;

use std::io::Write;
use std::net::TcpStream;

use rpc_env::{keys, RpcAddress, RpcConf, RpcEnvConfig};
use util::{recording_relay, text, wait_until, Env, Event, Probe, ProbeProtocol, DEADLINE};

#[test]
fn a_replayed_sender_that_hangs_up_does_not_disconnect_the_real_one() {
    let plain = || RpcConf::new().with(keys::AUTHENTICATE, "false");
    let server = Env::server_with("claims-server", plain());
    let (probe, events) = Probe::new();
    server.setup_endpoint("probe", probe).unwrap();
    let real = Env::create(RpcEnvConfig::server("claims-real", "127.0.0.1", 0).with_conf(plain()));
    let (relay, recorded) = recording_relay(server.addr());
    real.endpoint_ref_at::<ProbeProtocol>(&relay, "probe")
        .send(text("from the real one"))
        .unwrap();
    events.wait_for(
        "the real message",
        |e| matches!(e, Event::Text { text, .. } if text == "from the real one"),
    );
    events.wait_for_event(&Event::Connected(real.addr()));

    // The impostor replays those bytes, naming the real env as sender, then hangs up.
    let bytes = recorded.lock().unwrap().clone();
    let mut impostor = TcpStream::connect(server.addr().host_port()).unwrap();
    let local = impostor.local_addr().unwrap();
    let impostor_socket = RpcAddress::new(&local.ip().to_string(), local.port());
    impostor.write_all(&bytes).unwrap();
    wait_until("the replayed message", DEADLINE, || {
        events.count(|e| matches!(e, Event::Text { .. })) == 2
    });
    drop(impostor);
    events.wait_for_event(&Event::Disconnected(impostor_socket));
    assert!(
        !events.has(&Event::Disconnected(real.addr())),
        "the impostor's hang-up was taken for the real env's: {:?}",
        events.events()
    );
    assert_eq!(
        events.count(|e| *e == Event::Connected(real.addr())),
        1,
        "the impostor was announced as the real env"
    );

    // The real one going away is still heard.
    real.stop_now();
    events.wait_for_event(&Event::Disconnected(real.addr()));
}
