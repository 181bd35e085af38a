//! The file server and its streams (Spark's `RpcEnvFileServer`, `addFile` and
//! `addDirectory`, and `openChannel`): what is added is streamed byte for byte over the
//! connection to the serving env, interleaved with its other traffic; what was not added
//! (another path, `..`, a symlink out of a directory) is refused; and a server killed
//! mid-file fails the read instead of hanging it or handing out a short file.

pub mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;

use rpc_env::{keys, RpcConf, RpcEnv, RpcEnvConfig};
use util::{echo, Env, Probe, ProbeProtocol, DEADLINE};

const CHILD_VAR: &str = "EMBER_TEST_FILE_SERVER";

/// A fresh directory under the temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ember-streams-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `data` to `name` inside, creating its directories.
    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `len` bytes that differ from chunk to chunk and from their neighbours, so a chunk out
/// of place or twice shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// The whole stream at `uri`, read through a small buffer as a user's loop would.
fn read_all(env: &RpcEnv, uri: &str) -> Result<Vec<u8>, String> {
    let mut stream = env.open_stream(uri).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut buf = [0u8; 10_000];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    assert_eq!(out.len() as u64, stream.size(), "a stream yields its size");
    Ok(out)
}

#[test]
fn added_files_and_directories_stream_byte_for_byte() {
    let scratch = Scratch::new("bytes");
    // Not a whole number of chunks, so the last one is short.
    let big = pattern(3 * 512 * 1024 + 12_345);
    let app = scratch.file("bin/app", &big);
    scratch.file("lib/a.txt", b"alpha");
    scratch.file("lib/deep/b.txt", b"beta");
    let empty = scratch.file("empty", b"");

    let server = Env::server("server");
    let files = server.file_server().unwrap();
    let app_uri = files.add_file(&app).unwrap();
    assert_eq!(app_uri, format!("ember://{}/files/app", server.addr()));
    let empty_uri = files.add_file(&empty).unwrap();
    let lib_uri = files.add_directory("lib", scratch.0.join("lib")).unwrap();
    assert_eq!(lib_uri, format!("ember://{}/lib", server.addr()));

    let client = Env::client("client");
    assert_eq!(read_all(&client, &app_uri), Ok(big));
    assert_eq!(read_all(&client, &empty_uri), Ok(Vec::new()));
    assert_eq!(
        read_all(&client, &format!("{lib_uri}/a.txt")),
        Ok(b"alpha".to_vec())
    );
    assert_eq!(
        read_all(&client, &format!("{lib_uri}/deep/b.txt")),
        Ok(b"beta".to_vec())
    );
    // A server-mode peer reads the same way, and the server can read its own files.
    let other = Env::server("other");
    assert_eq!(
        read_all(&other, &format!("{lib_uri}/a.txt")),
        Ok(b"alpha".to_vec())
    );
    assert_eq!(
        read_all(&server, &format!("{lib_uri}/a.txt")),
        Ok(b"alpha".to_vec())
    );
}

#[test]
fn only_what_was_added_is_served() {
    let scratch = Scratch::new("refusals");
    let served = scratch.file("pub/ok.txt", b"ok");
    let secret = scratch.file("secret.txt", b"top secret");
    std::os::unix::fs::symlink(&secret, scratch.0.join("pub/escape")).unwrap();

    let server = Env::server("server");
    let files = server.file_server().unwrap();
    files.add_file(&served).unwrap();
    let dir = files.add_directory("pub", scratch.0.join("pub")).unwrap();
    let client = Env::client("client");
    let base = format!("ember://{}", server.addr());
    let refused = |uri: String| read_all(&client, &uri).unwrap_err();

    assert_eq!(
        refused(format!("{base}/files/secret.txt")),
        "No file is served at /files/secret.txt"
    );
    assert_eq!(
        refused(format!("{base}/pub/../secret.txt")),
        "Refused /pub/../secret.txt: a served path is made of plain names (no '..', '.' or \
         empty parts)"
    );
    assert_eq!(
        refused(format!("{dir}/escape")),
        "Refused /pub/escape: it leads out of the directory it is served from"
    );
    assert_eq!(
        refused(format!("{base}/{}", secret.display())),
        format!(
            "Refused /{}: a served path is made of plain names (no '..', '.' or empty parts)",
            secret.display()
        )
    );
    assert_eq!(
        refused(format!("{base}/pub")),
        "Refused /pub: it is not a regular file"
    );
    assert!(refused("http://example.com/x".into()).starts_with("Not a file URI"));

    // An env that never served anything.
    let bare = Env::server("bare");
    assert_eq!(
        refused(format!("ember://{}/files/ok.txt", bare.addr())),
        format!("No file is served at ember://{}/files/ok.txt", bare.addr())
    );
    // A client-mode env has no address to serve at.
    let error = client.file_server().unwrap_err();
    assert!(error.to_string().contains("cannot serve files"), "{error}");
}

