//! Shared helpers of the rpc-env integration tests: envs on loopback that shut down at the
//! end of a test, asks awaited with a deadline, `Probe` (an endpoint that records every
//! callback and can be told to answer, fail, panic, hold or block) and `Registry` (a server
//! endpoint that is handed refs). Waiting on conditions is ember-test-support's.
//!
//! Every test file declares this module `pub mod util;`: its items are public items of each
//! test crate, of which each file uses a part.

mod probe;
pub mod registry;
mod relay;
pub mod staller;

pub use probe::*;
pub use relay::recording_relay;

use std::thread;
use std::time::{Duration, Instant};

use rpc_env::{AskHandle, RpcAddress, RpcConf, RpcEnv, RpcEnvConfig, RpcError};

pub use ember_test_support::{wait_until, DEADLINE};

/// The outcome of an ask, waiting at most [`DEADLINE`] for it (so a hung ask fails the test
/// instead of hanging it until the ask's own timeout).
#[track_caller]
pub fn answer<T: Send + 'static>(handle: AskHandle<T>) -> Result<T, RpcError> {
    answer_within(handle, DEADLINE)
}

/// The outcome of an ask, waiting at most `deadline` for it.
#[track_caller]
pub fn answer_within<T: Send + 'static>(
    handle: AskHandle<T>,
    deadline: Duration,
) -> Result<T, RpcError> {
    let end = Instant::now() + deadline;
    let mut handle = handle;
    loop {
        match handle.poll() {
            Ok(result) => return result,
            Err(back) => handle = back,
        }
        if Instant::now() >= end {
            panic!("the ask did not end within {deadline:?}");
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// An env that is shut down (and awaited) when the test ends, unless the test is panicking:
/// a failed test may have left a handler blocked, and must fail rather than hang.
pub struct Env(pub RpcEnv);

impl Env {
    /// A server-mode env on `127.0.0.1`, on a free port.
    pub fn server(name: &str) -> Env {
        Env::create(RpcEnvConfig::server(name, "127.0.0.1", 0))
    }

    /// A server-mode env on `127.0.0.1` with these settings.
    pub fn server_with(name: &str, conf: RpcConf) -> Env {
        Env::create(RpcEnvConfig::server(name, "127.0.0.1", 0).with_conf(conf))
    }

    /// A client-mode env.
    pub fn client(name: &str) -> Env {
        Env::create(RpcEnvConfig::client(name))
    }

    /// An env of this config.
    pub fn create(config: RpcEnvConfig) -> Env {
        Env(RpcEnv::create(config).expect("the env starts"))
    }

    /// The advertised address of a server-mode env.
    pub fn addr(&self) -> RpcAddress {
        self.0
            .address()
            .expect("a server-mode env has an address")
            .clone()
    }

    /// Shuts the env down and waits for it.
    pub fn stop_now(&self) {
        self.0.shutdown();
        self.0.await_termination();
    }
}

impl std::ops::Deref for Env {
    type Target = RpcEnv;
    fn deref(&self) -> &RpcEnv {
        &self.0
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.stop_now();
        }
    }
}
