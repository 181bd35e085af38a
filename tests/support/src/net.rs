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

/// Ports [`refused_port`] picks from: below the kernel's ephemeral range (Linux's
/// `ip_local_port_range` starts at 32768 by default), so no port-0 bind of any test is given
/// one of them.
const REFUSED_PORTS: std::ops::Range<u16> = 20_000..30_000;

/// A TCP port on 127.0.0.1 that nothing listens on and that no server binding port 0 will
/// be given meanwhile, so connecting to it is refused: for tests of "nobody listens". A port
/// from [`free_port`] may be handed to another test's server a moment later.
pub fn refused_port() -> u16 {
    let span = REFUSED_PORTS.end - REFUSED_PORTS.start;
    let first = (std::process::id() % u32::from(span)) as u16;
    (0..span)
        .map(|i| REFUSED_PORTS.start + (first + i) % span)
        .find(|&port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok())
        .expect("a free port below the ephemeral range")
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

    #[test]
    fn a_refused_port_refuses() {
        let port = refused_port();
        assert!(REFUSED_PORTS.contains(&port));
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
