//! Ask timeouts, ported from Spark's `RpcEnvSuite` and `NettyRpcEnvSuite`:
//!
//! - `RpcEnvSuite` "ask a message timeout" (the handler holds the reply instead of sleeping)
//! - `RpcEnvSuite` "construct RpcTimeout with conf property" (through an env's default ask
//!   timeout)
//! - `RpcEnvSuite` "ask a message timeout on Future using RpcTimeout" (the key appears
//!   exactly once)
//! - `NettyRpcEnvSuite` "SPARK-31233: ask rpcEndpointRef in client mode timeout" (names the
//!   socket address)
//!
//! plus: a late reply after a timeout is dropped and the connection stays usable.

pub mod util;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rpc_env::{
    keys, message, EndpointContext, EndpointRef, HandlerResult, NoMessage, Protocol, Reply,
    RpcConf, RpcEndpoint, RpcError, RpcTimeout, TimeoutOrigin,
};
use util::{answer, echo, wait_until, Env, Event, Probe, ProbeAsk, ProbeProtocol, DEADLINE};

fn short(duration: Duration) -> RpcTimeout {
    RpcTimeout::new(duration, "ember.rpc.short.timeout")
}

fn hold(reply: Reply<String>) -> ProbeAsk {
    ProbeAsk::Hold { reply }
}

#[test]
fn a_remote_ask_times_out_naming_the_receiver_and_the_key() {
    let server = Env::server("server");
    let (probe, h) = Probe::new();
    server.setup_endpoint("ask-timeout", probe).unwrap();
    let client = Env::client("client");
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "ask-timeout")
        .unwrap();

    let error =
        answer(ep.ask_with_rpc_timeout(hold, &short(Duration::from_millis(1)))).unwrap_err();
    assert_eq!(
        error,
        RpcError::Timeout {
            to: server.addr().host_port(),
            after: Duration::from_millis(1),
            origin: TimeoutOrigin::Setting("ember.rpc.short.timeout".into()),
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "Cannot receive any reply from {} in 1 millisecond. \
             This timeout is controlled by ember.rpc.short.timeout",
            server.addr()
        )
    );
    assert!(error.is_timeout());

    // The reply comes late: it is dropped, and the connection goes on working.
    wait_until("the server holds the reply", DEADLINE, || h.held() == 1);
    h.release_held("late");
    assert_eq!(answer(ep.ask(echo("next"))), Ok("next".to_string()));
    assert_eq!(h.count(|e| matches!(e, Event::Disconnected(_))), 0);
}

#[test]
fn an_ask_answers_in_time_or_times_out_with_the_key_once() {
    let env = Env::server("local");
    let (probe, _h) = Probe::new();
    let ep = env.setup_endpoint("timeouts", probe).unwrap();
    let in_time = ep.ask_with_rpc_timeout(echo("hello"), &short(Duration::from_secs(10)));
    assert_eq!(answer(in_time), Ok("hello".to_string()));

    let never = ep.ask_with_rpc_timeout(hold, &short(Duration::from_millis(10)));
    let error = answer(never).unwrap_err();
    let text = error.to_string();
    assert_eq!(text.matches("ember.rpc.short.timeout").count(), 1, "{text}");
    assert_eq!(
        text,
        format!(
            "Cannot receive any reply from {} in 10 milliseconds. \
             This timeout is controlled by ember.rpc.short.timeout",
            env.addr()
        )
    );
}

