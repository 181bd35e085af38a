//! Every row of the transition table in the module docs, run on a queue without a socket.

use super::*;

/// The conditions a row starts from.
#[derive(Clone, Copy)]
struct Given {
    state: WriteState,
    io_reading: bool,
    queued: bool,
    /// The last write began moments ago (a burst).
    recent_write: bool,
}

const IDLE: Given = Given {
    state: WriteState::Idle,
    io_reading: false,
    queued: false,
    recent_write: false,
};

fn writing(rounds_left: usize, writable_seen: bool) -> WriteState {
    WriteState::Writing {
        rounds_left,
        writable_seen,
    }
}

/// What happens to the queue.
#[derive(Clone, Copy, Debug)]
enum Event {
    Push {
        corked: bool,
    },
    Uncork,
    EndReadChunk,
    Writable,
    Finished(WriteOutcome),
    /// The handshake finished, with nothing to send first.
    HandshakeDone,
}

/// What the caller is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Told {
    Next(Next),
    After(AfterWrite),
    Refused,
}

fn queue(given: Given, t0: Instant) -> WriteQueue {
    let mut q = WriteQueue::new(false);
    if given.queued {
        assert!(q
            .push(&mut BytesMut::from(&b"queued"[..]), usize::MAX)
            .is_ok());
    }
    q.state = given.state;
    q.io_reading = given.io_reading;
    q.last_write = Some(if given.recent_write {
        t0
    } else {
        t0 - Duration::from_secs(1)
    });
    q
}

fn apply(q: &mut WriteQueue, event: Event, t0: Instant) -> Told {
    match event {
        Event::Push { corked } => {
            if q.push(&mut BytesMut::from(&b"frame"[..]), usize::MAX)
                .is_err()
            {
                return Told::Refused;
            }
            Told::Next(q.after_push(|| corked, || t0 + Duration::from_micros(1)))
        }
        Event::Uncork => Told::Next(q.uncork()),
        Event::EndReadChunk => Told::Next(q.end_read_chunk()),
        Event::Writable => Told::Next(q.on_writable()),
        Event::Finished(outcome) => {
            let batch = q.take_batch(t0).wire;
            let unwritten = match outcome {
                WriteOutcome::Written => VecDeque::new(),
                WriteOutcome::WouldBlock | WriteOutcome::Failed => batch,
            };
            Told::After(q.finish_write(outcome, unwritten, None))
        }
        Event::HandshakeDone => Told::Next(q.handshake_done(true, Bytes::new())),
    }
}

