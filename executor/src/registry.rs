//! Tasks are plain functions registered by name; no closure is ever shipped.
//!
//! The driver and its executors are the same binary, so both sides build the same
//! [`TaskRegistry`]: the driver to check a job's types, the executor to run its tasks.

use std::any::{type_name, TypeId};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use rpc_env::{decode_from, encode_to_bytes, Decode, Encode};

use ember_scheduler::{ExecutorId, JobId, StageId, TaskId};

use crate::task_files::TaskFiles;

/// Why a task function did not produce its output.
#[derive(Clone, PartialEq, Eq)]
pub struct TaskError {
    message: String,
    killed: bool,
}

impl TaskError {
    /// A failure with this message (it counts towards `ember.task.maxFailures`).
    pub fn msg(message: impl Into<String>) -> TaskError {
        TaskError {
            message: message.into(),
            killed: false,
        }
    }

    /// The task stopped because it was asked to (see [`TaskContext::check_interrupted`]).
    pub fn killed(reason: impl Into<String>) -> TaskError {
        TaskError {
            message: reason.into(),
            killed: true,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the task was killed rather than failed.
    pub fn is_killed(&self) -> bool {
        self.killed
    }
}

impl<E: std::error::Error> From<E> for TaskError {
    fn from(e: E) -> Self {
        TaskError::msg(e.to_string())
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskError({:?}, killed: {})", self.message, self.killed)
    }
}

/// What a running task knows about itself, and how it learns it was killed.
pub struct TaskContext {
    pub(crate) task_id: TaskId,
    pub(crate) attempt_number: u32,
    pub(crate) partition: u32,
    pub(crate) job_id: JobId,
    pub(crate) stage_id: StageId,
    pub(crate) executor_id: ExecutorId,
    pub(crate) properties: BTreeMap<String, String>,
    pub(crate) kill: Arc<KillSwitch>,
    pub(crate) files: Arc<TaskFiles>,
}

/// Set when a task attempt is asked to stop.
#[derive(Default)]
pub(crate) struct KillSwitch {
    killed: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl KillSwitch {
    pub(crate) fn kill(&self, reason: String) {
        *self.reason.lock() = Some(reason);
        self.killed.store(true, Ordering::Release);
    }

    pub(crate) fn reason(&self) -> Option<String> {
        if self.killed.load(Ordering::Acquire) {
            self.reason.lock().clone()
        } else {
            None
        }
    }
}

impl TaskContext {
    /// The attempt's id (Spark's TID).
    pub fn task_id(&self) -> TaskId {
        self.task_id
    }

    /// How many attempts of this task came before.
    pub fn attempt_number(&self) -> u32 {
        self.attempt_number
    }

    /// The partition this task computes.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The job.
    pub fn job_id(&self) -> JobId {
        self.job_id
    }

    /// The stage.
    pub fn stage_id(&self) -> StageId {
        self.stage_id
    }

    /// The executor running it.
    pub fn executor_id(&self) -> &ExecutorId {
        &self.executor_id
    }

    /// A local property of the job.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// Whether the attempt was asked to stop. Long tasks should look now and then and
    /// return [`TaskError::killed`] (or use [`check_interrupted`](Self::check_interrupted)).
    pub fn is_interrupted(&self) -> bool {
        self.kill.killed.load(Ordering::Acquire)
    }

    /// The local path of the file the application added as `name` with
    /// `Context::add_file` (Spark's `SparkFiles.get`). In an executor process it is
    /// fetched from the driver the first time any task asks, its hash checked, and kept for
    /// the executor's life; this call waits for that.
    pub fn file(&self, name: &str) -> Result<PathBuf, TaskError> {
        self.files.get(name).map_err(TaskError::msg)
    }

    /// `Err(TaskError::killed(reason))` once the attempt was asked to stop.
    pub fn check_interrupted(&self) -> Result<(), TaskError> {
        match self.kill.reason() {
            Some(reason) => Err(TaskError::killed(reason)),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TaskContext(TID {}, partition {}, attempt {})",
            self.task_id, self.partition, self.attempt_number
        )
    }
}

type ErasedTask = Arc<dyn Fn(&TaskContext, Bytes) -> Result<Bytes, TaskError> + Send + Sync>;

struct Registered {
    run: ErasedTask,
    input: (TypeId, &'static str),
    output: (TypeId, &'static str),
}

/// Task functions by name.
#[derive(Default)]
pub struct TaskRegistry {
    tasks: BTreeMap<String, Registered>,
}

impl TaskRegistry {
    /// An empty registry.
    pub fn new() -> TaskRegistry {
        TaskRegistry::default()
    }

    /// Registers `f` under `name`: it takes a decoded `In` and returns an `Out` to encode.
    /// A later registration of the same name replaces the earlier one.
    pub fn register<In, Out, F>(&mut self, name: &str, f: F) -> &mut TaskRegistry
    where
        In: Decode + 'static,
        Out: Encode + 'static,
        F: Fn(&TaskContext, In) -> Result<Out, TaskError> + Send + Sync + 'static,
    {
        let run: ErasedTask = Arc::new(move |ctx: &TaskContext, input: Bytes| {
            let input: In = decode_from(input).map_err(|e| {
                TaskError::msg(format!(
                    "The input of this task does not decode as {}: {e}",
                    type_name::<In>()
                ))
            })?;
            f(ctx, input).map(|out| encode_to_bytes(&out))
        });
        self.tasks.insert(
            name.to_string(),
            Registered {
                run,
                input: (TypeId::of::<In>(), type_name::<In>()),
                output: (TypeId::of::<Out>(), type_name::<Out>()),
            },
        );
        self
    }

    /// The names registered.
    pub fn names(&self) -> Vec<&str> {
        self.tasks.keys().map(String::as_str).collect()
    }

    /// What the registry holds, one `name: In -> Out` line per task function in name order:
    /// two registries with the same signature run the same jobs (a test cluster compares its
    /// drivers' with its executors' to catch a mismatch before a task runs).
    pub fn signature(&self) -> String {
        let mut out = String::new();
        for (name, task) in &self.tasks {
            out.push_str(&format!("{name}: {} -> {}\n", task.input.1, task.output.1));
        }
        out
    }

    /// Checks that `name` is registered with input `In` and output `Out`, as a job is about
    /// to run it with those types.
    pub fn check<In: 'static, Out: 'static>(&self, name: &str) -> Result<(), String> {
        let task = self.tasks.get(name).ok_or_else(|| self.unknown(name))?;
        if task.input.0 != TypeId::of::<In>() || task.output.0 != TypeId::of::<Out>() {
            return Err(format!(
                "Task function '{name}' takes {} and returns {}, not {} and {}",
                task.input.1,
                task.output.1,
                type_name::<In>(),
                type_name::<Out>()
            ));
        }
        Ok(())
    }

    fn unknown(&self, name: &str) -> String {
        format!(
            "Unknown task function '{name}'; this application registers: {}",
            self.names().join(", ")
        )
    }

    /// Runs the task function `name` on an encoded input.
    pub(crate) fn run(
        &self,
        name: &str,
        ctx: &TaskContext,
        input: Bytes,
    ) -> Result<Bytes, TaskError> {
        match self.tasks.get(name) {
            Some(task) => (task.run)(ctx, input),
            None => Err(TaskError::msg(self.unknown(name))),
        }
    }
}

impl fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.tasks.keys()).finish()
    }
}
