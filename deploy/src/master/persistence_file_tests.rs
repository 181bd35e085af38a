//! The FILESYSTEM store on real files in scratch directories: round trips, damage, and
//! what a hostile directory holds (FIFOs, links, huge files, forged records, loose modes).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::mpsc;
use std::thread;

use ember_test_support::DEADLINE;
use nix::sys::stat::Mode;
use rpc_env::Secret;

use super::config::MasterSettings;
use super::leader::{FileLockLeader, LeaderElection, LEADER_LOCK_FILE};
use super::persistence::{BlackHolePersistence, FileSystemPersistence, PersistenceEngine};
use super::record::{self, RecordKey, MAX_RECORD_BYTES};
use super::stored::driver_key;
use super::test_dir::TestDir;
use super::tests::Fixture;
use crate::messages::DriverState;

fn values(engine: &dyn PersistenceEngine, prefix: &str) -> Vec<(String, String)> {
    engine
        .read(prefix)
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// PersistenceEngineSuite's shared scenario, and 1 (FileSystemPersistenceEngine).
#[test]
fn persist_read_unpersist_round_trip() {
    let dir = TestDir::new("persist");
    let mut engine = FileSystemPersistence::open(dir.path(), None).expect("opens");
    engine.persist("test_1", b"test_1_value").expect("persists");
    assert_eq!(values(&engine, "test_"), [pair("test_1", "test_1_value")]);
    engine.persist("test_2", b"test_2_value").expect("persists");
    engine.persist("other_1", b"x").expect("persists");
    assert_eq!(
        values(&engine, "test_"),
        [
            pair("test_1", "test_1_value"),
            pair("test_2", "test_2_value")
        ]
    );
    engine.unpersist("test_1").expect("unpersists");
    assert_eq!(values(&engine, "test_"), [pair("test_2", "test_2_value")]);
    engine.unpersist("test_2").expect("unpersists");
    assert!(engine.read("test_").is_empty());
    assert_eq!(values(&engine, ""), [pair("other_1", "x")]);

    // A second engine on the same directory (a restarted master) reads the same.
    let again = FileSystemPersistence::open(dir.path(), None).expect("opens");
    assert_eq!(values(&again, "other_"), [pair("other_1", "x")]);
}

/// Where Spark fails (SPARK-46191), a second persist replaces the value atomically.
#[test]
fn persisting_again_replaces_the_value() {
    let dir = TestDir::new("replace");
    let mut engine = FileSystemPersistence::open(dir.path(), None).expect("opens");
    engine.persist("worker_1", b"old").expect("persists");
    engine.persist("worker_1", b"new").expect("replaces");
    assert_eq!(values(&engine, "worker_"), [pair("worker_1", "new")]);
    let files = fs::read_dir(dir.path()).expect("lists").count();
    assert_eq!(files, 1, "no temporary file is left behind");
}

#[test]
fn unpersisting_a_missing_key_is_fine() {
    let dir = TestDir::new("missing");
    let mut engine = FileSystemPersistence::open(dir.path(), None).expect("opens");
    engine.unpersist("app_nothing").expect("not an error");
}

#[test]
fn leftover_temporary_files_and_damaged_entries_are_skipped() {
    let dir = TestDir::new("damaged");
    let mut engine = FileSystemPersistence::open(dir.path(), None).expect("opens");
    engine.persist("app_good", b"good").expect("persists");
    engine
        .persist("app_torn", b"a longer value")
        .expect("persists");
    engine.persist("app_flipped", b"flip me").expect("persists");
    // A crash between writing and renaming leaves a temporary file.
    fs::write(
        dir.path().join(".app_new.tmp-1-0"),
        record::seal(None, ".app_new", b"half"),
    )
    .expect("write");
    // A torn write: the file ends early.
    let torn = dir.path().join("app_torn");
    let bytes = fs::read(&torn).expect("read");
    fs::write(&torn, &bytes[..bytes.len() - 3]).expect("truncate");
    // A flipped bit in the payload.
    let flipped = dir.path().join("app_flipped");
    let mut bytes = fs::read(&flipped).expect("read");
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x10;
    }
    fs::write(&flipped, bytes).expect("corrupt");
    // Not ours at all, and too short to be.
    fs::write(dir.path().join("app_stray"), b"hello, world!").expect("write");
    fs::write(dir.path().join("app_tiny"), b"EM").expect("write");

    assert_eq!(values(&engine, "app_"), [pair("app_good", "good")]);
}

