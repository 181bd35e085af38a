//! One TCP connection: the write path shared by every thread that sends on it.
//!
//! A sender encodes its frame and appends it to the connection's queue. Then one of three
//! things happens:
//!
//! - nobody is writing and the last write is not recent: the sender writes the queue itself,
//!   so at low load a message costs no thread hand-off;
//! - the last write was moments ago (a burst): the sender leaves the queue to the IO thread,
//!   waking it once, and the frames that pile up meanwhile go out in one `writev`;
//! - the sender is a loop thread draining a batch of messages: the connection is *corked*
//!   and written once, at the end of the batch ([`Cork`]);
//! - the IO thread is handling a chunk it read from this very connection: it writes the
//!   queue when the chunk is done ([`Connection::begin_read_chunk`]).
//!
//! When the socket is full the connection is *blocked*: frames only queue until the IO
//! thread's writable event, which writes them.
//!
//! ```text
//!            append, idle, not recent                     WouldBlock
//!   Idle ---------------------------------> Writing ------------------> Idle (data queued;
//!    |  ^                                      |                        IO thread flushes
//!    |  +----------- queue empty --------------+                        on writable)
//!    +-- append, recent --> FlushRequested --IO thread takes the queue--> Writing
//! ```
//!
//! Reading belongs to the connection's IO thread alone (see `io_loop`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use mio::net::TcpStream;
use mio::Token;
use parking_lot::Mutex;

use crate::address::RpcAddress;
use crate::error::RpcError;
use crate::frame::LENGTH_FIELD;
use crate::io_loop::IoHandle;

/// Frames at most this large are copied into the shared tail buffer; larger ones are queued
/// as their own chunk to avoid copying them.
const COPY_LIMIT: usize = 16 * 1024;
/// How many rounds a sending thread writes for others before handing the rest to the IO
/// thread, so a sender is never stuck writing other threads' frames forever.
const SENDER_WRITE_ROUNDS: usize = 8;
/// The tail buffer's size. Written tails come back as spares of this size, so a busy
/// connection reuses two warm buffers instead of allocating (and faulting in) new ones.
const TAIL_CAPACITY: usize = 8 * 1024;
/// Written buffers up to this size are kept as the spare tail; larger ones (a big frame
/// queued whole) are freed.
const SPARE_MAX: usize = 4 * TAIL_CAPACITY;
/// Chunks per `writev`.
const MAX_IOVECS: usize = 64;
/// A send this soon after the last write is part of a burst: it leaves writing to the IO
/// thread so the burst coalesces. Shorter than any loopback round trip, so a sender that
/// waits for answers between sends always writes directly.
const BURST_WINDOW: Duration = Duration::from_micros(10);

thread_local! {
    /// Connections written to while this thread is corked (see [`Cork`]).
    static CORKED: RefCell<Option<Vec<Arc<Connection>>>> = const { RefCell::new(None) };
}

/// While alive, sends from this thread only queue their frames; dropping it writes every
/// connection they went to, once. Loop threads cork while they drain a batch of messages, so
/// the answers to a batch of asks leave in one write. Nested corks are no-ops.
pub(crate) struct Cork {
    outermost: bool,
}

impl Cork {
    /// Corks this thread.
    pub(crate) fn new() -> Cork {
        let outermost = CORKED.with(|c| {
            let mut corked = c.borrow_mut();
            if corked.is_some() {
                return false;
            }
            *corked = Some(Vec::new());
            true
        });
        Cork { outermost }
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        let conns = CORKED.with(|c| c.borrow_mut().take()).unwrap_or_default();
        for conn in conns {
            conn.write_if_idle();
        }
    }
}

/// Records `conn` for the cork of this thread; `false` if the thread is not corked.
fn cork(conn: &Arc<Connection>) -> bool {
    CORKED.with(|c| match c.try_borrow_mut() {
        Ok(mut corked) => match corked.as_mut() {
            Some(list) => {
                if !list.iter().any(|known| Arc::ptr_eq(known, conn)) {
                    list.push(Arc::clone(conn));
                }
                true
            }
            None => false,
        },
        Err(_) => false,
    })
}

struct WriteState {
    /// Frames waiting, oldest first; `tail` holds the newest small frames, contiguous.
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    /// An empty buffer that was written out, to become the next tail.
    spare: Option<BytesMut>,
    /// Some thread is in `flush`.
    writer_active: bool,
    /// A writable event came while a writer was active: it must try again, not stop.
    writable_while_active: bool,
    /// The IO thread has been asked to write the queue.
    flush_requested: bool,
    /// The IO thread is handling frames it read from this connection and writes the queue
    /// when it is done (see [`Connection::begin_read_chunk`]).
    reader_active: bool,
    /// The socket was full at the last write: nothing can go out before the IO thread's
    /// writable event, so senders only queue (trying again would cost a futile `writev`
    /// and a wakeup per message while the peer catches up).
    blocked: bool,
    /// When the last write began, to tell a burst from a lone message.
    last_write: Option<Instant>,
}

