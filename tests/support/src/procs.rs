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
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ...`: the state is the first field after the parenthesised command
    // name, which may itself contain spaces and parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{wait_until, TempDir, DEADLINE};
    use std::process::Command;

    #[test]
    fn finds_a_child_working_under_a_directory_until_it_ends() {
        let dir = TempDir::new("support-procs");
        let mut child = Command::new("sleep")
            .arg("30")
            .current_dir(dir.path())
            .spawn()
            .expect("sleep runs");
        let found = processes_under(dir.path());
        assert_eq!(
            found,
            vec![Process {
                pid: child.id(),
                cmdline: "sleep 30".to_string()
            }]
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
    fn no_such_process_is_not_alive() {
        assert!(!is_alive(u32::MAX));
    }
}
