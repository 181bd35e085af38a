//! The FILESYSTEM recovery directory as hostile ground, through real masters: a directory
//! others may write stops the start, a FIFO in it does not hang it, and with a secret a
//! record without the cluster's MAC is not recovered.

pub mod master_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ember_deploy::messages::{DriverState, MasterAsk};
use ember_deploy::{master_keys, start_master, DriverId, MasterHandle};
use master_support::*;
use nix::sys::stat::Mode;
use rpc_env::{keys, RpcError};

const SECRET: &str = "0123456789abcdef-recovery-files";

fn recovery<'a>(dir: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut settings = vec![
        (master_keys::RECOVERY_MODE, "FILESYSTEM"),
        (master_keys::RECOVERY_DIRECTORY, dir),
        // A recovery timeout no test waits for: reaching ALIVE must not depend on it.
        (master_keys::RECOVERY_TIMEOUT, "1h"),
    ];
    settings.extend_from_slice(extra);
    settings
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn stop(master: &MasterHandle) -> u16 {
    let port = master.address().port();
    master.shutdown();
    master.await_termination();
    port
}

fn submit(master: &MasterHandle) -> DriverId {
    let answer = master
        .master_ref()
        .ask_sync(|reply| MasterAsk::RequestSubmitDriver {
            description: driver(1, 256, false),
            reply,
        })
        .expect("answered");
    answer.driver_id.expect("accepted")
}

/// The one stored driver's file.
fn driver_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("lists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("driver_"))
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn a_directory_others_may_write_stops_the_start_naming_the_setting() {
    let dir = RecoveryDir::new("group-writable");
    chmod(dir.path(), 0o775);
    let dir_setting = dir.setting();
    match start_master(config_on(0, &recovery(&dir_setting, &[]))) {
        Err(RpcError::Conf(e)) => {
            assert_eq!(e.key(), master_keys::RECOVERY_DIRECTORY, "{e}");
            let message = e.to_string();
            assert!(message.contains(&dir_setting), "{message}");
            assert!(message.contains("writable by group or others"), "{message}");
        }
        Err(e) => panic!("not a settings error: {e}"),
        Ok(master) => {
            master.shutdown();
            panic!("started on a group-writable directory");
        }
    }
}

/// A FIFO under a record's name, and one at the lock's: the first master stands by (the
/// lock is unusable) without hanging; once the lock is a file again it leads, skipping the
/// FIFO, within the deadline.
#[test]
fn a_fifo_in_the_directory_does_not_hang_the_start() {
    let dir = RecoveryDir::new("fifo");
    let dir_setting = dir.setting();
    let settings = recovery(&dir_setting, &[(master_keys::LEADER_POLL_INTERVAL, "50ms")]);
    let fifo = |name: &str| {
        nix::unistd::mkfifo(&dir.path().join(name), Mode::from_bits_truncate(0o600))
            .expect("mkfifo")
    };
    fifo("driver_driver-20260101000000-0000");
    fifo("leader.lock");
    let master = Running(master_with(&settings));
    wait_state(&master, "STANDBY, answering", |s| s.status == "STANDBY");
    std::fs::remove_file(dir.path().join("leader.lock")).expect("remove");
    let state = wait_state(&master, "ALIVE", |s| s.status == "ALIVE");
    assert!(state.active_drivers.is_empty() && state.completed_drivers.is_empty());
    let lock = dir.path().join("leader.lock");
    assert_eq!(
        std::fs::metadata(&lock).expect("lock").mode() & 0o777,
        0o600
    );
}

/// With a secret, a driver record stripped of its MAC (as anyone who could write the
/// directory could make) is not recovered; the same file is recovered by a master without
/// a secret, so it is the MAC check that refused it.
#[test]
fn with_a_secret_a_record_without_the_mac_is_not_recovered() {
    let dir = RecoveryDir::new("mac");
    let dir_setting = dir.setting();
    let with_secret = recovery(&dir_setting, &[(keys::AUTHENTICATE_SECRET, SECRET)]);
    let first = Running(master_with(&with_secret));
    let driver_id = submit(&first);
    let port = stop(&first);
    let path = driver_file(dir.path());
    assert_eq!(
        std::fs::metadata(&path).expect("stat").mode() & 0o777,
        0o600
    );
    let sealed = std::fs::read(&path).expect("read");
    // Version 2: magic (4), flags (1, bit 0 = MAC), length (4), CRC (4), MAC (32), payload.
    assert_eq!((&sealed[..4], sealed[4]), (&b"EMB2"[..], 1));
    let mut stripped = sealed[..13].to_vec();
    stripped[4] = 0;
    stripped.extend_from_slice(&sealed[45..]);
    std::fs::write(&path, &stripped).expect("plant");

    let master = Running(start_master_on(port, &with_secret));
    let state = wait_state(&master, "ALIVE", |s| s.status == "ALIVE");
    assert!(
        state.completed_drivers.iter().all(|d| d.id != driver_id),
        "recovered: {:?}",
        state.completed_drivers
    );
    let port = stop(&master);

    let no_secret = recovery(&dir_setting, &[]);
    std::fs::write(&path, &stripped).expect("plant again");
    let master = Running(start_master_on(port, &no_secret));
    let state = wait_state(&master, "ALIVE", |s| s.status == "ALIVE");
    let ended = state.completed_drivers.iter().find(|d| d.id == driver_id);
    assert_eq!(ended.map(|d| d.state), Some(DriverState::Error));
}
