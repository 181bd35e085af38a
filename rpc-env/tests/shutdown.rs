//! Shutdown and registration errors (Spark's `NettyRpcEnv.shutdown` / `awaitTermination`
//! and `Dispatcher.registerRpcEndpoint`; every test of Spark's `RpcEnvSuite` ends with
//! `shutdown` + `awaitTermination`, none tests them alone):
//! `shutdown` is idempotent, `await_termination` returns once every `on_stop` has run, asks
//! pending at shutdown fail with `EnvStopped`, nothing can be sent or registered afterwards
//! (`RpcEnv has been stopped`), and a name can be registered only once
//! (`There is already an RpcEndpoint called <name>`).

pub mod util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use ember_test_support::{thread_asleep, wait_for};

use rpc_env::{keys, EndpointContext, HandlerResult, RpcConf, RpcEndpoint, RpcEnv, RpcError};
use util::{answer, echo, text, wait_until, Env, Event, Probe, ProbeAsk, ProbeMessage};
use util::{ProbeProtocol, DEADLINE};

#[test]
fn shutdown_is_idempotent_and_await_termination_returns() {
    let env = Env::server("env");
    assert!(!env.is_stopped());
    env.shutdown();
    env.shutdown();
    assert!(env.is_stopped());
    env.await_termination();
    env.await_termination();
}

#[test]
fn await_termination_on_another_thread_returns_after_shutdown() {
    let env = Env::server("env");
    let (tx, rx) = mpsc::channel();
    let waiter = env.0.clone();
    thread::spawn(move || {
        waiter.await_termination();
        let _ = tx.send(());
    });
    env.shutdown();
    rx.recv_timeout(DEADLINE)
        .expect("await_termination returns");
}

#[test]
fn shutdown_stops_every_endpoint_after_its_queued_messages() {
    let env = Env::server("env");
    let (busy, busy_h) = Probe::new();
    let busy = env.setup_endpoint("busy", busy).unwrap();
    let (idle, idle_h) = Probe::new();
    env.setup_endpoint("idle", idle).unwrap();
    for i in 0..100 {
        busy.send(text(&i.to_string())).unwrap();
    }
    env.shutdown();
    env.await_termination();
    assert_eq!(busy_h.texts().len(), 100);
    assert_eq!(busy_h.events().last(), Some(&Event::Stop));
    assert_eq!(idle_h.events(), [Event::Start, Event::Stop]);
}

#[test]
fn a_local_ask_pending_at_shutdown_fails_with_env_stopped() {
    let env = Env::server("env");
    let (probe, h) = Probe::new();
    let ep = env.setup_endpoint("holder", probe).unwrap();
    let pending = ep.ask(|reply| ProbeAsk::Hold { reply });
    wait_until("the endpoint holds the reply", DEADLINE, || h.held() == 1);
    env.stop_now();
    let error = answer(pending).unwrap_err();
    assert_eq!(error, RpcError::EnvStopped);
    assert_eq!(error.to_string(), "RpcEnv already stopped.");
}

#[test]
fn a_remote_ask_pending_at_shutdown_fails_with_env_stopped() {
    let server = Env::server("server");
    let (probe, h) = Probe::new();
    server.setup_endpoint("holder", probe).unwrap();
    let client = Env::client("client");
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "holder")
        .unwrap();
    let pending = ep.ask(|reply| ProbeAsk::Hold { reply });
    wait_until("the server holds the reply", DEADLINE, || h.held() == 1);
    client.stop_now();
    assert_eq!(answer(pending), Err(RpcError::EnvStopped));
}

#[test]
fn nothing_can_be_sent_or_asked_after_shutdown() {
    let server = Env::server("server");
    let (probe, _h) = Probe::new();
    let local = server.setup_endpoint("echo", probe).unwrap();
    let client = Env::client("client");
    let remote = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "echo")
        .unwrap();
    assert_eq!(answer(remote.ask(echo("before"))), Ok("before".to_string()));

    client.stop_now();
    assert_eq!(remote.send(text("after")), Err(RpcError::EnvStopped));
    assert_eq!(answer(remote.ask(echo("after"))), Err(RpcError::EnvStopped));
    server.stop_now();
    assert_eq!(local.send(text("after")), Err(RpcError::EnvStopped));
    assert_eq!(answer(local.ask(echo("after"))), Err(RpcError::EnvStopped));
}

