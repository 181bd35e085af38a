//! Every wire message enum of rpc-env's users: the first byte picks the enum, the rest is
//! its body. Each decode succeeds or errs; a decoded value must re-encode stably.
//!
//! Bodies decode as they do off a connection (`rpc_env::__fuzz::decode_arrived`: an env, a
//! connection and a call as context), so the endpoint refs and reply ports inside asks and
//! registrations decode, and the fields after them are reached.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rpc_env::__fuzz::decode_arrived;
use rpc_env::{encode_to_bytes, Decode, Encode};

fn check<T: Decode + Encode>(body: &[u8]) {
    let Some(Ok(value)) = decode_arrived::<T>(Bytes::copy_from_slice(body)) else {
        return;
    };
    let once = encode_to_bytes(&value);
    let again: T = match decode_arrived(once.clone()) {
        Some(Ok(v)) => v,
        Some(Err(e)) => panic!("a decoded value's encoding does not decode: {e}"),
        None => return,
    };
    assert_eq!(once, encode_to_bytes(&again), "re-encoding is not stable");
}

fuzz_target!(|data: &[u8]| {
    use ember_deploy::messages as d;
    use ember_scheduler as s;
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 14 {
        0 => check::<s::DriverMessage>(body),
        1 => check::<s::DriverAsk>(body),
        2 => check::<s::ExecutorMessage>(body),
        3 => check::<s::HeartbeatAsk>(body),
        // Was `HeartbeatMessage`, now local-only (`HeartbeatControl`, no encoding).
        4 => check::<s::TaskUpdate>(body),
        5 => check::<d::MasterMessage>(body),
        6 => check::<d::MasterAsk>(body),
        7 => check::<d::WorkerMessage>(body),
        8 => check::<d::WorkerAsk>(body),
        9 => check::<d::AppClientMessage>(body),
        // Was `AppClientAsk`, now local-only (`AppClientControl`, no encoding).
        10 => check::<d::ExecutorDescription>(body),
        11 => check::<s::TaskDescription>(body),
        12 => check::<d::ProgramStoreAsk>(body),
        _ => check::<d::UploadStart>(body),
    }
});
