//! The benchmark suites, one module each, all listed in [`SUITES`].
//!
//! A suite is a module with
//! `pub(crate) fn run(opts: &Options) -> Result<Vec<Metric>, BenchError>`
//! that prints progress on stderr and returns its metrics; `main` prints
//! them. To add one, add its module here and a line to [`SUITES`]; the CLI
//! and the usage text pick it up from there.

use crate::cli::Options;
use crate::error::BenchError;
use crate::report::Metric;

pub(crate) mod chaos;
pub(crate) mod cluster;
pub(crate) mod flood;
pub(crate) mod rpc;
pub(crate) mod scale;
pub(crate) mod tasks;
pub(crate) mod ui;

/// A suite as the CLI sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Suite {
    /// The name given on the command line, e.g. `rpc`.
    pub(crate) name: &'static str,
    /// One line for the usage text.
    pub(crate) about: &'static str,
    /// Runs the suite and returns its metrics.
    pub(crate) run: fn(&Options) -> Result<Vec<Metric>, BenchError>,
}

/// Every suite, in the order the usage text lists them.
pub(crate) const SUITES: &[Suite] = &[
    Suite {
        name: "rpc",
        about: "loopback TCP floor (blocking and busy-poll ping-pong), then rpc-env ask/send",
        run: rpc::run,
    },
    Suite {
        name: "tasks",
        about: "empty tasks on local[2] and on two 1-core executor processes; one-task job latency",
        run: tasks::run,
    },
    Suite {
        name: "cluster",
        about: "local-cluster start-up, worker registration, tasks and jobs on local-cluster[2,1,1024], executor memory",
        run: cluster::run,
    },
    Suite {
        name: "chaos",
        about: "short tasks on local-cluster[3,1,1024] while executors are killed at random: lost, duplicated, detection time",
        run: chaos::run,
    },
    Suite {
        name: "flood",
        about: "the master's peak RSS and a worker's registration time under four loopback floods",
        run: flood::run,
    },
    Suite {
        name: "ui",
        about: "the master's CPU idle and with /json and /metrics/prometheus scraped every second; CPU and latency per UI request",
        run: ui::run,
    },
    Suite {
        name: "scale",
        about: "the driver with 10 to 1,000 simulated executors and jobs of 10^4 to 10^6 tasks; the master with 100 to 10,000 simulated workers",
        run: scale::run,
    },
];

/// The suite called `name`, if there is one.
pub(crate) fn find(name: &str) -> Option<&'static Suite> {
    SUITES.iter().find(|s| s.name == name)
}