#[test]
fn keys_cannot_escape_the_directory() {
    let dir = TestDir::new("escape");
    let inner = dir.path().join("inner");
    let mut engine = FileSystemPersistence::open(&inner, None).expect("opens");
    for key in [
        "worker_../../x",
        "worker_a/b",
        "../worker_x",
        ".hidden",
        "w\u{e9}%",
    ] {
        engine.persist(key, key.as_bytes()).expect("persists");
    }
    assert!(
        engine.persist("", b"x").is_err(),
        "an empty key has no file"
    );
    let names: Vec<String> = fs::read_dir(&inner)
        .expect("lists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(fs::read_dir(dir.path()).expect("lists").count(), 1);
    let read = values(&engine, "");
    let keys: Vec<&str> = read.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "../worker_x",
            ".hidden",
            "worker_../../x",
            "worker_a/b",
            "w\u{e9}%"
        ]
    );
    assert!(read.iter().all(|(k, v)| k == v));
}

/// PersistenceEngineSuite 4 (SPARK-46215) and 5.
#[test]
fn missing_parents_are_created_and_links_followed() {
    let dir = TestDir::new("parents");
    let nested = dir.path().join("a").join("b").join("c").join("dir");
    let mut engine = FileSystemPersistence::open(&nested, None).expect("creates parents");
    engine.persist("k", b"v").expect("persists");
    assert!(nested.join("k").is_file());

    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&nested, &link).expect("symlink");
    let through_link = FileSystemPersistence::open(&link, None).expect("follows the link");
    assert_eq!(values(&through_link, ""), [pair("k", "v")]);
}

#[test]
fn the_black_hole_keeps_nothing() {
    let mut engine = BlackHolePersistence;
    engine.persist("app_1", b"x").expect("accepted");
    engine.unpersist("app_2").expect("accepted");
    assert!(engine.read("").is_empty());
}

// The hostile directory.

fn secret(s: &str) -> Secret {
    Secret::new(format!("0123456789abcdef-{s}").into_bytes(), "test").expect("secret")
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).expect("stat").mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs `f` on a thread of its own and returns its result, or panics if it takes longer
/// than [`DEADLINE`]: what must not hang is not run on the test's thread.
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(value) => value,
        Err(e) => panic!("{what} did not finish within {DEADLINE:?}: {e}"),
    }
}

#[test]
fn the_directory_is_created_0700_and_its_files_0600() {
    let dir = TestDir::new("modes");
    let recovery = dir.path().join("parent").join("recovery");
    let mut engine = FileSystemPersistence::open(&recovery, None).expect("opens");
    assert_eq!(mode_of(&recovery), 0o700);
    engine.persist("app_1", b"one").expect("persists");
    engine.persist("app_1", b"again").expect("replaces");
    assert_eq!(mode_of(&recovery.join("app_1")), 0o600);

    let mut leader = FileLockLeader::new(&recovery, "me");
    assert!(leader.try_acquire().expect("polls"));
    assert_eq!(mode_of(&recovery.join(LEADER_LOCK_FILE)), 0o600);
}

/// A lock file an older Ember left `0644` is tightened when it is next taken.
#[test]
fn a_loose_lock_file_is_tightened() {
    let dir = TestDir::new("loose-lock");
    chmod(dir.path(), 0o700);
    let lock = dir.path().join(LEADER_LOCK_FILE);
    fs::write(&lock, b"old leader").expect("write");
    chmod(&lock, 0o644);
    let mut leader = FileLockLeader::new(dir.path(), "me");
    assert!(leader.try_acquire().expect("polls"));
    assert_eq!(mode_of(&lock), 0o600);
}

#[test]
fn a_directory_writable_by_group_or_others_is_refused() {
    for mode in [0o770, 0o702, 0o777, 0o720] {
        let dir = TestDir::new("writable");
        chmod(dir.path(), mode);
        let why = FileSystemPersistence::open(dir.path(), None).expect_err("refused");
        assert!(
            why.contains("writable by group or others"),
            "{mode:o}: {why}"
        );
        assert!(why.contains("chmod 700"), "{why}");
    }
    // Readable is only warned about; the master's own is accepted silently.
    for mode in [0o755, 0o700, 0o500] {
        let dir = TestDir::new("readable");
        chmod(dir.path(), mode);
        FileSystemPersistence::open(dir.path(), None).expect("accepted");
        chmod(dir.path(), 0o700);
    }
}

