//! The event log (`ember.eventLog.enabled`, Spark's `spark.eventLog.*`): the driver writes
//! what happened to its application as JSON lines, one file per application, for a
//! post-mortem with `ember-events` (the lines: [`schema`]).
//!
//! - The file is `<ember.eventLog.dir>/<app-id>.inprogress` while the application runs and
//!   is renamed `<app-id>` when [`Context::stop`](crate::Context::stop) ends it normally;
//!   a driver that dies leaves the `.inprogress` file. The directory is created if missing
//!   (`0750`); the file is created `0640`, only if nothing is at its path (so a symlink
//!   planted there is never followed).
//! - Events reach it through an [`EventSink`] that the driver endpoint and each job hold:
//!   the sink stamps the time and puts the event in a bounded queue ([`QUEUE_CAPACITY`]),
//!   and only a writer thread of its own formats and writes (through a `BufWriter`,
//!   flushed whenever the queue is empty, so a reader lags by at most one burst). The
//!   scheduler never waits: a full queue drops the event, counts it, warns once, and the
//!   count is in the application end line.
//! - The log never fails the application: a directory or file that cannot be created, or a
//!   write that fails, is logged once as a warning and turns the log off; the file is then
//!   left as `.inprogress` (it is incomplete).

pub mod schema;
pub mod summary;

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rpc_env::RpcConf;

use ember_scheduler::{DriverEvent, EventSink, JobState};

use crate::error::Error;
use crate::keys::{EVENT_LOG_DIR, EVENT_LOG_ENABLED};

/// How many events may wait for the writer before new ones are dropped (Spark's listener
/// bus queue holds 10,000 too): about 2 MiB of memory at most.
pub const QUEUE_CAPACITY: usize = 10_000;

/// How long the writer pauses after writing what was queued, before it waits for more.
/// Events are on disk at most this much later under load; the queue holds
/// [`QUEUE_CAPACITY`] events, so posting up to 5 million a second drops none.
const BATCH_PAUSE: Duration = Duration::from_millis(2);

/// Where the log goes when `ember.eventLog.dir` is not set (Spark's is `/tmp/spark-events`).
pub const DEFAULT_DIR: &str = "/tmp/ember-events";

/// The suffix of a log whose application has not stopped (or whose driver died).
pub const IN_PROGRESS: &str = ".inprogress";

/// What the writer thread is told, in order.
enum Command {
    /// The application has its id: open the file, write the start line and what came
    /// before it.
    Start {
        app_id: String,
        app_name: String,
        user: String,
        at_ms: u64,
    },
    /// Something happened at `at_ms`.
    Event { at_ms: u64, event: DriverEvent },
    /// The application stopped normally: write the end line, close, rename.
    Stop { at_ms: u64 },
}

/// What the sink and the writer share.
struct Shared {
    /// Events dropped because the queue was full (or came before the start in too great a
    /// number).
    dropped: AtomicU64,
    /// The log is off (a file or write error): posting stops at once.
    disabled: AtomicBool,
}

/// The driver's event log: the sink events are posted to, and its writer thread.
pub(crate) struct EventLog {
    tx: SyncSender<Command>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl EventLog {
    /// The event log `conf` asks for, its writer started; `None` when it is off (the
    /// default).
    ///
    /// # Errors
    ///
    /// `ember.eventLog.enabled` is not a boolean. Nothing about the directory is an error:
    /// the log warns and turns itself off instead.
    pub(crate) fn from_conf(conf: &RpcConf) -> Result<Option<Arc<EventLog>>, Error> {
        if !conf.get_bool(EVENT_LOG_ENABLED, false)? {
            return Ok(None);
        }
        let dir = conf.get(EVENT_LOG_DIR).unwrap_or(DEFAULT_DIR);
        // Spark's value is a URL (`file:///tmp/spark-events`); a local one means its path.
        let dir = PathBuf::from(dir.strip_prefix("file://").unwrap_or(dir));
        Ok(Some(Arc::new(EventLog::start(dir, QUEUE_CAPACITY))))
    }

    /// A log writing into `dir` once told the application's id, with a queue of
    /// `capacity` events.
    fn start(dir: PathBuf, capacity: usize) -> EventLog {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        let shared = Arc::new(Shared {
            dropped: AtomicU64::new(0),
            disabled: AtomicBool::new(false),
        });
        let for_writer = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || Writer::new(dir, capacity, for_writer).run(rx));
        let writer = match writer {
            Ok(handle) => Some(handle),
            Err(e) => {
                log::warn!("Cannot start the event log's writer thread ({e}); no event log");
                shared.disabled.store(true, Ordering::Release);
                None
            }
        };
        EventLog {
            tx,
            shared,
            writer: Mutex::new(writer),
        }
    }