#[test]
fn every_transition_of_the_table() {
    use Event::*;
    use WriteState::*;
    let reading = Given {
        io_reading: true,
        ..IDLE
    };
    let burst = Given {
        recent_write: true,
        ..IDLE
    };
    let with = |state: WriteState, queued: bool| Given {
        state,
        queued,
        ..IDLE
    };
    #[rustfmt::skip]
    let rows: Vec<(&str, Given, Event, WriteState, Told)> = vec![
        ("idle, corked push", IDLE, Push { corked: true }, Idle, Told::Next(Next::Nothing)),
        ("idle, push while the IO thread reads", reading, Push { corked: false }, LeftToIoThread, Told::Next(Next::Nothing)),
        ("idle, push in a burst", burst, Push { corked: false }, LeftToIoThread, Told::Next(Next::WakeIoThread)),
        ("idle, lone push", IDLE, Push { corked: false }, writing(SENDER_WRITE_ROUNDS, false), Told::Next(Next::Write)),
        ("idle, uncork with frames", with(Idle, true), Uncork, writing(SENDER_WRITE_ROUNDS, false), Told::Next(Next::Write)),
        ("idle, uncork without frames", with(Idle, false), Uncork, Idle, Told::Next(Next::Nothing)),
        ("writing, push", with(writing(3, false), true), Push { corked: false }, writing(3, false), Told::Next(Next::Nothing)),
        ("writing, uncork", with(writing(3, false), true), Uncork, writing(3, false), Told::Next(Next::Nothing)),
        ("writing, writable", with(writing(3, false), true), Writable, writing(3, true), Told::Next(Next::Nothing)),
        ("writing, written, empty", with(writing(3, false), true), Finished(WriteOutcome::Written), Idle, Told::After(AfterWrite::Done)),
        ("writing, socket full", with(writing(3, false), true), Finished(WriteOutcome::WouldBlock), Blocked, Told::After(AfterWrite::Done)),
        ("writing, socket full after a writable", with(writing(3, true), true), Finished(WriteOutcome::WouldBlock), writing(3, false), Told::After(AfterWrite::Again)),
        ("writing, failed", with(writing(3, false), true), Finished(WriteOutcome::Failed), Broken, Told::After(AfterWrite::Close)),
        ("left to the IO thread, push", with(LeftToIoThread, true), Push { corked: false }, LeftToIoThread, Told::Next(Next::Nothing)),
        ("left to the IO thread, uncork", with(LeftToIoThread, true), Uncork, LeftToIoThread, Told::Next(Next::Nothing)),
        ("left to the IO thread, chunk ends", with(LeftToIoThread, true), EndReadChunk, writing(IO_THREAD_WRITE_ROUNDS, false), Told::Next(Next::Write)),
        ("left to the IO thread, chunk ends, nothing queued", with(LeftToIoThread, false), EndReadChunk, Idle, Told::Next(Next::Nothing)),
        ("left to the IO thread, flush", with(LeftToIoThread, true), Writable, writing(IO_THREAD_WRITE_ROUNDS, false), Told::Next(Next::Write)),
        ("blocked, push", with(Blocked, true), Push { corked: false }, Blocked, Told::Next(Next::Nothing)),
        ("blocked, uncork", with(Blocked, true), Uncork, Blocked, Told::Next(Next::Nothing)),
        ("blocked, writable", with(Blocked, true), Writable, writing(IO_THREAD_WRITE_ROUNDS, false), Told::Next(Next::Write)),
        ("blocked, writable, nothing queued", with(Blocked, false), Writable, Idle, Told::Next(Next::Nothing)),
        ("idle, writable with frames", with(Idle, true), Writable, writing(IO_THREAD_WRITE_ROUNDS, false), Told::Next(Next::Write)),
        ("idle, writable without frames", with(Idle, false), Writable, Idle, Told::Next(Next::Nothing)),
        ("idle, chunk ends", with(Idle, true), EndReadChunk, Idle, Told::Next(Next::Nothing)),
        ("writing, chunk ends", with(writing(3, false), true), EndReadChunk, writing(3, false), Told::Next(Next::Nothing)),
        ("blocked, chunk ends", with(Blocked, true), EndReadChunk, Blocked, Told::Next(Next::Nothing)),
        ("broken, push", with(Broken, false), Push { corked: false }, Broken, Told::Refused),
        ("broken, uncork", with(Broken, false), Uncork, Broken, Told::Next(Next::Nothing)),
        ("broken, writable", with(Broken, false), Writable, Broken, Told::Next(Next::Nothing)),
        ("handshaking, push", with(Handshaking, false), Push { corked: false }, Handshaking, Told::Next(Next::Nothing)),
        ("handshaking, uncork", with(Handshaking, true), Uncork, Handshaking, Told::Next(Next::Nothing)),
        ("handshaking, writable", with(Handshaking, true), Writable, Handshaking, Told::Next(Next::Nothing)),
        ("handshaking, chunk ends", with(Handshaking, true), EndReadChunk, Handshaking, Told::Next(Next::Nothing)),
        ("handshaking, done, frames queued", with(Handshaking, true), HandshakeDone, writing(IO_THREAD_WRITE_ROUNDS, false), Told::Next(Next::Write)),
        ("handshaking, done, nothing queued", with(Handshaking, false), HandshakeDone, Idle, Told::Next(Next::Nothing)),
        ("broken, handshake done", with(Broken, false), HandshakeDone, Broken, Told::Next(Next::Nothing)),
    ];
    let t0 = Instant::now() + Duration::from_secs(10);
    for (name, given, event, state, told) in rows {
        let mut q = queue(given, t0);
        let got = apply(&mut q, event, t0);
        assert_eq!((q.state(), got), (state, told), "{name}");
    }
}