#[test]
fn setup_endpoint_after_shutdown_fails() {
    let env = Env::server("env");
    env.stop_now();
    let (probe, h) = Probe::new();
    let error = env.setup_endpoint("late", probe).unwrap_err();
    assert_eq!(error, RpcError::RegisterAfterStop);
    assert_eq!(error.to_string(), "RpcEnv has been stopped");
    assert!(h.events().is_empty(), "never started");
}

#[test]
fn a_duplicate_name_fails_and_leaves_the_first_endpoint_alone() {
    let env = Env::server("env");
    let (first, first_h) = Probe::new();
    let ep = env.setup_endpoint("dup", first).unwrap();
    let (second, second_h) = Probe::new();
    let error = env.setup_endpoint("dup", second).unwrap_err();
    assert_eq!(error, RpcError::DuplicateEndpoint { name: "dup".into() });
    assert_eq!(
        error.to_string(),
        "There is already an RpcEndpoint called dup"
    );
    assert_eq!(answer(ep.ask(echo("first"))), Ok("first".to_string()));
    env.stop_now();
    assert!(second_h.events().is_empty(), "the duplicate never started");
    assert_eq!(first_h.events().last(), Some(&Event::Stop));
}

/// Shuts its env down from inside a handler, then waits for the test before returning.
struct ShutsDown {
    shut_down: Arc<AtomicBool>,
    go_on: mpsc::Receiver<()>,
}

impl RpcEndpoint for ShutsDown {
    type Protocol = ProbeProtocol;
    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, ProbeProtocol>,
        _: ProbeMessage,
    ) -> HandlerResult {
        ctx.env().shutdown();
        self.shut_down.store(true, Ordering::SeqCst);
        let _ = self.go_on.recv_timeout(DEADLINE * 3);
        Ok(())
    }
}

#[test]
fn await_termination_waits_for_on_stop_even_when_a_handler_shuts_down() {
    let env = Env::server_with(
        "env",
        RpcConf::new().with(keys::DISPATCHER_NUM_THREADS, "1"),
    );
    let (bystander, bystander_h) = Probe::new();
    env.setup_endpoint("bystander", bystander).unwrap();
    let shut_down = Arc::new(AtomicBool::new(false));
    let (go_on, go_on_rx) = mpsc::channel();
    let endpoint = ShutsDown {
        shut_down: Arc::clone(&shut_down),
        go_on: go_on_rx,
    };
    let killer = env.setup_endpoint("killer", endpoint).unwrap();
    killer.send(text("shut down")).unwrap();
    wait_until("shutdown returned inside the handler", DEADLINE, || {
        shut_down.load(Ordering::SeqCst)
    });
    // The only shared thread is still in the handler, so the bystander's on_stop is pending.
    assert!(!bystander_h.has(&Event::Stop));

    let (tx, rx) = mpsc::channel();
    let waiter: RpcEnv = env.0.clone();
    let watched = bystander_h.clone();
    thread::Builder::new()
        .name("awaits-the-end".into())
        .spawn(move || {
            waiter.await_termination();
            let _ = tx.send(watched.has(&Event::Stop));
        })
        .expect("a thread");
    // A correct await_termination blocks while the handler holds the only thread; a wrong
    // one returns. Release the handler only once the waiter is seen asleep in the call (or
    // has returned, which the assertion below then catches): no window to hope in.
    let returned_early = wait_for("the waiter blocks or returns", DEADLINE, || {
        match rx.try_recv() {
            Ok(stopped) => Ok(Some(stopped)),
            Err(_) if thread_asleep("awaits-the-end") => Ok(None),
            Err(_) => Err("running"),
        }
    });
    let _ = go_on.send(());
    let stopped = match returned_early {
        Some(stopped) => stopped,
        None => rx
            .recv_timeout(DEADLINE)
            .expect("await_termination returns"),
    };
    assert!(
        stopped,
        "await_termination returned before every on_stop ran"
    );
}
