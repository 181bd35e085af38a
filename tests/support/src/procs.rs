//! The processes a test caused, from `/proc` (the tests run on Linux).

use std::path::Path;

/// A live process: its pid and its command line (arguments joined by spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Its process id.
    pub pid: u32,
    /// Its command line, arguments joined by spaces.
    pub cmdline: String,
}

/// Whether process `pid` runs. A zombie counts as gone: it has ended, and its parent may be an
/// init that never reaps it.
pub fn is_alive(pid: u32) -> bool {
    let path = format!("/proc/{pid}/stat");
    !matches!(state(Path::new(&path)), Some('Z') | Some('X') | None)
}

/// Whether a thread of this process named `name` (`std::thread::Builder::name`, at most 15
/// bytes as Linux keeps it) is asleep: blocked on a lock, a condition variable, a channel or
/// a read. How a test sees that another thread has reached a call that must block, without a
/// timing window: a thread that should have blocked but returned is never seen asleep there.
pub fn thread_asleep(name: &str) -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.flatten().any(|task| {
        let dir = task.path();
        let named =
            std::fs::read_to_string(dir.join("comm")).is_ok_and(|comm| comm.trim_end() == name);
        named && state(&dir.join("stat")) == Some('S')
    })
}

/// The state letter of a `/proc/.../stat` file.
fn state(stat: &Path) -> Option<char> {
    let stat = std::fs::read_to_string(stat).ok()?;
    // `pid (comm) state ...`: the command name may itself contain spaces and parentheses.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// The live processes whose working directory is `dir` or under it, by pid. Every process a
/// test causes (daemons, executors, drivers) works under the test's own directory, so this
/// finds them all, and anything still listed at the end was left behind.
pub fn processes_under(dir: &Path) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<Process> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .filter(|pid| is_alive(*pid))
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline)
                .trim_end_matches('\0')
                .replace('\0', " ");
            Process { pid, cmdline }
        })
        .collect();
    found.sort_by_key(|p| p.pid);
    found
}

/// Waits up to `limit` for `child` to exit, polling; `None` if it still runs then (the
/// caller says why that fails its test, with what it knows, such as the child's stderr).
pub fn exited_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let end = std::time::Instant::now() + limit;
    loop {
        // A child we cannot poll has no status to wait for: report it as still running.
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if std::time::Instant::now() < end => {}
            Ok(None) | Err(_) => return None,
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{wait_for, wait_until, TempDir, DEADLINE};
    use std::process::Command;

    #[test]
    fn finds_a_child_working_under_a_directory_until_it_ends() {
        let dir = TempDir::new("support-procs");
        let mut child = Command::new("sleep")
            .arg("30")
            .current_dir(dir.path())
            .spawn()
            .expect("sleep runs");
        let expected = vec![Process {
            pid: child.id(),
            cmdline: "sleep 30".to_string(),
        }];
        // A process that has only just exec'd may show an empty command line for a moment.
        wait_for(
            "the child is listed with its command line",
            DEADLINE,
            || {
                let found = processes_under(dir.path());
                if found == expected {
                    Ok(())
                } else {
                    Err(found)
                }
            },
        );
        assert!(is_alive(child.id()));
        child.kill().expect("kill");
        // Not reaped yet: a zombie, which counts as gone.
        wait_until("the killed child is gone", DEADLINE, || {
            !is_alive(child.id())
        });
        assert!(processes_under(dir.path()).is_empty());
        child.wait().expect("reaped");
    }

    #[test]
    fn a_thread_blocked_on_a_channel_is_asleep() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let blocked = std::thread::Builder::new()
            .name("support-blocked".into())
            .spawn(move || rx.recv())
            .expect("a thread");
        wait_until("the receiver blocks", DEADLINE, || {
            thread_asleep("support-blocked")
        });
        drop(tx);
        let _ = blocked.join();
        assert!(!thread_asleep("support-blocked"), "the thread has ended");
        assert!(!thread_asleep("no-such-thread"));
    }

    #[test]
    fn no_such_process_is_not_alive() {
        assert!(!is_alive(u32::MAX));
    }
}
