//! Helpers of the recovery and standby tests: scratch recovery directories, and masters
//! restarted on the port of the one they replace.

use ember_deploy::{start_master, MasterConfig, MasterHandle};
use ember_test_support::{wait_for, TempDir};
use rpc_env::keys;

use super::{init_logging, small_conf, DEADLINE};

/// A scratch recovery directory (`ember.deploy.recoveryDirectory`), removed on drop.
pub struct RecoveryDir(TempDir);

impl RecoveryDir {
    /// A fresh, empty directory whose name holds `name`.
    pub fn new(name: &str) -> RecoveryDir {
        RecoveryDir(TempDir::new(&format!("master-it-{name}")))
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    /// Its path as a setting's value.
    pub fn setting(&self) -> String {
        self.path().to_str().expect("a UTF-8 temp dir").to_string()
    }
}

/// A master config on loopback port `port` with [`small_conf`] and these settings.
pub fn config_on(port: u16, settings: &[(&str, &str)]) -> MasterConfig {
    init_logging();
    let mut config = MasterConfig::new("127.0.0.1", port).with_conf(small_conf());
    config.webui_port = 0;
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
    wait_for(&format!("port {port} can be bound again"), DEADLINE, || {
        start_master(config.clone())
    })
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
