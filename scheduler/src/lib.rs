//! # ember-scheduler: the driver side of Ember
//!
//! The task model ([`TaskSet`], [`TaskDescription`], [`TaskStatus`], [`TaskFailedReason`]),
//! locality ([`TaskLocality`], [`TaskLocation`]), the [`TaskScheduler`] with its
//! [`TaskSetManager`]s and [`Pools`], and the driver's endpoints: the [`DriverEndpoint`]
//! (Spark's `CoarseGrainedSchedulerBackend` driver endpoint) and the [`HeartbeatReceiver`];
//! the [`EventSink`] through which a listener (the event log) hears what happens.

mod conf;
mod driver_endpoint;
mod events;
mod heartbeat;
mod ids;
mod job;
mod locality;
mod messages;
mod pool;
mod task;
mod task_scheduler;
mod task_set_manager;
mod task_table;

// The public interface.
pub use conf::{keys, SchedulerConf};
pub use driver_endpoint::{
    DriverEndpoint, ExecutorKiller, LocalExecutor, RegistrationHook, DISASSOCIATED,
};
pub use events::{DriverEvent, EventSink, TaskEnd, TaskOutcome};
pub use heartbeat::HeartbeatReceiver;
pub use ids::{
    ExecutorId, FastHasher, FastMap, FastSet, JobId, StageId, TaskId, TaskIdMap, TaskIdSet,
};
pub use job::{duplicate_results, JobError, JobState};
pub use locality::{TaskLocality, TaskLocation};
pub use messages::*;
pub use pool::{PoolError, PoolInfo, Pools, SchedulingMode, TaskSetKey, TaskSetView};
pub use task::{
    task_name, ExecutorLossReason, TaskDescription, TaskFailedReason, TaskSet, TaskSpec, TaskState,
    TaskStatus, WorkerOffer,
};
pub use task_scheduler::{Cluster, SchedulerEvent, TaskScheduler};
pub use task_set_manager::{ClusterView, Offered, TaskSetEvent, TaskSetManager};
