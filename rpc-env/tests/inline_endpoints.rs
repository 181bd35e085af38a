//! `Threading::Inline` endpoints: an idle endpoint's message is handled on the thread that
//! delivers it (the IO thread that read it, or the local sender); everything else about an endpoint stays as it was (one
//! handler at a time, FIFO per peer), and waiting for an ask there fails at once instead of
//! stalling the IO thread. Ember's own extension; Spark has no counterpart.

pub mod util;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use rpc_env::{
    message, EndpointContext, EndpointRef, HandlerResult, Protocol, Reply, RpcEndpoint, RpcError,
    Threading,
};
use util::{answer, Env};

message! {
    /// One-way messages of the inline endpoint.
    enum InlineMessage {
        /// Counted, checking that no other handler runs at the same time.
        Add,
    }
}

message! {
    /// Asks of the inline endpoint.
    enum InlineAsk {
        /// Answers the name of the thread the handler runs on.
        WhereAmI { reply: Reply<String> },
        /// Answers how many `Add`s were handled.
        Count { reply: Reply<u64> },
        /// Asks `target` and waits for it inside the handler; answers what the wait gave.
        WaitFor { target: EndpointRef<InlineProtocol>, reply: Reply<String> },
    }
}

/// The inline endpoint's protocol.
struct InlineProtocol;

impl Protocol for InlineProtocol {
    type Message = InlineMessage;
    type Ask = InlineAsk;
    type Control = rpc_env::NoMessage;
}

struct Inliner {
    threading: Threading,
    count: u64,
    in_handler: Arc<AtomicUsize>,
    overlapped: Arc<AtomicBool>,
}

impl Inliner {
    fn new(threading: Threading) -> (Inliner, Arc<AtomicBool>) {
        let overlapped = Arc::new(AtomicBool::new(false));
        let inliner = Inliner {
            threading,
            count: 0,
            in_handler: Arc::new(AtomicUsize::new(0)),
            overlapped: Arc::clone(&overlapped),
        };
        (inliner, overlapped)
    }

    fn enter(&self) {
        if self.in_handler.fetch_add(1, Ordering::SeqCst) != 0 {
            self.overlapped.store(true, Ordering::SeqCst);
        }
    }

