//! `Registry`: a server-side endpoint that is handed refs of probes (typically of a
//! client-mode env) and gives them to the test, as a driver keeps its executors' refs.

use std::sync::mpsc;

use rpc_env::{message, EndpointContext, EndpointRef, HandlerResult, NoMessage, Protocol, Reply};
use rpc_env::{RpcAddress, RpcEndpoint};

use super::{text, ProbeProtocol};

message! {
    /// Asks of the registry.
    pub enum RegistryAsk {
        /// Sends `ep` a `Text "welcome"`, hands it to the test with the sender's address,
        /// and answers `okay`.
        Register {
            /// The probe registering.
            ep: EndpointRef<ProbeProtocol>,
            /// The port.
            reply: Reply<String>,
        },
        /// Answers with `ep` itself.
        Bounce {
            /// The ref bounced back.
            ep: EndpointRef<ProbeProtocol>,
            /// The port.
            reply: Reply<EndpointRef<ProbeProtocol>>,
        },
    }
}

/// The registry's protocol.
pub struct RegistryProtocol;

impl Protocol for RegistryProtocol {
    type Message = NoMessage;
    type Ask = RegistryAsk;
    type Control = NoMessage;
}

/// A registered ref, as the registry got it, and who sent it (`ctx.sender()`).
pub type Registered = (EndpointRef<ProbeProtocol>, RpcAddress);

/// The registry endpoint.
pub struct Registry(mpsc::Sender<Registered>);

impl Registry {
    /// A registry, and where the refs it is given come out.
    pub fn new() -> (Registry, mpsc::Receiver<Registered>) {
        let (tx, rx) = mpsc::channel();
        (Registry(tx), rx)
    }
}

impl RpcEndpoint for Registry {
    type Protocol = RegistryProtocol;

    fn receive_and_reply(
        &mut self,
        ctx: &EndpointContext<'_, RegistryProtocol>,
        ask: RegistryAsk,
    ) -> HandlerResult {
        match ask {
            RegistryAsk::Register { ep, reply } => {
                ep.send(text("welcome"))?;
                let sender = ctx.sender().cloned().expect("a remote ask has a sender");
                let _ = self.0.send((ep, sender));
                reply.send("okay".into());
            }
            RegistryAsk::Bounce { ep, reply } => reply.send(ep),
        }
        Ok(())
    }
}
