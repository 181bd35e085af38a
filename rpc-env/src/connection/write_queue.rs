//! The write side of one connection, without the socket: the frames waiting to go out and
//! who writes them next. Every method says what the caller must do next ([`Next`],
//! [`AfterWrite`]); the caller holds the connection's lock around each call and does the
//! system calls outside it.
//!
//! Who writes (see [`WriteState`]):
//!
//! - a sender that finds nobody writing, when the last write is not recent, writes the queue
//!   itself, so at low load a message costs no thread hand-off;
//! - a sender in a burst (the last write was moments ago) leaves the queue to the IO thread,
//!   waking it once, and the frames that pile up meanwhile go out in one `writev`;
//! - a corked sender (a loop thread draining a batch of messages) only queues, and writes
//!   once when it uncorks;
//! - while the IO thread handles a chunk it read from this very connection, senders only
//!   queue: the IO thread writes at the end of the chunk;
//! - when the socket is full the queue is blocked: frames only queue until the IO thread's
//!   writable event.
//!
//! Every transition (the unit tests check each row):
//!
//! ```text
//!  state           event                                 next state       caller does
//!  Idle            push, sender corked                   Idle             nothing (uncork writes)
//!  Idle            push, IO thread reading this conn     LeftToIoThread   nothing (chunk end writes)
//!  Idle            push, last write < 10 us ago (burst)  LeftToIoThread   wake the IO thread
//!  Idle            push                                  Writing(8)       write
//!  Idle            uncork, frames queued                 Writing(8)       write
//!  Writing(n)      push / uncork                         Writing(n)       nothing (goes next round)
//!  Writing(n)      writable event                        Writing(n,seen)  nothing
//!  Writing(n)      batch written, queue empty            Idle             stop
//!  Writing(n)      batch written, more queued            Writing(n-1)     write again
//!  Writing(1)      batch written, more queued            Idle             wake the IO thread
//!  Writing(n)      socket full                           Blocked          stop
//!  Writing(n,seen) socket full                           Writing(n)       write again
//!  LeftToIoThread  push / uncork                         LeftToIoThread   nothing
//!  LeftToIoThread  end of read chunk, frames queued      Writing(inf)     write (IO thread)
//!  LeftToIoThread  end of read chunk, nothing queued     Idle             nothing
//!  Blocked         push / uncork                         Blocked          nothing
//!  Idle, Left.., Blocked  writable / flush, frames queued   Writing(inf)  write (IO thread)
//!  Idle, Left.., Blocked  writable / flush, nothing queued  Idle          nothing
//!  Writing         write failed                          Broken           close the connection
//!  Broken          push                                  Broken           refused
//!  Handshaking     push / uncork / writable / flush      Handshaking      nothing (queued)
//!  Handshaking     handshake done, frames queued         Writing(inf)     write (IO thread)
//!  Handshaking     handshake done, nothing queued        Idle             nothing
//! ```
//!
//! On an authenticated connection the queue starts `Handshaking`: frames sent before the
//! peer is authenticated wait (the IO thread writes the handshake itself), and leave, in
//! order, once it is done. On an encrypted one, the writer seals what it takes
//! ([`Batch::plain`]) outside the lock; sealed bytes the socket did not take come back as
//! [`Batch::wire`] bytes that are never sealed twice.
//!
//! Whether the IO thread is reading a chunk of this connection is the read side's phase and
//! independent of these states; it matters only to a push that finds the queue idle.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

/// Frames at most this large are copied into the shared tail buffer; larger ones are queued
/// as their own chunk to avoid copying them.
const COPY_LIMIT: usize = 16 * 1024;
/// How many rounds a sending thread writes for others before handing the rest to the IO
/// thread, so a sender is never stuck writing other threads' frames forever.
const SENDER_WRITE_ROUNDS: usize = 8;
/// The IO thread writes until the queue is empty or the socket is full: it never hands over.
const IO_THREAD_WRITE_ROUNDS: usize = usize::MAX;
/// The tail buffer's size. Written tails come back as spares of this size, so a busy
/// connection reuses two warm buffers instead of allocating (and faulting in) new ones.
const TAIL_CAPACITY: usize = 8 * 1024;
/// Written buffers up to this size are kept as the spare tail; larger ones (a big frame
/// queued whole) are freed.
const SPARE_MAX: usize = 4 * TAIL_CAPACITY;
/// A send this soon after the last write is part of a burst: it leaves writing to the IO
/// thread so the burst coalesces. Shorter than any loopback round trip, so a sender that
/// waits for answers between sends always writes directly.
const BURST_WINDOW: Duration = Duration::from_micros(10);

