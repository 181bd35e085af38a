//! Control messages (`Protocol::Control`, sent through a `ControlRef`): they reach the same
//! inbox as local sends, in order with them, with no sender; control asks are answered, or
//! failed by a panicking handler or a missing endpoint; and a remote env that sends the
//! endpoint anything reaches only its wire messages.

pub mod util;

use std::sync::{Arc, Mutex};

use rpc_env::{
    message, ConcurrentRpcEndpoint, ControlRef, EndpointContext, HandlerResult, NoMessage,
    Protocol, Reply, RpcEndpoint, RpcError,
};
use util::{answer, wait_until, Env, DEADLINE};

message! {
    /// What peers may send the counter.
    pub enum CounterMessage {
        /// Adds `n`, recording `"wire <n>"`.
        Add {
            /// How much.
            n: u32,
        },
    }
}

/// What only the counter's process may send it.
pub enum CounterControl {
    /// Adds `n`, recording `"control <n>"`.
    Add {
        /// How much.
        n: u32,
        /// Shared state, which a wire message could not carry.
        seen: Arc<Mutex<Vec<String>>>,
    },
    /// Answers with the total.
    Total {
        /// The answer.
        reply: Reply<u64>,
    },
    /// Panics in the handler.
    Panic {
        /// Never answered.
        reply: Reply<u64>,
    },
}

struct CounterProtocol;

impl Protocol for CounterProtocol {
    type Message = CounterMessage;
    type Ask = NoMessage;
    type Control = CounterControl;
}

/// Records what it is sent, and whether a control message had a sender.
struct Counter {
    total: u64,
    log: Arc<Mutex<Vec<String>>>,
}

impl RpcEndpoint for Counter {
    type Protocol = CounterProtocol;

    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, CounterProtocol>,
        msg: CounterMessage,
    ) -> HandlerResult {
        let CounterMessage::Add { n } = msg;
        self.total += u64::from(n);
        let from = if ctx.sender().is_some() {
            "remote"
        } else {
            "here"
        };
        self.log.lock().unwrap().push(format!("wire {n} ({from})"));
        Ok(())
    }

    fn receive_control(
        &mut self,
        ctx: &EndpointContext<'_, CounterProtocol>,
        msg: CounterControl,
    ) -> HandlerResult {
        assert!(ctx.sender().is_none(), "a control message has no sender");
        match msg {
            CounterControl::Add { n, seen } => {
                self.total += u64::from(n);
                self.log.lock().unwrap().push(format!("control {n}"));
                seen.lock().unwrap().push(format!("control {n}"));
            }
            CounterControl::Total { reply } => reply.send(self.total),
            CounterControl::Panic { reply: _ } => panic!("control handler bug"),
        }
        Ok(())
    }
}

fn counter(env: &Env) -> (ControlRef<CounterProtocol>, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let endpoint = Counter {
        total: 0,
        log: Arc::clone(&log),
    };
    env.setup_endpoint("counter", endpoint).unwrap();
    (env.control_ref::<CounterProtocol>("counter"), log)
}

#[test]
fn control_messages_and_local_sends_share_one_inbox_in_order() {
    let env = Env::server("control");
    let (control, log) = counter(&env);
    let wire = env.local_ref::<CounterProtocol>("counter");
    let seen = Arc::new(Mutex::new(Vec::new()));
    for n in 0..50 {
        if n % 2 == 0 {
            wire.send(CounterMessage::Add { n }).unwrap();
        } else {
            let seen = Arc::clone(&seen);
            control.send(CounterControl::Add { n, seen }).unwrap();
        }
    }
    let total = answer(control.ask(|reply| CounterControl::Total { reply }));
    assert_eq!(total, Ok((0..50).sum::<u64>()));
    let expected: Vec<String> = (0..50)
        .map(|n| {
            if n % 2 == 0 {
                format!("wire {n} (remote)")
            } else {
                format!("control {n}")
            }
        })
        .collect();
    // A local send in a server env names the env's own address as its sender.
    assert_eq!(*log.lock().unwrap(), expected);
    assert_eq!(
        seen.lock().unwrap().len(),
        25,
        "the shared state arrived as is"
    );
}