#[test]
fn a_stream_shares_its_connection_with_asks() {
    let scratch = Scratch::new("shared");
    let data = pattern(32 << 20);
    let file = scratch.file("big", &data);
    let server = Env::server("server");
    let (probe, _h) = Probe::new();
    server.setup_endpoint("echo", probe).unwrap();
    let uri = server.file_server().unwrap().add_file(&file).unwrap();
    let client = Env::client("client");
    let echo_ref = client
        .setup_endpoint_ref::<ProbeProtocol>(&server.addr(), "echo")
        .unwrap();

    // Asks go back and forth on the same connection while the file streams; each is
    // answered, in order, during the transfer rather than after it.
    let (done_tx, done_rx) = mpsc::channel();
    let reader = {
        let client = client.0.clone();
        thread::spawn(move || {
            let result = read_all(&client, &uri);
            let _ = done_tx.send(());
            result
        })
    };
    let mut answered_during = 0;
    while done_rx.try_recv().is_err() {
        let text = format!("ask {answered_during}");
        assert_eq!(echo_ref.ask_sync(echo(&text)), Ok(text));
        answered_during += 1;
    }
    assert_eq!(reader.join().unwrap(), Ok(data));
    assert!(
        answered_during > 0,
        "no ask was answered while the file streamed"
    );
}

/// The serving process of the kill test: serves the file named by `CHILD_VAR`, prints its
/// URI, and waits to be killed.
#[test]
fn child_file_server() {
    let Some(file) = std::env::var_os(CHILD_VAR) else {
        return;
    };
    let env = RpcEnv::create(RpcEnvConfig::server("child", "127.0.0.1", 0)).unwrap();
    let uri = env.file_server().unwrap().add_file(file).unwrap();
    println!("URI {uri}");
    std::io::stdout().flush().unwrap();
    loop {
        thread::park();
    }
}

/// The child process, killed and reaped when dropped.
struct Child9(Child);

impl Drop for Child9 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_file_server(file: &Path) -> (Child9, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_file_server", "--exact", "--nocapture"])
        .env(CHILD_VAR, file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().unwrap();
    let child = Child9(child);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(uri) = line.strip_prefix("URI ") {
                let _ = tx.send(uri.trim().to_string());
            }
        }
    });
    let uri = rx.recv_timeout(DEADLINE).expect("the child prints its URI");
    (child, uri)
}

#[test]
fn a_server_killed_mid_file_fails_the_read() {
    let scratch = Scratch::new("killed");
    let file = scratch.file("big", &pattern(64 << 20));
    let (mut child, uri) = spawn_file_server(&file);
    // A short ask timeout: if the loss of the connection were missed, the read would fail
    // by timeout only, and the message below would say so.
    let client = Env::create(
        RpcEnvConfig::client("client").with_conf(RpcConf::new().with(keys::ASK_TIMEOUT, "60s")),
    );
    let mut stream = client.open_stream(&uri).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut read = 0usize;
    while read < 1 << 20 {
        read += stream.read(&mut buf).expect("the first MiB arrives");
    }
    child.0.kill().unwrap();
    let _ = child.0.wait();
    let error = loop {
        match stream.read(&mut buf) {
            Ok(0) => panic!("the stream ended cleanly after {read} of 64 MiB"),
            Ok(n) => read += n,
            Err(e) => break e,
        }
    };
    assert!(read < 64 << 20, "not the whole file");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("Reading {uri} failed: ")),
        "{text}"
    );
    assert!(
        !text.contains("Cannot receive any reply"),
        "failed by timeout: {text}"
    );
    // And it stays failed.
    assert_eq!(stream.read(&mut buf).unwrap_err().to_string(), text);
}

#[test]
fn a_verified_stream_checks_what_it_read_against_the_servers_hash() {
    let scratch = Scratch::new("verified");
    let data = pattern(4 * 128 * 1024);
    let file = scratch.file("data", &data);
    let empty = scratch.file("empty", b"");
    let server = Env::server("server");
    let files = server.file_server().unwrap();
    let uri = files.add_file(&file).unwrap();
    let empty_uri = files.add_file(&empty).unwrap();
    let client = Env::client("client");

    let mut stream = client.open_verified_stream(&uri).unwrap();
    // SHA-256 of the pattern, as `sha256sum` would print it.
    let expected = {
        let output = Command::new("sha256sum").arg(&file).output().unwrap();
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(stream.sha256(), Some(expected.as_str()));
    let mut read = Vec::new();
    stream.read_to_end(&mut read).unwrap();
    assert_eq!(read, data);
    let mut empty_stream = client.open_verified_stream(&empty_uri).unwrap();
    assert_eq!(empty_stream.read(&mut [0u8; 8]).unwrap(), 0);
    assert_eq!(
        client.open_stream(&uri).unwrap().sha256(),
        None,
        "unverified"
    );

    // The file changes (same size) after the stream opened: the chunks read after the
    // change do not add up to the hash given at the start, and the last read says so.
    let mut stream = client.open_verified_stream(&uri).unwrap();
    std::fs::write(&file, &pattern(4 * 128 * 1024 + 1)[1..]).unwrap();
    let error = std::io::copy(&mut stream, &mut std::io::sink()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!("not the {expected} the server gave")),
        "{error}"
    );
}