/// Who writes the queue next. Only these states exist; what each allows is in its doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteState {
    /// Nobody is writing, and nobody has been asked to. Frames may still be queued: those of
    /// a corked sender (written when it uncorks), or those a sender left when it ran out of
    /// rounds (a flush command is on its way to the IO thread).
    Idle,
    /// One thread is writing; frames pushed now go out in its next round.
    Writing {
        /// Rounds this writer still writes before handing the rest to the IO thread.
        rounds_left: usize,
        /// A writable event came during the write: a full socket may have drained since,
        /// so a `WouldBlock` is retried once instead of waiting for an event already spent.
        writable_seen: bool,
    },
    /// The IO thread writes next: a flush command is on its way to it, or it is handling a
    /// chunk read from this connection and writes when the chunk is done.
    LeftToIoThread,
    /// The socket was full at the last write: nothing can go out before the IO thread's
    /// writable event (trying would cost a futile `writev` and a wakeup per message).
    Blocked,
    /// A write failed and the connection is closing: frames are refused.
    Broken,
    /// The connection's handshake is not done: frames only queue, and nothing but the
    /// handshake goes out.
    Handshaking,
}

/// What a writer takes from the queue for one round, oldest bytes first.
#[derive(Default)]
pub(crate) struct Batch {
    /// Bytes ready for the socket: frames on a connection that is not encrypted, records
    /// sealed in an earlier round (and not fully written) on one that is.
    pub(crate) wire: VecDeque<Bytes>,
    /// Frames the writer seals before writing them after `wire` (encrypted connections).
    pub(crate) plain: VecDeque<Bytes>,
    /// How many frames were queued since the last batch: what this batch takes to the
    /// socket (the env's `frames_written`).
    pub(crate) frames: u64,
}

/// What the caller does after a push, an uncork, a writable event or the end of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing: someone else writes, or will.
    Nothing,
    /// The caller is now the writer: it writes batches until [`AfterWrite`] says stop.
    Write,
    /// Wake the IO thread with a flush command; it writes the queue.
    WakeIoThread,
}

/// How a write of one batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// Every byte of the batch went out.
    Written,
    /// The socket filled up first; the rest of the batch is handed back.
    WouldBlock,
    /// The socket failed.
    Failed,
}

/// What the writer does after one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterWrite {
    /// Write the next batch.
    Again,
    /// Stop: the queue is empty, or the socket is full and the writable event takes over.
    Done,
    /// Stop and wake the IO thread: this writer has written its share.
    HandOver,
    /// Stop and close the connection: the write failed.
    Close,
}

/// The frames waiting on one connection and the state of who writes them.
pub(crate) struct WriteQueue {
    /// Sealed records waiting, before every frame in `chunks`: the part of an earlier
    /// batch the socket did not take (encrypted connections only).
    sealed: VecDeque<Bytes>,
    /// Frames waiting, oldest first; `tail` holds the newest small frames, contiguous.
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    /// An empty buffer that was written out, to become the next tail.
    spare: Option<BytesMut>,
    state: WriteState,
    /// The IO thread is handling a chunk of frames read from this connection. This is the
    /// read side's phase, independent of [`WriteState`]: it only decides that a sender who
    /// finds the queue idle leaves it to the IO thread instead of writing.
    io_reading: bool,
    /// When the last write began, to tell a burst from a lone message.
    last_write: Option<Instant>,
    /// Frames are sealed before they are written (an encrypted connection, once its
    /// handshake is done).
    sealing: bool,
    /// Bytes in `sealed`, `chunks` and `tail`: what waits.
    queued: usize,
    /// Bytes of the batch a writer holds, outside the lock: still in memory, so they count
    /// against the cap until the write is done.
    in_flight: usize,
    /// Frames queued since the last batch was taken.
    frames: u64,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A write failed and the connection is closing.
    Broken,
    /// Queueing it would pass the cap on bytes waiting (`ember.rpc.outbox.maxBytes`).
    Full,
}

impl WriteQueue {
    /// An empty queue: idle, or, with `handshaking`, holding frames until
    /// [`handshake_done`](Self::handshake_done).
    pub(crate) fn new(handshaking: bool) -> WriteQueue {
        WriteQueue {
            sealed: VecDeque::new(),
            chunks: VecDeque::new(),
            tail: BytesMut::with_capacity(TAIL_CAPACITY),
            spare: None,
            state: if handshaking {
                WriteState::Handshaking
            } else {
                WriteState::Idle
            },
            io_reading: false,
            last_write: None,
            sealing: false,
            queued: 0,
            in_flight: 0,
            frames: 0,
        }
    }

