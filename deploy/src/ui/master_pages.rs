//! The master's HTML pages (Spark's `MasterPage` and `ApplicationPage`), rendered from a
//! [`MasterView`] with maud, which escapes every value it interpolates.

use maud::{html, Markup};

use super::layout::{date, duration, mebibytes, now_ms, page, table};
use super::view::{AppRow, DriverRow, ExecutorRow, MasterView, WorkerRow};

/// What can be killed from the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Killable {
    /// An application (`POST /app/kill`).
    App,
    /// A cluster-mode driver (`POST /driver/kill`).
    Driver,
}

impl Killable {
    /// The form's action.
    pub(crate) fn action(self) -> &'static str {
        match self {
            Killable::App => "/app/kill/",
            Killable::Driver => "/driver/kill/",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Killable::App => "application",
            Killable::Driver => "driver",
        }
    }
}

/// The page title: `Ember Master at ember://host:port`.
pub(crate) fn master_title(view: &MasterView) -> String {
    format!("Ember Master at {}", view.url)
}

/// `GET /`.
pub(crate) fn master_page(view: &MasterView, kill_enabled: bool) -> Markup {
    let count = |state: &str| view.workers_in(state);
    let capacity = view.alive_capacity();
    let waiting = view.waiting_drivers();
    let now = now_ms();
    let body = html! {
        ul.summary {
            li { strong { "URL: " } (view.url) }
            li { strong { "Workers: " }
                (count("ALIVE")) " Alive, " (count("DEAD")) " Dead, "
                (count("UNKNOWN")) " Unknown" }
            li { strong { "Cores in use: " }
                (capacity.cores) " Total, " (capacity.cores_used) " Used" }
            li { strong { "Memory in use: " }
                (mebibytes(clamp(capacity.memory_mib))) " Total, "
                (mebibytes(clamp(capacity.memory_used_mib))) " Used" }
            li { strong { "Applications: " }
                a href="#running-app" { (view.active_apps.len()) " Running" } ", "
                a href="#completed-app" { (view.completed_apps.len()) " Completed" } }
            li { strong { "Drivers: " }
                (view.active_drivers.len()) " Running (" (waiting) " Waiting), "
                (view.completed_drivers.len()) " Completed" }
            li { strong { "Status: " } (view.status) }
        }
        (table("workers", "Workers", &["Worker Id", "Address", "State", "Cores", "Memory"],
            view.workers.iter().map(worker_row).collect()))
        (table("running-app", "Running Applications", APP_HEADERS,
            view.active_apps.iter().map(|a| app_row(a, now, kill_enabled)).collect()))
        (table("completed-app", "Completed Applications", APP_HEADERS,
            view.completed_apps.iter().map(|a| app_row(a, now, false)).collect()))
        @if !view.active_drivers.is_empty() {
            (table("running-drivers", "Running Drivers", DRIVER_HEADERS,
                view.active_drivers.iter().map(|d| driver_row(view, d, kill_enabled)).collect()))
        }
        @if !view.completed_drivers.is_empty() {
            (table("completed-drivers", "Completed Drivers", DRIVER_HEADERS,
                view.completed_drivers.iter().map(|d| driver_row(view, d, false)).collect()))
        }
    };
    page(&master_title(view), body)
}

const APP_HEADERS: &[&str] = &[
    "Application ID",
    "Name",
    "Cores",
    "Memory per Executor",
    "Submitted Time",
    "User",
    "State",
    "Duration",
];

const DRIVER_HEADERS: &[&str] = &[
    "Submission ID",
    "Submitted Time",
    "Worker",
    "State",
    "Cores",
    "Memory",
    "Main Class",
];

/// MiB totals past `u32` (a cluster of petabytes) show as the largest `u32`.
fn clamp(mib: u64) -> u32 {
    u32::try_from(mib).unwrap_or(u32::MAX)
}

fn worker_row(w: &WorkerRow) -> Markup {
    html! {
        tr {
            td {
                @if w.state == "ALIVE" && !w.web_ui_url.is_empty() {
                    a href=(w.web_ui_url) { (w.id) }
                } @else { (w.id) }
            }
            td { (w.host) ":" (w.port) }
            td { (w.state) }
            td { (w.cores) " (" (w.cores_used) " Used)" }
            td { (mebibytes(w.memory_mib)) " (" (mebibytes(w.memory_used_mib)) " Used)" }
        }
    }
}

