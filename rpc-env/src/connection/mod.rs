//! One TCP connection: its socket, its identity, and the write path shared by every thread
//! that sends on it.
//!
//! Who writes the queued frames, and when, is decided by the socket-free [`WriteQueue`]
//! (`write_queue.rs`, with the full transition table); this module holds the socket, does
//! the `writev` calls the queue asks for, and passes flush and close requests to the IO
//! thread through [`IoThread`], the one thing a connection needs from the IO loop.
//!
//! Reading belongs to the connection's IO thread alone (see `io_loop`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use mio::net::TcpStream;
use mio::Token;
use parking_lot::Mutex;

use crate::address::RpcAddress;
use crate::error::RpcError;
use crate::frame::LENGTH_FIELD;
use crate::security::noise::NoiseSealer;
use crate::stats::WriteCounters;

mod cork;
mod write_queue;

pub(crate) use cork::Cork;
use write_queue::{keep_as_spare, AfterWrite, Batch, Next, Refused, WriteOutcome, WriteQueue};

/// Chunks per `writev`.
const MAX_IOVECS: usize = 64;

/// What a connection asks of the IO thread that watches it. Both requests are queued and
/// return at once; they may be made from any thread.
pub(crate) trait IoThread: Send + Sync {
    /// Take over writing the queue of the connection `token`.
    fn request_flush(&self, token: Token);
    /// Close the connection `token`, reporting `reason` as a network error if there is one.
    fn request_close(&self, token: Token, reason: Option<RpcError>);
    /// Read the connection `token` again: reading it was paused and is no longer.
    fn request_resume(&self, token: Token);
}

/// Where the connection came from, for network events and for failing its asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// We connected, through the outbox with this route id.
    Outbound { outbox_route: u64 },
    /// The peer connected to our listener.
    Inbound,
}

/// A connection, shared by its IO thread (reads, closes) and senders (writes).
pub(crate) struct Connection {
    /// Unique in the env; also the route id of asks sent directly on it.
    pub(crate) id: u64,
    pub(crate) token: Token,
    pub(crate) direction: Direction,
    /// The peer's socket address.
    pub(crate) peer: SocketAddr,
    /// The peer's listen address: known when we connected, learned from the first frame
    /// that names a sender when it connected to us.
    remote_address: Mutex<Option<Arc<RpcAddress>>>,
    stream: TcpStream,
    queue: Mutex<WriteQueue>,
    /// Seals what the writer takes from the queue, on an encrypted connection. Locked only
    /// by the one writer the queue allows at a time, so never contended.
    sealer: Mutex<Option<NoiseSealer>>,
    /// The peer has not completed the handshake yet: nothing it sent reaches an endpoint,
    /// no endpoint has heard of it, and nothing queued for it has been written.
    authenticating: AtomicBool,
    /// An endpoint's inbox is over its cap with what came on this connection: its IO
    /// thread does not read it until the inbox drains (`inbox/backpressure.rs`).
    read_paused: AtomicBool,
    closed: AtomicBool,
    io: Arc<dyn IoThread>,
    max_frame: usize,
    /// `ember.rpc.outbox.maxBytes`: past this many bytes waiting, an answer to the peer
    /// closes the connection instead of queueing.
    max_queued: usize,
    /// The env's counts of what was written ([`crate::NetworkStats::bytes_written`],
    /// [`crate::NetworkStats::frames_written`]).
    written: Arc<WriteCounters>,
}