#[test]
fn a_writer_with_frames_still_coming_writes_its_rounds_then_hands_over() {
    let t0 = Instant::now();
    let mut q = queue(
        Given {
            queued: true,
            ..IDLE
        },
        t0,
    );
    assert_eq!(q.uncork(), Next::Write);
    for round in 1..SENDER_WRITE_ROUNDS {
        let batch = q.take_batch(t0).wire;
        assert!(!batch.is_empty());
        // Another sender queues while this batch is being written.
        assert!(q
            .push(&mut BytesMut::from(&b"more"[..]), usize::MAX)
            .is_ok());
        let after = q.finish_write(WriteOutcome::Written, VecDeque::new(), None);
        assert_eq!(after, AfterWrite::Again, "round {round}");
        assert_eq!(q.state(), writing(SENDER_WRITE_ROUNDS - round, false));
    }
    q.take_batch(t0);
    assert!(q
        .push(&mut BytesMut::from(&b"last"[..]), usize::MAX)
        .is_ok());
    let after = q.finish_write(WriteOutcome::Written, VecDeque::new(), None);
    assert_eq!((q.state(), after), (WriteState::Idle, AfterWrite::HandOver));
    assert!(q.has_data(), "the rest is the IO thread's to write");
}

#[test]
fn unwritten_chunks_go_back_in_front_of_later_frames() {
    let t0 = Instant::now();
    let mut q = WriteQueue::new(false);
    assert!(q
        .push(&mut BytesMut::from(&b"first"[..]), usize::MAX)
        .is_ok());
    assert_eq!(q.after_push(|| false, || t0), Next::Write);
    let mut batch = q.take_batch(t0).wire;
    assert_eq!(batch.len(), 1);
    // Half of the batch went out before the socket filled up.
    batch[0] = Bytes::from_static(b"rst");
    assert!(q
        .push(&mut BytesMut::from(&b"second"[..]), usize::MAX)
        .is_ok());
    assert_eq!(
        q.finish_write(WriteOutcome::WouldBlock, batch, None),
        AfterWrite::Done
    );
    assert_eq!(q.state(), WriteState::Blocked);
    assert_eq!(q.on_writable(), Next::Write);
    let order: Vec<Bytes> = q.take_batch(t0).wire.into_iter().collect();
    assert_eq!(
        order,
        vec![Bytes::from_static(b"rst"), Bytes::from_static(b"second")]
    );
}

#[test]
fn large_frames_are_queued_whole_and_keep_their_order() {
    let mut q = WriteQueue::new(false);
    let small = BytesMut::from(&b"small"[..]);
    let large = BytesMut::from(&vec![7u8; COPY_LIMIT + 1][..]);
    assert!(q.push(&mut small.clone(), usize::MAX).is_ok());
    assert!(q.push(&mut large.clone(), usize::MAX).is_ok());
    assert!(q.push(&mut small.clone(), usize::MAX).is_ok());
    let batch: Vec<Bytes> = q.take_batch(Instant::now()).wire.into_iter().collect();
    assert_eq!(batch.len(), 3, "the large frame is its own chunk");
    assert_eq!(batch[0], small);
    assert_eq!(batch[1], large);
    assert_eq!(batch[2], small);
}

#[test]
fn a_written_tail_is_reused_as_the_next_tail() {
    let mut q = WriteQueue::new(false);
    assert!(q
        .push(&mut BytesMut::from(&b"frame"[..]), usize::MAX)
        .is_ok());
    q.state = writing(1, false);
    let batch = q.take_batch(Instant::now()).wire;
    let mut spare = None;
    for chunk in batch {
        keep_as_spare(chunk, &mut spare);
    }
    assert!(spare.is_some(), "the tail-sized buffer comes back");
    q.finish_write(WriteOutcome::Written, VecDeque::new(), spare);
    assert!(q.spare.is_some());

    let mut big = None;
    keep_as_spare(Bytes::from(vec![0u8; SPARE_MAX + 1]), &mut big);
    assert!(big.is_none(), "buffers larger than a spare are freed");
}

