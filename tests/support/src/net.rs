//! Free ports.

use std::net::{Ipv4Addr, TcpListener};

/// A TCP port on 127.0.0.1 that nothing listened on a moment ago (bound to port 0, read,
/// released), for a daemon that must be told its port before it starts. Another process may
/// take it in between; tests that can let the daemon pick its own port should.
pub fn free_port() -> u16 {
    free_port_on(Ipv4Addr::LOCALHOST)
}

/// Like [`free_port`], on `addr` (a host's address in a multi-host test).
pub fn free_port_on(addr: Ipv4Addr) -> u16 {
    match TcpListener::bind((addr, 0)).and_then(|l| l.local_addr()) {
        Ok(bound) => bound.port(),
        Err(e) => panic!("no free port on {addr}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_can_be_bound() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