impl Connection {
    /// A connection over `stream`, watched by `io`. `max_frame` bounds the frames it sends,
    /// `max_queued` the bytes waiting to be written. With `authenticating`, frames wait
    /// until [`handshake_done`](Self::handshake_done).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        stream: TcpStream,
        peer: SocketAddr,
        direction: Direction,
        remote_address: Option<Arc<RpcAddress>>,
        io: Arc<dyn IoThread>,
        max_frame: usize,
        max_queued: usize,
        authenticating: bool,
        written: Arc<WriteCounters>,
    ) -> Connection {
        Connection {
            id,
            token: Token(id as usize),
            direction,
            peer,
            remote_address: Mutex::new(remote_address),
            stream,
            queue: Mutex::new(WriteQueue::new(authenticating)),
            sealer: Mutex::new(None),
            authenticating: AtomicBool::new(authenticating),
            read_paused: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            io,
            max_frame,
            max_queued,
            written,
        }
    }

    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The peer's listen address, if known.
    pub(crate) fn remote_address(&self) -> Option<Arc<RpcAddress>> {
        self.remote_address.lock().clone()
    }

    /// Records the peer's listen address; `true` the first time.
    pub(crate) fn learn_remote_address(&self, address: &Arc<RpcAddress>) -> bool {
        let mut known = self.remote_address.lock();
        if known.is_some() {
            return false;
        }
        *known = Some(Arc::clone(address));
        true
    }

    /// The peer as `host:port`, its listen address when known.
    pub(crate) fn peer_name(&self) -> String {
        match &*self.remote_address.lock() {
            Some(a) => a.host_port(),
            None => self.peer.to_string(),
        }
    }

    /// Whether the handshake is still to finish.
    pub(crate) fn is_authenticating(&self) -> bool {
        self.authenticating.load(Ordering::Acquire)
    }

    /// Writes a handshake message straight to the socket (IO thread only, before any
    /// frame). Handshake messages are tens of bytes on a fresh socket, so a socket that
    /// cannot take them at once is a peer not reading: an error, which closes it.
    pub(crate) fn write_handshake(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match (&self.stream).write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The handshake is done (IO thread): `first` (already sealed, may be empty) goes out
    /// before the frames queued meanwhile, and `sealer`, if any, seals everything after.
    pub(crate) fn handshake_done(&self, sealer: Option<NoiseSealer>, first: Vec<u8>) {
        let sealing = sealer.is_some();
        // Set before the queue lets a writer in: no frame is taken unsealed.
        *self.sealer.lock() = sealer;
        self.authenticating.store(false, Ordering::Release);
        let next = self
            .queue
            .lock()
            .handshake_done(sealing, Bytes::from(first));
        self.perform(next);
    }

    /// Stops reading this connection until [`resume_reading`](Self::resume_reading); `true`
    /// if it was being read.
    pub(crate) fn pause_reading(&self) -> bool {
        !self.read_paused.swap(true, Ordering::AcqRel)
    }

    /// Reads this connection again, on its IO thread.
    pub(crate) fn resume_reading(&self) {
        if self.read_paused.swap(false, Ordering::AcqRel) {
            self.io.request_resume(self.token);
        }
    }

    /// Whether reading is paused (IO thread).
    pub(crate) fn is_read_paused(&self) -> bool {
        self.read_paused.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the connection closed; `true` for the caller that closed it.
    pub(crate) fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    /// Encodes one frame with `encode` and sends it (the queue decides who writes). For this
    /// process's own messages: never refused for the bytes waiting (what a local caller
    /// sends is its own to bound).
    pub(crate) fn send_frame(
        self: &Arc<Self>,
        encode: &mut dyn FnMut(&mut BytesMut),
    ) -> Result<(), RpcError> {
        self.encode_and_enqueue(encode, usize::MAX)
    }

    /// Like [`send_frame`](Self::send_frame), for an answer to the peer's ask (a response,
    /// or a failure): refused, and the connection closed, once more than
    /// `ember.rpc.outbox.maxBytes` wait. The peer decides how many asks it sends and whether
    /// it reads the answers, so this is where a peer that never reads would grow us.
    pub(crate) fn send_answer(
        self: &Arc<Self>,
        encode: &mut dyn FnMut(&mut BytesMut),
    ) -> Result<(), RpcError> {
        self.encode_and_enqueue(encode, self.max_queued)
    }

    fn encode_and_enqueue(
        self: &Arc<Self>,
        encode: &mut dyn FnMut(&mut BytesMut),
        max_queued: usize,
    ) -> Result<(), RpcError> {
        thread_local! {
            static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::with_capacity(4096));
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                encode_for(self.id, || encode(&mut buf));
                self.enqueue_encoded(&mut buf, max_queued)
            }
            // Only reachable if an `Encode` impl sends a message itself; give it a buffer.
            Err(_) => {
                let mut buf = BytesMut::new();
                encode_for(self.id, || encode(&mut buf));
                self.enqueue_encoded(&mut buf, max_queued)
            }
        })
    }

    /// Sends frames that were encoded earlier (queued while the outbox was connecting).
    pub(crate) fn send_encoded(self: &Arc<Self>, frames: Vec<Bytes>) {
        if frames.is_empty() {
            return;
        }
        let mut queue = self.queue.lock();
        if !queue.push_encoded(frames) {
            return;
        }
        let next = queue.after_push(|| cork::cork(self), Instant::now);
        drop(queue);
        self.perform(next);
    }

    fn enqueue_encoded(
        self: &Arc<Self>,
        buf: &mut BytesMut,
        max_queued: usize,
    ) -> Result<(), RpcError> {
        let closed = || RpcError::ConnectionClosed {
            peer: self.peer_name(),
        };
        if self.is_closed() {
            return Err(closed());
        }
        let frame_len = buf.len().saturating_sub(LENGTH_FIELD);
        if frame_len > self.max_frame {
            return Err(RpcError::MessageTooLarge {
                size: frame_len,
                max: self.max_frame,
            });
        }
        let mut queue = self.queue.lock();
        match queue.push(buf, max_queued) {
            Ok(()) => {}
            // A write failed and the IO thread is closing the connection.
            Err(Refused::Broken) => return Err(closed()),
            Err(Refused::Full) => {
                drop(queue);
                // The peer asks and does not read the answers (or far slower than it asks):
                // holding more would let it grow us without bound. The asks waiting on the
                // connection fail with this error.
                let error = RpcError::OutboxFull {
                    peer: self.peer_name(),
                    max_bytes: self.max_queued,
                };
                self.close(Some(error.clone()));
                return Err(error);
            }
        }
        let next = queue.after_push(|| cork::cork(self), Instant::now);
        drop(queue);
        self.perform(next);
        Ok(())
    }

    /// Does what the queue said: nothing, write now, or wake the IO thread.
    fn perform(&self, next: Next) {
        match next {
            Next::Nothing => {}
            Next::Write => self.flush(),
            Next::WakeIoThread => self.io.request_flush(self.token),
        }
    }

    /// A corked sender's cork ends: writes the queue unless someone else writes or will.
    fn uncork(&self) {
        let next = self.queue.lock().uncork();
        self.perform(next);
    }

    /// The IO thread starts handling a chunk of frames read from this connection. Until
    /// [`end_read_chunk`](Self::end_read_chunk), frames other threads send on it are left
    /// for the IO thread to write at the chunk's end, together: a client pipelining asks
    /// sends its next ones while their answers are being read, and writing each itself
    /// would cost a system call apiece.
    pub(crate) fn begin_read_chunk(&self) {
        self.queue.lock().begin_read_chunk();
    }

    /// The IO thread is done with the chunk: it writes what was left to it.
    pub(crate) fn end_read_chunk(&self) {
        let next = self.queue.lock().end_read_chunk();
        self.perform(next);
    }

    /// The IO thread saw the socket become writable, or was asked to write.
    pub(crate) fn on_writable(&self) {
        let next = self.queue.lock().on_writable();
        self.perform(next);
    }

    /// Writes batches for as long as the queue says so. Entered only when the queue made
    /// the caller the writer ([`Next::Write`]).
    fn flush(&self) {
        loop {
            let batch = self.queue.lock().take_batch(Instant::now());
            crate::stats::add(&self.written.frames, batch.frames);
            let mut spare = None;
            let mut batch = self.seal(batch, &mut spare);
            let (outcome, error) = if batch.is_empty() {
                (WriteOutcome::Written, None)
            } else {
                match self.write_batch(&mut batch, &mut spare) {
                    Ok(true) => (WriteOutcome::Written, None),
                    Ok(false) => (WriteOutcome::WouldBlock, None),
                    Err(e) => (WriteOutcome::Failed, Some(e)),
                }
            };
            let after = self.queue.lock().finish_write(outcome, batch, spare);
            match after {
                AfterWrite::Again => continue,
                AfterWrite::Done => return,
                AfterWrite::HandOver => {
                    self.io.request_flush(self.token);
                    return;
                }
                AfterWrite::Close => {
                    let reason =
                        error.map_or_else(|| "write failed".to_string(), |e| e.to_string());
                    crate::limited_log!(
                        log::Level::Warn,
                        "Failed to write to {}: {reason}",
                        self.peer_name()
                    );
                    self.io.request_close(
                        self.token,
                        Some(RpcError::Io {
                            context: format!("Failed to send to {}", self.peer_name()),
                            reason,
                        }),
                    );
                    return;
                }
            }
        }
    }

    /// The bytes of `batch` as they go on the wire: its frames to seal are sealed (outside
    /// the queue's lock, so senders keep queueing meanwhile) after its wire bytes.
    fn seal(&self, batch: Batch, spare: &mut Option<BytesMut>) -> VecDeque<Bytes> {
        let Batch {
            mut wire, plain, ..
        } = batch;
        if plain.is_empty() {
            return wire;
        }
        let mut sealer = self.sealer.lock();
        let Some(sealer) = sealer.as_mut() else {
            // Invariant: the queue hands out frames to seal only after `handshake_done` set
            // the sealer. Never write them in the clear.
            debug_assert!(false, "frames to seal without a sealer");
            log::error!("Dropping frames to {}: no cipher", self.peer_name());
            return wire;
        };
        let plain_len: usize = plain.iter().map(Bytes::len).sum();
        let mut out = Vec::with_capacity(plain_len + plain_len / 4096 + 64);
        for chunk in plain {
            sealer.seal(&chunk, &mut out);
            keep_as_spare(chunk, spare);
        }
        wire.push_back(Bytes::from(out));
        wire
    }

    /// Writes `batch` with `writev`; `Ok(false)` when the socket would block first. Written
    /// chunks leave the batch; a tail-sized buffer nobody else holds comes back in `spare`.
    fn write_batch(
        &self,
        batch: &mut VecDeque<Bytes>,
        spare: &mut Option<BytesMut>,
    ) -> io::Result<bool> {
        while !batch.is_empty() {
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let mut count = 0;
                for (slot, chunk) in slices.iter_mut().zip(batch.iter()) {
                    *slot = IoSlice::new(chunk);
                    count += 1;
                }
                match (&self.stream).write_vectored(&slices[..count]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        crate::stats::add(&self.written.bytes, n as u64);
                        n
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            let mut left = written;
            while left > 0 {
                let Some(front) = batch.front_mut() else {
                    break;
                };
                if front.len() <= left {
                    left -= front.len();
                    if let Some(written) = batch.pop_front() {
                        keep_as_spare(written, spare);
                    }
                } else {
                    front.advance(left);
                    left = 0;
                }
            }
        }
        Ok(true)
    }

    /// Asks the IO thread to close this connection (from any thread).
    pub(crate) fn close(&self, reason: Option<RpcError>) {
        if !self.is_closed() {
            self.io.request_close(self.token, reason);
        }
    }
}

#[cfg(test)]
pub(crate) mod test_pair;
thread_local! {
    /// The id of the connection whose frame this thread is encoding now (0: none, or not
    /// known yet, as for a frame an outbox holds while it connects). `Encode` has no
    /// context, and an endpoint ref needs one: a client-mode endpoint's ref may be written
    /// plainly only into frames that go over the connection it came on (`endpoint_ref.rs`).
    static ENCODING_FOR: Cell<u64> = const { Cell::new(0) };
}

/// Runs `encode` with [`encoding_for`] saying `conn_id`; nested calls restore the outer id.
pub(crate) fn encode_for<R>(conn_id: u64, encode: impl FnOnce() -> R) -> R {
    let outer = ENCODING_FOR.with(|c| c.replace(conn_id));
    // Restored on unwind too, so a panicking `Encode` cannot leave a stale id behind.
    struct Restore(u64);
    impl Drop for Restore {
        fn drop(&mut self) {
            ENCODING_FOR.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(outer);
    encode()
}

/// The id of the connection the frame being encoded on this thread goes over; 0 if none.
pub(crate) fn encoding_for() -> u64 {
    ENCODING_FOR.with(Cell::get)
}

#[cfg(test)]
mod tests;
