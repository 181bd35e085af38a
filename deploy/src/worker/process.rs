//! The worker's child processes (executors and drivers): how they are started, waited for
//! and killed.
//!
//! Each child runs in a process group of its own, so that killing it also reaches what it
//! started (a shell's `sleep`, say) and a terminal's Ctrl-C reaches only the worker, which
//! then kills its children itself. Kill is Spark's: SIGTERM, a grace period, then SIGKILL.
//!
//! A pid is signalled only while the worker knows it has not been reaped: the waiting
//! thread first waits *without* reaping (`waitid` with `WNOWAIT`), then reaps under the same
//! lock the signalling side takes, so a signal can never hit a recycled pid.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;
use parking_lot::{Condvar, Mutex};

/// How long to wait for a process after SIGKILL before calling it orphaned.
const AFTER_SIGKILL_WAIT: Duration = Duration::from_secs(10);

/// What to start and where its output goes.
pub(crate) struct Launch<'a> {
    /// The program: a path, or a name looked up in `PATH`.
    pub(crate) program: &'a str,
    /// Its arguments, placeholders already filled in.
    pub(crate) args: &'a [String],
    /// Environment variables added to the worker's own.
    pub(crate) env: &'a BTreeMap<String, String>,
    /// Its working directory, which also receives the `stdout` and `stderr` files.
    pub(crate) dir: &'a Path,
    /// The title of the header line written to `stderr` (`Ember Executor Command`).
    pub(crate) title: &'a str,
    /// A command prefix the child is started through (see [`WorkerConfig::launcher`]);
    /// empty to start it directly.
    ///
    /// [`WorkerConfig::launcher`]: super::WorkerConfig::launcher
    pub(crate) launcher: &'a [String],
    /// The worker's secret and security settings (`Security::child_env`), set after `env`
    /// so an application's command cannot replace them. Empty when the worker does not
    /// authenticate: then those variables are removed, so a secret the worker inherited
    /// does not reach the child.
    pub(crate) security_env: &'a [(&'static str, OsString)],
}

/// A started child process; [`wait`](Self::wait) consumes it on the thread that waits.
pub(crate) struct Spawned {
    child: Child,
    handle: ProcessHandle,
}

/// A handle to signal a child and wait for its end from any thread.
#[derive(Clone)]
pub(crate) struct ProcessHandle {
    shared: Arc<Shared>,
}

struct Shared {
    pid: Pid,
    /// The exit code once the process has been reaped; signals go out only while `None`.
    exit: Mutex<Option<i32>>,
    exited: Condvar,
}

/// `id` as the name of a directory in the work dir. Ids come from the master, over the
/// network: one that is not a plain name (`..`, `a/b`) would put files elsewhere.
pub(crate) fn dir_name(id: &str) -> Result<&str, String> {
    let plain = !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\0']);
    if plain {
        Ok(id)
    } else {
        Err(format!(
            "Refusing id {id:?}: not usable as a directory name"
        ))
    }
}

/// The command line as the header of `stderr` shows it: each word quoted, as Spark does.
pub(crate) fn command_line(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Starts `launch.program` in `launch.dir`, stdout appended to `stdout` and stderr to
/// `stderr` there, the latter after a header line naming the command (Spark's
/// `<title>: "…"` and a rule of 40 `=`).
pub(crate) fn spawn(launch: &Launch<'_>) -> io::Result<Spawned> {
    let open = |name: &str| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(launch.dir.join(name))
    };
    let stdout = open("stdout")?;
    let mut stderr = open("stderr")?;
    let header = format!(
        "{}: {}\n{}\n\n",
        launch.title,
        command_line(launch.program, launch.args),
        "=".repeat(40)
    );
    stderr.write_all(header.as_bytes())?;
    let mut command = match launch.launcher.split_first() {
        None => std::process::Command::new(launch.program),
        Some((launcher, launcher_args)) => {
            // The launcher always starts, so find the program first: a missing one must
            // still fail the spawn rather than become an exit code.
            let program = resolve_program(launch.program, launch.env)?;
            let mut c = std::process::Command::new(launcher);
            c.args(launcher_args).arg(program);
            c
        }
    };
    command.args(launch.args).envs(launch.env);
    if launch.security_env.is_empty() {
        for key in rpc_env::CHILD_ENV_KEYS {
            command.env_remove(key);
        }
    } else {
        command.envs(launch.security_env.iter().map(|(k, v)| (k, v)));
    }
    let child = command
        .current_dir(launch.dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // A group of its own: kills reach its children too, and a terminal's signals do not
        // reach it behind the worker's back.
        .process_group(0)
        .spawn()?;
    let pid = Pid::from_raw(i32::try_from(child.id()).map_err(io::Error::other)?);
    Ok(Spawned {
        child,
        handle: ProcessHandle {
            shared: Arc::new(Shared {
                pid,
                exit: Mutex::new(None),
                exited: Condvar::new(),
            }),
        },
    })
}

/// Where `program` is, as `execvp` would find it: a name with a `/` as is, others in the
/// child's `PATH` (its own environment first, then the worker's).
fn resolve_program(program: &str, env: &BTreeMap<String, String>) -> io::Result<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let not_found = || io::Error::new(io::ErrorKind::NotFound, "No such file or directory");
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if executable(&path) {
            Ok(path)
        } else {
            Err(not_found())
        };
    }
    let path = match env.get("PATH") {
        Some(p) => OsString::from(p),
        None => std::env::var_os("PATH").unwrap_or_default(),
    };
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
        .ok_or_else(not_found)
}

