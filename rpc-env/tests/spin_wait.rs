//! `ember.rpc.io.spinWait` (Ember's; Spark always parks): with it on, asks over TCP and
//! local ones are answered, one that is never answered still times out when it should,
//! and an env left idle costs nothing: its IO threads poll only after activity, for the
//! window, then park.

pub mod util;

use std::time::{Duration, Instant};

use rpc_env::{keys, RpcConf, RpcError};
use util::{echo, Env, Probe, ProbeAsk, ProbeProtocol};

/// The longest window accepted: a thread that kept polling past it would show plainly.
const SPIN: &str = "10ms";

fn spinning() -> RpcConf {
    RpcConf::new().with(keys::SPIN_WAIT, SPIN)
}

/// CPU time (user + system) the threads of this process whose names start with `prefix`
/// have used, from `/proc/self/task/*/stat`, in clock ticks (10 ms each).
fn thread_cpu_ticks(prefix: &str) -> u64 {
    let mut ticks = 0;
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // `pid (comm) state ...`: the name is between the first '(' and the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime: fields 14 and 15 of the file, 12 and 13 after the name.
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        ticks += field(11).unwrap_or(0) + field(12).unwrap_or(0);
    }
    ticks
}

#[test]
fn asks_are_answered_and_time_out_with_the_spin_on() {
    let server = Env::server_with("spin-srv", spinning());
    let (probe, _handle) = Probe::new();
    let local = server.setup_endpoint("probe", probe).unwrap();
    let client = Env::create(rpc_env::RpcEnvConfig::client("spin-cli").with_conf(spinning()));
    let remote = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "probe")
        .unwrap();

    for i in 0..200 {
        let text = format!("round {i}");
        assert_eq!(remote.ask_sync(echo(&text)), Ok(text.clone()));
        assert_eq!(local.ask_sync(echo(&text)), Ok(text));
    }

    // Never answered: the spin is bounded, the ask's own timeout still ends it.
    let after = Duration::from_millis(100);
    let started = Instant::now();
    let held = remote
        .ask_with_timeout(|reply| ProbeAsk::Hold { reply }, after)
        .wait();
    assert!(matches!(held, Err(RpcError::Timeout { .. })), "{held:?}");
    assert!(started.elapsed() >= after, "not before its time");
}

#[test]
fn an_idle_env_with_the_spin_on_costs_no_cpu() {
    let server = Env::server_with("idle-srv", spinning());
    let (probe, _handle) = Probe::new();
    server.setup_endpoint("probe", probe).unwrap();
    let client = Env::create(rpc_env::RpcEnvConfig::client("idle-cli").with_conf(spinning()));
    let remote = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "probe")
        .unwrap();
    // Activity opens the IO threads' windows on both sides.
    for i in 0..100 {
        let text = format!("round {i}");
        assert_eq!(remote.ask_sync(echo(&text)), Ok(text));
    }

    // Then nothing, for a second (a hundred times the window): a thread that kept polling
    // would use about a hundred ticks of it; parked ones use none. A few ticks allow for
    // the windows' end and the clock's granularity.
    let before = thread_cpu_ticks("idle-srv-rpc-io") + thread_cpu_ticks("idle-cli-rpc-io");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = thread_cpu_ticks("idle-srv-rpc-io") + thread_cpu_ticks("idle-cli-rpc-io");
    assert!(
        after - before <= 5,
        "the idle IO threads used {} ticks of CPU in a second",
        after - before
    );
}
