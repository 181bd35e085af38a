//! The listening socket and its one lifecycle: accepting, or backing off after `accept`
//! failed for want of a resource (file descriptors, kernel memory).
//!
//! ```text
//!  Accepting --accept fails (EMFILE, ENFILE, ENOBUFS, ENOMEM...)--> BackingOff { until }
//!  BackingOff --until passes (the poll timeout wakes the loop)--> Accepting, accepts again
//! ```
//!
//! Polling is edge-triggered: connections left waiting in the backlog after a failed accept
//! raise no new event, so a listener that just stopped would never accept again (what the
//! issue saw: once descriptors ran out, the master was deaf for good). Backing off on a
//! timer retries by itself as soon as descriptors free up, without spinning meanwhile.

use std::io;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};

/// How long to wait before accepting again after a resource failure: short enough that a
/// freed descriptor serves the next peer at once, long enough not to spin.
pub(super) const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Where the listener is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListenerState {
    Accepting,
    BackingOff { until: Instant },
}

/// What one `accept` gave.
pub(super) enum Accepted {
    /// A new connection.
    Stream(TcpStream, std::net::SocketAddr),
    /// Nothing waits, or the listener backs off: stop for now.
    Nothing,
    /// This attempt failed and backing off started (the error, for the log).
    Failed(io::Error),
}

/// The env's listening socket, owned by the first IO thread.
pub(super) struct Listener {
    socket: TcpListener,
    state: ListenerState,
}

impl Listener {
    pub(super) fn new(socket: TcpListener) -> Listener {
        Listener {
            socket,
            state: ListenerState::Accepting,
        }
    }

    pub(super) fn socket(&mut self) -> &mut TcpListener {
        &mut self.socket
    }

    /// Accepts the next connection, unless backing off.
    pub(super) fn accept(&mut self, now: Instant) -> Accepted {
        if let ListenerState::BackingOff { until } = self.state {
            if now < until {
                return Accepted::Nothing;
            }
            self.state = ListenerState::Accepting;
        }
        loop {
            match self.socket.accept() {
                Ok((stream, peer)) => return Accepted::Stream(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Accepted::Nothing,
                // The peer gave up while in the backlog, or a signal: the next one may wait.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    self.state = ListenerState::BackingOff {
                        until: now + ACCEPT_BACKOFF,
                    };
                    return Accepted::Failed(e);
                }
            }
        }
    }

    /// When the loop must wake to accept again, if it backs off.
    pub(super) fn retry_at(&self) -> Option<Instant> {
        match self.state {
            ListenerState::Accepting => None,
            ListenerState::BackingOff { until } => Some(until),
        }
    }
}
