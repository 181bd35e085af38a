//! Which page answers each request to a worker's UI.

use std::path::Path;

use rpc_env::NetworkStats;

use super::http::{Method, UiRequest, UiResponse};
use super::layout::{STYLE_PATH, STYLE_SHEET};
use super::log_page::{log_page, raw_log};
use super::metrics::{self, worker_metrics};
use super::view::WorkerView;
use super::worker_json::worker_json;
use super::worker_pages::worker_page;

/// Where the worker's pages get their data: the running worker, or a fixture in tests.
pub(crate) trait WorkerSource: Send + 'static {
    /// The worker's state now; an error becomes a 503.
    fn view(&self) -> Result<WorkerView, String>;
    /// The worker env's network counters.
    fn network_stats(&self) -> NetworkStats;
}

/// The worker's UI.
pub(crate) struct WorkerUi<S> {
    /// Where the data comes from.
    pub(crate) source: S,
}

impl<S: WorkerSource> WorkerUi<S> {
    /// The answer to `request`.
    pub(crate) fn route(&self, request: &UiRequest) -> UiResponse {
        if request.method != Method::Get {
            return UiResponse::text(405, "Method not allowed");
        }
        if request.path == STYLE_PATH {
            return UiResponse::with(200, "text/css", STYLE_SHEET.as_bytes().to_vec());
        }
        let view = match self.source.view() {
            Ok(view) => view,
            Err(reason) => return UiResponse::text(503, format!("Worker busy: {reason}")),
        };
        match request.path.as_str() {
            "/" => UiResponse::html(worker_page(&view)),
            "/json" => UiResponse::json(&worker_json(&view)),
            "/logPage" => log_page(request, Path::new(&view.work_dir)),
            "/log" => raw_log(request, Path::new(&view.work_dir)),
            "/metrics/prometheus" | "/metrics/worker/prometheus" => UiResponse::with(
                200,
                metrics::CONTENT_TYPE,
                worker_metrics(&view, &self.source.network_stats()).into_bytes(),
            ),
            _ => UiResponse::text(404, "Not found"),
        }
    }
}