    /// Who writes next.
    #[cfg(test)]
    pub(crate) fn state(&self) -> WriteState {
        self.state
    }

    /// Whether frames are waiting.
    pub(crate) fn has_data(&self) -> bool {
        !self.sealed.is_empty() || !self.chunks.is_empty() || !self.tail.is_empty()
    }

    /// The handshake is done: `first` (the initiator's address record, already sealed) goes
    /// out before every frame queued meanwhile, and from now on frames are sealed if
    /// `sealing`. Called by the IO thread, which writes what is queued if told to.
    pub(crate) fn handshake_done(&mut self, sealing: bool, first: Bytes) -> Next {
        if self.state != WriteState::Handshaking {
            // Broken: the connection is closing anyway.
            return Next::Nothing;
        }
        self.sealing = sealing;
        self.queued += first.len();
        if !first.is_empty() {
            if sealing {
                self.sealed.push_back(first);
            } else {
                // Unencrypted frames are wire bytes as they are; the record goes first.
                self.seal_tail();
                self.chunks.push_front(first);
            }
        }
        if self.has_data() {
            self.start_writing(IO_THREAD_WRITE_ROUNDS)
        } else {
            self.state = WriteState::Idle;
            Next::Nothing
        }
    }

    /// Queues one encoded frame (emptying `frame`), unless the queue is broken or already
    /// holds more than `max_queued` bytes. So the cap never forbids a message the frame size
    /// allows, and what waits stays under the cap plus one frame.
    pub(crate) fn push(&mut self, frame: &mut BytesMut, max_queued: usize) -> Result<(), Refused> {
        if self.state == WriteState::Broken {
            return Err(Refused::Broken);
        }
        // Refused only once the cap is passed, so any one frame fits (a task's large result
        // behind a few small frames, say): what waits stays under the cap plus one frame.
        if self.queued + self.in_flight > max_queued {
            return Err(Refused::Full);
        }
        self.queued += frame.len();
        self.frames += 1;
        if frame.len() <= COPY_LIMIT {
            self.tail.extend_from_slice(frame);
            frame.clear();
        } else {
            self.seal_tail();
            self.chunks.push_back(frame.split().freeze());
        }
        Ok(())
    }

    /// Queues frames encoded earlier, in order; `false` if the queue is broken.
    pub(crate) fn push_encoded(&mut self, frames: Vec<Bytes>) -> bool {
        if self.state == WriteState::Broken {
            return false;
        }
        self.seal_tail();
        // Queued while connecting: this process's own sends, never refused.
        self.queued += frames.iter().map(Bytes::len).sum::<usize>();
        self.frames += frames.len() as u64;
        self.chunks.extend(frames);
        true
    }

    /// Decides who writes what a sender just pushed. `corked` records the connection in the
    /// sender's cork and says whether there is one; `now` reads the clock. Both are asked
    /// only when the answer matters (the send path is hot).
    pub(crate) fn after_push(
        &mut self,
        corked: impl FnOnce() -> bool,
        now: impl FnOnce() -> Instant,
    ) -> Next {
        if self.state != WriteState::Idle || corked() {
            // Whoever writes, or is about to, takes the new frames too; a corked sender
            // writes when it uncorks.
            return Next::Nothing;
        }
        if self.io_reading {
            // The IO thread is handling what it read from this connection (often the
            // answers this sender waited for) and writes the queue once done: no need to
            // write now, nor to wake it.
            self.state = WriteState::LeftToIoThread;
            return Next::Nothing;
        }
        let now = now();
        if self
            .last_write
            .is_some_and(|t| now.duration_since(t) < BURST_WINDOW)
        {
            self.state = WriteState::LeftToIoThread;
            return Next::WakeIoThread;
        }
        self.start_writing(SENDER_WRITE_ROUNDS)
    }

    /// A corked sender uncorks: it writes the queue unless someone else writes or will.
    pub(crate) fn uncork(&mut self) -> Next {
        if self.state != WriteState::Idle || !self.has_data() {
            return Next::Nothing;
        }
        self.start_writing(SENDER_WRITE_ROUNDS)
    }

    /// The IO thread starts handling a chunk of frames read from this connection.
    pub(crate) fn begin_read_chunk(&mut self) {
        self.io_reading = true;
    }

    /// The IO thread is done with its chunk: it writes what senders left to it.
    pub(crate) fn end_read_chunk(&mut self) -> Next {
        self.io_reading = false;
        if self.state != WriteState::LeftToIoThread {
            return Next::Nothing;
        }
        if !self.has_data() {
            // A flush command may still be on its way; it will find the queue idle.
            self.state = WriteState::Idle;
            return Next::Nothing;
        }
        self.start_writing(IO_THREAD_WRITE_ROUNDS)
    }