impl Spawned {
    /// A handle for signalling and waiting from other threads.
    pub(crate) fn handle(&self) -> ProcessHandle {
        self.handle.clone()
    }

    /// Blocks until the process exits, reaps it and returns its exit code (128 + the
    /// signal's number when a signal ended it, as a shell reports it).
    pub(crate) fn wait(mut self) -> io::Result<i32> {
        let pid = self.handle.shared.pid;
        // Wait for the exit without reaping, so the pid stays ours until `exit` is set.
        loop {
            match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::warn!("waitid({pid}) failed: {e}; waiting without it");
                    break;
                }
            }
        }
        let mut exit = self.handle.shared.exit.lock();
        // The process has exited (or waitid is unusable), so this returns at once.
        let status = self.child.wait();
        let code = match &status {
            Ok(status) => exit_code(*status),
            // Reaped elsewhere is impossible for our own child; report it as lost.
            Err(_) => -1,
        };
        *exit = Some(code);
        drop(exit);
        self.handle.shared.exited.notify_all();
        status.map(|_| code)
    }
}

/// The code a shell would report: the exit code, or 128 + the terminating signal.
fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => -1,
    }
}

impl ProcessHandle {
    /// The process id (also its process group id).
    pub(crate) fn pid(&self) -> u32 {
        self.shared.pid.as_raw().unsigned_abs()
    }

    /// The exit code, once the process has exited and been reaped.
    #[cfg(test)]
    pub(crate) fn exit_code(&self) -> Option<i32> {
        *self.shared.exit.lock()
    }

