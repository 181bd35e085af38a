//! The executor processes of a test: children of this process with executor arguments,
//! read from `/proc`.

use std::ffi::OsString;

use ember_executor::ExecutorArgs;

use crate::context::Context;

/// An executor process: a child of this process started with executor arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorProcess {
    /// Its process id.
    pub pid: u32,
    /// Its application's id.
    pub app_id: String,
    /// Its id within the application (`0`, `1`, ...).
    pub executor_id: String,
    /// The driver it serves.
    pub driver_url: String,
    /// The worker that launched it.
    pub worker_url: Option<String>,
}

impl ExecutorProcess {
    /// Whether the process still runs: its pid names a live (not zombie) process with this
    /// very command line, so a recycled pid does not count.
    pub fn is_running(&self) -> bool {
        read_executor(self.pid).as_ref() == Some(self)
    }
}

/// The executor processes among this process's children (read from `/proc`).
pub fn executor_processes() -> Vec<ExecutorProcess> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<ExecutorProcess> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(me))
        .filter_map(read_executor)
        .collect();
    found.sort_by_key(|p| p.pid);
    found
}

/// The executor processes of the application `ctx` runs (children of this process whose
/// driver is `ctx`'s), as with `local-cluster[N,C,M]` contexts.
pub fn executor_processes_of(ctx: &Context) -> Vec<ExecutorProcess> {
    let Some(driver_url) = ctx.driver_url() else {
        return Vec::new();
    };
    executor_processes()
        .into_iter()
        .filter(|p| p.driver_url == driver_url)
        .collect()
}

/// The parent of `pid`, from `/proc/<pid>/stat` (`pid (comm) state ppid ...`; the command
/// name may hold spaces and parentheses, so fields are counted after the last `)`).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.next()?.parse().ok()
}

/// The executor `pid` is, if its command line holds executor arguments. A zombie's command
/// line is empty, so it is none.
fn read_executor(pid: u32) -> Option<ExecutorProcess> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<OsString> = cmdline
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| OsString::from(String::from_utf8_lossy(w).into_owned()))
        .collect();
    let start = words.iter().position(|w| w == "--driver-url")?;
    let args = ExecutorArgs::parse(words[start..].iter().cloned()).ok()?;
    Some(ExecutorProcess {
        pid,
        app_id: args.app_id,
        executor_id: args.executor_id,
        driver_url: args.driver_url,
        worker_url: args.worker_url,
    })
}