#[test]
fn a_directory_owned_by_another_user_is_refused() {
    let dir = TestDir::new("foreign");
    if !nix::unistd::geteuid().is_root() {
        // Only root can give a directory away; the check is the same uid comparison.
        eprintln!("skipped: needs root to chown");
        return;
    }
    let nobody = nix::unistd::Uid::from_raw(65534);
    nix::unistd::chown(dir.path(), Some(nobody), None).expect("chown");
    let why = FileSystemPersistence::open(dir.path(), None).expect_err("refused");
    assert!(why.contains("owned by uid 65534"), "{why}");
    // And a record file given away is skipped.
    let dir = TestDir::new("foreign-file");
    let mut engine = FileSystemPersistence::open(dir.path(), None).expect("opens");
    engine.persist("app_mine", b"mine").expect("persists");
    engine.persist("app_given", b"given").expect("persists");
    nix::unistd::chown(&dir.path().join("app_given"), Some(nobody), None).expect("chown");
    assert_eq!(values(&engine, "app_"), [pair("app_mine", "mine")]);
}

#[test]
fn a_path_that_is_not_a_directory_is_refused() {
    let dir = TestDir::new("not-a-dir");
    let file = dir.path().join("file");
    fs::write(&file, b"x").expect("write");
    let why = FileSystemPersistence::open(&file, None).expect_err("refused");
    assert!(why.contains("not a directory"), "{why}");
}