    fn leave(&self) {
        self.in_handler.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RpcEndpoint for Inliner {
    type Protocol = InlineProtocol;

    fn threading(&self) -> Threading {
        self.threading
    }

    fn receive(
        &mut self,
        _: &EndpointContext<'_, InlineProtocol>,
        msg: InlineMessage,
    ) -> HandlerResult {
        self.enter();
        let InlineMessage::Add = msg;
        self.count += 1;
        self.leave();
        Ok(())
    }

    fn receive_and_reply(
        &mut self,
        _: &EndpointContext<'_, InlineProtocol>,
        ask: InlineAsk,
    ) -> HandlerResult {
        self.enter();
        match ask {
            InlineAsk::WhereAmI { reply } => {
                reply.send(std::thread::current().name().unwrap_or("").to_string())
            }
            InlineAsk::Count { reply } => reply.send(self.count),
            InlineAsk::WaitFor { target, reply } => {
                let waited = target.ask_sync(|r| InlineAsk::WhereAmI { reply: r });
                reply.send(format!("{waited:?}"));
            }
        }
        self.leave();
        Ok(())
    }
}

fn where_am_i(ep: &EndpointRef<InlineProtocol>) -> String {
    answer(ep.ask(|reply| InlineAsk::WhereAmI { reply })).expect("answers")
}

#[test]
fn remote_messages_run_on_the_io_thread_local_ones_on_the_sending_thread() {
    let server = Env::server("server");
    let (inliner, _) = Inliner::new(Threading::Inline);
    let local = server.setup_endpoint("inline", inliner).unwrap();
    let client = Env::client("client");
    let remote = client
        .setup_endpoint_ref::<InlineProtocol>(&server.addr(), "inline")
        .unwrap();
    // Until its `on_start` has run on the message loop, an inline endpoint's messages wait
    // for it there; from then on they run on the IO thread that reads them.
    util::wait_until(
        "a remote ask to run on the IO thread",
        util::DEADLINE,
        || where_am_i(&remote).contains("rpc-io"),
    );
    let local_thread = where_am_i(&local);
    let me = std::thread::current().name().unwrap_or("").to_string();
    assert_eq!(local_thread, me, "a local ask runs on the asking thread");
}

#[test]
fn a_shared_endpoint_never_runs_on_the_io_thread() {
    let server = Env::server("server");
    let (inliner, _) = Inliner::new(Threading::Shared);
    server.setup_endpoint("shared", inliner).unwrap();
    let client = Env::client("client");
    let remote = client
        .setup_endpoint_ref::<InlineProtocol>(&server.addr(), "shared")
        .unwrap();
    let thread = where_am_i(&remote);
    assert!(
        thread.starts_with("dispatcher-event-loop"),
        "ran on {thread}"
    );
}

#[test]
fn inline_handlers_stay_serial_and_in_order_under_mixed_local_and_remote_load() {
    let server = Env::server("server");
    let (inliner, overlapped) = Inliner::new(Threading::Inline);
    let local = server.setup_endpoint("inline", inliner).unwrap();
    let clients: Vec<Env> = (0..3)
        .map(|i| Env::client(&format!("client-{i}")))
        .collect();
    let senders: Vec<_> = clients
        .iter()
        .map(|c| {
            let ep = c
                .setup_endpoint_ref::<InlineProtocol>(&server.addr(), "inline")
                .unwrap();
            std::thread::spawn(move || {
                for _ in 0..2_000 {
                    ep.send(InlineMessage::Add).unwrap();
                }
                // FIFO per peer: this count is asked after this client's sends, so it sees
                // all of them.
                answer(ep.ask(|reply| InlineAsk::Count { reply })).unwrap()
            })
        })
        .collect();
    for _ in 0..2_000 {
        local.send(InlineMessage::Add).unwrap();
    }
    for s in senders {
        let seen = s.join().expect("sender");
        assert!(seen >= 2_000, "a client's count saw only {seen} adds");
    }
    util::wait_until("every add is handled", util::DEADLINE, || {
        answer(local.ask(|reply| InlineAsk::Count { reply })) == Ok(8_000)
    });
    assert!(
        !overlapped.load(Ordering::SeqCst),
        "two handlers of one endpoint ran at once"
    );
}

#[test]
fn waiting_for_an_ask_on_an_io_thread_fails_at_once() {
    let server = Env::server("server");
    let (inliner, _) = Inliner::new(Threading::Inline);
    server.setup_endpoint("inline", inliner).unwrap();
    let (other, _) = Inliner::new(Threading::Shared);
    server.setup_endpoint("other", other).unwrap();
    let client = Env::client("client");
    let remote = client
        .setup_endpoint_ref::<InlineProtocol>(&server.addr(), "inline")
        .unwrap();
    let target = client
        .setup_endpoint_ref::<InlineProtocol>(&server.addr(), "other")
        .unwrap();
    // Until its `on_start` has run on the message loop, an inline endpoint's messages wait
    // for it there; from then on they run on the IO thread that reads them.
    util::wait_until(
        "the inline endpoint runs on the IO thread",
        util::DEADLINE,
        || where_am_i(&remote).contains("rpc-io"),
    );
    let waited = answer(remote.ask(|reply| InlineAsk::WaitFor { target, reply })).unwrap();
    assert_eq!(
        waited,
        format!("{:?}", Err::<String, _>(RpcError::BlockingOnIoThread))
    );
    // The IO thread was not stalled: the endpoint and the connection still work.
    assert!(where_am_i(&remote).contains("rpc-io"));
}
