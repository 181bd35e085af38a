//! The HTTP half of the UI: a thin adapter over `tiny_http`. One thread takes requests in
//! turn, turns each into a [`UiRequest`], asks the daemon's route for a [`UiResponse`] and
//! writes it with the headers every page gets. Nothing else in the UI knows the server.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::http::{parse_params, Method, UiRequest, UiResponse, MAX_FORM_BYTES};

/// What answers a daemon's requests.
pub(crate) type Route = Box<dyn Fn(&UiRequest) -> UiResponse + Send + 'static>;

/// Headers on every answer: no framing by other sites, no content sniffing, no script at
/// all, forms only to this UI, nothing cached (the pages are live state).
const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("X-Frame-Options", "SAMEORIGIN"),
    ("X-Content-Type-Options", "nosniff"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'self'; base-uri 'none'",
    ),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
];

/// Binds `host:port` for a UI, trying the next port up to `max_retries` times when it is
/// taken, as Spark does (`ember.port.maxRetries`); port 0 takes any free port.
///
/// # Errors
///
/// Every port tried was taken, or the host does not resolve; the error names the ports.
pub(crate) fn bind(host: &str, port: u16, max_retries: u32) -> io::Result<TcpListener> {
    let mut last = None;
    for attempt in 0..=max_retries {
        let step = if port == 0 { 0 } else { attempt };
        let Some(try_port) = u16::try_from(step).ok().and_then(|s| port.checked_add(s)) else {
            break;
        };
        match TcpListener::bind((host, try_port)) {
            Ok(listener) => {
                if attempt > 0 {
                    log::warn!("The UI port {port} is taken; the UI listens on {try_port} instead");
                }
                return Ok(listener);
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && port != 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    let reason = last.map_or_else(|| "no port left".to_string(), |e| e.to_string());
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!(
            "Could not bind the UI on {host}, ports {port} to {}: {reason}",
            u32::from(port).saturating_add(max_retries).min(65535)
        ),
    ))
}

/// A running UI server: its address, and the thread answering it.
pub(crate) struct UiServer {
    server: Arc<tiny_http::Server>,
    address: SocketAddr,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for UiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiServer")
            .field("address", &self.address)
            .finish()
    }
}

impl UiServer {
    /// Serves `listener` with `route` on a thread named `name`.
    ///
    /// # Errors
    ///
    /// The listener has no local address, or the thread could not be started.
    pub(crate) fn start(name: &str, listener: TcpListener, route: Route) -> io::Result<UiServer> {
        let address = listener.local_addr()?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let server = Arc::new(server);
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                // `recv` fails once `unblock` is called: that is the stop.
                while let Ok(request) = serving.recv() {
                    answer(request, &route);
                }
            })?;
        log::info!("Status UI listening on http://{address}");
        Ok(UiServer {
            server,
            address,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The address it listens on.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops answering and waits for the thread. Idempotent.
    pub(crate) fn stop(&self) {
        self.server.unblock();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Answers one request; a route that panics gets a 500, not a dead UI thread.
fn answer(mut request: tiny_http::Request, route: &Route) {
    let response = match to_ui_request(&mut request) {
        Ok(ui_request) => {
            log::debug!("UI {:?} {}", ui_request.method, request.url());
            catch_unwind(AssertUnwindSafe(|| route(&ui_request))).unwrap_or_else(|_| {
                log::error!("The UI failed on {}", request.url());
                UiResponse::text(500, "Internal error")
            })
        }
        Err(refusal) => refusal,
    };
    let mut out = tiny_http::Response::from_data(response.body).with_status_code(response.status);
    let mut add = |name: &str, value: &str| {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            out.add_header(header);
        }
    };
    add("Content-Type", response.content_type);
    for (name, value) in SECURITY_HEADERS {
        add(name, value);
    }
    if let Some(location) = &response.location {
        add("Location", location);
    }
    if let Err(e) = request.respond(out) {
        log::debug!("Could not answer a UI request: {e}");
    }
}

/// The request as the routes see it; a POST body over [`MAX_FORM_BYTES`] is refused (413).
fn to_ui_request(request: &mut tiny_http::Request) -> Result<UiRequest, UiResponse> {
    let method = match request.method() {
        tiny_http::Method::Get | tiny_http::Method::Head => Method::Get,
        tiny_http::Method::Post => Method::Post,
        _ => Method::Other,
    };
    let mut ui_request = UiRequest::new(method, request.url());
    ui_request.same_origin = same_origin(request.headers());
    if method == Method::Post {
        let mut body = Vec::new();
        let limit = MAX_FORM_BYTES as u64 + 1;
        if request
            .as_reader()
            .take(limit)
            .read_to_end(&mut body)
            .is_err()
        {
            return Err(UiResponse::text(400, "Could not read the request body"));
        }
        if body.len() > MAX_FORM_BYTES {
            return Err(UiResponse::text(413, "Request body too large"));
        }
        ui_request
            .params
            .extend(parse_params(&String::from_utf8_lossy(&body)));
    }
    Ok(ui_request)
}

/// Whether the browser says the request comes from a page of the host it was sent to.
fn same_origin(headers: &[tiny_http::Header]) -> bool {
    let find = |name: &'static str| {
        headers
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    if find("Sec-Fetch-Site").as_deref() == Some("same-origin") {
        return true;
    }
    let Some(host) = find("Host") else {
        return false;
    };
    let ours = [format!("http://{host}"), format!("https://{host}")];
    if let Some(origin) = find("Origin") {
        return ours.contains(&origin);
    }
    find("Referer").is_some_and(|referer| {
        ours.iter().any(|o| {
            referer
                .strip_prefix(o.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
    })
}
