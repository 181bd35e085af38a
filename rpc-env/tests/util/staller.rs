//! `Staller`: an endpoint whose first numbered message stalls its handler until the test
//! opens a gate, and which counts what arrives and checks it came in order, for the tests
//! of what a sender and a receiver do while one side is stuck.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use rpc_env::{message, EndpointContext, HandlerResult, Protocol, Reply, RpcEndpoint, Threading};

use super::DEADLINE;

message! {
    /// One-way messages of the staller.
    pub enum StallMessage {
        /// Numbered payload; the first one stalls the handler until the gate opens.
        Numbered {
            /// Its number, from 0.
            seq: u64,
            /// Its payload.
            data: Bytes,
        },
    }
}

message! {
    /// Asks of the staller.
    pub enum StallAsk {
        /// Answers how many payloads arrived, and whether all came in order, whole.
        Tally {
            /// The port.
            reply: Reply<(u64, bool)>,
        },
    }
}

/// The staller's protocol.
pub struct StallProtocol;

impl Protocol for StallProtocol {
    type Message = StallMessage;
    type Ask = StallAsk;
    type Control = rpc_env::NoMessage;
}

/// Opens once; the stalled handler waits on it (at most three [`DEADLINE`]s, so a broken
/// test fails instead of hanging).
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

/// The test's side of a staller: whether it stalled, and the gate.
#[derive(Clone)]
pub struct StallHandle {
    gate: Arc<Gate>,
    stalled: Arc<AtomicBool>,
}

impl StallHandle {
    /// Whether the handler is stalled on the first message (or was).
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::SeqCst)
    }

    /// Lets the handler go on.
    pub fn open(&self) {
        *self.gate.open.lock() = true;
        self.gate.opened.notify_all();
    }
}

/// The endpoint.
pub struct Staller {
    handle: StallHandle,
    threading: Threading,
    payload: usize,
    received: u64,
    in_order: bool,
}

impl Staller {
    /// A staller run as `threading`, expecting payloads of `payload` bytes.
    pub fn new(threading: Threading, payload: usize) -> (Staller, StallHandle) {
        let handle = StallHandle {
            gate: Arc::default(),
            stalled: Arc::default(),
        };
        let staller = Staller {
            handle: handle.clone(),
            threading,
            payload,
            received: 0,
            in_order: true,
        };
        (staller, handle)
    }

    fn wait_for_the_gate(&self) {
        let gate = &self.handle.gate;
        let mut open = gate.open.lock();
        let deadline = Instant::now() + DEADLINE * 3;
        while !*open && Instant::now() < deadline {
            gate.opened.wait_until(&mut open, deadline);
        }
    }
}

impl RpcEndpoint for Staller {
    type Protocol = StallProtocol;

    fn threading(&self) -> Threading {
        self.threading
    }

    fn receive(
        &mut self,
        _: &EndpointContext<'_, StallProtocol>,
        msg: StallMessage,
    ) -> HandlerResult {
        let StallMessage::Numbered { seq, data } = msg;
        if seq == 0 {
            self.handle.stalled.store(true, Ordering::SeqCst);
            self.wait_for_the_gate();
        }
        self.in_order &= seq == self.received && data.len() == self.payload;
        self.received += 1;
        Ok(())
    }

    fn receive_and_reply(
        &mut self,
        _: &EndpointContext<'_, StallProtocol>,
        ask: StallAsk,
    ) -> HandlerResult {
        let StallAsk::Tally { reply } = ask;
        reply.send((self.received, self.in_order));
        Ok(())
    }
}
