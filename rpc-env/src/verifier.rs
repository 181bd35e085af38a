//! The built-in `endpoint-verifier` endpoint that answers lookups by name, and by protocol.

use crate::endpoint::{EndpointContext, HandlerResult, NoMessage, Protocol, RpcEndpoint};
use crate::{message, Reply};

/// The verifier's registered name.
pub(crate) const VERIFIER_NAME: &str = "endpoint-verifier";

message! {
    /// The verifier's questions. Tags are wire format: new ones go at the end.
    pub(crate) enum VerifierAsk {
        /// Is an endpoint of this name registered?
        CheckExistence { name: String, reply: Reply<bool> },
        /// Is an endpoint of this name registered, and does it speak the protocol of this
        /// fingerprint (name and version)? What a lookup asks.
        CheckProtocol {
            name: String,
            protocol: String,
            version: u32,
            reply: Reply<ProtocolCheck>,
        },
    }
}

message! {
    /// The answer to [`VerifierAsk::CheckProtocol`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum ProtocolCheck {
        /// No endpoint of that name.
        Missing,
        /// The endpoint speaks the protocol asked about.
        Matches,
        /// The endpoint speaks another protocol: this one.
        Differs { protocol: String, version: u32 },
    }
}

/// The verifier's protocol.
pub(crate) struct VerifierProtocol;

impl Protocol for VerifierProtocol {
    type Message = NoMessage;
    type Ask = VerifierAsk;
    type Control = NoMessage;
}

/// Answers `CheckExistence` and `CheckProtocol` from the env's dispatcher.
pub(crate) struct EndpointVerifier;

impl RpcEndpoint for EndpointVerifier {
    type Protocol = VerifierProtocol;

    fn receive_and_reply(
        &mut self,
        ctx: &EndpointContext<'_, VerifierProtocol>,
        ask: VerifierAsk,
    ) -> HandlerResult {
        match ask {
            VerifierAsk::CheckExistence { name, reply } => {
                reply.send(ctx.env().has_endpoint(&name));
            }
            VerifierAsk::CheckProtocol {
                name,
                protocol,
                version,
                reply,
            } => reply.send(check(ctx.env().protocol_of(&name), &protocol, version)),
        }
        Ok(())
    }
}

/// The answer for an endpoint whose fingerprint is `actual` (`None`: not registered),
/// asked about `protocol` at `version`.
fn check(actual: Option<(&'static str, u32)>, protocol: &str, version: u32) -> ProtocolCheck {
    match actual {
        None => ProtocolCheck::Missing,
        Some((name, v)) if name == protocol && v == version => ProtocolCheck::Matches,
        Some((name, v)) => ProtocolCheck::Differs {
            protocol: name.to_string(),
            version: v,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_from, encode_to_bytes};

    #[test]
    fn answers_by_name_and_version() {
        assert_eq!(check(None, "P", 1), ProtocolCheck::Missing);
        assert_eq!(check(Some(("P", 1)), "P", 1), ProtocolCheck::Matches);
        let differs = |protocol: &str, version| ProtocolCheck::Differs {
            protocol: protocol.into(),
            version,
        };
        assert_eq!(check(Some(("Q", 1)), "P", 1), differs("Q", 1));
        assert_eq!(check(Some(("P", 2)), "P", 1), differs("P", 2));
    }

    #[test]
    fn the_answer_round_trips_and_a_hostile_one_fails_cleanly() {
        let answer = ProtocolCheck::Differs {
            protocol: "KvProtocol".into(),
            version: 3,
        };
        let bytes = encode_to_bytes(&answer);
        assert_eq!(decode_from::<ProtocolCheck>(bytes.clone()), Ok(answer));
        for cut in 0..bytes.len() {
            assert!(decode_from::<ProtocolCheck>(bytes.slice(..cut)).is_err());
        }
        let huge = bytes::Bytes::from_static(&[0, 2, 0xff, 0xff, 0xff, 0xff, b'x']);
        assert!(decode_from::<ProtocolCheck>(huge).is_err());
        assert!(decode_from::<ProtocolCheck>(bytes::Bytes::from_static(&[0, 3])).is_err());
    }
}
