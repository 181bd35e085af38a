use std::os::unix::fs::PermissionsExt;

use sha2::{Digest, Sha256};

use super::*;
use crate::master::test_dir::TestDir;

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn uploader(port: u16) -> RpcAddress {
    RpcAddress::new("10.0.0.9", port)
}

/// A store in `dir` of a master that leads.
fn open(dir: &TestDir, max: u64) -> ProgramStore {
    let mut store = ProgramStore::open(&dir.path().join("store"), max, false).expect("opens");
    store.start_accepting().expect("reads");
    store
}

/// Uploads `bytes` in chunks of `chunk` from `owner`; the answer to `FinishUpload`.
fn upload(
    store: &mut ProgramStore,
    owner: &RpcAddress,
    bytes: &[u8],
    chunk: usize,
    now: Instant,
) -> Result<(), String> {
    let start = store.begin(owner, bytes.len() as u64, &sha(bytes), now)?;
    let UploadStart::Accepted { upload_id, .. } = start else {
        return Ok(());
    };
    let mut offset = 0;
    for part in bytes.chunks(chunk) {
        offset = store.chunk(owner, upload_id, offset, part, now)?;
    }
    store.finish(owner, upload_id, now)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("lists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_upload_in_chunks_is_stored_by_its_hash_privately_and_only_once() {
    let dir = TestDir::new("store-upload");
    let mut store = open(&dir, 1 << 20);
    let program: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let digest = ProgramDigest {
        uri: String::new(),
        size: program.len() as u64,
        sha256: sha(&program),
    };
    assert!(!store.holds(&digest));
    let now = Instant::now();
    upload(&mut store, &uploader(1), &program, 30_000, now).expect("stored");
    assert!(store.holds(&digest));
    let path = store.programs_dir().join(&digest.sha256);
    assert_eq!(fs::read(&path).expect("there"), program);
    let mode = fs::metadata(&path).expect("there").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(entries(&store.incoming).is_empty());
    let again = store.begin(&uploader(2), digest.size, &digest.sha256, now);
    assert_eq!(again, Ok(UploadStart::AlreadyStored));
}

#[test]
fn a_wrong_hash_or_a_short_upload_keeps_nothing() {
    let dir = TestDir::new("store-mismatch");
    let mut store = open(&dir, 1 << 20);
    let owner = uploader(1);
    let now = Instant::now();
    let claimed = sha(b"what was announced");
    let UploadStart::Accepted { upload_id, .. } =
        store.begin(&owner, 5, &claimed, now).expect("begins")
    else {
        panic!("not stored yet");
    };
    store
        .chunk(&owner, upload_id, 0, b"other", now)
        .expect("written");
    let refused = store
        .finish(&owner, upload_id, now)
        .expect_err("hash differs");
    assert!(
        refused.contains("not ") && refused.contains(&claimed),
        "{refused}"
    );
    let UploadStart::Accepted { upload_id, .. } =
        store.begin(&owner, 10, &claimed, now).expect("begins")
    else {
        panic!("not stored");
    };
    store
        .chunk(&owner, upload_id, 0, b"half", now)
        .expect("written");
    let refused = store.finish(&owner, upload_id, now).expect_err("short");
    assert!(refused.contains("4 of its 10 bytes"), "{refused}");
    assert!(entries(&store.programs_dir()).is_empty());
    assert!(entries(&store.incoming).is_empty());
}

#[test]
fn chunks_out_of_order_past_the_size_or_from_another_connection_are_refused() {
    let dir = TestDir::new("store-chunks");
    let mut store = open(&dir, 1 << 20);
    let owner = uploader(1);
    let now = Instant::now();
    let begin = |store: &mut ProgramStore| match store.begin(&owner, 8, &sha(b"12345678"), now) {
        Ok(UploadStart::Accepted { upload_id, .. }) => upload_id,
        other => panic!("{other:?}"),
    };
    let id = begin(&mut store);
    let stranger = store
        .chunk(&uploader(2), id, 0, b"1234", now)
        .expect_err("not its upload");
    assert!(stranger.contains("No upload"), "{stranger}");
    assert!(store.finish(&uploader(2), id, now).is_err());
    store
        .chunk(&owner, id, 0, b"1234", now)
        .expect("the owner may");
    let gap = store.chunk(&owner, id, 6, b"78", now).expect_err("a gap");
    assert!(gap.contains("starts there"), "{gap}");
    // The refusal ended the upload.
    assert!(store.chunk(&owner, id, 4, b"5678", now).is_err());
    let id = begin(&mut store);
    let long = store
        .chunk(&owner, id, 0, b"123456789", now)
        .expect_err("too long");
    assert!(long.contains("announced as 8 bytes"), "{long}");
    let id = begin(&mut store);
    let huge = vec![0u8; CHUNK_BYTES as usize + 1];
    assert!(store.chunk(&owner, id, 0, &huge, now).is_err());
    assert!(entries(&store.incoming).is_empty());
    let not_hex = store
        .begin(&owner, 1, "../../etc/passwd", now)
        .expect_err("no name");
    assert!(not_hex.contains("not a SHA-256"), "{not_hex}");
}

#[test]
fn the_cap_refuses_what_cannot_fit_and_evicts_only_old_programs_no_driver_needs() {
    let dir = TestDir::new("store-cap");
    let mut store = open(&dir, 100);
    let owner = uploader(1);
    let start = Instant::now();
    let too_big = store
        .begin(&owner, 101, &sha(b"x"), start)
        .expect_err("over the cap");
    assert!(
        too_big.contains("ember.deploy.programStore.maxBytes"),
        "{too_big}"
    );
    let a = vec![b'a'; 60];
    let b = vec![b'b'; 60];
    let c = vec![b'c'; 60];
    upload(&mut store, &owner, &a, 60, start).expect("fits");
    // `a` is young: not removed, so `b` does not fit.
    let full = upload(&mut store, &owner, &b, 60, start).expect_err("full");
    assert!(full.contains("holds 60 of its 100 bytes"), "{full}");
    // A driver needs `a`: not removed even when old.
    store.pin(&sha(&a));
    let later = start + UNPINNED_GRACE;
    assert!(upload(&mut store, &owner, &b, 60, later).is_err());
    store.unpin(&sha(&a));
    upload(&mut store, &owner, &b, 60, later).expect("a made room");
    assert_eq!(entries(&store.programs_dir()), vec![sha(&b)]);
    // An upload in progress reserves its size.
    let UploadStart::Accepted { .. } = store
        .begin(&owner, 40, &sha(&[b'd'; 40]), later)
        .expect("fits beside b")
    else {
        panic!("new");
    };
    assert!(store.begin(&owner, 60, &sha(&c), later).is_err());
}

#[test]
fn idle_uploads_are_dropped_so_a_silent_uploader_cannot_hold_the_slots() {
    let dir = TestDir::new("store-idle");
    let mut store = open(&dir, 1 << 20);
    let owner = uploader(1);
    let start = Instant::now();
    for n in 0..MAX_UPLOADS {
        let content = format!("program {n}");
        store
            .begin(&owner, 10, &sha(content.as_bytes()), start)
            .expect("a slot");
    }
    let busy = store
        .begin(&owner, 10, &sha(b"one more"), start)
        .expect_err("all slots taken");
    assert!(busy.contains("already in progress"), "{busy}");
    let later = start + UPLOAD_IDLE + Duration::from_secs(1);
    store
        .begin(&owner, 10, &sha(b"one more"), later)
        .expect("the idle ones were dropped");
    assert_eq!(entries(&store.incoming).len(), 1);
}

#[test]
fn a_reopened_store_keeps_its_programs_and_clears_unfinished_uploads() {
    let dir = TestDir::new("store-reopen");
    let program = b"a program".to_vec();
    let now = Instant::now();
    {
        let mut store = open(&dir, 1 << 20);
        upload(&mut store, &uploader(1), &program, 4, now).expect("stored");
        store
            .begin(&uploader(1), 3, &sha(b"abc"), now)
            .expect("left unfinished");
    }
    let root = dir.path().join("store");
    fs::write(root.join(PROGRAMS).join("not-a-hash"), b"junk").expect("planted");
    fs::create_dir(root.join(PROGRAMS).join("a".repeat(64))).expect("planted");
    // This process's unfinished upload, a dead master's (pid 0 is nobody's) and a live
    // one's (pid 1 always runs): the first two go, the live master's stays.
    let own = root.join(format!("{INCOMING_PREFIX}{}", std::process::id()));
    let dead = root.join(format!("{INCOMING_PREFIX}0"));
    let live = root.join(format!("{INCOMING_PREFIX}1"));
    for dir in [&own, &dead, &live] {
        fs::create_dir_all(dir).expect("planted");
        fs::write(dir.join("7.partial"), b"left").expect("planted");
    }
    let store = open(&dir, 1 << 20);
    let digest = ProgramDigest {
        uri: String::new(),
        size: program.len() as u64,
        sha256: sha(&program),
    };
    assert!(store.holds(&digest));
    assert!(!store.stored.contains_key(&"a".repeat(64)));
    assert_eq!(store.used_bytes(), program.len() as u64);
    assert!(entries(&own).is_empty());
    assert!(!dead.exists());
    assert!(live.join("7.partial").exists());
}

#[test]
fn a_master_that_does_not_lead_takes_no_upload() {
    let dir = TestDir::new("store-standby");
    let mut store = ProgramStore::open(&dir.path().join("store"), 1 << 20, false).expect("opens");
    let refused = store
        .begin(&uploader(1), 3, &sha(b"abc"), Instant::now())
        .expect_err("a standby");
    assert_eq!(refused, NOT_LEADING);
    // Once it leads, it knows what a leader before it stored.
    let program = b"stored by the leader before".to_vec();
    fs::write(store.programs_dir().join(sha(&program)), &program).expect("planted");
    store.start_accepting().expect("reads");
    let again = store.begin(
        &uploader(1),
        program.len() as u64,
        &sha(&program),
        Instant::now(),
    );
    assert_eq!(again, Ok(UploadStart::AlreadyStored));
}

#[test]
fn a_temporary_store_is_removed_with_the_master() {
    let store = ProgramStore::open_temporary(1 << 20).expect("opens");
    let root = store.dir.clone();
    assert!(root.is_dir());
    let mode = fs::metadata(&root).expect("there").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    drop(store);
    assert!(!root.exists());
}

#[test]
fn the_temporary_stores_of_masters_that_are_gone_are_removed() {
    let tmp = TestDir::new("store-sweep");
    // Pid 0 is never a process's; this process is alive.
    let dead = tmp.path().join("ember-master-0-3-programs");
    let alive = tmp
        .path()
        .join(format!("ember-master-{}-9-programs", std::process::id()));
    let other = tmp.path().join("ember-master-notes");
    for dir in [&dead, &alive, &other] {
        fs::create_dir_all(dir.join(PROGRAMS)).expect("planted");
    }
    remove_stores_of_dead_masters(tmp.path());
    assert!(!dead.exists());
    assert!(alive.exists() && other.exists());
}
