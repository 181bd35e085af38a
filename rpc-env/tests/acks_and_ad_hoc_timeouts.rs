//! Asks answered with `()` (`Reply<()>`, an acknowledgement), over TCP and locally, and the
//! ad-hoc timeout of `ask_with_timeout(make, Duration)` on an `EndpointRef` and on a
//! `ControlRef`, whose error names the call rather than a setting.

pub mod util;

use std::time::{Duration, Instant};

use rpc_env::{
    message, EndpointContext, HandlerResult, NoMessage, Protocol, Reply, RpcEndpoint, RpcError,
    TimeoutOrigin,
};
use util::{answer, Env};

message! {
    /// Asks of the acknowledger.
    pub enum AckAsk {
        /// Counts one and acknowledges with `()`.
        Ack {
            /// The port.
            reply: Reply<()>,
        },
        /// Answers how many `Ack`s came before.
        Acked {
            /// The port.
            reply: Reply<u64>,
        },
        /// Never answered: the port is kept.
        Ignore {
            /// The port.
            reply: Reply<()>,
        },
    }
}

/// Control messages of the acknowledger.
pub enum AckControl {
    /// Never answered: the port is kept.
    Ignore {
        /// The port.
        reply: Reply<()>,
    },
}

/// The acknowledger's protocol.
pub struct AckProtocol;

impl Protocol for AckProtocol {
    type Message = NoMessage;
    type Ask = AckAsk;
    type Control = AckControl;
}

/// Counts acknowledgements; keeps the ports it is told to ignore.
#[derive(Default)]
struct Acknowledger {
    acked: u64,
    kept: Vec<Reply<()>>,
}

impl RpcEndpoint for Acknowledger {
    type Protocol = AckProtocol;

    fn receive_and_reply(
        &mut self,
        _ctx: &EndpointContext<'_, AckProtocol>,
        ask: AckAsk,
    ) -> HandlerResult {
        match ask {
            AckAsk::Ack { reply } => {
                self.acked += 1;
                reply.send(());
            }
            AckAsk::Acked { reply } => reply.send(self.acked),
            AckAsk::Ignore { reply } => self.kept.push(reply),
        }
        Ok(())
    }

    fn receive_control(
        &mut self,
        _ctx: &EndpointContext<'_, AckProtocol>,
        msg: AckControl,
    ) -> HandlerResult {
        let AckControl::Ignore { reply } = msg;
        self.kept.push(reply);
        Ok(())
    }
}

#[test]
fn an_ask_answered_with_unit_over_tcp() {
    let server = Env::server("server");
    server
        .setup_endpoint("ack", Acknowledger::default())
        .unwrap();
    let client = Env::client("client");
    let ack = client
        .setup_endpoint_ref::<AckProtocol>(&server.addr(), "ack")
        .unwrap();
    assert_eq!(answer(ack.ask(|reply| AckAsk::Ack { reply })), Ok(()));
    assert_eq!(ack.ask_sync(|reply| AckAsk::Ack { reply }), Ok(()));
    // Both reached the handler, each once.
    assert_eq!(answer(ack.ask(|reply| AckAsk::Acked { reply })), Ok(2));
}

#[test]
fn an_ask_answered_with_unit_locally() {
    let env = Env::server("local");
    let ack = env.setup_endpoint("ack", Acknowledger::default()).unwrap();
    assert_eq!(answer(ack.ask(|reply| AckAsk::Ack { reply })), Ok(()));
    assert_eq!(answer(ack.ask(|reply| AckAsk::Acked { reply })), Ok(1));
}

#[test]
fn an_ad_hoc_timeout_names_the_call_and_the_ref() {
    let server = Env::server("server");
    server
        .setup_endpoint("ack", Acknowledger::default())
        .unwrap();
    let client = Env::client("client");
    let ack = client
        .setup_endpoint_ref::<AckProtocol>(&server.addr(), "ack")
        .unwrap();
    let started = Instant::now();
    let after = Duration::from_millis(50);
    let error = answer(ack.ask_with_timeout(|reply| AckAsk::Ignore { reply }, after)).unwrap_err();
    assert!(started.elapsed() >= after, "not before its time");
    let call = format!(
        "EndpointRef::ask_with_timeout to ember://ack@{}",
        server.addr()
    );
    assert_eq!(
        error,
        RpcError::Timeout {
            to: server.addr().host_port(),
            after,
            origin: TimeoutOrigin::Call(call.as_str().into()),
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "Cannot receive any reply from {} in 50 milliseconds. This timeout was given to \
             {call}",
            server.addr()
        )
    );
    assert!(error.is_timeout());
    // An answer in time is an answer.
    let in_time = ack.ask_with_timeout(|reply| AckAsk::Ack { reply }, Duration::from_secs(60));
    assert_eq!(answer(in_time), Ok(()));
}

#[test]
fn an_ad_hoc_timeout_of_a_control_ask_names_the_call_and_the_endpoint() {
    let env = Env::server("local");
    env.setup_endpoint("ack", Acknowledger::default()).unwrap();
    let control = env.control_ref::<AckProtocol>("ack");
    let after = Duration::from_millis(20);
    let error =
        answer(control.ask_with_timeout(|reply| AckControl::Ignore { reply }, after)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Cannot receive any reply from ack in 20 milliseconds. This timeout was given to \
         ControlRef::ask_with_timeout to ack"
    );
}
