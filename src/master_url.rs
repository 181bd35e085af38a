//! Master URLs, parsed as Spark parses them (`SparkContext.createTaskScheduler`).
//!
//! | URL | meaning |
//! |---|---|
//! | `local` | one task thread in the driver, no retries |
//! | `local[N]`, `local[*]` | N task threads (all cores), no retries |
//! | `local[N,M]`, `local[*,M]` | N task threads, each task tried up to M times |
//! | `local-cluster[N,C,M]` | a master and N workers of C cores and M MiB each in the driver's process, executors as child processes |
//! | `ember://host:port[,host:port]` | a standalone cluster's master(s) |
//!
//! Spaces are allowed only where Spark allows them: around the comma of `local[N,M]`, and
//! anywhere inside the brackets of `local-cluster[...]`.

use std::fmt;

use rpc_env::RpcAddress;

/// How many task threads a local master gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalThreads {
    /// Exactly this many.
    Count(u32),
    /// One per core of the machine (`*`).
    AllCores,
}

impl LocalThreads {
    /// The thread count, resolving `*` to the machine's cores.
    pub fn resolve(self) -> u32 {
        match self {
            LocalThreads::Count(n) => n,
            LocalThreads::AllCores => std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
        }
    }
}

/// A parsed master URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterUrl {
    /// Tasks run on threads in the driver's process.
    Local {
        /// Task threads.
        threads: LocalThreads,
        /// Attempts per task before its job fails (`ember.task.maxFailures` is not used).
        max_failures: u32,
    },
    /// A master and workers in the driver's process, executors in child processes.
    LocalCluster {
        /// Workers.
        workers: u32,
        /// Cores per worker.
        cores_per_worker: u32,
        /// Memory per worker, in MiB.
        memory_per_worker_mib: u32,
    },
    /// A standalone cluster; one address per master.
    Standalone {
        /// The masters, in the order given.
        masters: Vec<RpcAddress>,
    },
}

/// Why a master URL was refused. Its text says why and, for an unknown form, lists the
/// accepted ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterUrlError {
    message: String,
}

impl fmt::Display for MasterUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MasterUrlError {}

/// The forms a master URL may take, for error messages.
pub const ACCEPTED_FORMS: &str = "Accepted master URLs: local, local[N], local[*], local[N,M], \
     local[*,M], local-cluster[N,C,M], ember://host:port[,host:port...]";

fn error(message: String) -> MasterUrlError {
    MasterUrlError { message }
}

fn unparseable(url: &str) -> MasterUrlError {
    error(format!(
        "Could not parse Master URL: '{url}'. {ACCEPTED_FORMS}"
    ))
}

/// `[0-9]+`: digits only, no sign, no spaces; too large is refused, not wrapped.
fn digits(s: &str) -> Option<Option<u32>> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u32>().ok())
}

fn threads(s: &str, url: &str) -> Result<LocalThreads, MasterUrlError> {
    if s == "*" {
        return Ok(LocalThreads::AllCores);
    }
    match digits(s) {
        None => Err(unparseable(url)),
        Some(None) => Err(error(format!("Too many local threads in '{url}'"))),
        Some(Some(0)) => Err(error("Asked to run locally with 0 threads".into())),
        Some(Some(n)) => Ok(LocalThreads::Count(n)),
    }
}