    /// The IO thread saw the socket become writable, or got a flush command.
    pub(crate) fn on_writable(&mut self) -> Next {
        match self.state {
            WriteState::Writing { rounds_left, .. } => {
                self.state = WriteState::Writing {
                    rounds_left,
                    writable_seen: true,
                };
                Next::Nothing
            }
            WriteState::Broken | WriteState::Handshaking => Next::Nothing,
            WriteState::Idle | WriteState::LeftToIoThread | WriteState::Blocked => {
                if self.has_data() {
                    self.start_writing(IO_THREAD_WRITE_ROUNDS)
                } else {
                    self.state = WriteState::Idle;
                    Next::Nothing
                }
            }
        }
    }

    /// The writer takes everything queued, as one batch (the tail closed), and notes the
    /// time for burst detection.
    pub(crate) fn take_batch(&mut self, now: Instant) -> Batch {
        self.last_write = Some(now);
        self.seal_tail();
        self.in_flight = std::mem::take(&mut self.queued);
        let chunks = std::mem::take(&mut self.chunks);
        let frames = std::mem::take(&mut self.frames);
        if self.sealing {
            Batch {
                wire: std::mem::take(&mut self.sealed),
                plain: chunks,
                frames,
            }
        } else {
            Batch {
                wire: chunks,
                plain: VecDeque::new(),
                frames,
            }
        }
    }

    /// The writer reports how its batch went, with the chunks it did not write and a written
    /// buffer to reuse as the tail.
    pub(crate) fn finish_write(
        &mut self,
        outcome: WriteOutcome,
        mut unwritten: VecDeque<Bytes>,
        spare: Option<BytesMut>,
    ) -> AfterWrite {
        if self.spare.is_none() {
            self.spare = spare;
        }
        // What was written is gone; what was not comes back into `queued` below.
        self.in_flight = 0;
        let WriteState::Writing {
            rounds_left,
            writable_seen,
        } = self.state
        else {
            // Only a writer calls this, and only this method moves a writer on.
            debug_assert!(false, "finish_write in state {:?}", self.state);
            return AfterWrite::Done;
        };
        match outcome {
            WriteOutcome::Written => {
                if !self.has_data() {
                    self.state = WriteState::Idle;
                    return AfterWrite::Done;
                }
                let rounds_left = rounds_left.saturating_sub(1);
                if rounds_left == 0 {
                    // Let the IO thread write the rest; this writer has its own work.
                    self.state = WriteState::Idle;
                    return AfterWrite::HandOver;
                }
                self.state = WriteState::Writing {
                    rounds_left,
                    writable_seen,
                };
                AfterWrite::Again
            }
            WriteOutcome::WouldBlock => {
                // What was not written goes back in front of what came meanwhile: wire bytes
                // of an encrypted connection are sealed already, and stay apart.
                let front = if self.sealing {
                    &mut self.sealed
                } else {
                    &mut self.chunks
                };
                while let Some(chunk) = unwritten.pop_back() {
                    self.queued += chunk.len();
                    front.push_front(chunk);
                }
                if writable_seen {
                    self.state = WriteState::Writing {
                        rounds_left,
                        writable_seen: false,
                    };
                    return AfterWrite::Again;
                }
                self.state = WriteState::Blocked;
                AfterWrite::Done
            }
            WriteOutcome::Failed => {
                self.sealed.clear();
                self.chunks.clear();
                self.tail.clear();
                self.queued = 0;
                self.state = WriteState::Broken;
                AfterWrite::Close
            }
        }
    }

    fn start_writing(&mut self, rounds_left: usize) -> Next {
        self.state = WriteState::Writing {
            rounds_left,
            writable_seen: false,
        };
        Next::Write
    }

    /// Moves the tail into the chunk list, so later frames follow it in order. (Closing the
    /// tail buffer, not encrypting it: sealing is the writer's.)
    fn seal_tail(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        let fresh = self
            .spare
            .take()
            .unwrap_or_else(|| BytesMut::with_capacity(TAIL_CAPACITY));
        let tail = std::mem::replace(&mut self.tail, fresh).freeze();
        self.chunks.push_back(tail);
    }
}

/// Keeps `written` in `spare` (emptied) if it is a buffer worth reusing as a tail.
pub(crate) fn keep_as_spare(written: Bytes, spare: &mut Option<BytesMut>) {
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

#[cfg(test)]
mod tests;
