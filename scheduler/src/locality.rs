//! Locality: where a task would like to run, and how far from that an offer is.

use std::fmt;

use bytes::BytesMut;
use rpc_env::{Decode, DecodeError, Encode, Reader};

/// How close an offer is to a task's data, most local first (Spark's `TaskLocality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskLocality {
    /// On an executor holding the data.
    ProcessLocal,
    /// On a host holding the data.
    NodeLocal,
    /// The task has no preference.
    NoPref,
    /// On a host in a rack holding the data.
    RackLocal,
    /// Anywhere.
    Any,
}

impl TaskLocality {
    /// All levels, most local first.
    pub const ALL: [TaskLocality; 5] = [
        TaskLocality::ProcessLocal,
        TaskLocality::NodeLocal,
        TaskLocality::NoPref,
        TaskLocality::RackLocal,
        TaskLocality::Any,
    ];

    /// Whether a task at locality `condition` may launch under the limit `self`.
    pub fn allows(self, condition: TaskLocality) -> bool {
        condition <= self
    }
}

impl fmt::Display for TaskLocality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskLocality::ProcessLocal => "PROCESS_LOCAL",
            TaskLocality::NodeLocal => "NODE_LOCAL",
            TaskLocality::NoPref => "NO_PREF",
            TaskLocality::RackLocal => "RACK_LOCAL",
            TaskLocality::Any => "ANY",
        })
    }
}

/// A preferred location of a task (Spark's `TaskLocation`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskLocation {
    /// Any executor on this host.
    Host(String),
    /// Cached on this host: as good as process-local on any of its executors.
    HdfsCache(String),
    /// Cached in this executor on this host.
    ExecutorCache {
        /// The host.
        host: String,
        /// The executor.
        executor_id: String,
    },
}

impl TaskLocation {
    /// Parses Spark's string forms: `executor_<host>_<executorId>`, `hdfs_cache_<host>`,
    /// or a plain host. The host of an executor location ends at the first `_`.
    pub fn parse(s: &str) -> TaskLocation {
        if let Some(rest) = s.strip_prefix("executor_") {
            if let Some((host, executor_id)) = rest.split_once('_') {
                return TaskLocation::ExecutorCache {
                    host: host.to_string(),
                    executor_id: executor_id.to_string(),
                };
            }
        }
        if let Some(host) = s.strip_prefix("hdfs_cache_") {
            return TaskLocation::HdfsCache(host.to_string());
        }
        TaskLocation::Host(s.to_string())
    }

    /// The host.
    pub fn host(&self) -> &str {
        match self {
            TaskLocation::Host(h) | TaskLocation::HdfsCache(h) => h,
            TaskLocation::ExecutorCache { host, .. } => host,
        }
    }
}

impl fmt::Display for TaskLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskLocation::Host(h) => f.write_str(h),
            TaskLocation::HdfsCache(h) => write!(f, "hdfs_cache_{h}"),
            TaskLocation::ExecutorCache { host, executor_id } => {
                write!(f, "executor_{host}_{executor_id}")
            }
        }
    }
}

impl Encode for TaskLocation {
    fn encode(&self, buf: &mut BytesMut) {
        self.to_string().encode(buf);
    }
}

impl Decode for TaskLocation {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        String::decode(r).map(|s| TaskLocation::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locality_order_and_allowance() {
        assert!(TaskLocality::ProcessLocal < TaskLocality::NodeLocal);
        assert!(TaskLocality::NoPref < TaskLocality::RackLocal);
        assert!(TaskLocality::Any.allows(TaskLocality::RackLocal));
        assert!(!TaskLocality::NodeLocal.allows(TaskLocality::Any));
        assert!(TaskLocality::NodeLocal.allows(TaskLocality::NodeLocal));
    }

    /// TaskSetManagerSuite "parse host name and executor id from executor cache location".
    #[test]
    fn parses_spark_location_strings() {
        assert_eq!(
            TaskLocation::parse("executor_host1_exec1"),
            TaskLocation::ExecutorCache {
                host: "host1".into(),
                executor_id: "exec1".into()
            }
        );
        assert_eq!(
            TaskLocation::parse("executor_host_1_exec1"),
            TaskLocation::ExecutorCache {
                host: "host".into(),
                executor_id: "1_exec1".into()
            }
        );
        assert_eq!(
            TaskLocation::parse("hdfs_cache_host3"),
            TaskLocation::HdfsCache("host3".into())
        );
        assert_eq!(
            TaskLocation::parse("host2"),
            TaskLocation::Host("host2".into())
        );
        for s in ["executor_h_e", "hdfs_cache_h", "h"] {
            assert_eq!(TaskLocation::parse(s).to_string(), s);
        }
    }
}