impl WriteState {
    fn has_data(&self) -> bool {
        !self.chunks.is_empty() || !self.tail.is_empty()
    }

    fn take_batch(&mut self) -> VecDeque<Bytes> {
        if !self.tail.is_empty() {
            let fresh = self
                .spare
                .take()
                .unwrap_or_else(|| BytesMut::with_capacity(TAIL_CAPACITY));
            let tail = std::mem::replace(&mut self.tail, fresh).freeze();
            self.chunks.push_back(tail);
        }
        std::mem::take(&mut self.chunks)
    }
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
    write: Mutex<WriteState>,
    closed: AtomicBool,
    io: Arc<IoHandle>,
    max_frame: usize,
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        stream: TcpStream,
        peer: SocketAddr,
        direction: Direction,
        remote_address: Option<Arc<RpcAddress>>,
        io: Arc<IoHandle>,
        max_frame: usize,
    ) -> Connection {
        Connection {
            id,
            token: Token(id as usize),
            direction,
            peer,
            remote_address: Mutex::new(remote_address),
            stream,
            write: Mutex::new(WriteState {
                chunks: VecDeque::new(),
                tail: BytesMut::with_capacity(TAIL_CAPACITY),
                spare: None,
                writer_active: false,
                writable_while_active: false,
                flush_requested: false,
                blocked: false,
                reader_active: false,
                last_write: None,
            }),
            closed: AtomicBool::new(false),
            io,
            max_frame,
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

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the connection closed; `true` for the caller that closed it.
    pub(crate) fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    /// Encodes one frame with `encode` and sends it (see the module docs for who writes).
    pub(crate) fn send_frame(
        self: &Arc<Self>,
        encode: &mut dyn FnMut(&mut BytesMut),
    ) -> Result<(), RpcError> {
        thread_local! {
            static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::with_capacity(4096));
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                encode(&mut buf);
                self.enqueue_encoded(&mut buf)
            }
            // Only reachable if an `Encode` impl sends a message itself; give it a buffer.
            Err(_) => {
                let mut buf = BytesMut::new();
                encode(&mut buf);
                self.enqueue_encoded(&mut buf)
            }
        })
    }

    /// Sends frames that were encoded earlier (queued while the outbox was connecting).
    pub(crate) fn send_encoded(self: &Arc<Self>, frames: Vec<Bytes>) {
        if frames.is_empty() {
            return;
        }
        let mut w = self.write.lock();
        if !w.tail.is_empty() {
            let tail = w.tail.split().freeze();
            w.chunks.push_back(tail);
        }
        w.chunks.extend(frames);
        self.write_or_leave(w);
    }

    fn enqueue_encoded(self: &Arc<Self>, buf: &mut BytesMut) -> Result<(), RpcError> {
        if self.is_closed() {
            return Err(RpcError::ConnectionClosed {
                peer: self.peer_name(),
            });
        }
        let frame_len = buf.len().saturating_sub(LENGTH_FIELD);
        if frame_len > self.max_frame {
            return Err(RpcError::MessageTooLarge {
                size: frame_len,
                max: self.max_frame,
            });
        }
        let mut w = self.write.lock();
        if buf.len() <= COPY_LIMIT {
            w.tail.extend_from_slice(buf);
            buf.clear();
        } else {
            if !w.tail.is_empty() {
                let tail = w.tail.split().freeze();
                w.chunks.push_back(tail);
            }
            w.chunks.push_back(buf.split().freeze());
        }
        self.write_or_leave(w);
        Ok(())
    }

    /// Decides who writes the frames just queued (see the module docs).
    fn write_or_leave(self: &Arc<Self>, mut w: parking_lot::MutexGuard<'_, WriteState>) {
        if w.writer_active || w.flush_requested || w.blocked {
            // Whoever is writing, or the IO thread about to, takes our frames too.
            return;
        }
        if cork(self) {
            return;
        }
        if w.reader_active {
            // The IO thread is handling what it read from this connection (often the
            // answers this sender was waiting for) and writes the queue once done: no
            // need to write now, nor to wake it.
            w.flush_requested = true;
            return;
        }
        let now = Instant::now();
        if w.last_write
            .is_some_and(|t| now.duration_since(t) < BURST_WINDOW)
        {
            w.flush_requested = true;
            drop(w);
            self.io.request_flush(self.token);
            return;
        }
        w.writer_active = true;
        drop(w);
        self.flush(SENDER_WRITE_ROUNDS);
    }

    /// Writes the queue now unless someone else is writing or about to (uncorking).
    fn write_if_idle(&self) {
        let mut w = self.write.lock();
        if w.writer_active || w.flush_requested || w.blocked || !w.has_data() {
            return;
        }
        w.writer_active = true;
        drop(w);
        self.flush(SENDER_WRITE_ROUNDS);
    }

    /// The IO thread starts handling a chunk of frames read from this connection. Until
    /// [`end_read_chunk`](Self::end_read_chunk), frames other threads send on it are left
    /// for the IO thread to write at the chunk's end, together: a client pipelining asks
    /// sends its next ones while their answers are being read, and writing each itself
    /// would cost a system call apiece.
    pub(crate) fn begin_read_chunk(&self) {
        self.write.lock().reader_active = true;
    }

    /// The IO thread is done with the chunk: it writes what was left to it.
    pub(crate) fn end_read_chunk(&self) {
        let mut w = self.write.lock();
        w.reader_active = false;
        if !w.flush_requested || w.writer_active || w.blocked || !w.has_data() {
            return;
        }
        // A flush command may still be on its way for these frames; it will find the
        // queue written and do nothing.
        w.flush_requested = false;
        w.writer_active = true;
        drop(w);
        self.flush(usize::MAX);
    }

    /// The IO thread saw the socket become writable, or was asked to write.
    pub(crate) fn on_writable(&self) {
        let mut w = self.write.lock();
        w.flush_requested = false;
        w.blocked = false;
        if w.writer_active {
            w.writable_while_active = true;
            return;
        }
        if !w.has_data() {
            return;
        }
        w.writer_active = true;
        drop(w);
        self.flush(usize::MAX);
    }

    /// The IO thread was asked to take over writing.
    pub(crate) fn on_flush_request(&self) {
        self.on_writable();
    }

    /// Writes until the queue is empty, the socket is full, or `rounds` run out. Must be
    /// entered with `writer_active` set by the caller; leaves it cleared.
    fn flush(&self, mut rounds: usize) {
        loop {
            let mut batch = {
                let mut w = self.write.lock();
                w.last_write = Some(Instant::now());
                w.take_batch()
            };
            let mut spare = None;
            let outcome = if batch.is_empty() {
                Ok(true)
            } else {
                self.write_batch(&mut batch, &mut spare)
            };
            let mut w = self.write.lock();
            if w.spare.is_none() {
                w.spare = spare;
            }
            match outcome {
                Ok(true) => {
                    if !w.has_data() {
                        w.writer_active = false;
                        return;
                    }
                    rounds = rounds.saturating_sub(1);
                    if rounds == 0 {
                        // Let the IO thread write the rest; our caller has its own work.
                        w.writer_active = false;
                        drop(w);
                        self.io.request_flush(self.token);
                        return;
                    }
                }
                Ok(false) => {
                    // Socket full: put the rest back in front and wait for writable.
                    while let Some(chunk) = batch.pop_back() {
                        w.chunks.push_front(chunk);
                    }
                    if w.writable_while_active {
                        w.writable_while_active = false;
                        continue;
                    }
                    w.blocked = true;
                    w.writer_active = false;
                    return;
                }
                Err(e) => {
                    w.writer_active = false;
                    w.chunks.clear();
                    w.tail.clear();
                    drop(w);
                    log::warn!("Failed to write to {}: {e}", self.peer_name());
                    self.io.request_close(
                        self.token,
                        Some(RpcError::Io {
                            context: format!("Failed to send to {}", self.peer_name()),
                            reason: e.to_string(),
                        }),
                    );
                    return;
                }
            }
        }
    }

    /// Writes `batch` with `writev`; `Ok(false)` when the socket would block first. A
    /// written chunk that is a tail-sized buffer nobody else holds comes back in `spare`.
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
                    Ok(n) => n,
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

/// Keeps `written` in `spare` (emptied) if it is a buffer worth reusing as a tail.
fn keep_as_spare(written: Bytes, spare: &mut Option<BytesMut>) {
    if spare.is_some() {
        return;
    }
    if let Ok(mut buf) = written.try_into_mut() {
        buf.clear();
        if (TAIL_CAPACITY..=SPARE_MAX).contains(&buf.capacity()) {
            *spare = Some(buf);
        }
    }
}
