//! Tiny web sites on loopback ports for the browser rig (`tests/edge_e2e.rs`): a page
//! that carries the policy under test in its response header, an allowed and a forbidden
//! origin that each serve a probe script and a probe image, and a collector of CSP violation
//! reports. Network I/O on 127.0.0.1 only: plain HTTP/1 on hyper (already a dependency; a
//! handful of fixed routes needs no framework).
//!
//! Origins differ by port: `http://127.0.0.1:A` and `http://127.0.0.1:B` are distinct
//! origins to CSP (`script-src http://127.0.0.1:B` does not match port A), so one loopback
//! address gives as many origins as it has servers. Chromium treats 127.0.0.1 as
//! potentially trustworthy and a loopback page loading loopback subresources crosses no
//! Private Network Access boundary, so nothing needs a flag or a host name.
//!
//! ```text
//!  page (PagePolicy in its header) ── <script>/<img> ──▶ allowed    /observer.js /probe.js /probe.gif
//!                                  └─ <script>/<img> ──▶ forbidden  /probe.js /probe.gif
//!  browser ── report-uri POST ──▶ collector /csp-report   (application/csp-report)
//!          └─ report-to POST ───▶ collector /reports      (application/reports+json)
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub mod collector;

use collector::Collector;

/// The observer, loaded first by the page from the allowed origin. It records the page's
/// `securitypolicyviolation` events and, one task after `load` (violation events are
/// dispatched as tasks of their own), what ran and what loaded. It hands that back by
/// navigating to the URL given in the page's fragment (`#observed=<url>`): a top-level
/// navigation is governed by no CSP directive, unlike `fetch` (connect-src) or an image
/// beacon (img-src), so the report gets out whatever policy the page is under. Without a
/// fragment it writes the report into the page (`<pre id=observed>`, for `--dump-dom`).
const OBSERVER_JS: &str = include_str!("site/observer.js");

/// The probe script: marks itself as run, by its own URL.
const PROBE_JS: &str =
    "(window.probesRan = window.probesRan || {})[document.currentScript.src] = true;\n";

/// The probe image: a 1×1 transparent GIF.
const PROBE_GIF: &[u8] = &[
    71, 73, 70, 56, 57, 97, 1, 0, 1, 0, 128, 0, 0, 0, 0, 0, 255, 255, 255, 33, 249, 4, 1, 0, 0, 0,
    0, 44, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 1, 68, 0, 59,
];

/// A request as a [`Server`]'s handler sees it, body read whole.
pub struct Received {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

type Handler = Arc<dyn Fn(Received) -> Response<Full<Bytes>> + Send + Sync>;

/// An HTTP/1 server on a free loopback port; stops (with its connections) when dropped.
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Serves every request with `handler`.
    pub async fn start(
        handler: impl Fn(Received) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let handler: Handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            // Dropped with the task on abort, which aborts every connection too.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        connections.spawn(serve_connection(stream, handler.clone()));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Server { addr, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, handler: Handler) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let handler = handler.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => Bytes::new(),
            };
            let received = Received {
                method: parts.method,
                uri: parts.uri,
                headers: parts.headers,
                body,
            };
            Ok::<_, Infallible>(handler(received))
        }
    });
    // A browser killed mid-request is no error of the site's.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A response with `status`, `content_type` and `body`.
pub fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("a valid content type"),
    );
    response
}

/// The policy header the page server sends with the page.
#[derive(Clone, Debug)]
pub enum PagePolicy {
    /// `Content-Security-Policy: <value>`.
    Enforce(String),
    /// `Content-Security-Policy-Report-Only: <value>`.
    ReportOnly(String),
    /// No policy header: for a page served through a proxy that adds the header itself.
    Absent,
}

impl PagePolicy {
    fn header(&self) -> Option<(&'static str, &str)> {
        match self {
            PagePolicy::Enforce(value) => Some(("content-security-policy", value)),
            PagePolicy::ReportOnly(value) => Some(("content-security-policy-report-only", value)),
            PagePolicy::Absent => None,
        }
    }
}

/// The allowed and forbidden origins and the report collector, started once per test; each
/// page server ([`Site::serve_page`]) is a new origin on top of them.
pub struct Site {
    pub allowed: ProbeOrigin,
    pub forbidden: ProbeOrigin,
    pub collector: Collector,
}

impl Site {
    pub async fn start() -> Site {
        Site {
            allowed: ProbeOrigin::start().await,
            forbidden: ProbeOrigin::start().await,
            collector: Collector::start().await,
        }
    }

    /// A page server with `policy` in the page's response header. The page loads the observer
    /// from the allowed origin first, then a probe script and a probe image from each origin,
    /// and has no inline script or style, so the policy needs no hash or nonce: the test's
    /// `script-src` must allow the allowed origin anyway, and an operator-compiled header
    /// (later served through a proxy) lists origins, not hashes.
    pub async fn serve_page(&self, policy: PagePolicy) -> PageServer {
        let (allowed, forbidden) = (self.allowed.origin(), self.forbidden.origin());
        let html = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>csp probe</title>\n\
             <script src=\"{allowed}/observer.js\"></script></head>\n<body>\n\
             <script src=\"{allowed}/probe.js\"></script>\n\
             <script src=\"{forbidden}/probe.js\"></script>\n\
             <img src=\"{allowed}/probe.gif\" alt=\"\">\n<img src=\"{forbidden}/probe.gif\" alt=\"\">\n\
             </body></html>\n"
        );
        let header = policy.header().map(|(name, value)| {
            let value = HeaderValue::from_str(value).expect("the policy is a valid header value");
            (HeaderName::from_static(name), value)
        });
        let server = Server::start(move |request| {
            if request.uri.path() != "/" {
                return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n");
            }
            let mut response = respond(StatusCode::OK, "text/html; charset=utf-8", html.clone());
            if let Some((name, value)) = &header {
                response.headers_mut().insert(name.clone(), value.clone());
            }
            response
        })
        .await;
        PageServer { server, policy }
    }
}

/// A page server: one origin serving the probe page at `/`.
pub struct PageServer {
    server: Server,
    pub policy: PagePolicy,
}

impl PageServer {
    /// The page's URL, `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("{}/", self.server.origin())
    }

    /// Its port on 127.0.0.1, for a proxy in front of it.
    pub fn port(&self) -> u16 {
        self.server.addr.port()
    }
}

/// An origin serving `/observer.js`, `/probe.js` and `/probe.gif`, counting its requests.
pub struct ProbeOrigin {
    server: Server,
    requests: Arc<AtomicU64>,
}

impl ProbeOrigin {
    async fn start() -> ProbeOrigin {
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let server = Server::start(move |request| {
            counter.fetch_add(1, Ordering::Relaxed);
            match request.uri.path() {
                "/observer.js" => respond(StatusCode::OK, "text/javascript", OBSERVER_JS),
                "/probe.js" => respond(StatusCode::OK, "text/javascript", PROBE_JS),
                "/probe.gif" => respond(StatusCode::OK, "image/gif", PROBE_GIF),
                _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
            }
        })
        .await;
        ProbeOrigin { server, requests }
    }

    /// `http://127.0.0.1:<port>`, as a CSP source expression.
    pub fn origin(&self) -> String {
        self.server.origin()
    }

    pub fn script_url(&self) -> String {
        format!("{}/probe.js", self.origin())
    }

    pub fn image_url(&self) -> String {
        format!("{}/probe.gif", self.origin())
    }

    /// Requests served so far: a load the policy blocks never reaches the origin.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}
