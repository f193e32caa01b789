//! The health and metrics endpoint: `GET /healthz`, `/readyz`, `/metrics` over plain HTTP/1.
//! Does network I/O. Built on hyper, already a dependency (the emulator serves with it):
//! three fixed routes do not need a web framework.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::health::Readiness;
use super::metrics::{self, Metrics};

/// What the endpoints report on.
#[derive(Clone)]
pub struct Endpoints {
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
}

/// Serves on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    endpoints: Endpoints,
    shutdown: impl Future<Output = ()>,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let endpoints = endpoints.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let response = respond(&endpoints, &request);
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let io = TokioIo::new(stream);
                        let served = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await;
                        if let Err(error) = served {
                            tracing::debug!(%error, "metrics connection failed");
                        }
                    });
                }
                Err(error) => tracing::warn!(%error, "failed to accept a metrics connection"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

fn respond(endpoints: &Endpoints, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".to_owned());
    }
    match request.uri().path() {
        "/healthz" | "/livez" => text(StatusCode::OK, "ok\n".to_owned()),
        "/readyz" => {
            let status = if endpoints.readiness.is_ready() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, endpoints.readiness.report())
        }
        "/metrics" => {
            let body = endpoints.metrics.encode(jiff::Timestamp::now());
            response(StatusCode::OK, metrics::CONTENT_TYPE, body)
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".to_owned()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    response(status, "text/plain; charset=utf-8", body)
}

fn response(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}