impl MasterUrl {
    /// Parses a master URL.
    pub fn parse(url: &str) -> Result<MasterUrl, MasterUrlError> {
        if url == "local" {
            return Ok(MasterUrl::Local {
                threads: LocalThreads::Count(1),
                max_failures: 1,
            });
        }
        if let Some(inner) = url.strip_prefix("local[").and_then(|r| r.strip_suffix(']')) {
            return match inner.split_once(',') {
                None => Ok(MasterUrl::Local {
                    threads: threads(inner, url)?,
                    max_failures: 1,
                }),
                // `\s*,\s*`: spaces around the comma only.
                Some((n, m)) => {
                    let n = n.trim_end_matches(char::is_whitespace);
                    let m = m.trim_start_matches(char::is_whitespace);
                    let threads = threads(n, url)?;
                    let max_failures = match digits(m) {
                        None => return Err(unparseable(url)),
                        Some(None) => {
                            return Err(error(format!("Too many task attempts in '{url}'")))
                        }
                        Some(Some(0)) => {
                            return Err(error(format!(
                                "'{url}' allows 0 attempts per task; the second number is how \
                                 many times a task may be tried, at least 1"
                            )))
                        }
                        Some(Some(m)) => m,
                    };
                    Ok(MasterUrl::Local {
                        threads,
                        max_failures,
                    })
                }
            };
        }
        if let Some(inner) = url
            .strip_prefix("local-cluster[")
            .and_then(|r| r.strip_suffix(']'))
        {
            let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
            let [workers, cores, memory] = parts.as_slice() else {
                return Err(unparseable(url));
            };
            let number = |s: &str, what: &str| -> Result<u32, MasterUrlError> {
                match digits(s) {
                    None => Err(unparseable(url)),
                    Some(None) => Err(error(format!("Too large a {what} in '{url}'"))),
                    Some(Some(0)) => Err(error(format!(
                        "'{url}' asks for 0 {what}; at least 1 is needed"
                    ))),
                    Some(Some(n)) => Ok(n),
                }
            };
            return Ok(MasterUrl::LocalCluster {
                workers: number(workers, "workers")?,
                cores_per_worker: number(cores, "cores per worker")?,
                memory_per_worker_mib: number(memory, "MiB per worker")?,
            });
        }
        if let Some(list) = url.strip_prefix("ember://") {
            let masters = list
                .split(',')
                .map(|hp| RpcAddress::from_ember_url(&format!("ember://{hp}")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| error(e.to_string()))?;
            return Ok(MasterUrl::Standalone { masters });
        }
        Err(unparseable(url))
    }

    /// Attempts per task before the job fails: a local master's own number, else `default`
    /// (`ember.task.maxFailures`).
    pub fn max_task_failures(&self, default: u32) -> u32 {
        match self {
            MasterUrl::Local { max_failures, .. } => *max_failures,
            _ => default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(threads: LocalThreads, max_failures: u32) -> MasterUrl {
        MasterUrl::Local {
            threads,
            max_failures,
        }
    }

    /// SparkContextSchedulerCreationSuite: local, local-*, local-n, local-*-n-failures,
    /// local-n-failures, local-cluster, bad-master.
    #[test]
    fn the_forms_spark_accepts() {
        assert_eq!(
            MasterUrl::parse("local"),
            Ok(local(LocalThreads::Count(1), 1))
        );
        assert_eq!(
            MasterUrl::parse("local[*]"),
            Ok(local(LocalThreads::AllCores, 1))
        );
        assert_eq!(
            MasterUrl::parse("local[5]"),
            Ok(local(LocalThreads::Count(5), 1))
        );
        assert_eq!(
            MasterUrl::parse("local[* ,2]"),
            Ok(local(LocalThreads::AllCores, 2))
        );
        assert_eq!(
            MasterUrl::parse("local[4, 2]"),
            Ok(local(LocalThreads::Count(4), 2))
        );
        assert_eq!(
            MasterUrl::parse("local[4,2]"),
            Ok(local(LocalThreads::Count(4), 2))
        );
        let cluster = MasterUrl::LocalCluster {
            workers: 2,
            cores_per_worker: 1,
            memory_per_worker_mib: 1024,
        };
        assert_eq!(
            MasterUrl::parse("local-cluster[2,1,1024]"),
            Ok(cluster.clone())
        );
        assert_eq!(
            MasterUrl::parse("local-cluster[ 2, 1, 1024 ]"),
            Ok(cluster.clone())
        );
        assert_eq!(MasterUrl::parse("local-cluster[2 , 1 , 1024]"), Ok(cluster));
        assert_eq!(
            MasterUrl::parse("ember://h1:7077,h2:7078"),
            Ok(MasterUrl::Standalone {
                masters: vec![RpcAddress::new("h1", 7077), RpcAddress::new("h2", 7078)]
            })
        );
    }

    #[test]
    fn what_spark_refuses_is_refused_with_the_accepted_forms() {
        for url in [
            "localhost:1234",
            "local[2*]",
            "local[2*,4]",
            "local[ 2]",
            "local[2 ]",
            "local[-1]",
            "yarn",
            "",
        ] {
            let e = MasterUrl::parse(url).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("Could not parse Master URL: '{url}'")),
                "{url}: {e}"
            );
            assert!(e.contains("local-cluster[N,C,M]"), "{e}");
        }
    }

    #[test]
    fn zero_and_bad_addresses_say_why() {
        assert_eq!(
            MasterUrl::parse("local[0]").unwrap_err().to_string(),
            "Asked to run locally with 0 threads"
        );
        assert_eq!(
            MasterUrl::parse("local[0,3]").unwrap_err().to_string(),
            "Asked to run locally with 0 threads"
        );
        assert!(MasterUrl::parse("local[2,0]")
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
        assert!(MasterUrl::parse("local-cluster[0,1,1024]")
            .unwrap_err()
            .to_string()
            .contains("0 workers"));
        assert!(MasterUrl::parse("local[99999999999]")
            .unwrap_err()
            .to_string()
            .contains("Too many"));
        assert_eq!(
            MasterUrl::parse("ember://h1:7077,bad")
                .unwrap_err()
                .to_string(),
            "Invalid master URL: ember://bad"
        );
    }

    #[test]
    fn only_local_masters_override_the_failure_count() {
        assert_eq!(MasterUrl::parse("local").unwrap().max_task_failures(4), 1);
        assert_eq!(
            MasterUrl::parse("local[2,3]").unwrap().max_task_failures(4),
            3
        );
        assert_eq!(
            MasterUrl::parse("ember://h:1")
                .unwrap()
                .max_task_failures(4),
            4
        );
    }
}
