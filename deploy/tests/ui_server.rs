//! A master's status UI under slow peers: connections that never send a request cost the
//! master no thread each, and once their time is up the UI answers again. One test in
//! this file, so the process's thread count is the master's alone.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ember_deploy::{start_master, MasterConfig};
use ember_test_support::{wait_for, DEADLINE};
use rpc_env::{keys, RpcConf};

/// The threads of this process now.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

fn get_status(addr: SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /json HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn idle_connections_cost_no_thread_and_the_ui_recovers_when_their_time_is_up() {
    let conf = RpcConf::new().with(keys::AUTHENTICATE, "false");
    let master = start_master(MasterConfig::local().with_conf(conf)).expect("a master");
    let ui = master.ui_address().expect("its UI");
    assert_eq!(get_status(ui), Some(200));
    let before = threads();
    // Three hundred connections that never send a byte: far more than the UI's four
    // workers and its queue hold.
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(ui).expect("connects"))
        .collect();
    let during = threads();
    assert!(
        during <= before,
        "{before} threads before, {during} with 300 idle connections"
    );
    // They are closed unanswered once their request deadline (3 s) passes; the UI then
    // answers a real request.
    let status = wait_for("the UI to answer again", DEADLINE, || {
        match get_status(ui) {
            Some(200) => Ok(200),
            other => Err(other),
        }
    });
    assert_eq!(status, 200);
    assert!(threads() <= before);
    drop(idle);
    master.shutdown();
}
