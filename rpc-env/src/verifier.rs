//! The built-in `endpoint-verifier` endpoint that answers lookups by name.

use crate::endpoint::{EndpointContext, HandlerResult, NoMessage, Protocol, RpcEndpoint};
use crate::{message, Reply};

/// The verifier's registered name.
pub(crate) const VERIFIER_NAME: &str = "endpoint-verifier";

message! {
    /// The verifier's one question.
    pub(crate) enum VerifierAsk {
        /// Is an endpoint of this name registered?
        CheckExistence { name: String, reply: Reply<bool> },
    }
}

/// The verifier's protocol.
pub(crate) struct VerifierProtocol;

impl Protocol for VerifierProtocol {
    type Message = NoMessage;
    type Ask = VerifierAsk;
    type Control = NoMessage;
}

/// Answers `CheckExistence` from the env's dispatcher.
pub(crate) struct EndpointVerifier;

impl RpcEndpoint for EndpointVerifier {
    type Protocol = VerifierProtocol;

    fn receive_and_reply(
        &mut self,
        ctx: &EndpointContext<'_, VerifierProtocol>,
        ask: VerifierAsk,
    ) -> HandlerResult {
        let VerifierAsk::CheckExistence { name, reply } = ask;
        reply.send(ctx.env().has_endpoint(&name));
        Ok(())
    }
}