    /// Sends `signal` to the process's group unless it has already been reaped; returns
    /// whether it was sent.
    pub(crate) fn signal(&self, signal: Signal) -> bool {
        let exit = self.shared.exit.lock();
        if exit.is_some() {
            return false;
        }
        // Holding the lock keeps the waiting thread from reaping while we signal.
        match killpg(self.shared.pid, signal) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("killpg({}, {signal}) failed: {e}", self.shared.pid);
                false
            }
        }
    }

    /// Waits up to `timeout` for the process to be reaped; its exit code if it was.
    pub(crate) fn wait_exit(&self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let mut exit = self.shared.exit.lock();
        while exit.is_none() {
            if self
                .shared
                .exited
                .wait_until(&mut exit, deadline)
                .timed_out()
            {
                break;
            }
        }
        *exit
    }

    /// Kills the process as Spark does: SIGTERM, up to `grace` for it to go, then SIGKILL
    /// and another wait. Blocks; returns the exit code, or `None` if it never went.
    pub(crate) fn terminate(&self, grace: Duration) -> Option<i32> {
        if self.signal(Signal::SIGTERM) {
            if let Some(code) = self.wait_exit(grace) {
                return Some(code);
            }
            log::warn!(
                "Process {} did not exit within {grace:?} of SIGTERM; sending SIGKILL",
                self.pid()
            );
            self.signal(Signal::SIGKILL);
        }
        let code = self.wait_exit(AFTER_SIGKILL_WAIT);
        if code.is_none() {
            log::warn!(
                "Failed to terminate process {}; it will likely be orphaned",
                self.pid()
            );
        }
        code
    }

    /// [`terminate`](Self::terminate) on a thread of its own, so the caller (a handler)
    /// does not wait out the grace period.
    pub(crate) fn terminate_in_background(&self, grace: Duration, what: &str) {
        let handle = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("kill {what}"))
            .spawn(move || {
                handle.terminate(grace);
            });
        if let Err(e) = spawned {
            log::warn!("Could not start a thread to kill {what} ({e}); killing it at once");
            self.signal(Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::test_util::{is_alive, wait_until, TempDir, DEADLINE};

    fn launch_in<'a>(
        dir: &'a Path,
        args: &'a [String],
        env: &'a BTreeMap<String, String>,
    ) -> Launch<'a> {
        Launch {
            security_env: &[],
            program: "/bin/sh",
            args,
            env,
            dir,
            title: "Test Command",
            launcher: &[],
        }
    }

    #[test]
    fn output_goes_to_files_and_the_code_comes_back() {
        let dir = TempDir::new("output");
        let args = vec![
            "-c".to_string(),
            "echo out; echo err >&2; exit 3".to_string(),
        ];
        let env = BTreeMap::new();
        let spawned = spawn(&launch_in(dir.path(), &args, &env)).expect("spawns");
        let handle = spawned.handle();
        assert_eq!(spawned.wait().expect("waits"), 3);
        assert_eq!(handle.exit_code(), Some(3));
        assert!(!handle.signal(Signal::SIGTERM), "no signal after reaping");
        let out = std::fs::read_to_string(dir.path().join("stdout")).expect("stdout");
        assert_eq!(out, "out\n");
        let err = std::fs::read_to_string(dir.path().join("stderr")).expect("stderr");
        let header = "Test Command: \"/bin/sh\" \"-c\" \"echo out; echo err >&2; exit 3\"\n";
        assert!(err.starts_with(header), "{err}");
        assert!(
            err.ends_with(&format!("{}\n\nerr\n", "=".repeat(40))),
            "{err}"
        );
    }

    #[test]
    fn ids_must_be_plain_directory_names() {
        assert_eq!(
            dir_name("app-20240101000000-0001"),
            Ok("app-20240101000000-0001")
        );
        for bad in ["", ".", "..", "../x", "a/b", "/abs", "nul\0"] {
            assert!(dir_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn programs_are_found_as_execvp_finds_them() {
        let none = BTreeMap::new();
        let sh = resolve_program("sh", &none).expect("sh is on the PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(
            resolve_program("/bin/sh", &none).ok(),
            Some(PathBuf::from("/bin/sh"))
        );
        let missing = resolve_program("ember-no-such-program", &none);
        assert_eq!(
            missing.map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::NotFound)
        );
        assert!(resolve_program("/nonexistent/sh", &none).is_err());
        // The child's own PATH comes first; files that are not executable do not count.
        let dir = TempDir::new("path");
        let tool = dir.path().join("ember-tool");
        std::fs::write(&tool, "#!/bin/sh\n").expect("writes");
        let path = BTreeMap::from([("PATH".to_string(), dir.path().display().to_string())]);
        assert!(
            resolve_program("ember-tool", &path).is_err(),
            "not executable yet"
        );
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(resolve_program("ember-tool", &path).ok(), Some(tool));
    }

    #[test]
    fn terminate_kills_the_whole_group() {
        let dir = TempDir::new("group");
        // The shell starts a child in the background, prints its pid and waits for it.
        let args = vec!["-c".to_string(), "sleep 30 & echo $!; wait".to_string()];
        let env = BTreeMap::new();
        let spawned = spawn(&launch_in(dir.path(), &args, &env)).expect("spawns");
        let handle = spawned.handle();
        let waiter = std::thread::spawn(move || spawned.wait());
        let mut grandchild = 0u32;
        wait_until("the shell's child's pid", DEADLINE, || {
            let out = std::fs::read_to_string(dir.path().join("stdout")).unwrap_or_default();
            grandchild = out.trim().parse().unwrap_or(0);
            grandchild != 0
        });
        assert_eq!(handle.terminate(Duration::from_secs(10)), Some(128 + 15));
        assert_eq!(waiter.join().expect("waiter").expect("waited"), 128 + 15);
        wait_until("the grandchild's end", DEADLINE, || !is_alive(grandchild));
    }

    #[test]
    fn sigkill_follows_an_ignored_sigterm() {
        let dir = TempDir::new("stubborn");
        let args = vec![
            "-c".to_string(),
            "trap '' TERM; echo ready; while :; do sleep 1; done".to_string(),
        ];
        let env = BTreeMap::new();
        let spawned = spawn(&launch_in(dir.path(), &args, &env)).expect("spawns");
        let handle = spawned.handle();
        let waiter = std::thread::spawn(move || spawned.wait());
        // Only once the trap is set does SIGTERM meet it.
        wait_until("the trap", DEADLINE, || {
            std::fs::read_to_string(dir.path().join("stdout")).unwrap_or_default() == "ready\n"
        });
        assert_eq!(handle.terminate(Duration::from_millis(100)), Some(128 + 9));
        assert_eq!(waiter.join().expect("waiter").expect("waited"), 128 + 9);
    }
}