fn app_row(a: &AppRow, now: u64, kill_enabled: bool) -> Markup {
    html! {
        tr {
            td {
                a href={ "/app/?appId=" (a.id) } { (a.id) }
                @if kill_enabled { " " (kill_form(Killable::App, &a.id)) }
            }
            td { (a.name) }
            td { (a.cores_granted) }
            td { (mebibytes(a.memory_per_executor_mib)) }
            td { (date(a.submitted_ms)) }
            td { (a.user) }
            td { (a.state) }
            td { (duration(a.ended_ms.unwrap_or(now).saturating_sub(a.submitted_ms))) }
        }
    }
}

fn driver_row(view: &MasterView, d: &DriverRow, kill_enabled: bool) -> Markup {
    let worker = d
        .worker_id
        .as_ref()
        .and_then(|id| view.workers.iter().find(|w| &w.id == id));
    html! {
        tr {
            td {
                (d.id)
                @if kill_enabled { " " (kill_form(Killable::Driver, &d.id)) }
            }
            td { (date(d.submitted_ms)) }
            td {
                @match worker {
                    Some(w) if !w.web_ui_url.is_empty() => a href=(w.web_ui_url) { (w.id) },
                    _ => (d.worker_id.as_deref().unwrap_or("None")),
                }
            }
            td { (d.state) }
            td { (d.cores) }
            td { (mebibytes(d.memory_mib)) }
            td { (d.main_class) }
        }
    }
}

/// The `(kill)` button: a POST form that leads to a confirmation page (no script needed).
fn kill_form(what: Killable, id: &str) -> Markup {
    html! {
        form.inline method="post" action=(what.action()) {
            input type="hidden" name="id" value=(id);
            button.kill type="submit" { "(kill)" }
        }
    }
}

/// The confirmation a kill button leads to: a second POST, with `terminate=true`.
pub(crate) fn kill_confirmation(what: Killable, id: &str) -> Markup {
    let title = format!("Kill {} {id}?", what.noun());
    page(
        &title,
        html! {
            form method="post" action=(what.action()) {
                input type="hidden" name="id" value=(id);
                input type="hidden" name="terminate" value="true";
                button type="submit" id="confirm-kill" { "Kill " (what.noun()) }
                " "
                a href="/" { "Back to the master" }
            }
        },
    )
}

/// `GET /app/?appId=`: the application and its executors, with links to their logs.
pub(crate) fn app_page(app: &AppRow) -> Markup {
    let cores = match app.max_cores {
        None => format!("Unlimited ({} granted)", app.cores_granted),
        Some(max) => format!(
            "{max} ({} granted, {} left)",
            app.cores_granted,
            max.saturating_sub(app.cores_granted)
        ),
    };
    let body = html! {
        ul.summary {
            li { strong { "ID: " } (app.id) }
            li { strong { "Name: " } (app.name) }
            li { strong { "User: " } (app.user) }
            li { strong { "Cores: " } (cores) }
            li { strong { "Executor Memory: " } (mebibytes(app.memory_per_executor_mib)) }
            li { strong { "Submit Date: " } (date(app.submitted_ms)) }
            li { strong { "State: " } (app.state) }
        }
        p.nav { a href="/" { "Back to Master" } }
        (table("executors", "Executor Summary",
            &["ExecutorID", "Worker", "Cores", "Memory", "State", "Logs"],
            app.executors.iter().map(|e| executor_row(&app.id, e)).collect()))
    };
    page(&format!("Application: {}", app.name), body)
}

fn executor_row(app_id: &str, e: &ExecutorRow) -> Markup {
    let log = |log_type: &str| {
        format!(
            "{}/logPage/?appId={app_id}&executorId={}&logType={log_type}",
            e.worker_web_ui_url, e.id
        )
    };
    html! {
        tr {
            td { (e.id) }
            td {
                @if e.worker_web_ui_url.is_empty() { (e.worker_id) }
                @else { a href=(e.worker_web_ui_url) { (e.worker_id) } }
            }
            td { (e.cores) }
            td { (mebibytes(e.memory_mib)) }
            td { (e.state) }
            td {
                @if !e.worker_web_ui_url.is_empty() {
                    a href=(log("stdout")) { "stdout" } " "
                    a href=(log("stderr")) { "stderr" }
                }
            }
        }
    }
}
