//! A key-value store over rpc-env: a server process and a client-mode process, with watch
//! callbacks through a ref passed inside a message.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release -p rpc-env --example kv_store
//! ```
//!
//! The example starts a copy of itself as the server (`kv_store server`), which registers a
//! `kv` endpoint on a free loopback port and prints the port. This process is a client-mode
//! env (no listener): it registers a `watcher` endpoint and hands the server a ref to it in
//! a `Watch` ask; the server then tells that ref of every change under the watched prefix,
//! over the connection the ref came on. The client plays 10,000 mixed operations, checks
//! every answer against a model of its own, checks that each change under the prefix was
//! told exactly once and in order, and prints what it saw.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rpc_env::{
    protocol, EndpointContext, EndpointRef, HandlerResult, Reply, RpcEndpoint, RpcEnv, RpcEnvConfig,
};

protocol! {
    /// The store's protocol: asks only.
    pub protocol KvProtocol {
        /// What the store is asked.
        ask KvAsk {
            /// Sets `key` to `value`; answers the value it replaced.
            Put {
                /// The key.
                key: String,
                /// The new value.
                value: String,
                /// The old value, if there was one.
                reply: Reply<Option<String>>,
            },
            /// Answers the value of `key`.
            Get {
                /// The key.
                key: String,
                /// Its value, if it has one.
                reply: Reply<Option<String>>,
            },
            /// Removes `key`; answers the value it had.
            Delete {
                /// The key.
                key: String,
                /// The value removed, if there was one.
                reply: Reply<Option<String>>,
            },
            /// From now on, tells `watcher` of every change to a key that starts with
            /// `prefix`; answers once the watch is in place.
            Watch {
                /// The keys watched.
                prefix: String,
                /// Who is told.
                watcher: EndpointRef<WatcherProtocol>,
                /// The acknowledgement.
                reply: Reply<()>,
            },
        }
    }
}

protocol! {
    /// A watcher's protocol: one-way notices only.
    pub protocol WatcherProtocol {
        /// What a watcher is told.
        message WatchMessage {
            /// A key changed: the key and its new value, or `None` when it was deleted.
            Changed(String, Option<String>),
        }
    }
}

/// The store: a map and its watches.
#[derive(Default)]
struct Store {
    entries: BTreeMap<String, String>,
    watches: Vec<(String, EndpointRef<WatcherProtocol>)>,
}

impl Store {
    /// Tells the watchers of `key` its new value.
    fn changed(&self, key: &str, value: Option<&String>) {
        for (prefix, watcher) in &self.watches {
            if key.starts_with(prefix.as_str()) {
                let notice = WatchMessage::Changed(key.to_string(), value.cloned());
                if let Err(e) = watcher.send(notice) {
                    log::warn!("Could not tell {watcher} of {key}: {e}");
                }
            }
        }
    }
}

impl RpcEndpoint for Store {
    type Protocol = KvProtocol;

    fn receive_and_reply(
        &mut self,
        _: &EndpointContext<'_, KvProtocol>,
        ask: KvAsk,
    ) -> HandlerResult {
        match ask {
            KvAsk::Put { key, value, reply } => {
                let old = self.entries.insert(key.clone(), value);
                self.changed(&key, self.entries.get(&key));
                reply.send(old);
            }
            KvAsk::Get { key, reply } => reply.send(self.entries.get(&key).cloned()),
            KvAsk::Delete { key, reply } => {
                let old = self.entries.remove(&key);
                if old.is_some() {
                    self.changed(&key, None);
                }
                reply.send(old);
            }
            KvAsk::Watch {
                prefix,
                watcher,
                reply,
            } => {
                self.watches.push((prefix, watcher));
                reply.send(());
            }
        }
        Ok(())
    }
}

/// The client's watcher: hands each notice to the main thread.
struct Watcher {
    seen: mpsc::Sender<(String, Option<String>)>,
}

impl RpcEndpoint for Watcher {
    type Protocol = WatcherProtocol;

    fn receive(
        &mut self,
        _: &EndpointContext<'_, WatcherProtocol>,
        msg: WatchMessage,
    ) -> HandlerResult {
        let WatchMessage::Changed(key, value) = msg;
        let _ = self.seen.send((key, value));
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

/// The server process: the `kv` endpoint until stdin closes (the client went away).
fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let env = RpcEnv::create(RpcEnvConfig::server("kv-server", "127.0.0.1", 0))?;
    env.setup_endpoint("kv", Store::default())?;
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

/// The client process: watch, play the operations against a model, check, report.
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

    let env = RpcEnv::create(RpcEnvConfig::client("kv-client"))?;
    let (seen_tx, seen_rx) = mpsc::channel();
    let watcher = env.setup_endpoint("watcher", Watcher { seen: seen_tx })?;
    let kv: EndpointRef<KvProtocol> =
        env.setup_endpoint_ref_by_uri(&format!("ember://kv@127.0.0.1:{port}"))?;
    kv.ask_sync(|reply| KvAsk::Watch {
        prefix: "user/".to_string(),
        watcher: watcher.clone(),
        reply,
    })?;

    const OPERATIONS: u64 = 10_000;
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    let mut expected_notices = Vec::new();
    // A fixed sequence of mixed operations (a small linear congruential generator).
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..OPERATIONS {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let space = if (state >> 33) % 2 == 0 {
            "user"
        } else {
            "other"
        };
        let key = format!("{space}/{}", (state >> 40) % 64);
        match (state >> 20) % 3 {
            0 => {
                let value = format!("v{i}");
                let old = kv.ask_sync(|reply| KvAsk::Put {
                    key: key.clone(),
                    value: value.clone(),
                    reply,
                })?;
                assert_eq!(old, model.insert(key.clone(), value.clone()), "put {key}");
                if space == "user" {
                    expected_notices.push((key, Some(value)));
                }
            }
            1 => {
                let got = kv.ask_sync(|reply| KvAsk::Get {
                    key: key.clone(),
                    reply,
                })?;
                assert_eq!(got.as_ref(), model.get(&key), "get {key}");
            }
            _ => {
                let old = kv.ask_sync(|reply| KvAsk::Delete {
                    key: key.clone(),
                    reply,
                })?;
                let was = model.remove(&key);
                assert_eq!(old, was, "delete {key}");
                if space == "user" && was.is_some() {
                    expected_notices.push((key, None));
                }
            }
        }
    }
    for (n, expected) in expected_notices.iter().enumerate() {
        let notice = seen_rx.recv_timeout(Duration::from_secs(10))?;
        assert_eq!(&notice, expected, "notice {n} arrives once and in order");
    }
    println!(
        "client: {OPERATIONS} operations answered as the model says; {} keys left; \
         {} changes under user/ told to the watcher, in order",
        model.len(),
        expected_notices.len()
    );

    env.shutdown();
    drop(server.stdin.take());
    server.wait()?;
    Ok(())
}
