//! Endpoint lookup and addresses, ported from Spark's `RpcEnvSuite` and `NettyRpcEnvSuite`
//! (`NettyRpcEnvSuite`: "non-existent endpoint", "advertise address different from bind
//! address"; `RpcEnvSuite`: "port conflict"):
//!
//! - "non-existent endpoint": the error names the URI
//! - "advertise address different from bind address"
//! - "port conflict": a second server on a taken port binds another one
//!
//! plus lookup by URI, malformed URIs, a lookup that cannot connect, and the lookup timeout.

pub mod util;

use std::thread;
use std::time::Duration;

use rpc_env::{keys, RpcAddress, RpcConf, RpcEnv, RpcEnvConfig, RpcError, TimeoutOrigin};
use util::{answer, echo, text, wait_until, Env, Event, Probe, ProbeAsk, ProbeProtocol, DEADLINE};

#[test]
fn a_local_lookup_of_a_missing_endpoint_names_the_uri() {
    let env = Env::server("lookup");
    let error = env
        .setup_endpoint_ref::<ProbeProtocol>(&env.addr(), "nonexist-endpoint")
        .unwrap_err();
    let uri = format!("ember://nonexist-endpoint@{}", env.addr());
    assert_eq!(error, RpcError::LookupFailed { uri: uri.clone() });
    assert_eq!(error.to_string(), format!("Cannot find endpoint: {uri}"));
}

#[test]
fn a_remote_lookup_of_a_missing_endpoint_names_the_uri() {
    let server = Env::server("server");
    let client = Env::client("client");
    let uri = format!("ember://nonexist-endpoint@{}", server.addr());
    let error = client
        .setup_endpoint_ref_by_uri::<ProbeProtocol>(&uri)
        .unwrap_err();
    assert_eq!(error, RpcError::LookupFailed { uri });
}

#[test]
fn a_lookup_finds_a_local_endpoint() {
    let env = Env::server("lookup");
    let (probe, _h) = Probe::new();
    let registered = env.setup_endpoint("echo", probe).unwrap();
    let found = env
        .setup_endpoint_ref::<ProbeProtocol>(&env.addr(), "echo")
        .unwrap();
    assert_eq!(found, registered);
    assert_eq!(answer(found.ask(echo("hi"))), Ok("hi".to_string()));
}

#[test]
fn a_lookup_by_uri_finds_a_remote_endpoint() {
    let server = Env::server("server");
    let (probe, _h) = Probe::new();
    server.setup_endpoint("echo", probe).unwrap();
    let client = Env::client("client");
    let uri = format!("ember://echo@{}", server.addr());
    let ep = client
        .setup_endpoint_ref_by_uri::<ProbeProtocol>(&uri)
        .unwrap();
    assert_eq!(ep.address().to_string(), uri);
    assert_eq!(answer(ep.ask(echo("hi"))), Ok("hi".to_string()));
}

#[test]
fn a_malformed_uri_is_refused() {
    let env = Env::server("lookup");
    let port = env.addr().port();
    for uri in [
        format!("spark://echo@127.0.0.1:{port}"),
        format!("ember://127.0.0.1:{port}"),
        format!("ember://echo@127.0.0.1:{port}/path"),
        "ember://echo@127.0.0.1".to_string(),
    ] {
        let error = env
            .setup_endpoint_ref_by_uri::<ProbeProtocol>(&uri)
            .unwrap_err();
        assert!(matches!(error, RpcError::Address(_)), "{uri}: {error:?}");
        assert_eq!(error.to_string(), format!("Invalid Ember URL: {uri}"));
    }
}

#[test]
fn a_lookup_where_nobody_listens_fails_to_connect() {
    // Below the ephemeral range: no other test's server is given it meanwhile (one was,
    // with a port freed from a port-0 bind, and answered the lookups).
    let free_port = ember_test_support::refused_port();
    // Bounds each lookup, should it wrongly wait for a reply instead of failing.
    let conf = RpcConf::new().with(keys::LOOKUP_TIMEOUT, "30s");
    let client = Env::create(RpcEnvConfig::client("client").with_conf(conf));
    let nowhere = RpcAddress::new("127.0.0.1", free_port);
    // Several threads at once: every lookup, whether it starts the connection attempt or
    // joins one under way (or just failed), reports the failure to connect.
    let lookups: Vec<_> = (0..4)
        .map(|_| {
            let env = client.0.clone();
            let nowhere = nowhere.clone();
            thread::spawn(move || {
                (0..150)
                    .map(|_| env.setup_endpoint_ref::<ProbeProtocol>(&nowhere, "echo"))
                    .map(|result| result.expect_err("nobody listens"))
                    .collect::<Vec<RpcError>>()
            })
        })
        .collect();
    for lookup in lookups {
        for error in lookup.join().unwrap() {
            assert!(
                matches!(&error, RpcError::ConnectFailed { peer, .. } if *peer == nowhere.host_port()),
                "{error:?}"
            );
        }
    }
}

