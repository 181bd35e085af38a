//! A lookup checks the protocol: `setup_endpoint_ref::<P>` carries `P`'s fingerprint (its
//! name and version) to the remote `endpoint-verifier`, which answers whether the endpoint
//! speaks it, and if not, what it speaks. A ref of the wrong type fails at the lookup,
//! naming both protocols, even when the two have the same message layout (which would
//! otherwise decode silently).

pub mod util;

use rpc_env::{
    message, EndpointContext, HandlerResult, NoMessage, Protocol, Reply, RpcEndpoint, RpcError,
};
use util::staller::StallProtocol;
use util::{answer, echo, Env, Probe, ProbeProtocol};

message! {
    /// The asks of two protocols with the same layout: one string in, one string out.
    pub enum TwinAsk {
        /// Answers `text`.
        Say {
            /// The answer.
            text: String,
            /// The port.
            reply: Reply<String>,
        },
    }
}

/// One of two protocols with the same messages.
pub struct LeftProtocol;

impl Protocol for LeftProtocol {
    type Message = NoMessage;
    type Ask = TwinAsk;
    type Control = NoMessage;
}

/// The other one.
pub struct RightProtocol;

impl Protocol for RightProtocol {
    type Message = NoMessage;
    type Ask = TwinAsk;
    type Control = NoMessage;
}

/// Answers `Say` with its text.
struct Twin;

impl RpcEndpoint for Twin {
    type Protocol = LeftProtocol;

    fn receive_and_reply(
        &mut self,
        _ctx: &EndpointContext<'_, LeftProtocol>,
        ask: TwinAsk,
    ) -> HandlerResult {
        let TwinAsk::Say { text, reply } = ask;
        reply.send(text);
        Ok(())
    }
}

/// Protocols declared elsewhere under the same type names.
pub mod elsewhere {
    use super::*;

    /// The probe's messages, declared again in another module: the same fingerprint.
    pub struct ProbeProtocol;

    impl Protocol for ProbeProtocol {
        type Message = util::ProbeMessage;
        type Ask = util::ProbeAsk;
        type Control = NoMessage;
    }

    /// The probe's messages at a version the endpoint does not speak.
    pub struct NextProbe;

    impl Protocol for NextProbe {
        const PROTOCOL_VERSION: u32 = 2;
        type Message = util::ProbeMessage;
        type Ask = util::ProbeAsk;
        type Control = NoMessage;

        fn protocol_name() -> &'static str {
            "ProbeProtocol"
        }
    }
}

fn mismatch(error: &RpcError) -> (&str, u32, &str, u32) {
    match error {
        RpcError::ProtocolMismatch {
            expected,
            expected_version,
            actual,
            actual_version,
            ..
        } => (expected, *expected_version, actual, *actual_version),
        other => panic!("expected a protocol mismatch, got {other:?}"),
    }
}

#[test]
fn a_remote_lookup_with_another_protocol_fails_naming_both() {
    let server = Env::server("server");
    let (probe, _h) = Probe::new();
    server.setup_endpoint("probe", probe).unwrap();
    let client = Env::client("client");
    let error = client
        .setup_endpoint_ref::<StallProtocol>(&server.addr(), "probe")
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "Endpoint ember://probe@{} speaks ProbeProtocol (version 1), but it was looked up \
             as StallProtocol (version 1)",
            server.addr()
        )
    );
    let uri = format!("ember://probe@{}", server.addr());
    let by_uri = client
        .setup_endpoint_ref_by_uri::<StallProtocol>(&uri)
        .unwrap_err();
    assert_eq!(by_uri, error);
    // The right type still finds it.
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "probe")
        .unwrap();
    assert_eq!(answer(ep.ask(echo("right"))), Ok("right".to_string()));
}

#[test]
fn a_protocol_with_the_same_layout_is_still_another_protocol() {
    let server = Env::server("server");
    server.setup_endpoint("twin", Twin).unwrap();
    let client = Env::client("client");
    let error = client
        .setup_endpoint_ref::<RightProtocol>(&server.addr(), "twin")
        .unwrap_err();
    assert_eq!(
        mismatch(&error),
        ("RightProtocol", 1, "LeftProtocol", 1),
        "{error}"
    );
    let left = client
        .setup_endpoint_ref::<LeftProtocol>(&server.addr(), "twin")
        .unwrap();
    let said = left.ask(|reply| TwinAsk::Say {
        text: "left".into(),
        reply,
    });
    assert_eq!(answer(said), Ok("left".to_string()));
}

#[test]
fn a_lookup_in_the_same_env_is_checked_too() {
    let env = Env::server("local");
    env.setup_endpoint("twin", Twin).unwrap();
    let error = env
        .setup_endpoint_ref::<RightProtocol>(&env.addr(), "twin")
        .unwrap_err();
    assert_eq!(mismatch(&error), ("RightProtocol", 1, "LeftProtocol", 1));
}

#[test]
fn the_version_is_part_of_the_fingerprint_and_the_module_path_is_not() {
    let server = Env::server("server");
    let (probe, _h) = Probe::new();
    server.setup_endpoint("probe", probe).unwrap();
    let client = Env::client("client");
    let error = client
        .setup_endpoint_ref::<elsewhere::NextProbe>(&server.addr(), "probe")
        .unwrap_err();
    assert_eq!(mismatch(&error), ("ProbeProtocol", 2, "ProbeProtocol", 1));
    assert!(
        error.to_string().ends_with(
            "speaks ProbeProtocol (version 1), but it was looked up as ProbeProtocol (version 2)"
        ),
        "{error}"
    );
    // The same declaration in another module (another binary's copy, say) matches.
    let copy = client
        .setup_endpoint_ref::<elsewhere::ProbeProtocol>(&server.addr(), "probe")
        .unwrap();
    assert_eq!(answer(copy.ask(echo("copy"))), Ok("copy".to_string()));
}

#[test]
fn a_missing_endpoint_is_still_a_missing_endpoint_and_existence_checks_ignore_protocols() {
    let server = Env::server("server");
    server.setup_endpoint("twin", Twin).unwrap();
    let client = Env::client("client");
    let error = client
        .setup_endpoint_ref::<LeftProtocol>(&server.addr(), "nobody")
        .unwrap_err();
    assert_eq!(
        error,
        RpcError::LookupFailed {
            uri: format!("ember://nobody@{}", server.addr())
        }
    );
    assert_eq!(
        answer(client.check_endpoint(&server.addr(), "twin")),
        Ok(true)
    );
    assert_eq!(
        answer(client.check_endpoint(&server.addr(), "nobody")),
        Ok(false)
    );
}

/// Refs that carry nothing: a caller that only holds the connection.
pub struct WatchOnly;

impl Protocol for WatchOnly {
    type Message = NoMessage;
    type Ask = NoMessage;
    type Control = NoMessage;
}

#[test]
fn a_protocol_that_carries_nothing_matches_any_endpoint() {
    let server = Env::server("server");
    server.setup_endpoint("twin", Twin).unwrap();
    let client = Env::client("client");
    let watched = client
        .setup_endpoint_ref::<WatchOnly>(&server.addr(), "twin")
        .expect("nothing it can send could be misread");
    assert_eq!(watched.name(), "twin");
    assert!(matches!(
        client.setup_endpoint_ref::<WatchOnly>(&server.addr(), "nobody"),
        Err(RpcError::LookupFailed { .. })
    ));
}
