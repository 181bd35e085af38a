//! A protocol declared in one place with `protocol!` (its marker, version and the enums of
//! its sections) works as a hand-written one does: over TCP, with tuple variants in its
//! asks and messages, a control section, and its version in the fingerprint a lookup checks.

pub mod util;

use std::sync::mpsc;

use rpc_env::{protocol, EndpointContext, HandlerResult, Reply, RpcEndpoint, RpcError};
use util::Env;

protocol! {
    /// A counter's protocol, version 3.
    pub protocol CounterProtocol version 3 {
        /// What the counter is told.
        message CounterMessage {
            /// Adds to the count, for a reason (a tuple variant).
            Add(u64, String),
            /// Sets the count to zero.
            Reset,
        }
        /// What the counter is asked.
        ask CounterAsk {
            /// Answers the count and the last reason.
            Get(Reply<(u64, String)>),
            /// Adds `by` and answers the new count.
            AddAndGet {
                /// How much to add.
                by: u64,
                /// The port.
                reply: Reply<u64>,
            },
        }
        /// What only the counter's process may say.
        control CounterControl {
            /// Reports the count on a local channel.
            Report(mpsc::Sender<u64>),
        }
    }
}

protocol! {
    /// The same counter at version 1: a lookup must tell them apart.
    pub protocol OldCounterProtocol {
        /// What the old counter was asked.
        ask OldCounterAsk {
            /// As `CounterAsk::Get`.
            Get(Reply<(u64, String)>),
        }
    }
}

/// The counter.
#[derive(Default)]
struct Counter {
    count: u64,
    reason: String,
}

impl RpcEndpoint for Counter {
    type Protocol = CounterProtocol;

    fn receive(
        &mut self,
        _ctx: &EndpointContext<'_, CounterProtocol>,
        msg: CounterMessage,
    ) -> HandlerResult {
        match msg {
            CounterMessage::Add(by, reason) => {
                self.count += by;
                self.reason = reason;
            }
            CounterMessage::Reset => self.count = 0,
        }
        Ok(())
    }

    fn receive_and_reply(
        &mut self,
        _ctx: &EndpointContext<'_, CounterProtocol>,
        ask: CounterAsk,
    ) -> HandlerResult {
        match ask {
            CounterAsk::Get(reply) => reply.send((self.count, self.reason.clone())),
            CounterAsk::AddAndGet { by, reply } => {
                self.count += by;
                reply.send(self.count);
            }
        }
        Ok(())
    }

    fn receive_control(
        &mut self,
        _ctx: &EndpointContext<'_, CounterProtocol>,
        msg: CounterControl,
    ) -> HandlerResult {
        let CounterControl::Report(to) = msg;
        let _ = to.send(self.count);
        Ok(())
    }
}

#[test]
fn a_declared_protocol_with_tuple_variants_works_over_tcp() {
    let server = Env::server("server");
    server
        .setup_endpoint("counter", Counter::default())
        .unwrap();
    let client = Env::client("client");
    let counter = client
        .setup_endpoint_ref::<CounterProtocol>(&server.addr(), "counter")
        .unwrap();

    counter.send(CounterMessage::Add(5, "five".into())).unwrap();
    counter.send(CounterMessage::Add(2, "two".into())).unwrap();
    // Messages and asks of one sender arrive in order: the asks see both adds.
    assert_eq!(
        counter.ask_sync(CounterAsk::Get),
        Ok((7, "two".to_string()))
    );
    assert_eq!(
        counter.ask_sync(|reply| CounterAsk::AddAndGet { by: 3, reply }),
        Ok(10)
    );
    counter.send(CounterMessage::Reset).unwrap();
    assert_eq!(
        counter.ask_sync(CounterAsk::Get),
        Ok((0, "two".to_string()))
    );

    // The control section reaches the endpoint inside its own process.
    let (tx, rx) = mpsc::channel();
    server
        .control_ref::<CounterProtocol>("counter")
        .send(CounterControl::Report(tx))
        .unwrap();
    assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(30)), Ok(0));
}

#[test]
fn a_declared_version_is_part_of_the_fingerprint() {
    let server = Env::server("server");
    server
        .setup_endpoint("counter", Counter::default())
        .unwrap();
    let client = Env::client("client");
    let error = client
        .setup_endpoint_ref::<OldCounterProtocol>(&server.addr(), "counter")
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "Endpoint ember://counter@{} speaks CounterProtocol (version 3), but it was looked \
             up as OldCounterProtocol (version 1)",
            server.addr()
        )
    );
    assert!(
        matches!(error, RpcError::ProtocolMismatch { .. }),
        "{error:?}"
    );
}
