//! The report collector of the browser rig's site: receives CSP violation reports sent by
//! `report-uri` (`application/csp-report`) and by `report-to` (the Reporting API,
//! `application/reports+json`, after a CORS preflight), on a loopback port.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::watch;

use super::{Server, respond};

/// How a violation report reached the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// `report-uri`: `application/csp-report`, one `{"csp-report": {…}}` per POST.
    ReportUri,
    /// `report-to` (Reporting API): `application/reports+json`, an array per POST.
    ReportTo,
}

/// One CSP violation report as the collector received it.
#[derive(Clone, Debug)]
pub struct CspReport {
    pub format: ReportFormat,
    pub document_uri: String,
    pub blocked_uri: String,
    pub effective_directive: String,
    pub disposition: String,
    /// The report as sent, for failure messages.
    pub raw: Value,
}

/// Receives violation reports: `report-uri` POSTs at [`Collector::report_uri`] and Reporting
/// API POSTs (with their CORS preflight) at [`Collector::reporting_endpoint`].
pub struct Collector {
    server: Server,
    reports: watch::Receiver<Vec<CspReport>>,
    unreadable: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    pub(super) async fn start() -> Collector {
        let (sender, reports) = watch::channel(Vec::new());
        let unreadable = Arc::new(Mutex::new(Vec::new()));
        let rejected = unreadable.clone();
        let server = Server::start(move |request| {
            let format = match (request.method.as_str(), request.uri.path()) {
                ("POST", "/csp-report") => ReportFormat::ReportUri,
                ("POST", "/reports") => ReportFormat::ReportTo,
                ("OPTIONS", "/reports") => {
                    return cors(respond(StatusCode::NO_CONTENT, "text/plain", ""));
                }
                _ => return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
            };
            match parse_reports(format, &request.body) {
                Some(parsed) => sender.send_modify(|reports| reports.extend(parsed)),
                None => rejected
                    .lock()
                    .expect("the collector's lock")
                    .push(String::from_utf8_lossy(&request.body).into_owned()),
            }
            cors(respond(StatusCode::NO_CONTENT, "text/plain", ""))
        })
        .await;
        Collector {
            server,
            reports,
            unreadable,
        }
    }

    /// The URL for a policy's `report-uri` directive.
    pub fn report_uri(&self) -> String {
        format!("{}/csp-report", self.server.origin())
    }

    /// The URL for a `Reporting-Endpoints` header, named by a policy's `report-to`.
    pub fn reporting_endpoint(&self) -> String {
        format!("{}/reports", self.server.origin())
    }

    /// Every report received so far.
    pub fn reports(&self) -> Vec<CspReport> {
        self.reports.borrow().clone()
    }

    /// Waits until the reports received satisfy `done`, failing the test with `what` and the
    /// reports received after `deadline`.
    pub async fn wait_for(
        &self,
        what: &str,
        deadline: Duration,
        done: impl Fn(&[CspReport]) -> bool,
    ) -> Vec<CspReport> {
        let mut reports = self.reports.clone();
        let waited = tokio::time::timeout(deadline, reports.wait_for(|r| done(r))).await;
        match waited {
            Ok(Ok(reports)) => reports.clone(),
            _ => panic!(
                "timed out after {deadline:?} waiting for {what}; the collector received {:#?}, \
                 and could not read {:?}",
                self.reports(),
                self.unreadable.lock().expect("the collector's lock"),
            ),
        }
    }
}

/// Lets a page of any origin POST reports (the Reporting API uploads with CORS).
fn cors(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let headers = response.headers_mut();
    for (name, value) in [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "POST"),
        ("access-control-allow-headers", "content-type"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

/// The reports in one POST body, `None` if it is not a report of `format`.
fn parse_reports(format: ReportFormat, body: &[u8]) -> Option<Vec<CspReport>> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let text = |value: &Value, key: &str| value[key].as_str().unwrap_or_default().to_owned();
    match format {
        ReportFormat::ReportUri => {
            let report = json.get("csp-report")?;
            Some(vec![CspReport {
                format,
                document_uri: text(report, "document-uri"),
                blocked_uri: text(report, "blocked-uri"),
                effective_directive: text(report, "effective-directive"),
                disposition: text(report, "disposition"),
                raw: json.clone(),
            }])
        }
        ReportFormat::ReportTo => Some(
            json.as_array()?
                .iter()
                .filter(|report| report["type"] == "csp-violation")
                .map(|report| {
                    let body = &report["body"];
                    CspReport {
                        format,
                        document_uri: text(body, "documentURL"),
                        blocked_uri: text(body, "blockedURL"),
                        effective_directive: text(body, "effectiveDirective"),
                        disposition: text(body, "disposition"),
                        raw: report.clone(),
                    }
                })
                .collect(),
        ),
    }
}
