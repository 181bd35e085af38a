//! A client-mode endpoint's ref passed on beyond the connection it came on: a client-mode
//! env A hands its ref `w` to server B, and B passes it on, to server C or to another
//! client-mode env A2, in a message or in an ask's answer. Only A's connection to B leads
//! to A, so wherever else the ref goes, sending and asking on it fail with
//! `RpcError::ForwardedClientRef`, and never reach an endpoint of the same name (B's own
//! `w`, or A2's). Three real envs over TCP in each test.

pub mod util;

use std::io::{Read, Write};
use std::net::TcpStream;

use rpc_env::{
    message, EndpointContext, EndpointRef, HandlerResult, NoMessage, Protocol, Reply, RpcEndpoint,
    RpcError,
};
use util::registry::{Registry, RegistryProtocol};
use util::{answer, echo, text, Env, Event, Probe, ProbeAsk, ProbeHandle, ProbeProtocol};

message! {
    /// Asks of the keeper, B's endpoint that holds a ref it was given and passes it on.
    pub enum KeeperAsk {
        /// Keeps `ep`, sends it `Text "kept"` (B itself reaches A through it), answers
        /// `kept`.
        Keep {
            /// The ref to keep.
            ep: EndpointRef<ProbeProtocol>,
            /// The port.
            reply: Reply<String>,
        },
        /// Answers with the kept ref, inside an ask's answer.
        Give {
            /// The port.
            reply: Reply<Option<EndpointRef<ProbeProtocol>>>,
        },
        /// Passes the kept ref on inside a message: asks `to` to register it, and answers
        /// with what `to` answered, or `failed: <error>`.
        Pass {
            /// The registry to pass the kept ref to.
            to: EndpointRef<RegistryProtocol>,
            /// The port.
            reply: Reply<String>,
        },
    }
}

/// The keeper's protocol.
pub struct KeeperProtocol;

impl Protocol for KeeperProtocol {
    type Message = NoMessage;
    type Ask = KeeperAsk;
    type Control = NoMessage;
}

/// Holds one ref.
#[derive(Default)]
struct Keeper(Option<EndpointRef<ProbeProtocol>>);

impl RpcEndpoint for Keeper {
    type Protocol = KeeperProtocol;

    fn receive_and_reply(
        &mut self,
        _ctx: &EndpointContext<'_, KeeperProtocol>,
        ask: KeeperAsk,
    ) -> HandlerResult {
        match ask {
            KeeperAsk::Keep { ep, reply } => {
                ep.send(text("kept"))?;
                self.0 = Some(ep);
                reply.send("kept".into());
            }
            KeeperAsk::Give { reply } => reply.send(self.0.clone()),
            KeeperAsk::Pass { to, reply } => {
                let ep = self.0.clone().expect("a ref was kept");
                // Never block a handler: the answer is piped to the reply port.
                to.ask(|r| util::registry::RegistryAsk::Register { ep, reply: r })
                    .on_complete(move |outcome| match outcome {
                        Ok(answer) => reply.send(answer),
                        Err(e) => reply.send(format!("failed: {e}")),
                    });
            }
        }
        Ok(())
    }
}

/// A (client mode, probe `w`), B (server: a decoy probe also called `w`, the keeper) and
/// C (server: a registry), with A's `w` kept by B's keeper.
struct Three {
    a: Env,
    a_w: EndpointRef<ProbeProtocol>,
    a_h: ProbeHandle,
    b: Env,
    b_w_h: ProbeHandle,
    c: Env,
}

fn three() -> Three {
    let a = Env::client("a");
    let (probe, a_h) = Probe::new();
    let a_w = a.setup_endpoint("w", probe).unwrap();
    let b = Env::server("b");
    let (decoy, b_w_h) = Probe::new();
    b.setup_endpoint("w", decoy).unwrap();
    b.setup_endpoint("keeper", Keeper::default()).unwrap();
    let c = Env::server("c");
    let (registry, _registered) = Registry::new();
    c.setup_endpoint("registry", registry).unwrap();
    let keeper = a
        .setup_endpoint_ref::<KeeperProtocol>(&b.addr(), "keeper")
        .unwrap();
    let kept = keeper.ask(|reply| KeeperAsk::Keep {
        ep: a_w.clone(),
        reply,
    });
    assert_eq!(answer(kept), Ok("kept".to_string()));
    // B reaches A's `w` through the connection A's ref came on: the ref itself is fine.
    a_h.wait_for_event(&Event::Text {
        text: "kept".into(),
        sender: Some(b.addr()),
    });
    Three {
        a,
        a_w,
        a_h,
        b,
        b_w_h,
        c,
    }
}

