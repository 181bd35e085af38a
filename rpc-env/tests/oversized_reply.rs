//! A reply larger than the answering env's `ember.rpc.message.maxSize` is not sent: the
//! asker gets a failure naming the setting instead (`WIRE.md`: "A reply that is too large is
//! replaced by a failure frame carrying that error's text"), over real TCP, and the
//! connection goes on. Ember's own test.

pub mod util;

use rpc_env::{
    keys, message, EndpointContext, HandlerResult, NoMessage, Protocol, Reply, RpcConf,
    RpcEndpoint, RpcEnvConfig, RpcError,
};
use util::{answer, Env};

const MIB: u64 = 1 << 20;

message! {
    /// Asks of the inflating endpoint.
    enum InflateAsk {
        /// Answers a string of `size` bytes: a small ask with a large reply.
        Inflate { size: u64, reply: Reply<String> },
    }
}

struct InflateProtocol;

impl Protocol for InflateProtocol {
    type Message = NoMessage;
    type Ask = InflateAsk;
    type Control = NoMessage;
}

struct Inflater;

impl RpcEndpoint for Inflater {
    type Protocol = InflateProtocol;

    fn receive_and_reply(
        &mut self,
        _: &EndpointContext<'_, InflateProtocol>,
        ask: InflateAsk,
    ) -> HandlerResult {
        let InflateAsk::Inflate { size, reply } = ask;
        let size = usize::try_from(size).expect("a test size");
        reply.send("x".repeat(size));
        Ok(())
    }
}

#[test]
fn an_oversized_reply_reaches_the_asker_as_a_failure_naming_the_limit() {
    // The answering side has the small limit; the asker's (128 MiB) would take the reply.
    let server = Env::server_with("server", RpcConf::new().with(keys::MESSAGE_MAX_SIZE, "1"));
    server.setup_endpoint("inflate", Inflater).unwrap();
    let client = Env::create(RpcEnvConfig::client("client"));
    let inflate = client
        .setup_endpoint_ref::<InflateProtocol>(&server.addr(), "inflate")
        .unwrap();

    let outcome = answer(inflate.ask(|reply| InflateAsk::Inflate {
        size: 2 * MIB,
        reply,
    }));
    match outcome {
        Err(RpcError::Failure { message }) => {
            assert!(
                message.starts_with("Message of ")
                    && message.ends_with(&format!(
                        "bytes exceeds max allowed: ember.rpc.message.maxSize ({MIB} bytes)"
                    )),
                "the failure names the limit: {message}"
            );
        }
        other => panic!("expected a failure naming the limit, got {other:?}"),
    }

    // Only that reply was refused: the same connection answers a reply within the limit.
    let small = answer(inflate.ask(|reply| InflateAsk::Inflate { size: 10, reply }));
    assert_eq!(small, Ok("x".repeat(10)));
}
