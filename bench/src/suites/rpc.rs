//! The `rpc` suite: first the raw TCP floor, then rpc-env itself, so the
//! RPC numbers can be read against what loopback TCP allows.

use crate::cli::Options;
use crate::error::BenchError;
use crate::report::Metric;
use crate::tcp_floor;

/// Runs the suite: `tcp.pingpong_p50_us`, `tcp.pingpong_spin_p50_us`, then
/// whatever [`crate::rpc::measure`] and [`crate::stream::measure`] report.
pub(crate) fn run(opts: &Options) -> Result<Vec<Metric>, BenchError> {
    let mut metrics = Vec::new();
    eprintln!("[rpc] measuring tcp.pingpong ...");
    metrics.push(tcp_floor::measure_blocking(opts)?);
    eprintln!("[rpc] measuring tcp.pingpong_spin ...");
    metrics.push(tcp_floor::measure_spin(opts)?);
    eprintln!("[rpc] measuring rpc-env ask/send ...");
    metrics.extend(crate::rpc::measure(opts)?);
    eprintln!("[rpc] measuring file streams ...");
    metrics.extend(crate::stream::measure(opts)?);
    Ok(metrics)
}
