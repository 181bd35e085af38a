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

use bytes::Bytes;
use rpc_env::Threading;
use util::staller::{StallAsk, StallMessage, StallProtocol, Staller};
use util::{answer, wait_until, Env, DEADLINE};

const PAYLOAD: usize = 4096;
/// 64 MiB: more than the loopback socket buffers of both sides can hold.
const MESSAGES: u64 = 16 * 1024;

#[test]
fn a_stalled_receiver_gets_every_message_once_it_reads_again() {
    let server = Env::server("stall-server");
    // Inline: the handler runs on the IO thread, so while it waits nothing is read from the
    // socket and the sender's side fills up. (This process's own sends are not capped by
    // `ember.rpc.outbox.maxBytes`: that cap is on answers to a peer's asks.)
    let (staller, stall) = Staller::new(Threading::Inline, PAYLOAD);
    server
        .0
        .setup_endpoint("staller", staller)
        .expect("endpoint");
    let client = Env::create(rpc_env::RpcEnvConfig::client("stall-client"));
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
    wait_until("the receiver to stall", DEADLINE, || stall.stalled());
    stall.open();

    let tally = answer(staller.ask(|reply| StallAsk::Tally { reply })).expect("tally");
    assert_eq!(tally, (MESSAGES, true), "every message, in order, once");
}