    /// The application has its id: the file is opened, with the start line first.
    pub(crate) fn application_started(&self, app_id: &str, app_name: &str) {
        let user = std::env::var("USER").unwrap_or_else(|_| "ember".to_string());
        self.command(Command::Start {
            app_id: app_id.to_string(),
            app_name: app_name.to_string(),
            user,
            at_ms: now_ms(),
        });
    }

    /// A job was submitted: its start is logged, and `job` (returned) tells the log how it
    /// ends.
    pub(crate) fn job_submitted(self: &Arc<Self>, job: JobState, tasks: usize) -> JobState {
        let job_id = job.job_id();
        self.post(DriverEvent::JobStart { job_id, tasks });
        if tasks == 0 {
            // It has ended already, and never reaches the driver endpoint.
            self.post(DriverEvent::JobEnd {
                job_id,
                result: Ok(()),
            });
            return job;
        }
        job.with_event_sink(Arc::clone(self) as Arc<dyn EventSink>)
    }

    /// The application stopped normally: the end line is written, the file closed and
    /// renamed without `.inprogress`. Waits for the writer; call once, after the driver
    /// endpoint has stopped (so nothing is posted after the end line).
    pub(crate) fn application_ended(&self) {
        self.command(Command::Stop { at_ms: now_ms() });
        if let Some(writer) = self.writer.lock().take() {
            if writer.join().is_err() {
                log::warn!("The event log's writer thread panicked");
            }
        }
    }

    /// Sends a command that must not be dropped (start, stop), waiting for room. Sent even
    /// when the log is off: the writer waits for the stop to end.
    fn command(&self, command: Command) {
        // Fails only if the writer is gone, when there is nothing left to tell.
        let _ = self.tx.send(command);
    }
}

impl EventSink for EventLog {
    fn post(&self, event: DriverEvent) {
        if self.shared.disabled.load(Ordering::Relaxed) {
            return;
        }
        let command = Command::Event {
            at_ms: now_ms(),
            event,
        };
        match self.tx.try_send(command) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                if self.shared.dropped.fetch_add(1, Ordering::AcqRel) == 0 {
                    log::warn!(
                        "The event log's queue is full ({QUEUE_CAPACITY} events): dropping \
                         events until its writer catches up"
                    );
                }
            }
        }
    }
}

/// The event log as the driver endpoint holds it, if on.
pub(crate) fn sink_of(event_log: &Option<Arc<EventLog>>) -> Option<Arc<dyn EventSink>> {
    event_log
        .as_ref()
        .map(|log| Arc::clone(log) as Arc<dyn EventSink>)
}

/// The open file: where it is now, and where it goes at a normal stop.
struct Output {
    file: BufWriter<File>,
    in_progress: PathBuf,
    done: PathBuf,
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    /// Events that came before the start, written after its line (at most `capacity`).
    early: Vec<(u64, DriverEvent)>,
    capacity: usize,
    out: Option<Output>,
    shared: Arc<Shared>,
    /// A line's bytes, reused.
    line: Vec<u8>,
}

/// Creates `<dir>/<app_id>.inprogress`: the directory if missing (`0750`), the file `0640`
/// and only if nothing is at its path, so a symlink planted there is never followed and an
/// existing log is never appended to.
pub(crate) fn create_log_file(dir: &Path, app_id: &str) -> std::io::Result<(File, PathBuf)> {
    // An id is one path component: never let one walk out of the directory.
    if app_id.is_empty() || app_id.contains('/') || app_id.starts_with('.') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{app_id:?} cannot name a file"),
        ));
    }
    DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
    let path = dir.join(format!("{app_id}{IN_PROGRESS}"));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&path)?;
    Ok((file, path))
}

impl Writer {
    fn new(dir: PathBuf, capacity: usize, shared: Arc<Shared>) -> Writer {
        Writer {
            dir,
            early: Vec::new(),
            capacity,
            out: None,
            shared,
            line: Vec::with_capacity(512),
        }
    }

