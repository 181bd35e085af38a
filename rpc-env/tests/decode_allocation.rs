//! What a hostile length prefix costs the decoder in memory.
//!
//! The codec's docs promise that "a decoder also refuses to allocate more than the bytes it
//! was given could hold, so a hostile length prefix costs nothing". `Vec<T>` checks the
//! count against the bytes left (one byte per element), then reserves `count` elements of
//! `size_of::<T>()` bytes each: a `Vec<String>` count reserves 24 bytes of memory per byte
//! of message before the first element is read. With the default 128 MiB limit one frame
//! makes the receiver ask for 3 GiB (5 GiB for `Vec<(u8, String, u64)>`), and a failed
//! allocation aborts the process.
//!
//! Measured by the process's peak virtual size, so this test is alone in its binary (no
//! other test's allocations blur the peak) and runs on Linux only.

#![cfg(target_os = "linux")]

use bytes::{BufMut, BytesMut};
use rpc_env::{decode_from, DecodeError};

const MIB: usize = 1 << 20;

/// The process's peak virtual memory size, in bytes (`VmPeak` in `/proc/self/status`).
fn vm_peak() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmPeak:"))
        .expect("a VmPeak line");
    let kib: usize = line
        .trim_start_matches("VmPeak:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("a number of kB");
    kib * 1024
}

#[test]
fn a_hostile_vec_count_reserves_no_more_than_the_message_size() {
    // A count of 8 Mi strings, backed by 8 MiB, whose first string claims 4 GiB: decoding
    // must fail at the first element, having needed no memory to find that out.
    let count = 8 * MIB;
    let mut body = BytesMut::with_capacity(4 + count);
    body.put_u32(u32::try_from(count).expect("fits"));
    body.put_u32(u32::MAX);
    body.resize(4 + count, 0);
    let body = body.freeze();

    let before = vm_peak();
    let decoded = decode_from::<Vec<String>>(body.clone());
    let grown = vm_peak().saturating_sub(before);

    assert!(
        matches!(decoded, Err(DecodeError::LengthTooLarge { .. })),
        "{decoded:?}"
    );
    assert!(
        grown <= body.len(),
        "decoding a {} MiB message that fails at its first element grew the peak virtual \
         size by {} MiB: Vec::with_capacity(count) reserves size_of::<String>() bytes per \
         byte of message (codec/impls.rs, Vec<T>::decode)",
        body.len() / MIB,
        grown / MIB
    );
}