fn is_forwarded_error(e: &RpcError) -> bool {
    matches!(e, RpcError::ForwardedClientRef { endpoint } if endpoint == "ember-client://w")
}

const FORWARDED_TEXT: &str = "Cannot reach ember-client://w: a client-mode endpoint can be \
                              reached only over the connection its ref came on, and this ref \
                              was passed on beyond it";

/// Neither B's decoy `w` nor A's `w` got anything but the keeper's `kept`: asked last, over
/// the same connections, so anything sent before would have been handled first.
fn assert_nothing_misdelivered(t: &Three) {
    let b_w =
        t.a.setup_endpoint_ref::<ProbeProtocol>(&t.b.addr(), "w")
            .unwrap();
    assert_eq!(answer(b_w.ask(|reply| ProbeAsk::Count { reply })), Ok(0));
    assert_eq!(answer(t.a_w.ask(|reply| ProbeAsk::Count { reply })), Ok(1));
    assert_eq!(t.b_w_h.texts(), Vec::<String>::new());
    assert_eq!(t.a_h.texts(), vec!["kept".to_string()]);
}

#[test]
fn a_client_ref_in_an_answer_to_a_third_server_fails_there_and_reaches_no_namesake() {
    let t = three();
    let keeper =
        t.c.setup_endpoint_ref::<KeeperProtocol>(&t.b.addr(), "keeper")
            .unwrap();
    let on_c = answer(keeper.ask(|reply| KeeperAsk::Give { reply }))
        .unwrap()
        .expect("B kept a ref");
    assert_eq!(on_c.address().to_string(), "ember-client://w");
    assert_eq!(on_c.rpc_address(), None);

    let sent = on_c.send(text("to the wrong w?")).unwrap_err();
    assert!(is_forwarded_error(&sent), "{sent:?}");
    assert_eq!(sent.to_string(), FORWARDED_TEXT);
    let asked = answer(on_c.ask(echo("to the wrong w?"))).unwrap_err();
    assert!(is_forwarded_error(&asked), "{asked:?}");
    assert_nothing_misdelivered(&t);
}

#[test]
fn a_client_ref_in_a_message_to_a_third_server_fails_there_and_reaches_no_namesake() {
    let t = three();
    let registry =
        t.a.setup_endpoint_ref::<RegistryProtocol>(&t.c.addr(), "registry")
            .unwrap();
    let keeper =
        t.a.setup_endpoint_ref::<KeeperProtocol>(&t.b.addr(), "keeper")
            .unwrap();
    // C's registry sends `welcome` to the ref it is given; that send fails, and so its
    // handler and B's ask.
    let passed = answer(keeper.ask(|reply| KeeperAsk::Pass {
        to: registry,
        reply,
    }))
    .unwrap();
    assert_eq!(passed, format!("failed: {FORWARDED_TEXT}"));
    assert_nothing_misdelivered(&t);
}

#[test]
fn a_client_ref_passed_to_another_client_mode_env_is_not_taken_for_its_own_endpoint() {
    let t = three();
    let a2 = Env::client("a2");
    let (own, a2_h) = Probe::new();
    let a2_w = a2.setup_endpoint("w", own).unwrap();
    let keeper = a2
        .setup_endpoint_ref::<KeeperProtocol>(&t.b.addr(), "keeper")
        .unwrap();
    let on_a2 = answer(keeper.ask(|reply| KeeperAsk::Give { reply }))
        .unwrap()
        .expect("B kept a ref");
    assert_ne!(on_a2, a2_w, "A's w is not A2's w");

    let sent = on_a2.send(text("to A2's own w?")).unwrap_err();
    assert!(is_forwarded_error(&sent), "{sent:?}");
    let asked = answer(on_a2.ask(echo("to A2's own w?"))).unwrap_err();
    assert!(is_forwarded_error(&asked), "{asked:?}");
    assert_eq!(answer(a2_w.ask(|reply| ProbeAsk::Count { reply })), Ok(0));
    assert_eq!(a2_h.texts(), Vec::<String>::new());
    assert_nothing_misdelivered(&t);
}

