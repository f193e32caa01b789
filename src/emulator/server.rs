//! Accepts connections (TLS or plain), reads each request and writes its response. I/O.
//!
//! The server is shared by the cloud tenant and the QRS site: each is a [`Handler`] that
//! turns a buffered [`ApiRequest`] into a [`Reply`]. Each connection gets a kill switch so
//! that a `drop` fault can close it without a response, the way a crashed pod or a reset
//! load balancer would.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::control;
use super::dispatch::{self, Reply, Shared};
use super::wire::{ApiRequest, ApiResponse, Body, ErrorShape, QlikError};

/// Larger bodies get a 413: no request the emulator serves needs more.
const MAX_BODY: usize = 1024 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What answers the requests of one listener.
pub trait Handler: Send + Sync + 'static {
    /// `http` or `https`, for the `base` of requests (links).
    fn scheme(&self) -> &'static str;
    /// The base URL for links when a request has no usable `Host` header.
    fn default_base(&self) -> &str;
    /// The answer to a request whose body is over the limit.
    fn too_large(&self, limit: usize) -> ApiResponse;
    /// Answers one request.
    fn handle(&self, request: ApiRequest) -> impl Future<Output = Reply> + Send;
}

impl Handler for Shared {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn default_base(&self) -> &str {
        &self.default_base
    }

    fn too_large(&self, limit: usize) -> ApiResponse {
        QlikError::status(StatusCode::PAYLOAD_TOO_LARGE)
            .with_detail(format!("request bodies are limited to {limit} bytes"))
            .into_response(ErrorShape::NoStatus)
    }

    async fn handle(&self, request: ApiRequest) -> Reply {
        if request.path == "/_emulator" || request.path.starts_with("/_emulator/") {
            return Reply::Respond(control::handle(self, &request));
        }
        dispatch::handle(self, request).await
    }
}

/// Serves until `shutdown` fires (or its sender is dropped); open connections are closed.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<H>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, tls.clone(), shared.clone()));
                }
                Err(error) => tracing::warn!(%error, "failed to accept a connection"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn connection<H: Handler>(stream: TcpStream, tls: Option<TlsAcceptor>, shared: Arc<H>) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve_io(TokioIo::new(stream), shared).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_io(TokioIo::new(stream), shared).await,
                Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

async fn serve_io<I, H: Handler>(io: I, shared: Arc<H>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let service = {
        let kill = kill.clone();
        hyper::service::service_fn(move |request| {
            let shared = shared.clone();
            let kill = kill.clone();
            async move { Ok::<_, Infallible>(respond(&*shared, request, &kill).await) }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        // Dropping the connection closes the socket without a response.
        _ = kill.notified() => {}
    }
}

async fn respond<H: Handler>(
    shared: &H,
    request: Request<Incoming>,
    kill: &Notify,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return to_http(shared.too_large(MAX_BODY)),
    };
    let base = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_plain_host(h))
        .map_or_else(
            || shared.default_base().to_owned(),
            |host| format!("{}://{host}", shared.scheme()),
        );
    let query = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let request = ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query,
        headers: parts.headers,
        body,
        base,
    };
    match shared.handle(request).await {
        Reply::Respond(response) => to_http(response),
        Reply::Drop => {
            kill.notify_one();
            // The connection task drops this future with the connection.
            std::future::pending().await
        }
    }
}

/// A `Host` value safe to echo into links: letters, digits, `.-:[]`.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn to_http(response: ApiResponse) -> Response<Full<Bytes>> {
    let (content_type, bytes) = match response.body {
        Body::Empty => (None, Bytes::new()),
        Body::Json(value) => (
            Some("application/json; charset=utf-8"),
            Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
        ),
        Body::Text { content_type, text } => (Some(content_type), Bytes::from(text)),
    };
    let mut http = Response::new(Full::new(bytes));
    *http.status_mut() = response.status;
    let headers = http.headers_mut();
    if let Some(content_type) = content_type {
        headers.insert(
            CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
    }
    for (name, value) in response.headers {
        headers.append(name, value);
    }
    http
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_hosts_are_echoed_into_links() {
        assert!(is_plain_host("127.0.0.1:8443"));
        assert!(is_plain_host("[::1]:8443"));
        assert!(is_plain_host("localhost"));
        assert!(!is_plain_host("evil.com/path"));
        assert!(!is_plain_host("a b"));
        assert!(!is_plain_host(""));
    }
}
