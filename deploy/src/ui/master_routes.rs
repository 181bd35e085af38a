//! Which page answers each request to the master's UI.

use rpc_env::NetworkStats;

use super::http::{Method, UiRequest, UiResponse};
use super::layout::{STYLE_PATH, STYLE_SHEET};
use super::master_json::{cluster_utilization, master_json, master_json_field};
use super::master_pages::{app_page, kill_confirmation, master_page, Killable};
use super::metrics::{self, master_metrics};
use super::view::MasterView;

/// Where the master's pages get their data and do their kills: the running master, or a
/// fixture in tests.
pub(crate) trait MasterSource: Send + 'static {
    /// The master's state now; an error (the master is busy or stopped) becomes a 503.
    fn view(&self) -> Result<MasterView, String>;
    /// Kills an application; whether there was one to kill.
    fn kill_app(&self, id: &str) -> Result<bool, String>;
    /// Kills a driver; the master's answer.
    fn kill_driver(&self, id: &str) -> Result<String, String>;
    /// The master env's network counters.
    fn network_stats(&self) -> NetworkStats;
}

/// The master's UI: its source and whether it may kill.
pub(crate) struct MasterUi<S> {
    /// Where the data comes from.
    pub(crate) source: S,
    /// `ember.ui.killEnabled`, after the authentication rule.
    pub(crate) kill_enabled: bool,
}

impl<S: MasterSource> MasterUi<S> {
    /// The answer to `request`.
    pub(crate) fn route(&self, request: &UiRequest) -> UiResponse {
        match (request.method, request.path.as_str()) {
            (Method::Get, STYLE_PATH) => {
                UiResponse::with(200, "text/css", STYLE_SHEET.as_bytes().to_vec())
            }
            (Method::Post, "/app/kill") => self.kill(request, Killable::App),
            (Method::Post, "/driver/kill") => self.kill(request, Killable::Driver),
            (Method::Get, path) => match self.source.view() {
                Ok(view) => self.page(&view, path, request),
                Err(reason) => UiResponse::text(503, format!("Master busy: {reason}")),
            },
            _ => UiResponse::text(405, "Method not allowed"),
        }
    }

    fn page(&self, view: &MasterView, path: &str, request: &UiRequest) -> UiResponse {
        match path {
            "/" => UiResponse::html(master_page(view, self.kill_enabled)),
            "/json" => UiResponse::json(&master_json(view)),
            "/json/clusterutilization" => UiResponse::json(&cluster_utilization(view)),
            "/app" => match request.param("appId").and_then(|id| view.app(id)) {
                Some(app) => UiResponse::html(app_page(app)),
                None => UiResponse::text(404, "No such application"),
            },
            "/metrics/prometheus" | "/metrics/master/prometheus" => UiResponse::with(
                200,
                metrics::CONTENT_TYPE,
                master_metrics(view, &self.source.network_stats()).into_bytes(),
            ),
            _ => match path.strip_prefix("/json/") {
                Some(field) if !field.contains('/') => {
                    UiResponse::json(&master_json_field(view, field))
                }
                _ => UiResponse::text(404, "Not found"),
            },
        }
    }

    /// A kill: refused unless enabled and same-origin; a confirmation page first; then the
    /// kill and a redirect to the master page.
    fn kill(&self, request: &UiRequest, what: Killable) -> UiResponse {
        if !self.kill_enabled {
            return UiResponse::text(
                403,
                "Killing from the UI is off (ember.ui.killEnabled; off by default when \
                 ember.authenticate is on)",
            );
        }
        if !request.same_origin {
            return UiResponse::text(403, "A kill must come from this UI's own page");
        }
        let Some(id) = request.param("id").filter(|id| !id.is_empty()) else {
            return UiResponse::text(400, "Name the id to kill");
        };
        if request.param("terminate") != Some("true") {
            return UiResponse::html(kill_confirmation(what, id));
        }
        let outcome = match what {
            Killable::App => self.source.kill_app(id).map(|killed| {
                let verb = if killed { "Killed" } else { "No running" };
                format!("{verb} application {id}")
            }),
            Killable::Driver => self.source.kill_driver(id),
        };
        match outcome {
            Ok(message) => {
                log::info!("UI kill: {message}");
                UiResponse::redirect("/")
            }
            Err(reason) => UiResponse::text(503, format!("Could not kill {id}: {reason}")),
        }
    }
}