#[test]
fn a_timeout_does_not_fire_early() {
    let env = Env::server("local");
    let (probe, _h) = Probe::new();
    let ep = env.setup_endpoint("not-early", probe).unwrap();
    let timeout = short(Duration::from_millis(300));
    let started = Instant::now();
    let result = answer(ep.ask_with_rpc_timeout(hold, &timeout));
    assert!(
        matches!(result, Err(RpcError::Timeout { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() >= timeout.duration());
}

/// The default timeout of `ask` on an env with `conf`, and the key it names.
fn default_timeout_of(conf: RpcConf) -> (Duration, String) {
    let env = Env::server_with("conf", conf);
    let (probe, _h) = Probe::new();
    let ep = env.setup_endpoint("default-timeout", probe).unwrap();
    match answer(ep.ask(hold)) {
        Err(RpcError::Timeout {
            after,
            origin: TimeoutOrigin::Setting(key),
            ..
        }) => (after, key.to_string()),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn the_default_ask_timeout_comes_from_the_first_key_set() {
    let ask_set = RpcConf::new()
        .with(keys::ASK_TIMEOUT, "200ms")
        .with(keys::NETWORK_TIMEOUT, "100s");
    assert_eq!(
        default_timeout_of(ask_set),
        (Duration::from_millis(200), keys::ASK_TIMEOUT.to_string())
    );
    let network_set = RpcConf::new().with(keys::NETWORK_TIMEOUT, "150ms");
    assert_eq!(
        default_timeout_of(network_set),
        (
            Duration::from_millis(150),
            keys::NETWORK_TIMEOUT.to_string()
        )
    );
}

#[test]
fn rpc_timeout_from_conf_picks_the_first_key_set() {
    let conf = RpcConf::new()
        .with("ember.ask.test.timeout", "30s")
        .with("ember.ask.secondary.timeout", "100s");
    let single = RpcTimeout::from_conf_key(&conf, "ember.ask.test.timeout").unwrap();
    assert_eq!(single.duration(), Duration::from_secs(30));
    let keys = [
        "ember.ask.invalid.timeout",
        "ember.ask.test.timeout",
        "ember.ask.secondary.timeout",
    ];
    let first_set = RpcTimeout::from_conf(&conf, &keys, Duration::from_secs(1)).unwrap();
    assert_eq!(first_set.duration(), Duration::from_secs(30));
    assert_eq!(first_set.key(), "ember.ask.test.timeout");
    let unset = ["ember.ask.default.timeout"];
    let default = RpcTimeout::from_conf(&conf, &unset, Duration::from_secs(1)).unwrap();
    assert_eq!(default.duration(), Duration::from_secs(1));
    assert_eq!(default.key(), "ember.ask.default.timeout");
    let missing = RpcTimeout::from_conf_key(&conf, "ember.ask.default.timeout").unwrap_err();
    assert!(missing.is_not_set());
}

message! {
    /// Asks of a server endpoint that keeps the refs it is given.
    enum KeeperAsk {
        Register { ep: EndpointRef<ProbeProtocol>, reply: Reply<String> },
    }
}

struct KeeperProtocol;
impl Protocol for KeeperProtocol {
    type Message = NoMessage;
    type Ask = KeeperAsk;
    type Control = NoMessage;
}

/// Hands each registered ref, with the address of whoever sent it, to the test.
struct Keeper(mpsc::Sender<(EndpointRef<ProbeProtocol>, String)>);

impl RpcEndpoint for Keeper {
    type Protocol = KeeperProtocol;
    fn receive_and_reply(
        &mut self,
        ctx: &EndpointContext<'_, KeeperProtocol>,
        ask: KeeperAsk,
    ) -> HandlerResult {
        let KeeperAsk::Register { ep, reply } = ask;
        let sender = ctx.sender().map(|a| a.host_port()).unwrap_or_default();
        let _ = self.0.send((ep, sender));
        reply.send("okay".into());
        Ok(())
    }
}

#[test]
fn a_client_mode_ref_timeout_names_its_socket_address() {
    let server = Env::server("server");
    let (tx, rx) = mpsc::channel();
    server.setup_endpoint("keeper", Keeper(tx)).unwrap();
    let client = Env::client("client");
    let (probe, h) = Probe::new();
    let receiver = client.setup_endpoint("receiver", probe).unwrap();
    let keeper = client
        .setup_endpoint_ref::<KeeperProtocol>(&server.addr(), "keeper")
        .unwrap();
    let register = keeper.ask(|reply| KeeperAsk::Register {
        ep: receiver,
        reply,
    });
    assert_eq!(answer(register), Ok("okay".to_string()));
    let (remote_ref, client_socket) = rx.recv_timeout(DEADLINE).expect("registered");

    let timeout = RpcTimeout::new(Duration::from_millis(100), keys::ASK_TIMEOUT);
    let error = answer(remote_ref.ask_with_rpc_timeout(hold, &timeout)).unwrap_err();
    let RpcError::Timeout { to, .. } = &error else {
        panic!("expected a timeout, got {error:?}");
    };
    assert_eq!(*to, client_socket);
    assert!(
        error.to_string().starts_with(&format!(
            "Cannot receive any reply from {client_socket} in 100 milliseconds"
        )),
        "{error}"
    );
    wait_until("the client holds the reply", DEADLINE, || h.held() == 1);
    h.release_held("late");
}
