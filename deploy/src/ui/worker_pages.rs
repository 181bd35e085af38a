//! The worker's HTML page (Spark's `WorkerPage`), rendered from a [`WorkerView`].

use maud::{html, Markup};

use super::layout::{mebibytes, page, table};
use super::view::{WorkerDriverRow, WorkerExecutorRow, WorkerView};

/// The page title: `Ember Worker at host:port`.
pub(crate) fn worker_title(view: &WorkerView) -> String {
    format!("Ember Worker at {}", view.host_port)
}

/// `GET /`.
pub(crate) fn worker_page(view: &WorkerView) -> Markup {
    let executor_headers = &[
        "ExecutorID",
        "Cores",
        "State",
        "Memory",
        "Job Details",
        "Logs",
    ];
    let driver_headers = &[
        "Submission ID",
        "State",
        "Cores",
        "Memory",
        "Main Class",
        "Logs",
    ];
    let body = html! {
        ul.summary {
            li { strong { "ID: " } (view.id) }
            li { strong { "Master URL: " } (view.master_url.as_deref().unwrap_or("(none)")) }
            li { strong { "Cores: " } (view.cores) " (" (view.cores_used) " Used)" }
            li { strong { "Memory: " } (mebibytes(view.memory_mib))
                " (" (mebibytes(view.memory_used_mib)) " Used)" }
        }
        @if let Some(master) = &view.master_web_ui_url {
            p.nav { a href=(master) { "Back to Master" } }
        }
        (table("running-executors", "Running Executors", executor_headers,
            view.executors.iter().map(executor_row).collect()))
        (table("running-drivers", "Running Drivers", driver_headers,
            view.drivers.iter().map(driver_row).collect()))
        (table("finished-executors", "Finished Executors", executor_headers,
            view.finished_executors.iter().rev().map(executor_row).collect()))
        (table("finished-drivers", "Finished Drivers", driver_headers,
            view.finished_drivers.iter().rev().map(driver_row).collect()))
    };
    page(&worker_title(view), body)
}

fn logs(query: &str) -> Markup {
    html! {
        a href={ "/logPage/?" (query) "&logType=stdout" } { "stdout" } " "
        a href={ "/logPage/?" (query) "&logType=stderr" } { "stderr" }
    }
}

fn executor_row(e: &WorkerExecutorRow) -> Markup {
    html! {
        tr {
            td { (e.exec_id) }
            td { (e.cores) }
            td { (e.state) }
            td { (mebibytes(e.memory_mib)) }
            td {
                ul.summary {
                    li { strong { "ID: " } (e.app_id) }
                    li { strong { "Name: " } (e.app.name) }
                    li { strong { "User: " } (e.app.user) }
                }
            }
            td { (logs(&format!("appId={}&executorId={}", e.app_id, e.exec_id))) }
        }
    }
}

fn driver_row(d: &WorkerDriverRow) -> Markup {
    html! {
        tr {
            td { (d.id) }
            td { (d.state) }
            td { (d.cores) }
            td { (mebibytes(d.memory_mib)) }
            td { (d.main_class) }
            td { (logs(&format!("driverId={}", d.id))) }
        }
    }
}
