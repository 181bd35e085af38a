//! A receiver that stops reading: the sender's socket fills, its frames wait in the
//! connection's queue, and once the receiver reads again every message arrives, in order,
//! exactly once. The messages are numbered and the receiver checks each number against its
//! count, so a frame lost, written twice or reordered fails the tally; a partial frame
//! written twice would corrupt the stream and close the connection, failing it too.
//!
//! When a blocked write is tried again (on the socket's writable event, or once more when
//! that event may already have been spent) is the write queue's business, tested without a
//! socket in `connection/write_queue` and with a socket pair in `connection/tests.rs`; from
//! out here only its outcome can be seen.

pub mod util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use rpc_env::{
    message, EndpointContext, HandlerResult, Protocol, Reply, RpcEndpoint, RpcEnvConfig, Threading,
};
use util::{answer, wait_until, Env, DEADLINE};

message! {
    /// One-way messages of the stalling endpoint.
    enum StallMessage {
        /// Numbered payload; the first one stalls the handler until the gate opens.
        Numbered { seq: u64, data: Bytes },
    }
}

message! {
    /// Asks of the stalling endpoint.
    enum StallAsk {
        /// Answers how many payloads arrived, and whether they all came in order.
        Tally { reply: Reply<(u64, bool)> },
    }
}

struct StallProtocol;

impl Protocol for StallProtocol {
    type Message = StallMessage;
    type Ask = StallAsk;
    type Control = rpc_env::NoMessage;
}

/// Opens once; handlers wait on it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self, limit: Duration) {
        let mut open = self.open.lock();
        let deadline = Instant::now() + limit;
        while !*open && Instant::now() < deadline {
            self.opened.wait_until(&mut open, deadline);
        }
    }

    fn open(&self) {
        *self.open.lock() = true;
        self.opened.notify_all();
    }
}

struct Staller {
    gate: Arc<Gate>,
    stalled: Arc<AtomicBool>,
    received: u64,
    in_order: bool,
}

impl RpcEndpoint for Staller {
    type Protocol = StallProtocol;

    /// Inline: the handler runs on the IO thread, so while it waits nothing is read from
    /// the socket and the sender's side fills up.
    fn threading(&self) -> Threading {
        Threading::Inline
    }

    fn receive(
        &mut self,
        _: &EndpointContext<'_, StallProtocol>,
        msg: StallMessage,
    ) -> HandlerResult {
        let StallMessage::Numbered { seq, data } = msg;
        if seq == 0 {
            self.stalled.store(true, Ordering::SeqCst);
            self.gate.wait(Duration::from_secs(60));
        }
        self.in_order &= seq == self.received && data.len() == PAYLOAD;
        self.received += 1;
        Ok(())
    }

    fn receive_and_reply(
        &mut self,
        _: &EndpointContext<'_, StallProtocol>,
        ask: StallAsk,
    ) -> HandlerResult {
        match ask {
            StallAsk::Tally { reply } => reply.send((self.received, self.in_order)),
        }
        Ok(())
    }
}

const PAYLOAD: usize = 4096;
/// 64 MiB: more than the loopback socket buffers of both sides can hold.
const MESSAGES: u64 = 16 * 1024;

#[test]
fn a_stalled_receiver_gets_every_message_once_it_reads_again() {
    let server = Env::server("stall-server");
    let gate = Arc::new(Gate::default());
    let stalled = Arc::new(AtomicBool::new(false));
    server
        .0
        .setup_endpoint(
            "staller",
            Staller {
                gate: Arc::clone(&gate),
                stalled: Arc::clone(&stalled),
                received: 0,
                in_order: true,
            },
        )
        .expect("endpoint");
    // 64 MiB queued on purpose: the default cap on bytes waiting for one connection
    // (`ember.rpc.outbox.maxBytes`, 16m) would close it, so this sender allows more.
    let client = Env::create(
        RpcEnvConfig::client("stall-client")
            .with_conf(rpc_env::RpcConf::new().with(rpc_env::keys::OUTBOX_MAX_BYTES, "256m")),
    );
    let staller = client
        .0
        .setup_endpoint_ref::<StallProtocol>(&server.addr(), "staller")
        .expect("ref");

    // The sends only queue, so they return even while the receiver reads nothing.
    let data = Bytes::from(vec![7u8; PAYLOAD]);
    for seq in 0..MESSAGES {
        staller
            .send(StallMessage::Numbered {
                seq,
                data: data.clone(),
            })
            .expect("send");
    }
    wait_until("the receiver to stall", DEADLINE, || {
        stalled.load(Ordering::SeqCst)
    });
    gate.open();

    let tally = answer(staller.ask(|reply| StallAsk::Tally { reply })).expect("tally");
    assert_eq!(tally, (MESSAGES, true), "every message, in order, once");
}
