//! Logging under attack is rate-limited: a peer that sends a hundred thousand messages to an
//! endpoint that does not exist, or opens hundreds of connections that each send a bad frame,
//! costs a handful of log lines, while the env's counters say exactly how many there were.
//!
//! One test in this file: it installs the process's logger, which counts every line.

pub mod util;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};

use rpc_env::{keys, RpcConf, RpcEnvConfig};
use util::{text, wait_until, Env, ProbeProtocol, DEADLINE};

/// Counts the lines at warning level or worse.
struct CountingLogger;

static LOUD_LINES: AtomicUsize = AtomicUsize::new(0);

impl log::Log for CountingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            LOUD_LINES.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn flush(&self) {}
}

static LOGGER: CountingLogger = CountingLogger;

#[test]
fn floods_of_bad_traffic_cost_a_handful_of_log_lines_and_exact_counts() {
    log::set_logger(&LOGGER).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Warn);
    let conf = RpcConf::new().with(keys::AUTHENTICATE, "false");
    let server = Env::server_with("log-flood-server", conf.clone());

    // A hundred thousand messages for an endpoint nobody registered.
    const UNROUTABLE: u64 = 100_000;
    let client = Env::create(RpcEnvConfig::client("log-flood-client").with_conf(conf));
    let nobody = client.endpoint_ref_at::<ProbeProtocol>(&server.addr(), "nobody");
    for i in 0..UNROUTABLE {
        nobody.send(text(&i.to_string())).expect("queued");
    }
    wait_until("every message to arrive", DEADLINE, || {
        server.network_stats().unroutable_messages == UNROUTABLE
    });

    // Hundreds of connections that each send a frame with a bad kind byte.
    const BAD_CONNECTIONS: u64 = 300;
    let addr = server.addr().host_port();
    for _ in 0..BAD_CONNECTIONS {
        let mut s = TcpStream::connect(&addr).expect("connects");
        // Length 9 (the fixed header), then a kind byte no frame has and a request id.
        let _ = s.write_all(&[0, 0, 0, 9, 0xee, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
    wait_until("every bad connection to be closed", DEADLINE, || {
        server.network_stats().protocol_errors == BAD_CONNECTIONS
    });

    let lines = LOUD_LINES.load(Ordering::SeqCst);
    // Ten per call site per minute (`rpc_env::log_limit`), and two call sites were hit.
    assert!(
        lines <= 2 * rpc_env::log_limit::LINES_PER_WINDOW as usize,
        "{lines} lines logged"
    );
    assert!(lines >= 2, "the first lines are still logged ({lines})");
}
