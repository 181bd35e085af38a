//! Test support: a connection over one end of a real loopback pair, watched by a stand-in for
//! the IO thread that only records what it is asked.

use std::net::{TcpListener, TcpStream as StdStream};
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;
use mio::Token;
use parking_lot::Mutex;

use super::{Connection, Direction, IoThread};
use crate::error::RpcError;

/// What the connection asked of its IO thread.
#[derive(Debug)]
pub(crate) enum Request {
    /// Take over writing.
    Flush,
    /// Close, with this reason.
    Close(Option<RpcError>),
    /// Read again.
    Resume,
}

/// The IO thread's part, played by the test.
#[derive(Default)]
pub(crate) struct StandInIo {
    pub(crate) requests: Mutex<Vec<Request>>,
}

impl IoThread for StandInIo {
    fn request_flush(&self, _token: Token) {
        self.requests.lock().push(Request::Flush);
    }
    fn request_close(&self, _token: Token, reason: Option<RpcError>) {
        self.requests.lock().push(Request::Close(reason));
    }
    fn request_resume(&self, _token: Token) {
        self.requests.lock().push(Request::Resume);
    }
}

impl StandInIo {
    /// Takes the requests made so far.
    pub(crate) fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.requests.lock())
    }
}

pub(crate) const MAX_FRAME: usize = 1 << 20;

/// A connection over one end of a loopback pair, and the other end (blocking, with a read
/// timeout so a test that goes wrong fails instead of hanging).
pub(crate) fn pair() -> (Arc<Connection>, Arc<StandInIo>, StdStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let ours = StdStream::connect(address).expect("connect");
    let (theirs, _) = listener.accept().expect("accept");
    ours.set_nonblocking(true).expect("non-blocking");
    theirs
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let io = Arc::new(StandInIo::default());
    let conn = Arc::new(Connection::new(
        1,
        TcpStream::from_std(ours),
        address,
        Direction::Inbound,
        None,
        Arc::clone(&io) as Arc<dyn IoThread>,
        MAX_FRAME,
        usize::MAX,
        false,
        Arc::default(),
    ));
    (conn, io, theirs)
}