    /// Writes until the application stops, or the driver goes away without stopping it
    /// (the file then stays `.inprogress`).
    fn run(mut self, rx: Receiver<Command>) {
        while let Ok(command) = rx.recv() {
            if self.handle(command) {
                return;
            }
            // Everything queued meanwhile, then one flush: a burst costs one write.
            loop {
                match rx.try_recv() {
                    Ok(command) => {
                        if self.handle(command) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.flush();
                        return;
                    }
                }
            }
            self.flush();
            // A pause before waiting again, so that under load the writer is seldom found
            // blocked on the queue: waking it costs the poster (the scheduler's thread) a
            // system call per event. Idle, the next event is written as soon as it comes.
            std::thread::sleep(BATCH_PAUSE);
        }
        self.flush();
    }

    /// Handles one command; `true` when the writer is done.
    fn handle(&mut self, command: Command) -> bool {
        if self.shared.disabled.load(Ordering::Acquire) {
            return matches!(command, Command::Stop { .. });
        }
        match command {
            Command::Start {
                app_id,
                app_name,
                user,
                at_ms,
            } => {
                self.open(&app_id);
                self.line.clear();
                schema::application_start(&mut self.line, &app_name, &app_id, at_ms, &user);
                self.write_line();
                for (at_ms, event) in std::mem::take(&mut self.early) {
                    self.write_event(at_ms, &event);
                }
                false
            }
            Command::Event { at_ms, event } => {
                if self.out.is_some() {
                    self.write_event(at_ms, &event);
                } else if self.early.len() < self.capacity {
                    self.early.push((at_ms, event));
                } else {
                    self.shared.dropped.fetch_add(1, Ordering::AcqRel);
                }
                false
            }
            Command::Stop { at_ms } => {
                // Read here, after every event before the stop was handled (or dropped).
                let dropped = self.shared.dropped.load(Ordering::Acquire);
                if dropped > 0 {
                    log::warn!(
                        "The event log dropped {dropped} event(s): its writer could not keep \
                         up (the count is in the log's last line)"
                    );
                }
                self.line.clear();
                schema::application_end(&mut self.line, at_ms, dropped);
                self.write_line();
                self.close();
                true
            }
        }
    }

    fn open(&mut self, app_id: &str) {
        match create_log_file(&self.dir, app_id) {
            Ok((file, in_progress)) => {
                log::info!("Logging events to {}", in_progress.display());
                self.out = Some(Output {
                    file: BufWriter::new(file),
                    done: self.dir.join(app_id),
                    in_progress,
                });
            }
            Err(e) => self.disable(&format!(
                "cannot create {}/{app_id}{IN_PROGRESS}: {e}",
                self.dir.display()
            )),
        }
    }

    fn write_event(&mut self, at_ms: u64, event: &DriverEvent) {
        self.line.clear();
        schema::event(&mut self.line, at_ms, event);
        self.write_line();
    }

    /// Writes the line in `self.line`.
    fn write_line(&mut self) {
        let Some(out) = &mut self.out else {
            return;
        };
        if let Err(e) = out.file.write_all(&self.line) {
            let what = format!("cannot write {}: {e}", out.in_progress.display());
            self.disable(&what);
        }
    }

    fn flush(&mut self) {
        let Some(out) = &mut self.out else {
            return;
        };
        if let Err(e) = out.file.flush() {
            let what = format!("cannot write {}: {e}", out.in_progress.display());
            self.disable(&what);
        }
    }

    /// A normal stop: everything to disk, then the rename that says the log is complete.
    fn close(&mut self) {
        self.flush();
        let Some(out) = self.out.take() else {
            return;
        };
        let synced = out
            .file
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all());
        let renamed = synced.and_then(|()| std::fs::rename(&out.in_progress, &out.done));
        match renamed {
            Ok(()) => log::info!("Event log written to {}", out.done.display()),
            Err(e) => log::warn!(
                "Event log {}: cannot finish it ({e}); it stays as it is",
                out.in_progress.display()
            ),
        }
    }

    /// Turns the log off for the rest of the application, with one warning.
    fn disable(&mut self, why: &str) {
        if !self.shared.disabled.swap(true, Ordering::AcqRel) {
            log::warn!("Event log off for the rest of the application: {why}");
        }
        self.out = None;
        self.early.clear();
    }
}

#[cfg(test)]
mod tests;