#[test]
fn the_client_that_owns_the_ref_gets_it_back_and_it_still_reaches_its_endpoint() {
    let t = three();
    let keeper =
        t.a.setup_endpoint_ref::<KeeperProtocol>(&t.b.addr(), "keeper")
            .unwrap();
    let back = answer(keeper.ask(|reply| KeeperAsk::Give { reply }))
        .unwrap()
        .expect("B kept a ref");
    assert_eq!(back, t.a_w);
    assert_eq!(answer(back.ask(echo("home"))), Ok("home".to_string()));
    // And B still reaches it: passing it on elsewhere did not spoil B's own ref.
    let again = answer(keeper.ask(|reply| KeeperAsk::Keep { ep: back, reply }));
    assert_eq!(again, Ok("kept".to_string()));
    // Two by now: the first from setting up, the second from this `Keep` (waiting for any
    // one "kept", as this did, raced the second's delivery).
    util::wait_until("the second kept", util::DEADLINE, || {
        t.a_h
            .count(|e| matches!(e, Event::Text { text, .. } if text == "kept"))
            >= 2
    });
    assert_eq!(t.a_h.texts(), vec!["kept".to_string(), "kept".to_string()]);
}

/// A peer that names a listen address but writes a client-mode ref plainly (an older or
/// careless env passing one on) cannot make C send to it: a server-mode peer owns no
/// address-less endpoint, so C takes the ref as forwarded. A raw socket plays that peer.
#[test]
fn a_plain_client_ref_from_a_server_mode_peer_is_taken_as_forwarded() {
    let c = Env::server("c");
    let (registry, _registered) = Registry::new();
    c.setup_endpoint("registry", registry).unwrap();
    let mut socket = TcpStream::connect(c.addr().host_port()).unwrap();
    socket
        .set_read_timeout(Some(util::DEADLINE))
        .expect("a read timeout");

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut payload = vec![1u8]; // sender: Some(127.0.0.1:9)
    string(&mut payload, "127.0.0.1");
    payload.extend_from_slice(&9u16.to_be_bytes());
    string(&mut payload, "registry");
    payload.extend_from_slice(&0u16.to_be_bytes()); // RegistryAsk::Register
    payload.push(0); // ep: a plain client-mode ref ...
    string(&mut payload, "w"); // ... named `w`; the reply port takes no bytes
    let mut frame = ((9 + payload.len()) as u32).to_be_bytes().to_vec();
    frame.push(1); // request
    frame.extend_from_slice(&7u64.to_be_bytes());
    frame.extend_from_slice(&payload);
    socket.write_all(&frame).unwrap();

    // Without the rule C would write `welcome` back over this socket, then `okay`; with it,
    // the registry's send fails, and so the ask.
    let mut head = [0u8; 13];
    socket.read_exact(&mut head).expect("an answer");
    let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
    assert_eq!(head[4], 3, "a failure frame");
    assert_eq!(u64::from_be_bytes(head[5..13].try_into().unwrap()), 7);
    let mut rest = vec![0u8; len - 9];
    socket.read_exact(&mut rest).unwrap();
    assert_eq!(&rest[..2], &[0, 0], "kind Failure");
    assert_eq!(&rest[6..], FORWARDED_TEXT.as_bytes());
}

/// The same rule for a ref that has an address: one that came from A but names an endpoint
/// of C goes to C, not back over A's connection to an endpoint of A that bears its name.
#[test]
fn a_ref_to_a_third_env_goes_to_its_address_not_back_to_the_peer_that_sent_it() {
    let a = Env::client("a");
    let (a_probe, a_h) = Probe::new();
    let a_p = a.setup_endpoint("p", a_probe).unwrap();
    let b = Env::server("b");
    b.setup_endpoint("keeper", Keeper::default()).unwrap();
    let c = Env::server("c");
    let (c_probe, c_h) = Probe::new();
    c.setup_endpoint("p", c_probe).unwrap();
    let c_p = a
        .setup_endpoint_ref::<ProbeProtocol>(&c.addr(), "p")
        .unwrap();
    let keeper = a
        .setup_endpoint_ref::<KeeperProtocol>(&b.addr(), "keeper")
        .unwrap();
    let kept = keeper.ask(|reply| KeeperAsk::Keep { ep: c_p, reply });
    assert_eq!(answer(kept), Ok("kept".to_string()));
    c_h.wait_for_event(&Event::Text {
        text: "kept".into(),
        sender: Some(b.addr()),
    });
    // Asked after the keeper's send over the same connection, so it would have been first.
    assert_eq!(answer(a_p.ask(|reply| ProbeAsk::Count { reply })), Ok(0));
    assert_eq!(a_h.texts(), Vec::<String>::new());
}
