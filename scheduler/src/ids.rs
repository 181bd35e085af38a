//! Ids: one type per kind, so a task id cannot be passed where a job id is expected.
//!
//! ```compile_fail
//! use ember_scheduler::{JobId, StageId};
//! fn wants_job(_: JobId) {}
//! wants_job(StageId(1));
//! ```

use std::fmt;
use std::sync::Arc;

use bytes::BytesMut;
use rpc_env::{Decode, DecodeError, Encode, Reader};

macro_rules! numeric_id {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Encode for $name {
            fn encode(&self, buf: &mut BytesMut) {
                self.0.encode(buf);
            }
        }

        impl Decode for $name {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                <$inner>::decode(r).map($name)
            }
        }
    };
}

numeric_id!(
    /// A task attempt, unique in the application (Spark's TID), counting from 0.
    TaskId(u64)
);
numeric_id!(
    /// A job: one `run_job` or `submit_job` call.
    JobId(u32)
);
numeric_id!(
    /// A stage. Ember's jobs have one stage each, so stage ids follow job ids.
    StageId(u32)
);

/// An executor's id: `"driver"` for the in-process executor of local modes, `"0"`, `"1"`, ...
/// for executors a cluster manager starts.
#[derive(Debug, Clone, PartialOrd, Ord)]
pub struct ExecutorId(Arc<str>);

/// Ids are compared on every launch and status update, nearly always against a clone of
/// the same `Arc`: the pointer check settles those without reading the text.
impl PartialEq for ExecutorId {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for ExecutorId {}

/// By the text, as equality is.
impl std::hash::Hash for ExecutorId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl ExecutorId {
    /// An id with this text.
    pub fn new(id: impl AsRef<str>) -> ExecutorId {
        ExecutorId(Arc::from(id.as_ref()))
    }

    /// The id of the executor inside a local-mode driver.
    pub fn driver() -> ExecutorId {
        ExecutorId::new("driver")
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExecutorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Encode for ExecutorId {
    fn encode(&self, buf: &mut BytesMut) {
        self.as_str().encode(buf);
    }
}

impl Decode for ExecutorId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        String::decode(r).map(ExecutorId::new)
    }
}

impl From<&str> for ExecutorId {
    fn from(s: &str) -> Self {
        ExecutorId::new(s)
    }
}

pub use rpc_env::{FastHasher, FastMap, FastSet};

/// A map keyed by task id, with the cheap hasher.
pub type TaskIdMap<V> = FastMap<TaskId, V>;
/// A set of task ids, with the cheap hasher.
pub type TaskIdSet = FastSet<TaskId>;
