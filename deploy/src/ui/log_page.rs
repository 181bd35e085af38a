//! The worker's log pages: an executor's or a driver's `stdout` or `stderr`, a window of it
//! at a time (Spark's `LogPage`: `offset` and `byteLength`, the last 100 KiB by default),
//! so a 1 GiB log is never read whole. The path is built from checked ids only; the file
//! is opened without following a symlink and must be a regular file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use maud::{html, Markup};

use super::http::{UiRequest, UiResponse};
use super::layout::page;

/// The window shown when the request names none (Spark's default).
pub(crate) const DEFAULT_BYTES: u64 = 100 * 1024;
/// The largest window served, whatever `byteLength` asks for.
pub(crate) const MAX_BYTES: u64 = 1024 * 1024;

/// Whose log, and which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogRequest {
    /// `<app-id>/<exec-id>` or `<driver-id>`, relative to the work dir.
    relative_dir: PathBuf,
    /// What the page calls it: `app-…/0` or `driver-…`.
    owner: String,
    /// The query that names the owner, for the paging links.
    owner_query: String,
    /// `stdout` or `stderr`.
    log_type: &'static str,
    /// The first byte asked for, if any.
    offset: Option<u64>,
    /// How many bytes.
    byte_length: u64,
}

/// A window of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogWindow {
    /// The bytes `[start, end)`.
    pub(crate) text: String,
    /// The first byte shown.
    pub(crate) start: u64,
    /// One past the last byte shown.
    pub(crate) end: u64,
    /// The file's length.
    pub(crate) total: u64,
}

/// Whether `id` may name a directory: Ember's ids are letters, digits, `-`, `_` and `.`,
/// never `.` or `..`, at most 128 bytes.
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl LogRequest {
    /// The log a request names, or a 400 saying what is wrong with it.
    pub(crate) fn parse(request: &UiRequest) -> Result<LogRequest, UiResponse> {
        let bad = |what: String| Err(UiResponse::text(400, what));
        let log_type = match request.param("logType") {
            Some("stdout") => "stdout",
            Some("stderr") => "stderr",
            other => return bad(format!("logType must be stdout or stderr, not {other:?}")),
        };
        let number = |name: &str| -> Result<Option<u64>, UiResponse> {
            match request.param(name) {
                None | Some("") => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| {
                    UiResponse::text(400, format!("{name} must be a number, not {v:?}"))
                }),
            }
        };
        let offset = number("offset")?;
        let byte_length = number("byteLength")?
            .unwrap_or(DEFAULT_BYTES)
            .min(MAX_BYTES);
        let (relative_dir, owner, owner_query) = match (
            request.param("appId"),
            request.param("executorId"),
            request.param("driverId"),
        ) {
            (Some(app), Some(exec), None) => {
                let Ok(exec_id) = exec.parse::<u32>() else {
                    return bad(format!("executorId must be a number, not {exec:?}"));
                };
                if !plain_id(app) {
                    return bad(format!("Not an application id: {app:?}"));
                }
                (
                    Path::new(app).join(exec_id.to_string()),
                    format!("{app}/{exec_id}"),
                    format!("appId={app}&executorId={exec_id}"),
                )
            }
            (None, None, Some(driver)) => {
                if !plain_id(driver) {
                    return bad(format!("Not a driver id: {driver:?}"));
                }
                (
                    PathBuf::from(driver),
                    driver.to_string(),
                    format!("driverId={driver}"),
                )
            }
            _ => return bad("Name appId and executorId, or driverId".to_string()),
        };
        Ok(LogRequest {
            relative_dir,
            owner,
            owner_query,
            log_type,
            offset,
            byte_length,
        })
    }

    /// Reads the window from the log under `work_dir`: `offset` (default: the last
    /// `byteLength` bytes) clamped to the file.
    ///
    /// # Errors
    ///
    /// The file is missing, is a symlink or not a regular file, or cannot be read: the
    /// message says which, without the full path.
    pub(crate) fn read(&self, work_dir: &Path) -> Result<LogWindow, String> {
        let path = work_dir.join(&self.relative_dir).join(self.log_type);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| format!("No {} log for {}: {e}", self.log_type, self.owner))?;
        let total = regular_file_length(&file)
            .ok_or_else(|| format!("The {} log of {} is not a file", self.log_type, self.owner))?;
        let start = self
            .offset
            .unwrap_or_else(|| total.saturating_sub(self.byte_length))
            .min(total);
        let end = start.saturating_add(self.byte_length).min(total);
        file.seek(SeekFrom::Start(start))
            .map_err(|e| format!("Could not read the log: {e}"))?;
        let mut bytes = Vec::new();
        file.take(end - start)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("Could not read the log: {e}"))?;
        let end = start + bytes.len() as u64;
        Ok(LogWindow {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            start,
            end,
            total,
        })
    }

    /// The page: which bytes of how many, links to the windows before and after, the text.
    pub(crate) fn page(&self, window: &LogWindow) -> Markup {
        let link = |offset: u64| {
            format!(
                "/logPage/?{}&logType={}&offset={offset}&byteLength={}",
                self.owner_query, self.log_type, self.byte_length
            )
        };
        let title = format!("{} log page for {}", self.log_type, self.owner);
        page(
            &title,
            html! {
                p.nav {
                    a href="/" { "Back to Worker" }
                    @if window.start > 0 {
                        a href=(link(window.start.saturating_sub(self.byte_length))) { "Previous" }
                    }
                    @if window.end < window.total {
                        a href=(link(window.end)) { "Next" }
                    }
                }
                p { "Showing " (window.end - window.start) " Bytes: "
                    (window.start) " - " (window.end) " of " (window.total) }
                pre.log { (window.text) }
            },
        )
    }
}

/// The length of `file` if it is a regular file (not a FIFO or a device, which could block
/// or never end).
fn regular_file_length(file: &File) -> Option<u64> {
    let meta = file.metadata().ok()?;
    meta.is_file().then_some(meta.len())
}

/// `GET /logPage/`: the page, or 400/404 saying why not.
pub(crate) fn log_page(request: &UiRequest, work_dir: &Path) -> UiResponse {
    match LogRequest::parse(request) {
        Err(refusal) => refusal,
        Ok(log) => match log.read(work_dir) {
            Ok(window) => UiResponse::html(log.page(&window)),
            Err(reason) => UiResponse::text(404, reason),
        },
    }
}

/// `GET /log`: the same window as plain text.
pub(crate) fn raw_log(request: &UiRequest, work_dir: &Path) -> UiResponse {
    match LogRequest::parse(request) {
        Err(refusal) => refusal,
        Ok(log) => match log.read(work_dir) {
            Ok(window) => UiResponse::text(200, window.text),
            Err(reason) => UiResponse::text(404, reason),
        },
    }
}
