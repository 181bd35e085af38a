use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use rpc_env::{RpcEnv, RpcEnvConfig};

use super::*;
use crate::program::hash_reader;

/// A fresh directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("ember-programs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A driver-like env serving `program`, and the digest it would describe it with.
fn serve(program: &Path) -> (RpcEnv, ProgramDigest) {
    let env = RpcEnv::create(RpcEnvConfig::server("driver", "127.0.0.1", 0)).unwrap();
    let uri = env.file_server().unwrap().add_file(program).unwrap();
    let (size, sha256) = digest_file(program).unwrap();
    (env, ProgramDigest { uri, size, sha256 })
}

fn worker_env() -> RpcEnv {
    RpcEnv::create(RpcEnvConfig::client("worker")).unwrap()
}

/// The names in the cache directory (none if it does not exist).
fn cache_entries(work: &Path) -> Vec<String> {
    std::fs::read_dir(work.join(CACHE_DIR))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `error` is a failed fetch of `digest`, and it left nothing in the cache under `work`.
#[track_caller]
fn assert_fetch_failed_cleanly(error: &str, digest: &ProgramDigest, work: &Path) {
    let prefix = format!(
        "Failed to fetch the application's program from {}: ",
        digest.uri
    );
    assert!(error.starts_with(&prefix), "{error}");
    assert!(cache_entries(work).is_empty(), "{:?}", cache_entries(work));
}

#[test]
fn a_program_already_at_its_path_is_run_from_there() {
    let scratch = Scratch::new("local");
    let program = scratch.0.join("app");
    std::fs::write(&program, b"#!/bin/sh\necho hi\n").unwrap();
    let (driver, digest) = serve(&program);
    let work = scratch.0.join("work");
    let cache = ProgramCache::new(&work);
    let env = worker_env();
    let local = program.to_str().unwrap();
    assert_eq!(cache.program_for(&env, local, &digest), Ok(program.clone()));
    assert!(cache_entries(&work).is_empty(), "nothing was copied");
    driver.shutdown();
    env.shutdown();
}

#[test]
fn a_program_missing_here_is_fetched_once_checked_and_kept() {
    let scratch = Scratch::new("fetch");
    let program = scratch.0.join("app");
    let content: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&program, &content).unwrap();
    let (driver, digest) = serve(&program);
    let work = scratch.0.join("work");
    let cache = ProgramCache::new(&work);
    let env = worker_env();
    let elsewhere = "/nonexistent/ember/app";

    // Launched together: every one gets the one cached copy.
    let paths: Vec<Result<PathBuf, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| cache.program_for(&env, elsewhere, &digest)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let cached = work.join(CACHE_DIR).join(&digest.sha256);
    for path in &paths {
        assert_eq!(path, &Ok(cached.clone()));
    }
    assert_eq!(std::fs::read(&cached).unwrap(), content);
    let mode = std::fs::metadata(&cached).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755, "executable");
    assert_eq!(
        cache_entries(&work),
        vec![digest.sha256.clone()],
        "no partial file"
    );

    // The copy serves later launches with the driver gone.
    driver.shutdown();
    driver.await_termination();
    assert_eq!(
        cache.program_for(&env, elsewhere, &digest),
        Ok(cached.clone())
    );

    // A use refreshes an entry older than USE_REFRESH, so the cleanup keeps what is used.
    let old = SystemTime::now() - USE_REFRESH - Duration::from_secs(60);
    std::fs::File::open(&cached)
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert_eq!(
        cache.program_for(&env, elsewhere, &digest),
        Ok(cached.clone())
    );
    let modified = std::fs::metadata(&cached).unwrap().modified().unwrap();
    assert!(modified > old + USE_REFRESH, "the use was recorded");

    // A corrupted copy is not run: it is fetched again (here the driver is gone, so the
    // launch fails), and is no longer in the cache.
    std::fs::write(&cached, b"corrupted").unwrap();
    let error = cache.program_for(&env, elsewhere, &digest).unwrap_err();
    assert_fetch_failed_cleanly(&error, &digest, &work);
    env.shutdown();
}

