//! Child-process servers: the server side of a benchmark runs in its own
//! process, so the client and server do not share an allocator, a scheduler
//! queue or locks, just as in a real cluster.
//!
//! The protocol is tiny. The parent re-executes its own binary as
//! `ember-bench __serve <mode> [args...]` ([`ChildServer::spawn`]). The child
//! binds 127.0.0.1:0, prints `LISTENING <port>` on stdout ([`announce`] or
//! [`listen_and_announce`]) and serves. The parent waits for that line (with
//! a deadline), connects, measures, and drops the [`ChildServer`] guard,
//! which kills and reaps the child — on success, error or panic alike.
//!
//! If the parent dies without running destructors (SIGKILL, abort), the child
//! notices its stdin pipe closing and exits ([`exit_when_parent_gone`]), so
//! no server is left behind either way.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::cli::SERVE_ARG;
use crate::error::BenchError;

/// How long [`ChildServer::spawn`] waits for `LISTENING <port>`: generous,
/// since a loaded CI machine can be slow to start a process, but bounded so a
/// broken child fails the run instead of hanging it.
pub(crate) const DEFAULT_STARTUP_DEADLINE: Duration = Duration::from_secs(20);

/// The line prefix a child prints once it accepts connections.
const LISTENING: &str = "LISTENING";

/// How [`ChildServer::spawn_with`] starts a child, beyond its mode and arguments.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SpawnOptions<'a> {
    /// Environment variables set for the child, over ours.
    pub(crate) env: &'a [(&'a str, &'a str)],
    /// Pipe the child's stderr to us instead of sharing ours.
    pub(crate) capture_stderr: bool,
}

/// A running child server. Dropping it kills and reaps the child.
#[derive(Debug)]
pub(crate) struct ChildServer {
    /// The child process; its stdin pipe stays open while we hold it (see
    /// [`exit_when_parent_gone`]).
    child: Child,
    /// The mode it serves, for messages.
    mode: String,
    /// The loopback port it announced.
    port: u16,
}

impl ChildServer {
    /// Starts `ember-bench __serve <mode> [args...]` and waits up to
    /// [`DEFAULT_STARTUP_DEADLINE`] for it to announce its port.
    pub(crate) fn spawn(mode: &str, args: &[&str]) -> Result<Self, BenchError> {
        Self::spawn_with_deadline(mode, args, DEFAULT_STARTUP_DEADLINE)
    }

    /// Like [`ChildServer::spawn`] with an explicit startup deadline.
    pub(crate) fn spawn_with_deadline(
        mode: &str,
        args: &[&str],
        deadline: Duration,
    ) -> Result<Self, BenchError> {
        Self::spawn_with(mode, args, &SpawnOptions::default(), deadline)
    }

    /// Like [`ChildServer::spawn_with_deadline`], with extra environment variables and,
    /// if asked, the child's stderr piped to us (see [`ChildServer::take_stderr`]).
    pub(crate) fn spawn_with(
        mode: &str,
        args: &[&str],
        options: &SpawnOptions<'_>,
        deadline: Duration,
    ) -> Result<Self, BenchError> {
        let exe = std::env::current_exe()
            .map_err(|e| BenchError::io("finding the ember-bench executable", e))?;
        // By default the child's logs and errors go straight to our stderr.
        let stderr = if options.capture_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        };
        let child = Command::new(&exe)
            .arg(SERVE_ARG)
            .arg(mode)
            .args(args)
            .envs(options.env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                BenchError::io(format!("starting {} {SERVE_ARG} {mode}", exe.display()), e)
            })?;
        // Wrap it at once: from here on, any early return kills the child.
        let mut server = ChildServer {
            child,
            mode: mode.to_owned(),
            port: 0,
        };
        let stdout = server
            .child
            .stdout
            .take()
            .ok_or_else(|| BenchError::new("child stdout was not captured"))?;
        let (tx, rx) = mpsc::channel();
        let tag = format!("[child {mode}]");
        thread::Builder::new()
            .name(format!("child-{mode}-stdout"))
            .spawn(move || read_child_stdout(stdout, &tag, &tx))
            .map_err(|e| BenchError::io("starting the child-stdout reader thread", e))?;
        server.port = match rx.recv_timeout(deadline) {
            Ok(Ok(port)) => port,
            Ok(Err(msg)) => return Err(server.startup_error(&msg)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(server.startup_error(&format!(
                    "did not print '{LISTENING} <port>' within {deadline:?}"
                )))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(server.startup_error("stdout reader stopped unexpectedly"))
            }
        };
        log::info!(
            "child {mode} (pid {}) listening on port {}",
            server.pid(),
            server.port
        );
        Ok(server)
    }

    /// The port the child announced.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The address to connect to: 127.0.0.1 and [`ChildServer::port`].
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port()))
    }

    /// The child's process id, for messages and `/proc`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The read end of the child's stderr, once, if it was spawned with
    /// [`SpawnOptions::capture_stderr`]. The caller must keep draining it, or a
    /// chatty child blocks on the full pipe.
    pub(crate) fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Kills and reaps the child now (what dropping the guard does), e.g. so a
    /// reader of its stderr sees end-of-file.
    pub(crate) fn stop(self) {
        drop(self);
    }

    /// An error about startup, with the child's exit status when it has one.
    fn startup_error(&mut self, what: &str) -> BenchError {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!(" ({status})"),
            _ => String::new(),
        };
        BenchError::new(format!("child server '{}' {what}{status}", self.mode))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // Closing stdin lets a well-behaved child exit by itself; the kill
        // covers one that is stuck. Errors are ignored: the usual one is that
        // the child already exited, which is the state we want anyway.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) => log::debug!("child {} (pid {}) ended: {status}", self.mode, self.pid()),
            Err(e) => log::warn!("waiting for child {} (pid {}): {e}", self.mode, self.pid()),
        }
    }
}

