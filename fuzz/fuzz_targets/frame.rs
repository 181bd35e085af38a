//! The bytes a socket delivers: frame splitting (length, kind, request id), the endpoint
//! header (sender address, receiver name), failure frames and the endpoint verifier's ask.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks how the stream is cut into reads, so partial frames are covered.
    let Some((&cut, wire)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(cut) + 1;
    let max_frame = 64 * 1024;
    let whole = rpc_env::__fuzz::split_and_parse(wire, wire.len().max(1), max_frame);
    let pieces = rpc_env::__fuzz::split_and_parse(wire, chunk, max_frame);
    // Oracle: how the bytes arrive must not change what is decoded.
    assert_eq!(whole.frames, pieces.frames);
    assert_eq!(whole.framing_error, pieces.framing_error);
});