#[test]
fn a_lookup_that_gets_no_answer_times_out_naming_the_lookup_key() {
    let server = Env::server_with(
        "busy",
        RpcConf::new().with(keys::DISPATCHER_NUM_THREADS, "1"),
    );
    let (probe, h) = Probe::new();
    let busy = server.setup_endpoint("busy", probe).unwrap();
    // Block the only shared thread, which the server's endpoint-verifier needs.
    let blocked = busy.ask(|reply| ProbeAsk::Block {
        text: "done".into(),
        reply,
    });
    wait_until("the shared loop is blocked", DEADLINE, || h.blocked() == 1);
    let conf = RpcConf::new().with(keys::LOOKUP_TIMEOUT, "200ms");
    let client = Env::create(RpcEnvConfig::client("client").with_conf(conf));
    let error = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "busy")
        .unwrap_err();
    assert_eq!(
        error,
        RpcError::Timeout {
            to: server.addr().host_port(),
            after: Duration::from_millis(200),
            origin: TimeoutOrigin::Setting(keys::LOOKUP_TIMEOUT.into()),
        }
    );
    h.open_latch();
    assert_eq!(answer(blocked), Ok("done".to_string()));
}

#[test]
fn an_env_advertises_an_address_other_than_its_bind_address() {
    let advertised =
        Env::create(RpcEnvConfig::server("advertised", "127.0.0.1", 0).advertise("example.com"));
    let address = advertised.addr();
    assert_eq!(address.host(), "example.com");
    assert!(address.host_port().starts_with("example.com:"));
    assert_ne!(address.port(), 0);

    // Reachable through the bind address, on the advertised port.
    let (probe, _h) = Probe::new();
    advertised.setup_endpoint("echo", probe).unwrap();
    let client = Env::client("client");
    let bound = RpcAddress::new("127.0.0.1", address.port());
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&bound, "echo")
        .unwrap();
    assert_eq!(answer(ep.ask(echo("hi"))), Ok("hi".to_string()));

    // Its messages name the advertised address as their sender.
    let other = Env::server("other");
    let (probe, other_h) = Probe::new();
    other.setup_endpoint("probe", probe).unwrap();
    let to_other = advertised
        .setup_endpoint_ref::<ProbeProtocol>(&other.addr(), "probe")
        .unwrap();
    to_other.send(text("from afar")).unwrap();
    other_h.wait_for_event(&Event::Text {
        text: "from afar".into(),
        sender: Some(address),
    });
}

#[test]
fn a_second_server_on_a_taken_port_binds_another() {
    let first = Env::server("first");
    let taken = first.addr().port();
    let second = Env::create(RpcEnvConfig::server("second", "127.0.0.1", taken));
    assert_ne!(second.addr().port(), taken);
    let (probe, _h) = Probe::new();
    second.setup_endpoint("echo", probe).unwrap();
    let client = Env::client("client");
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&second.addr(), "echo")
        .unwrap();
    assert_eq!(answer(ep.ask(echo("hi"))), Ok("hi".to_string()));
}

#[test]
fn a_taken_port_without_retries_is_a_bind_error() {
    let first = Env::server("first");
    let taken = first.addr().port();
    let conf = RpcConf::new().with(keys::PORT_MAX_RETRIES, "0");
    let result = RpcEnv::create(RpcEnvConfig::server("second", "127.0.0.1", taken).with_conf(conf));
    let Err(error) = result else {
        panic!("bound a taken port");
    };
    assert!(matches!(error, RpcError::Bind { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with(&format!(
            "Could not bind the RPC server to 127.0.0.1:{taken}"
        )),
        "{error}"
    );
}
