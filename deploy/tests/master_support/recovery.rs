//! Helpers of the recovery and standby tests: scratch recovery directories, and masters
//! restarted on the port of the one they replace.

use std::time::{Duration, Instant};

use ember_deploy::{start_master, MasterConfig, MasterHandle};
use rpc_env::keys;

use super::{init_logging, small_conf, DEADLINE};

/// A directory under the system's temp dir, removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// A fresh, empty directory whose name starts with `name`.
    pub fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ember-master-it-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creates a temp dir");
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Its path as a setting's value.
    pub fn setting(&self) -> String {
        self.0.to_str().expect("a UTF-8 temp dir").to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A master config on loopback port `port` with [`small_conf`] and these settings.
pub fn config_on(port: u16, settings: &[(&str, &str)]) -> MasterConfig {
    init_logging();
    let mut config = MasterConfig::new("127.0.0.1", port).with_conf(small_conf());
    for (k, v) in settings {
        config = config.set(*k, *v);
    }
    config
}

/// Starts a master on exactly `port` (the port of a master just stopped), retrying while
/// the port is still held, up to [`DEADLINE`].
pub fn start_master_on(port: u16, settings: &[(&str, &str)]) -> MasterHandle {
    // Without this the env would move to the next free port instead of failing.
    let config = config_on(port, settings).set(keys::PORT_MAX_RETRIES, "0");
    let end = Instant::now() + DEADLINE;
    loop {
        match start_master(config.clone()) {
            Ok(master) => return master,
            Err(e) => assert!(Instant::now() < end, "cannot bind port {port} again: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A master shut down when dropped, so that a failing test does not leave it running
/// (a standby would go on polling a recovery directory the test removes).
pub struct Running(pub MasterHandle);

impl std::ops::Deref for Running {
    type Target = MasterHandle;

    fn deref(&self) -> &MasterHandle {
        &self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}