#[test]
fn a_program_with_another_hash_is_refused_and_not_kept() {
    let scratch = Scratch::new("mismatch");
    let program = scratch.0.join("app");
    std::fs::write(&program, b"the real program").unwrap();
    let (driver, mut digest) = serve(&program);
    let (_, other) = hash_reader(&b"another program!"[..]).unwrap();
    digest.sha256 = other.clone();
    let work = scratch.0.join("work");
    let cache = ProgramCache::new(&work);
    let env = worker_env();
    let error = cache
        .program_for(&env, "/nonexistent/app", &digest)
        .unwrap_err();
    let (_, real) = hash_reader(&b"the real program"[..]).unwrap();
    assert_eq!(
        error,
        format!(
            "Failed to fetch the application's program from {}: what arrived has SHA-256 \
             {real}, not {other}: refused",
            digest.uri
        )
    );
    assert!(
        cache_entries(&work).is_empty(),
        "{:?}",
        cache_entries(&work)
    );

    // A size that disagrees is refused before anything is written.
    digest.sha256 = real;
    digest.size += 1;
    let error = cache
        .program_for(&env, "/nonexistent/app", &digest)
        .unwrap_err();
    assert!(
        error.ends_with("it is 16 bytes, not the 17 the application described"),
        "{error}"
    );
    assert!(cache_entries(&work).is_empty());

    // A digest that is not one never names a file.
    digest.sha256 = "../../../etc/passwd".into();
    let error = cache
        .program_for(&env, "/nonexistent/app", &digest)
        .unwrap_err();
    assert_eq!(
        error,
        "Refused the application's program: '../../../etc/passwd' is not a SHA-256"
    );
    driver.shutdown();
    env.shutdown();
}

/// The env variable that makes [`child_program_server`] serve: the file's path.
const SERVE_VAR: &str = "EMBER_TEST_PROGRAM_SERVER";

/// Not a test of its own: the serving process of the kill test, when `SERVE_VAR` is set.
/// Serves the file and prints `SERVING <size> <sha256> <uri>`, then waits to be killed.
#[test]
fn child_program_server() {
    let Some(path) = std::env::var_os(SERVE_VAR) else {
        return;
    };
    let (env, digest) = serve(Path::new(&path));
    println!("SERVING {} {} {}", digest.size, digest.sha256, digest.uri);
    let _keep = env;
    loop {
        std::thread::park();
    }
}

/// A driver killed with SIGKILL mid-download: the launch fails, naming the fetch, and no
/// partial file stays in the cache.
#[test]
fn a_driver_killed_mid_download_leaves_no_partial_file() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let scratch = Scratch::new("killed");
    let program = scratch.0.join("big-app");
    {
        let chunk = vec![0x42u8; 1 << 20];
        let mut file = std::fs::File::create(&program).unwrap();
        for _ in 0..256 {
            file.write_all(&chunk).unwrap();
        }
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "worker::program_cache::tests::child_program_server",
            "--exact",
            "--nocapture",
        ])
        .env(SERVE_VAR, &program)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    while !line.starts_with("SERVING ") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the server printed nothing"
        );
    }
    let parts: Vec<&str> = line.split_whitespace().collect();
    let digest = ProgramDigest {
        size: parts[1].parse().unwrap(),
        sha256: parts[2].to_string(),
        uri: parts[3].to_string(),
    };
    let work = scratch.0.join("work");
    let cache = ProgramCache::new(&work);
    let env = worker_env();
    let outcome = std::thread::scope(|s| {
        let fetch = s.spawn(|| cache.program_for(&env, "/nonexistent/big-app", &digest));
        // Kill the driver as soon as the download has begun (its partial file exists).
        ember_test_support::wait_until("the download begins", ember_test_support::DEADLINE, || {
            cache_entries(&work).iter().any(|e| e.contains(".partial-")) || fetch.is_finished()
        });
        child.kill().unwrap();
        fetch.join().unwrap()
    });
    let _ = child.wait();
    let error = outcome.expect_err("the driver died mid-file");
    assert_fetch_failed_cleanly(&error, &digest, &work);
    env.shutdown();
}
