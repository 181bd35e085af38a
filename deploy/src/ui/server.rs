//! The HTTP half of the UI: a small bounded server. Requests are parsed by `httparse` (the
//! parser hyper uses); this file only decides what a connection may cost. One accept thread
//! and [`WORKERS`] worker threads, whatever the load: a connection is answered once and
//! closed (no keep-alive), must deliver its request within [`REQUEST_DEADLINE`], and may
//! send at most [`MAX_HEAD_BYTES`] of head and [`MAX_FORM_BYTES`] of body. Connections beyond
//! what the workers and [`QUEUED`] can take are closed at once. A failed accept (out of file
//! descriptors, say) backs off and tries again, so the UI never stops for good.
//!
//! (`tiny_http`, the first choice, starts a thread per open connection, sets no timeouts,
//! and stops accepting for good after one failed accept: a peer that opens slow connections
//! could grow the daemon by a thread each, and running out of descriptors once would end
//! the UI.)

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::http::{parse_params, Method, UiRequest, UiResponse, MAX_FORM_BYTES};

/// What answers a daemon's requests; the workers share it.
pub(crate) type Route = Box<dyn Fn(&UiRequest) -> UiResponse + Send + Sync + 'static>;

/// Threads answering requests. A page is rendered in about 100 us of CPU; four are plenty
/// for people and scrapers, and bound what slow peers can hold.
pub(crate) const WORKERS: usize = 4;
/// Accepted connections waiting for a worker; past this, new ones are closed.
pub(crate) const QUEUED: usize = 32;
/// A request's line and headers: at most this many bytes (else 431).
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;
/// At most this many headers (else 431).
const MAX_HEADERS: usize = 64;
/// A connection must deliver its whole request within this of being accepted, time spent
/// waiting for a worker included (else it is closed unanswered): slow peers hold a worker
/// for at most this long, and all that queue behind them expire together.
pub(crate) const REQUEST_DEADLINE: Duration = Duration::from_secs(3);
/// Writing the answer may take this long (a peer that does not read is dropped).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept, the accept thread waits this long before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

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

/// What the server's threads share.
struct Shared {
    stopping: AtomicBool,
}

/// A running UI server: its address, and the threads answering it.
pub(crate) struct UiServer {
    address: SocketAddr,
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for UiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiServer")
            .field("address", &self.address)
            .finish()
    }
}

