//! Two envs in two processes: Spark's `RpcEnvSuite` remote tests ("send a message remotely",
//! "ask a message remotely") and the client-mode round trip (a client-mode env asks a server
//! and is answered over the connection it opened, as Spark's executors are) across a real
//! process boundary, plus what a client sees when the server process dies.
//!
//! The server is this test binary run again: `child_server` does nothing unless
//! `EMBER_TEST_CHILD` is set, in which case it serves until its stdin closes.

pub mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ember_test_support::exited_within;
use rpc_env::{RpcAddress, RpcEnv, RpcEnvConfig, RpcError, RpcTimeout};
use util::registry::{Registry, RegistryAsk, RegistryProtocol};
use util::{answer, echo, text, Env, Event, Probe, ProbeAsk, ProbeProtocol, DEADLINE};

const CHILD_VAR: &str = "EMBER_TEST_CHILD";

/// The server process: an `echo` probe and a `registry` whose registered refs it asks
/// `ping` and then tells the answer. Prints `PORT <n>`, serves until stdin closes.
#[test]
fn child_server() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let env = RpcEnv::create(RpcEnvConfig::server("child", "127.0.0.1", 0)).unwrap();
    let (probe, _h) = Probe::new();
    env.setup_endpoint("echo", probe).unwrap();
    let (registry, registered) = Registry::new();
    env.setup_endpoint("registry", registry).unwrap();
    thread::spawn(move || {
        for (ep, _) in registered {
            let answer = ep.ask_sync(echo("ping"));
            let _ = ep.send(text(&format!("child asked and got {answer:?}")));
        }
    });
    let port = env.address().unwrap().port();
    println!("PORT {port}");
    std::io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    env.shutdown();
    env.await_termination();
}

/// The child process, killed and reaped if the test ends without [`ChildServer::finish`].
struct ChildServer {
    child: Child,
    stdin: Option<ChildStdin>,
    address: RpcAddress,
}

impl ChildServer {
    fn spawn() -> ChildServer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_server", "--exact", "--nocapture"])
            .env(CHILD_VAR, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the child starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        // Build the guard first, so a failure below still kills the child.
        let mut server = ChildServer {
            child,
            stdin,
            address: RpcAddress::new("127.0.0.1", 0),
        };
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            // Reads to the end, so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("PORT ") {
                    let _ = tx.send(port.trim().parse::<u16>().expect("a port number"));
                }
            }
        });
        let port = rx
            .recv_timeout(DEADLINE)
            .expect("the child prints its port");
        server.address = RpcAddress::new("127.0.0.1", port);
        server
    }

    /// Closes the child's stdin and waits for it to exit.
    fn finish(mut self) -> ExitStatus {
        drop(self.stdin.take());
        exited_within(&mut self.child, DEADLINE).expect("the child did not exit")
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn send_and_ask_across_processes() {
    let child = ChildServer::spawn();
    let client = Env::client("parent");
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&child.address, "echo")
        .unwrap();
    assert_eq!(answer(ep.ask(echo("hello"))), Ok("hello".to_string()));
    for i in 0..100 {
        ep.send(text(&i.to_string())).unwrap();
    }
    assert_eq!(answer(ep.ask(|reply| ProbeAsk::Count { reply })), Ok(100));
    let failed = answer(ep.ask(|reply| ProbeAsk::FailWith {
        message: "Oops".into(),
        reply,
    }));
    assert_eq!(failed, Err(RpcError::failure("Oops")));
    client.stop_now();
    assert!(child.finish().success());
}

#[test]
fn a_server_process_sends_and_asks_back_through_a_client_mode_ref() {
    let child = ChildServer::spawn();
    let client = Env::client("parent");
    let (probe, h) = Probe::new();
    let receiver = client.setup_endpoint("receiver", probe).unwrap();
    let registry = client
        .setup_endpoint_ref::<RegistryProtocol>(&child.address, "registry")
        .unwrap();
    let ask = registry.ask(|reply| RegistryAsk::Register {
        ep: receiver,
        reply,
    });
    assert_eq!(answer(ask), Ok("okay".to_string()));
    h.wait_for_event(&Event::Text {
        text: "welcome".into(),
        sender: Some(child.address.clone()),
    });
    h.wait_for_event(&Event::Text {
        text: "child asked and got Ok(\"ping\")".into(),
        sender: Some(child.address.clone()),
    });
    client.stop_now();
    assert!(child.finish().success());
}

#[test]
fn a_dying_server_process_fails_the_pending_ask_and_disconnects() {
    let mut child = ChildServer::spawn();
    let client = Env::client("parent");
    let (probe, h) = Probe::new();
    client.setup_endpoint("watcher", probe).unwrap();
    let ep = client
        .setup_endpoint_ref::<ProbeProtocol>(&child.address, "echo")
        .unwrap();
    let long = RpcTimeout::new(Duration::from_secs(600), "ember.rpc.askTimeout");
    let pending = ep.ask_with_rpc_timeout(|reply| ProbeAsk::Hold { reply }, &long);
    // The echo is handled after the hold (one connection, one serial endpoint).
    assert_eq!(answer(ep.ask(echo("held?"))), Ok("held?".to_string()));
    h.wait_for_event(&Event::Connected(child.address.clone()));

    child.child.kill().unwrap();
    assert_eq!(
        answer(pending),
        Err(RpcError::ConnectionClosed {
            peer: child.address.host_port()
        })
    );
    h.wait_for_event(&Event::Disconnected(child.address.clone()));
}