/// A FIFO named as a record would block a plain `open` until someone writes to it: the
/// master's start would hang. It is skipped, and so is one at the lock's name.
#[test]
fn a_fifo_does_not_hang_reading_or_the_lock() {
    let dir = TestDir::new("fifo");
    let path = dir.path().to_path_buf();
    let mut engine = FileSystemPersistence::open(&path, None).expect("opens");
    engine.persist("driver_good", b"good").expect("persists");
    nix::unistd::mkfifo(&path.join("driver_fifo"), Mode::from_bits_truncate(0o600))
        .expect("mkfifo");
    nix::unistd::mkfifo(
        &path.join(LEADER_LOCK_FILE),
        Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let found = within_deadline("reading past a FIFO", move || values(&engine, "driver_"));
    assert_eq!(found, [pair("driver_good", "good")]);
    let lock_path = path.clone();
    let polled = within_deadline("polling a FIFO lock", move || {
        FileLockLeader::new(&lock_path, "me").try_acquire()
    });
    let err = polled.expect_err("a FIFO is no lock file");
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

/// A valid record of 2 MiB is over the cap and skipped; a 16 GiB (sparse) file is skipped
/// as fast, from its size alone: neither is read whole.
#[test]
fn a_file_over_the_cap_is_skipped_unread() {
    let dir = TestDir::new("huge");
    let mut engine = FileSystemPersistence::open(dir.path(), None).expect("opens");
    engine.persist("app_small", b"small").expect("persists");
    let big = vec![b'x'; 2 << 20];
    assert!(big.len() as u64 > MAX_RECORD_BYTES);
    fs::write(
        dir.path().join("app_big"),
        record::seal(None, "app_big", &big),
    )
    .expect("write");
    let sparse = fs::File::create(dir.path().join("app_sparse")).expect("create");
    sparse.set_len(16 << 30).expect("a sparse file");
    chmod(&dir.path().join("app_sparse"), 0o600);
    let path = dir.path().to_path_buf();
    let found = within_deadline("skipping huge files", move || {
        let engine = FileSystemPersistence::open(&path, None).expect("opens");
        values(&engine, "app_")
    });
    assert_eq!(found, [pair("app_small", "small")]);
    // Just under the cap is still a record.
    let near = vec![b'y'; MAX_RECORD_BYTES as usize - 64];
    engine.persist("app_near", &near).expect("persists");
    assert_eq!(engine.read("app_near").len(), 1);
}

/// A link is never followed, even to a record that would read well: whoever made it could
/// point it at a FIFO, a device, or another user's file.
#[test]
fn a_symlink_is_skipped() {
    let dir = TestDir::new("links");
    let elsewhere = TestDir::new("links-target");
    let mut other = FileSystemPersistence::open(elsewhere.path(), None).expect("opens");
    other.persist("app_linked", b"linked").expect("persists");
    let mut engine = FileSystemPersistence::open(dir.path(), None).expect("opens");
    engine.persist("app_real", b"real").expect("persists");
    std::os::unix::fs::symlink(
        elsewhere.path().join("app_linked"),
        dir.path().join("app_linked"),
    )
    .expect("symlink");
    assert_eq!(values(&engine, "app_"), [pair("app_real", "real")]);

    // The lock file: not followed, and its target not created.
    let target = elsewhere.path().join("victim");
    std::os::unix::fs::symlink(&target, dir.path().join(LEADER_LOCK_FILE)).expect("symlink");
    let err = FileLockLeader::new(dir.path(), "me")
        .try_acquire()
        .expect_err("a link is no lock file");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(!target.exists(), "the link's target was created");
}

/// With a secret, only records carrying a MAC made with it are read: a record forged
/// with another key, one without a MAC, an old-format one and one moved to another
/// key's name are all refused.
#[test]
fn with_a_secret_only_authentic_records_are_read() {
    let dir = TestDir::new("mac");
    let ours = secret("ours");
    let mut engine = FileSystemPersistence::open(dir.path(), Some(&ours)).expect("opens");
    engine.persist("app_good", b"good").expect("persists");
    let theirs = RecordKey::from_secret(&secret("theirs"));
    let plant = |name: &str, bytes: Vec<u8>| {
        let path = dir.path().join(name);
        fs::write(&path, bytes).expect("write");
        chmod(&path, 0o600);
    };
    plant(
        "app_forged",
        record::seal(Some(&theirs), "app_forged", b"evil"),
    );
    plant("app_nomac", record::seal(None, "app_nomac", b"evil"));
    plant("app_old", record::seal_v1(b"evil"));
    let good = fs::read(dir.path().join("app_good")).expect("read");
    plant("app_moved", good.clone());
    // A payload changed and its CRC fixed up: only the MAC can tell.
    // (Header 13 bytes, CRC at 9..13, then the 32-byte MAC, then the payload.)
    let mut tampered = good;
    let payload_at = 13 + 32;
    tampered[payload_at..].copy_from_slice(b"evil");
    let crc = record::crc32(&tampered[payload_at..]);
    tampered[9..13].copy_from_slice(&crc.to_be_bytes());
    plant("app_tampered", tampered);

    assert_eq!(values(&engine, "app_"), [pair("app_good", "good")]);
    // A master restarted with the same secret reads the same.
    let again = FileSystemPersistence::open(dir.path(), Some(&ours)).expect("opens");
    assert_eq!(values(&again, "app_"), [pair("app_good", "good")]);
    // One with another secret, or none, reads nothing it cannot check.
    let other = FileSystemPersistence::open(dir.path(), Some(&secret("theirs"))).expect("opens");
    assert_eq!(values(&other, "app_forged"), [pair("app_forged", "evil")]);
    assert!(other.read("app_good").is_empty());
    let none = FileSystemPersistence::open(dir.path(), None).expect("opens");
    assert!(
        none.read("app_good").is_empty(),
        "a MAC that cannot be checked"
    );
}

/// Without a secret, an old (version 1) record is read, and rewritten as version 2 on the
/// next persist.
#[test]
fn without_a_secret_old_records_are_read_and_rewritten() {
    let dir = TestDir::new("v1");
    chmod(dir.path(), 0o700);
    let path = dir.path().join("worker_old");
    fs::write(&path, record::seal_v1(b"old")).expect("write");
    let mut engine = FileSystemPersistence::open(dir.path(), None).expect("opens");
    assert_eq!(values(&engine, "worker_"), [pair("worker_old", "old")]);
    engine.persist("worker_old", b"new").expect("persists");
    assert_eq!(&fs::read(&path).expect("read")[..4], b"EMB2");
    assert_eq!(values(&engine, "worker_"), [pair("worker_old", "new")]);
}

/// The attack end to end: with a secret, a driver record planted in the directory (here a
/// genuine one re-signed with another key, as another local user could make) is not
/// recovered, so no worker is told to launch it; the genuine one is.
#[test]
fn a_forged_driver_record_is_not_recovered() {
    let dir = TestDir::new("forged-driver");
    let ours = secret("ours");
    let engine = FileSystemPersistence::open(dir.path(), Some(&ours)).expect("opens");
    let mut f = Fixture::with_persistence(MasterSettings::default(), Box::new(engine));
    let (genuine, _) = f.submit(true);
    let (forged, _) = f.submit(true);
    // The attacker keeps the payload (a driver to relaunch) and signs it themselves.
    let name = driver_key(&forged);
    let path = dir.path().join(&name);
    let reader = FileSystemPersistence::open(dir.path(), Some(&ours)).expect("opens");
    let payload = reader.read(&name).remove(0).1;
    let theirs = RecordKey::from_secret(&secret("theirs"));
    fs::write(&path, record::seal(Some(&theirs), &name, &payload)).expect("plant");

    let engine = FileSystemPersistence::open(dir.path(), Some(&ours)).expect("opens");
    let _ = f.restart_with(MasterSettings::default(), Box::new(engine));
    let find = |id| f.master.drivers.find(id).map(|d| d.state());
    assert_eq!(find(&genuine), Some(DriverState::Relaunching));
    // The genuine one's relaunch is the only active driver (it may take the forged one's
    // number, as the forged record was never read): the forged one was not relaunched.
    let active: Vec<_> = f.master.drivers.active().map(|d| d.id().clone()).collect();
    assert_eq!(
        active.len(),
        1,
        "the forged record was acted on: {active:?}"
    );
    f.check("after refusing a forged record");
}
