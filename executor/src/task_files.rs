//! [`TaskFiles`]: where a task finds the files its application added with
//! `Context::add_file` (Spark's `SparkFiles.get`).
//!
//! In an executor process, each file is fetched from the driver's file server the first
//! time a task asks for it, into `files/` of the executor's directory, through a partial
//! file renamed into place only once its SHA-256 checked out (a verified stream), and kept
//! for the executor's life. In `local[N]` the tasks run in the driver: they get the added
//! path itself.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rpc_env::{RpcAddress, RpcEnv};

/// The directory, inside an executor's working directory, that holds its fetched files.
pub const FILES_DIR: &str = "files";

/// Where a task's added files come from.
pub enum TaskFiles {
    /// No files: tests and executors without a driver to fetch from.
    None,
    /// Tasks run in the driver's process: the added paths, by name.
    Local(Arc<RwLock<BTreeMap<String, PathBuf>>>),
    /// Tasks run in an executor process: fetched from the driver.
    Fetched(Fetcher),
}

/// Fetches added files from the driver, once each.
pub struct Fetcher {
    env: RpcEnv,
    driver: RpcAddress,
    dir: PathBuf,
    /// One lock per name, so tasks asking for the same file share one download; the
    /// path once it is there.
    files: Mutex<HashMap<String, Arc<Mutex<Option<PathBuf>>>>>,
    next_partial: AtomicU64,
}

impl TaskFiles {
    /// Files fetched through `env` from the driver at `driver` into `dir`.
    pub fn fetched(env: RpcEnv, driver: RpcAddress, dir: PathBuf) -> TaskFiles {
        TaskFiles::Fetched(Fetcher {
            env,
            driver,
            dir,
            files: Mutex::new(HashMap::new()),
            next_partial: AtomicU64::new(0),
        })
    }

    /// The local path of the added file `name`; fetched first if need be (this blocks the
    /// task for the download).
    pub fn get(&self, name: &str) -> Result<PathBuf, String> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(format!("'{name}' is not the name of an added file"));
        }
        match self {
            TaskFiles::None => Err(format!("No file '{name}' was added to the application")),
            TaskFiles::Local(added) => added
                .read()
                .get(name)
                .cloned()
                .ok_or_else(|| format!("No file '{name}' was added to the application")),
            TaskFiles::Fetched(fetcher) => fetcher.get(name),
        }
    }
}

impl Fetcher {
    fn get(&self, name: &str) -> Result<PathBuf, String> {
        let slot = Arc::clone(self.files.lock().entry(name.to_string()).or_default());
        let mut slot = slot.lock();
        if let Some(path) = &*slot {
            return Ok(path.clone());
        }
        let uri = format!("{}/files/{name}", self.driver.to_ember_url());
        let path = self
            .fetch(&uri, name)
            .map_err(|why| format!("Cannot get file '{name}' from {uri}: {why}"))?;
        log::info!("Fetched {uri} into {}", path.display());
        *slot = Some(path.clone());
        Ok(path)
    }

    /// Downloads `uri` into `<dir>/<name>` through a partial file.
    fn fetch(&self, uri: &str, name: &str) -> Result<PathBuf, String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let target = self.dir.join(name);
        let partial = self.dir.join(format!(
            ".{name}.partial-{}",
            self.next_partial.fetch_add(1, Ordering::Relaxed)
        ));
        let outcome = download(&self.env, uri, &partial).and_then(|()| {
            std::fs::rename(&partial, &target)
                .map_err(|e| format!("cannot move it to {}: {e}", target.display()))
        });
        if outcome.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        outcome.map(|()| target)
    }
}

/// Streams `uri` into a new file at `partial`, its hash checked by the stream.
fn download(env: &RpcEnv, uri: &str, partial: &Path) -> Result<(), String> {
    let mut stream = env.open_verified_stream(uri).map_err(|e| e.to_string())?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    std::io::copy(&mut stream, &mut file).map_err(|e| e.to_string())?;
    file.flush().map_err(|e| e.to_string())
}

impl std::fmt::Debug for TaskFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskFiles::None => f.write_str("TaskFiles::None"),
            TaskFiles::Local(added) => f
                .debug_tuple("TaskFiles::Local")
                .field(&added.read().len())
                .finish(),
            TaskFiles::Fetched(fetcher) => f
                .debug_struct("TaskFiles::Fetched")
                .field("driver", &fetcher.driver)
                .field("dir", &fetcher.dir)
                .finish(),
        }
    }
}