/// Runs on a thread of the parent: finds the `LISTENING <port>` line and
/// sends the port (or why there is none), then keeps draining the child's
/// stdout onto our stderr until it closes, so a chatty child never blocks on
/// a full pipe and nothing it says pollutes our stdout (which holds results).
fn read_child_stdout(stdout: impl Read, tag: &str, tx: &mpsc::Sender<Result<u16, String>>) {
    let mut announced = false;
    for line in BufReader::new(stdout).lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                if !announced {
                    let _ = tx.send(Err(format!("stdout unreadable: {e}")));
                }
                return;
            }
        };
        if !announced {
            match parse_listening(&line) {
                Some(Ok(port)) => {
                    announced = true;
                    // The receiver may have timed out and gone; that's fine.
                    let _ = tx.send(Ok(port));
                    continue;
                }
                Some(Err(msg)) => {
                    let _ = tx.send(Err(msg));
                    return;
                }
                None => {}
            }
        }
        eprintln!("{tag} {line}");
    }
    if !announced {
        let _ = tx.send(Err(format!("exited without printing '{LISTENING} <port>'")));
    }
}

/// `Some(Ok(port))` for a well-formed `LISTENING <port>` line, `Some(Err)`
/// for a malformed one, `None` for any other line.
fn parse_listening(line: &str) -> Option<Result<u16, String>> {
    let rest = line.trim_end().strip_prefix(LISTENING)?;
    let port = rest.trim();
    Some(match port.parse::<u16>() {
        Ok(port) if port != 0 && rest.starts_with(' ') => Ok(port),
        _ => Err(format!("printed a malformed line {line:?}")),
    })
}

// ---- Child side ----------------------------------------------------------

/// Child side: tells the parent that the server accepts connections on
/// `port` by printing `LISTENING <port>` on stdout. Call it only once the
/// socket is bound and listening, so the parent's connect cannot race it.
pub(crate) fn announce(port: u16) -> Result<(), BenchError> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    // Flush: stdout is a pipe here, so it is block-buffered and the parent
    // would otherwise wait for a line still sitting in our buffer.
    writeln!(stdout, "{LISTENING} {port}")
        .and_then(|()| stdout.flush())
        .map_err(|e| BenchError::io("announcing the port on stdout", e))
}

/// Child side: binds 127.0.0.1:0 and [`announce`]s the port the OS chose.
pub(crate) fn listen_and_announce() -> Result<TcpListener, BenchError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| BenchError::io("binding 127.0.0.1:0", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| BenchError::io("reading the listener's address", e))?
        .port();
    announce(port)?;
    Ok(listener)
}

/// Child side: exits the process when stdin reaches end-of-file, i.e. when
/// the parent dropped its [`ChildServer`] or died. `main` calls this for
/// every `__serve` mode, so modes need not worry about being orphaned.
pub(crate) fn exit_when_parent_gone() {
    let spawned = thread::Builder::new()
        .name("parent-watch".into())
        .spawn(|| {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin().lock();
            loop {
                match stdin.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            log::debug!("parent closed our stdin; exiting");
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        // Not fatal: the parent's kill on drop still ends us.
        log::warn!("could not start the parent-watch thread: {e}");
    }
}

/// Child side: a safety net for servers that could otherwise run forever
/// (e.g. one that busy-polls): exits the process with status 3 after `limit`.
pub(crate) fn exit_after(limit: Duration) {
    let spawned = thread::Builder::new()
        .name("hard-cap".into())
        .spawn(move || {
            thread::sleep(limit);
            eprintln!("ember-bench: child server hit its hard cap of {limit:?}; exiting");
            std::process::exit(3);
        });
    if let Err(e) = spawned {
        log::warn!("could not start the hard-cap thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        assert_eq!(parse_listening("LISTENING 4242"), Some(Ok(4242)));
        assert_eq!(parse_listening("LISTENING 4242\r"), Some(Ok(4242)));
        assert_eq!(parse_listening("starting up"), None);
        assert!(matches!(parse_listening("LISTENING"), Some(Err(_))));
        assert!(matches!(parse_listening("LISTENING 0"), Some(Err(_))));
        assert!(matches!(parse_listening("LISTENING 70000"), Some(Err(_))));
        assert!(matches!(parse_listening("LISTENING4242"), Some(Err(_))));
    }

    #[test]
    fn reader_finds_port_after_chatter_and_reports_missing_line() {
        let (tx, rx) = mpsc::channel();
        read_child_stdout(&b"hello\nLISTENING 9000\nmore\n"[..], "[t]", &tx);
        assert_eq!(rx.try_recv(), Ok(Ok(9000)));

        let (tx, rx) = mpsc::channel();
        read_child_stdout(&b"oops\n"[..], "[t]", &tx);
        assert!(matches!(rx.try_recv(), Ok(Err(msg)) if msg.contains("exited without")));
    }
}