#[test]
fn frames_sent_during_the_handshake_follow_the_address_record() {
    let t0 = Instant::now();
    let record = Bytes::from_static(b"record");
    // Unencrypted after the handshake: the record, then the frames, all wire bytes.
    let mut q = WriteQueue::new(true);
    assert!(q
        .push(&mut BytesMut::from(&b"early"[..]), usize::MAX)
        .is_ok());
    assert_eq!(q.after_push(|| false, || t0), Next::Nothing);
    assert_eq!(q.handshake_done(false, record.clone()), Next::Write);
    let batch = q.take_batch(t0);
    assert!(batch.plain.is_empty());
    let wire: Vec<Bytes> = batch.wire.into_iter().collect();
    assert_eq!(wire, vec![record.clone(), Bytes::from_static(b"early")]);

    // Encrypted: the sealed record is wire bytes, the frames are the writer's to seal.
    let mut q = WriteQueue::new(true);
    assert!(q
        .push(&mut BytesMut::from(&b"early"[..]), usize::MAX)
        .is_ok());
    assert_eq!(q.handshake_done(true, record.clone()), Next::Write);
    let batch = q.take_batch(t0);
    assert_eq!(batch.wire.into_iter().collect::<Vec<_>>(), vec![record]);
    assert_eq!(
        batch.plain.into_iter().collect::<Vec<_>>(),
        vec![Bytes::from_static(b"early")]
    );
}

#[test]
fn sealed_bytes_the_socket_did_not_take_are_not_sealed_again() {
    let t0 = Instant::now();
    let mut q = WriteQueue::new(true);
    assert_eq!(q.handshake_done(true, Bytes::new()), Next::Nothing);
    assert!(q.push(&mut BytesMut::from(&b"one"[..]), usize::MAX).is_ok());
    assert_eq!(q.after_push(|| false, || t0), Next::Write);
    let batch = q.take_batch(t0);
    assert_eq!(batch.plain.len(), 1);
    // The writer sealed "one" and wrote part of it before the socket filled up.
    let unwritten = VecDeque::from([Bytes::from_static(b"sealed-rest")]);
    assert!(q.push(&mut BytesMut::from(&b"two"[..]), usize::MAX).is_ok());
    assert_eq!(
        q.finish_write(WriteOutcome::WouldBlock, unwritten, None),
        AfterWrite::Done
    );
    assert_eq!(q.on_writable(), Next::Write);
    let batch = q.take_batch(t0);
    assert_eq!(
        batch.wire.into_iter().collect::<Vec<_>>(),
        vec![Bytes::from_static(b"sealed-rest")]
    );
    assert_eq!(
        batch.plain.into_iter().collect::<Vec<_>>(),
        vec![Bytes::from_static(b"two")]
    );
}

#[test]
fn the_byte_cap_counts_what_waits_and_what_a_writer_holds() {
    let mut q = WriteQueue::new(false);
    let frame = || BytesMut::from(&[1u8; 100][..]);
    // Any one frame fits while the cap is not passed, even one larger than the cap.
    assert_eq!(q.push(&mut frame(), 250), Ok(()));
    assert_eq!(q.push(&mut BytesMut::from(&[2u8; 300][..]), 250), Ok(()));
    assert_eq!(q.push(&mut frame(), 250), Err(Refused::Full), "400 held");
    // What a writer took is still in memory until written: it counts.
    let batch = q.take_batch(Instant::now());
    assert_eq!(q.push(&mut frame(), 450), Ok(()), "400 held");
    assert_eq!(q.push(&mut frame(), 450), Err(Refused::Full), "500 held");
    // What the socket did not take waits again; what it took is freed.
    q.state = writing(1, false);
    q.finish_write(WriteOutcome::WouldBlock, batch.wire, None);
    assert_eq!(
        q.push(&mut frame(), 499),
        Err(Refused::Full),
        "400 back + 100"
    );
    assert_eq!(q.push(&mut frame(), 500), Ok(()), "400 back + 100");
    let batch = q.take_batch(Instant::now());
    q.state = writing(1, false);
    q.finish_write(WriteOutcome::Written, VecDeque::new(), None);
    drop(batch);
    assert_eq!(q.push(&mut frame(), 100), Ok(()), "everything was written");
}
