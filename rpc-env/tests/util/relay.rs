//! A recording relay: what a real env sends, captured to be replayed by a raw socket.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use rpc_env::RpcAddress;

/// A relay on loopback to `target` that records what the connecting side sends.
pub fn recording_relay(target: RpcAddress) -> (RpcAddress, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&recorded);
    thread::spawn(move || {
        let Ok((mut from, _)) = listener.accept() else {
            return;
        };
        let mut to = TcpStream::connect(target.host_port()).unwrap();
        let mut back_from = to.try_clone().unwrap();
        let mut back_to = from.try_clone().unwrap();
        thread::spawn(move || {
            let _ = std::io::copy(&mut back_from, &mut back_to);
        });
        let mut chunk = [0u8; 4096];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 || to.write_all(&chunk[..n]).is_err() {
                break;
            }
            record.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    (RpcAddress::new("127.0.0.1", port), recorded)
}
