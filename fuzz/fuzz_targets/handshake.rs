//! An accepting connection's first bytes: the Noise handshake's length-prefixed messages
//! from an unauthenticated peer, and, behind a real initiator with the secret, the address
//! record and the transport records that carry frames.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outcome = rpc_env::__fuzz::handshake(data);
    // Oracle: without the secret nobody authenticates; with it, the real initiator always
    // does (the fuzzer controls only plaintext, never the cryptography).
    if data.first().is_some_and(|m| m % 2 == 0) {
        assert!(!outcome.authenticated, "raw bytes passed the handshake");
    } else if !data.is_empty() {
        assert!(outcome.authenticated || outcome.refused, "{outcome:?}");
    }
});
