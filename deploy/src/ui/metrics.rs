//! `/metrics/prometheus`: the daemon's state and its RPC env's counters in the Prometheus
//! text format (version 0.0.4), from the same view the pages render.

use std::fmt::Write;

use rpc_env::NetworkStats;

use super::view::{MasterView, WorkerView};

/// The content type Prometheus expects.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Lines of one metric family: its help, its type, its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) -> &mut Self {
        let _ = write!(self.out, "{name}");
        if !labels.is_empty() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(self.out, "{{{}}}", labels.join(","));
        }
        let _ = writeln!(self.out, " {value}");
        self
    }
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    Family::new(out, name, "gauge", help).sample(name, &[], value);
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    Family::new(out, name, "counter", help).sample(name, &[], value);
}

/// The master's metrics.
pub(crate) fn master_metrics(view: &MasterView, net: &NetworkStats) -> String {
    let mut out = String::new();
    {
        let name = "ember_master_workers";
        let mut f = Family::new(
            &mut out,
            name,
            "gauge",
            "Workers the master knows, by state.",
        );
        for state in ["ALIVE", "DEAD", "UNKNOWN"] {
            f.sample(name, &[("state", state)], view.workers_in(state) as u64);
        }
    }
    let capacity = view.alive_capacity();
    let gauges = [
        (
            "ember_master_cores",
            "Cores of the alive workers.",
            capacity.cores,
        ),
        (
            "ember_master_cores_used",
            "Cores of the alive workers held by executors and drivers.",
            capacity.cores_used,
        ),
        (
            "ember_master_memory_mib",
            "Memory of the alive workers, MiB.",
            capacity.memory_mib,
        ),
        (
            "ember_master_memory_used_mib",
            "Memory of the alive workers held, MiB.",
            capacity.memory_used_mib,
        ),
    ];
    for (name, help, value) in gauges {
        gauge(&mut out, name, help, value);
    }
    {
        let name = "ember_master_apps";
        let mut f = Family::new(&mut out, name, "gauge", "Applications, by state.");
        for state in ["WAITING", "RUNNING", "UNKNOWN"] {
            let n = view.active_apps.iter().filter(|a| a.state == state).count();
            f.sample(name, &[("state", state)], n as u64);
        }
        f.sample(
            name,
            &[("state", "COMPLETED")],
            view.completed_apps.len() as u64,
        );
    }
    let executors: usize = view.active_apps.iter().map(|a| a.executors.len()).sum();
    gauge(
        &mut out,
        "ember_master_executors",
        "Executors of the active applications.",
        executors as u64,
    );
    {
        let name = "ember_master_drivers";
        let mut f = Family::new(&mut out, name, "gauge", "Cluster-mode drivers, by state.");
        for state in ["SUBMITTED", "RUNNING", "RELAUNCHING", "UNKNOWN"] {
            let n = view
                .active_drivers
                .iter()
                .filter(|d| d.state == state)
                .count();
            f.sample(name, &[("state", state)], n as u64);
        }
        f.sample(
            name,
            &[("state", "COMPLETED")],
            view.completed_drivers.len() as u64,
        );
    }
    counter(
        &mut out,
        "ember_master_refused_messages_total",
        "Messages refused because their sender may not send them.",
        view.refused_messages,
    );
    rpc_metrics(&mut out, net);
    out
}

/// The worker's metrics.
pub(crate) fn worker_metrics(view: &WorkerView, net: &NetworkStats) -> String {
    let mut out = String::new();
    let gauges = [
        (
            "ember_worker_cores",
            "Cores offered.",
            u64::from(view.cores),
        ),
        (
            "ember_worker_cores_used",
            "Cores held by executors and drivers.",
            u64::from(view.cores_used),
        ),
        (
            "ember_worker_memory_mib",
            "Memory offered, MiB.",
            u64::from(view.memory_mib),
        ),
        (
            "ember_worker_memory_used_mib",
            "Memory held, MiB.",
            u64::from(view.memory_used_mib),
        ),
        (
            "ember_worker_executors",
            "Executors running.",
            view.executors.len() as u64,
        ),
        (
            "ember_worker_drivers",
            "Drivers running.",
            view.drivers.len() as u64,
        ),
        (
            "ember_worker_registered",
            "1 while registered with a master.",
            u64::from(view.master_url.is_some()),
        ),
    ];
    for (name, help, value) in gauges {
        gauge(&mut out, name, help, value);
    }
    rpc_metrics(&mut out, net);
    out
}

/// The RPC env's own counters and gauges ([`NetworkStats`]).
fn rpc_metrics(out: &mut String, net: &NetworkStats) {
    let gauges = [
        (
            "ember_rpc_open_connections",
            "Connections open now, handshaking ones included.",
            net.open_connections,
        ),
        (
            "ember_rpc_inbox_messages",
            "Messages waiting in the endpoints' inboxes now.",
            net.inbox_messages,
        ),
    ];
    for (name, help, value) in gauges {
        gauge(out, name, help, value);
    }
    let counters: [(&str, &str, u64); 11] = [
        (
            "ember_rpc_bytes_read_total",
            "Bytes read from peers, as on the wire.",
            net.bytes_read,
        ),
        (
            "ember_rpc_bytes_written_total",
            "Bytes written to peers, as on the wire.",
            net.bytes_written,
        ),
        (
            "ember_rpc_frames_read_total",
            "Frames read from peers.",
            net.frames_read,
        ),
        (
            "ember_rpc_frames_written_total",
            "Frames written to peers.",
            net.frames_written,
        ),
        (
            "ember_rpc_auth_failures_total",
            "Connections closed before their handshake completed.",
            net.auth_failures,
        ),
        (
            "ember_rpc_unroutable_messages_total",
            "Messages for an endpoint this env does not have.",
            net.unroutable_messages,
        ),
        (
            "ember_rpc_protocol_errors_total",
            "Connections closed for a protocol error.",
            net.protocol_errors,
        ),
        (
            "ember_rpc_outbox_overflows_total",
            "Connections closed because too much waited to be written to them.",
            net.outbox_overflows,
        ),
        (
            "ember_rpc_connections_refused_total",
            "Inbound connections refused at the connection cap.",
            net.connections_refused,
        ),
        (
            "ember_rpc_accept_failures_total",
            "Times the listener could not accept and backed off.",
            net.accept_failures,
        ),
        (
            "ember_rpc_read_pauses_total",
            "Times reading paused because an endpoint's inbox was full.",
            net.read_pauses,
        ),
    ];
    for (name, help, value) in counters {
        counter(out, name, help, value);
    }
}