impl UiServer {
    /// Serves `listener` with `route`, on threads named after `name`.
    ///
    /// # Errors
    ///
    /// The listener has no local address, or a thread could not be started.
    pub(crate) fn start(name: &str, listener: TcpListener, route: Route) -> io::Result<UiServer> {
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
        });
        let route = Arc::new(route);
        let (queue, taken) = mpsc::sync_channel::<Accepted>(QUEUED);
        let taken = Arc::new(std::sync::Mutex::new(taken));
        let server = UiServer {
            address,
            shared: Arc::clone(&shared),
            threads: Mutex::new(Vec::new()),
        };
        for i in 0..WORKERS {
            let (route, taken) = (Arc::clone(&route), Arc::clone(&taken));
            let worker = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&taken, &route));
            match worker {
                Ok(thread) => server.threads.lock().push(thread),
                Err(e) => {
                    drop(queue);
                    server.stop();
                    return Err(e);
                }
            }
        }
        let accepting = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name(format!("{name}-accept"))
            .spawn(move || accept(&listener, &queue, &accepting));
        match acceptor {
            Ok(thread) => server.threads.lock().push(thread),
            Err(e) => {
                server.stop();
                return Err(e);
            }
        }
        log::info!("Status UI listening on http://{address}");
        Ok(server)
    }

    /// The address it listens on.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, lets the workers finish the requests they hold, and waits for the
    /// threads. Idempotent.
    pub(crate) fn stop(&self) {
        if !self.shared.stopping.swap(true, Ordering::AcqRel) {
            // Wakes the accept thread, blocked in `accept`.
            let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The accept thread: hands connections to the workers until the stop; closes those that
/// find no room. Dropping `queue` on return ends the workers.
fn accept(listener: &TcpListener, queue: &SyncSender<Accepted>, shared: &Shared) {
    while !shared.stopping.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if shared.stopping.load(Ordering::Acquire) {
                    return;
                }
                let accepted = Accepted {
                    stream,
                    deadline: Instant::now() + REQUEST_DEADLINE,
                };
                match queue.try_send(accepted) {
                    Ok(()) => {}
                    Err(TrySendError::Full(Accepted { stream, .. })) => {
                        rpc_env::limited_log!(
                            log::Level::Warn,
                            "The status UI is busy; closed a connection from {peer}"
                        );
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                rpc_env::limited_log!(
                    log::Level::Warn,
                    "The status UI could not accept a connection: {e}; trying again in {} ms",
                    ACCEPT_BACKOFF.as_millis()
                );
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// An accepted connection and when its request must have arrived.
struct Accepted {
    stream: TcpStream,
    deadline: Instant,
}

/// A worker: answers connections from the queue until it closes.
fn work(taken: &std::sync::Mutex<Receiver<Accepted>>, route: &Route) {
    loop {
        let next = match taken.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match next {
            Ok(accepted) => serve(accepted, route),
            Err(_) => return,
        }
    }
}

/// Answers the one request of a connection and closes it.
fn serve(accepted: Accepted, route: &Route) {
    let Accepted {
        mut stream,
        deadline,
    } = accepted;
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let (response, head_only) = match read_request(&mut stream, deadline) {
        Ok(Some((request, head_only))) => {
            log::debug!("UI {:?} {}", request.method, request.path);
            let response =
                catch_unwind(AssertUnwindSafe(|| route(&request))).unwrap_or_else(|_| {
                    log::error!("The UI failed on {}", request.path);
                    UiResponse::text(500, "Internal error")
                });
            (response, head_only)
        }
        Ok(None) => return,
        Err(refusal) => (refusal, false),
    };
    if let Err(e) = write_response(&mut stream, &response, head_only) {
        log::debug!("Could not answer a UI request: {e}");
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Reads and parses one request by `deadline`: the request and whether it was a HEAD;
/// `None` when the peer went away or ran out of time (nothing to answer); a refusal for a
/// request that is too large or malformed.
fn read_request(
    stream: &mut TcpStream,
    deadline: Instant,
) -> Result<Option<(UiRequest, bool)>, UiResponse> {
    let mut buf = Vec::with_capacity(1024);
    let head_len = loop {
        if read_some(stream, &mut buf, deadline, MAX_HEAD_BYTES + 1).is_none() {
            return Ok(None);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => break n,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
                return Err(UiResponse::text(431, "Request headers too large"));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(UiResponse::text(431, "Too many request headers"));
            }
            Err(e) => return Err(UiResponse::text(400, format!("Malformed request: {e}"))),
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    if parsed.parse(&buf[..head_len]).is_err() {
        return Err(UiResponse::text(400, "Malformed request"));
    }
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let (method, head_only) = match parsed.method.unwrap_or("") {
        "GET" => (Method::Get, false),
        "HEAD" => (Method::Get, true),
        "POST" => (Method::Post, false),
        _ => (Method::Other, false),
    };
    let mut request = UiRequest::new(method, parsed.path.unwrap_or("/"));
    request.same_origin = same_origin(&header);
    if method == Method::Post {
        let length: usize = match header("Content-Length").map(|v| v.trim().parse()) {
            None => 0,
            Some(Ok(n)) if n <= MAX_FORM_BYTES => n,
            Some(Ok(_)) => return Err(UiResponse::text(413, "Request body too large")),
            Some(Err(_)) => return Err(UiResponse::text(400, "Bad Content-Length")),
        };
        if header("Transfer-Encoding").is_some() {
            return Err(UiResponse::text(411, "A form must give its Content-Length"));
        }
        let mut body = buf.split_off(head_len);
        while body.len() < length {
            if read_some(stream, &mut body, deadline, length).is_none() {
                return Ok(None);
            }
        }
        body.truncate(length);
        request
            .params
            .extend(parse_params(&String::from_utf8_lossy(&body)));
    }
    Ok(Some((request, head_only)))
}

/// Reads more of the request into `buf` (never past `limit` bytes in all); `None` when the
/// peer closed, failed, or the deadline passed.
fn read_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    limit: usize,
) -> Option<()> {
    let left = deadline.checked_duration_since(Instant::now())?;
    stream
        .set_read_timeout(Some(left.max(Duration::from_millis(1))))
        .ok()?;
    let mut chunk = [0u8; 4096];
    let room = limit.saturating_sub(buf.len()).clamp(1, chunk.len());
    match stream.read(&mut chunk[..room]) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// Writes `response` with the headers every answer gets; no body for a HEAD.
fn write_response(
    stream: &mut TcpStream,
    response: &UiResponse,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    for (name, value) in SECURITY_HEADERS {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(location) = &response.location {
        // Locations are the UI's own paths; never let one end the header early.
        if !location.contains(['\r', '\n']) {
            head.push_str(&format!("Location: {location}\r\n"));
        }
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(&response.body)?;
    }
    stream.flush()
}

/// The reason phrase of the statuses the UI sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Whether the browser says the request comes from a page of the host it was sent to.
fn same_origin(header: &dyn Fn(&str) -> Option<String>) -> bool {
    if header("Sec-Fetch-Site").as_deref() == Some("same-origin") {
        return true;
    }
    let Some(host) = header("Host") else {
        return false;
    };
    let ours = [format!("http://{host}"), format!("https://{host}")];
    if let Some(origin) = header("Origin") {
        return ours.contains(&origin);
    }
    header("Referer").is_some_and(|referer| {
        ours.iter().any(|o| {
            referer
                .strip_prefix(o.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
    })
}