#[test]
fn a_control_ask_fails_when_its_handler_panics_and_the_endpoint_lives_on() {
    let env = Env::server("control");
    let (control, _log) = counter(&env);
    let failed = answer(control.ask(|reply| CounterControl::Panic { reply }));
    assert!(
        matches!(&failed, Err(RpcError::Failure { message }) if message.contains("control handler bug")),
        "{failed:?}"
    );
    assert_eq!(
        answer(control.ask(|reply| CounterControl::Total { reply })),
        Ok(0)
    );
}

#[test]
fn a_control_ref_to_a_missing_endpoint_or_a_stopped_one_fails_at_once() {
    let env = Env::server("control");
    let nobody = env.control_ref::<CounterProtocol>("nobody");
    let seen = Arc::new(Mutex::new(Vec::new()));
    assert_eq!(
        nobody.send(CounterControl::Add { n: 1, seen }),
        Err(RpcError::EndpointNotFound {
            name: "nobody".into()
        })
    );
    assert_eq!(
        answer(nobody.ask(|reply| CounterControl::Total { reply })),
        Err(RpcError::EndpointNotFound {
            name: "nobody".into()
        })
    );
    // Taken before the endpoint exists, it works once it does (as `local_ref`).
    let early = env.control_ref::<CounterProtocol>("counter");
    let (_control, _log) = counter(&env);
    assert_eq!(
        answer(early.ask(|reply| CounterControl::Total { reply })),
        Ok(0)
    );
    env.stop(&env.local_ref::<CounterProtocol>("counter"));
    assert!(answer(early.ask(|reply| CounterControl::Total { reply })).is_err());
}

#[test]
fn a_remote_env_reaches_the_wire_messages_only() {
    let server = Env::server("control");
    let (control, log) = counter(&server);
    let client = Env::client("peer");
    let remote = client
        .setup_endpoint_ref::<CounterProtocol>(&server.addr(), "counter")
        .unwrap();
    remote.send(CounterMessage::Add { n: 7 }).unwrap();
    wait_until("the remote message arrives", DEADLINE, || {
        log.lock().unwrap().len() == 1
    });
    assert_eq!(*log.lock().unwrap(), vec!["wire 7 (remote)".to_string()]);
    assert_eq!(
        answer(control.ask(|reply| CounterControl::Total { reply })),
        Ok(7)
    );
}

/// The concurrent flavour of the counter: control messages reach `receive_control` too.
struct SharedCounter(Mutex<u64>);

impl ConcurrentRpcEndpoint for SharedCounter {
    type Protocol = CounterProtocol;

    fn threads(&self) -> usize {
        2
    }

    fn receive_control(
        &self,
        _ctx: &EndpointContext<'_, CounterProtocol>,
        msg: CounterControl,
    ) -> HandlerResult {
        match msg {
            CounterControl::Add { n, .. } => *self.0.lock().unwrap() += u64::from(n),
            CounterControl::Total { reply } => reply.send(*self.0.lock().unwrap()),
            CounterControl::Panic { .. } => panic!("control handler bug"),
        }
        Ok(())
    }
}

#[test]
fn a_concurrent_endpoint_takes_control_messages() {
    let env = Env::server("control");
    env.setup_concurrent_endpoint("shared", SharedCounter(Mutex::new(0)))
        .unwrap();
    let control = env.control_ref::<CounterProtocol>("shared");
    let seen = Arc::new(Mutex::new(Vec::new()));
    control.send(CounterControl::Add { n: 5, seen }).unwrap();
    wait_until("the add is handled", DEADLINE, || {
        answer(control.ask(|reply| CounterControl::Total { reply })) == Ok(5)
    });
}
