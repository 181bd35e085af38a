//! Ping-pong between two processes over rpc-env.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release -p rpc-env --example ping_pong
//! ```
//!
//! The example starts a copy of itself as the server process (`ping_pong server`), which
//! registers a `pong` endpoint on a free loopback port and prints the port. This process is
//! a client-mode env: it looks `pong` up by URI, registers its own `ping` endpoint, sends
//! the server a ref to it, and then plays a round of asks; the server answers and also sends
//! one-way messages back to the ref it was given (reaching a client-mode endpoint over the
//! connection the ref came on). It prints the round-trip times and exits.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rpc_env::{
    protocol, EndpointContext, EndpointRef, HandlerResult, Reply, RpcEndpoint, RpcEnv, RpcEnvConfig,
};

protocol! {
    /// The `pong` endpoint's protocol: asks only.
    pub protocol PongProtocol {
        /// What the `pong` endpoint is asked.
        ask PongAsk {
            /// Answers `round`; also sends a `Ponged` to `ping`.
            Ping {
                /// The round number, echoed back.
                round: u32,
                /// Where to send the `Ponged` notice.
                ping: EndpointRef<PingProtocol>,
                /// The answer: `round`.
                reply: Reply<u32>,
            },
        }
    }
}

protocol! {
    /// The `ping` endpoint's protocol: one-way notices only.
    pub protocol PingProtocol {
        /// What the `ping` endpoint is told.
        message PingMessage {
            /// The server handled this round.
            Ponged(u32),
        }
    }
}

struct Pong;

impl RpcEndpoint for Pong {
    type Protocol = PongProtocol;

    fn receive_and_reply(
        &mut self,
        _: &EndpointContext<'_, PongProtocol>,
        ask: PongAsk,
    ) -> HandlerResult {
        let PongAsk::Ping { round, ping, reply } = ask;
        ping.send(PingMessage::Ponged(round))?;
        reply.send(round);
        Ok(())
    }
}

struct Ping {
    ponged: mpsc::Sender<u32>,
}

impl RpcEndpoint for Ping {
    type Protocol = PingProtocol;

    fn receive(
        &mut self,
        _: &EndpointContext<'_, PingProtocol>,
        msg: PingMessage,
    ) -> HandlerResult {
        let PingMessage::Ponged(round) = msg;
        let _ = self.ponged.send(round);
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    if std::env::args().nth(1).as_deref() == Some("server") {
        return serve();
    }
    play()
}

/// The server process: a `pong` endpoint until stdin closes (the client went away).
fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let env = RpcEnv::create(RpcEnvConfig::server("pong-server", "127.0.0.1", 0))?;
    env.setup_endpoint("pong", Pong)?;
    let port = env
        .address()
        .map(|a| a.port())
        .ok_or("the server has no address")?;
    println!("PORT {port}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line)? > 0 {}
    env.shutdown();
    Ok(())
}

/// The client process: look `pong` up, play the rounds, report.
fn play() -> Result<(), Box<dyn std::error::Error>> {
    let mut server = Command::new(std::env::current_exe()?)
        .arg("server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = server.stdout.take().ok_or("no server stdout")?;
    let mut first_line = String::new();
    BufReader::new(stdout).read_line(&mut first_line)?;
    let port = first_line
        .trim()
        .strip_prefix("PORT ")
        .ok_or_else(|| format!("unexpected server output: {first_line:?}"))?;

    let env = RpcEnv::create(RpcEnvConfig::client("ping-client"))?;
    let (ponged_tx, ponged_rx) = mpsc::channel();
    let ping = env.setup_endpoint("ping", Ping { ponged: ponged_tx })?;
    let pong: EndpointRef<PongProtocol> =
        env.setup_endpoint_ref_by_uri(&format!("ember://pong@127.0.0.1:{port}"))?;
    println!("client: found {pong}");

    const ROUNDS: u32 = 10_000;
    let mut micros = Vec::with_capacity(ROUNDS as usize);
    for round in 0..ROUNDS {
        let start = Instant::now();
        let answer = pong.ask_sync(|reply| PongAsk::Ping {
            round,
            ping: ping.clone(),
            reply,
        })?;
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        assert_eq!(answer, round, "the server answers the round it was asked");
    }
    for round in 0..ROUNDS {
        let seen = ponged_rx.recv_timeout(Duration::from_secs(10))?;
        assert_eq!(seen, round, "one-way messages arrive in order");
    }
    micros.sort_by(f64::total_cmp);
    println!(
        "client: {ROUNDS} asks answered and {ROUNDS} pongs received in order; \
         round trip p50 {:.1} us, p99 {:.1} us",
        micros[micros.len() / 2],
        micros[micros.len() * 99 / 100]
    );

    env.shutdown();
    drop(server.stdin.take());
    server.wait()?;
    Ok(())
}
