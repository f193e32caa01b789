//! The operator's Prometheus metrics, in one injectable registry (tests build their own;
//! the operator builds one and shares it through
//! [`Shared::metrics`](crate::controller::Shared::metrics)). No I/O.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `qlikops_reconcile_total` | counter | `controller`, `result` (`success`, `error`) |
//! | `qlikops_reconcile_errors_total` | counter | `controller`, `reason` (a condition reason) |
//! | `qlikops_reconcile_duration_seconds` | histogram | `controller` |
//! | `qlikops_tenant_requests_total` | counter | `operation` (`csp-origins.list`, …), `status` (HTTP code or `error`) |
//! | `qlikops_tenant_rate_limit_waits_total` | counter | — |
//! | `qlikops_tenant_rate_limit_wait_seconds_total` | counter | — |
//! | `qlikops_header_bytes` | gauge | `namespace`, `tenant` |
//! | `qlikops_tenant_cache_entries` | gauge | `cache` (`tenant-clients`, `remote-entries`, `header-state`) |
//! | `qlikops_credential_expiry_seconds` | gauge | `namespace`, `name` (of the SecretRotation) |
//!
//! Labels are bounded names (controllers, reasons, operations, object names), never a URL,
//! a header value or a credential. Series named after an object are removed when the object
//! goes ([`Metrics::forget_header`], [`Metrics::retain_headers`]), so churn does not grow
//! the registry; `qlikops_tenant_cache_entries` shows that the per-tenant caches shrink too.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::tenant::client::RequestObserver;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    controller: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    namespace: String,
    tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: String,
}

/// Reads a cache's size at scrape time; `None` once the cache is gone.
type CacheProbe = Box<dyn Fn() -> Option<usize> + Send + Sync>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CredentialLabels {
    namespace: String,
    name: String,
}

type Histograms = Family<ControllerLabels, Histogram, fn() -> Histogram>;

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_duration: Histograms,
    tenant_requests: Family<RequestLabels, Counter>,
    rate_limit_waits: Counter,
    rate_limit_wait_seconds: Counter<f64, AtomicU64>,
    header_bytes: Family<TenantLabels, Gauge>,
    /// The labels of every `header_bytes` series, to remove those of deleted tenants (a
    /// `Family` cannot be iterated). Held while the family changes.
    header_series: Mutex<HashSet<TenantLabels>>,
    tenant_cache_entries: Family<CacheLabels, Gauge>,
    cache_probes: Mutex<Vec<(&'static str, CacheProbe)>>,
    credential_expiry: Family<CredentialLabels, Gauge<f64, AtomicU64>>,
    /// When each credential expires; the gauge is computed from it at every scrape, so that
    /// it counts down without anyone setting it.
    expiries: Mutex<HashMap<CredentialLabels, jiff::Timestamp>>,
    /// Ticks when any reconcile finishes, for whoever waits for the controllers to settle
    /// (see [`Metrics::reconcile_finished`]).
    finished: tokio::sync::watch::Sender<()>,
}

impl Metrics {
    /// A fresh registry with every metric registered (and none of them set).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("qlikops");
        let reconciles = Family::default();
        registry.register(
            "reconcile",
            "Reconciles by controller and result",
            reconciles.clone(),
        );
        let reconcile_errors = Family::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles by controller and reason",
            reconcile_errors.clone(),
        );
        // 5 ms to ~80 s: a reconcile may wait on the tenant's rate limit.
        let reconcile_duration: Histograms =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 15)));
        registry.register_with_unit(
            "reconcile_duration",
            "Time spent in one reconcile",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        let tenant_requests = Family::default();
        registry.register(
            "tenant_requests",
            "Requests to Qlik tenants by operation and HTTP status (`error`: no response)",
            tenant_requests.clone(),
        );
        let rate_limit_waits = Counter::default();
        registry.register(
            "tenant_rate_limit_waits",
            "Tenant requests that waited for the client's rate limit or a 429 pause",
            rate_limit_waits.clone(),
        );
        let rate_limit_wait_seconds = Counter::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "tenant_rate_limit_wait",
            "Time tenant requests spent waiting for the rate limit",
            Unit::Seconds,
            rate_limit_wait_seconds.clone(),
        );
        let header_bytes = Family::default();
        registry.register(
            "header_bytes",
            "Size in bytes of the CSP header published for a QlikTenant",
            header_bytes.clone(),
        );
        let tenant_cache_entries = Family::default();
        registry.register(
            "tenant_cache_entries",
            "Tenants the operator keeps per-tenant state for, by cache",
            tenant_cache_entries.clone(),
        );
        let credential_expiry = Family::default();
        registry.register_with_unit(
            "credential_expiry",
            "Time until a rotated credential expires (negative: expired)",
            Unit::Seconds,
            credential_expiry.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            tenant_requests,
            rate_limit_waits,
            rate_limit_wait_seconds,
            header_bytes,
            header_series: Mutex::default(),
            tenant_cache_entries,
            cache_probes: Mutex::default(),
            credential_expiry,
            expiries: Mutex::default(),
            finished: tokio::sync::watch::Sender::new(()),
        }
    }

    /// A receiver that sees a change each time a reconcile finishes (after its counters
    /// are updated): an in-process caller, such as a test, waits on it for the controllers
    /// to go quiet instead of polling the counters.
    pub fn reconcile_finished(&self) -> tokio::sync::watch::Receiver<()> {
        self.finished.subscribe()
    }

    /// Records one reconcile of `controller` that took `took` and failed with `error_reason`
    /// (a bounded CamelCase reason), or succeeded when `None`.
    pub fn reconciled(&self, controller: &str, took: Duration, error_reason: Option<&str>) {
        let result = if error_reason.is_some() {
            "error"
        } else {
            "success"
        };
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller: controller.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        if let Some(reason) = error_reason {
            self.reconcile_errors
                .get_or_create(&ErrorLabels {
                    controller: controller.to_owned(),
                    reason: reason.to_owned(),
                })
                .inc();
        }
        self.reconcile_duration
            .get_or_create(&ControllerLabels {
                controller: controller.to_owned(),
            })
            .observe(took.as_secs_f64()); // `send_replace`: it never fails, with or without a receiver.
        self.finished.send_replace(());
    }

    /// Sets the size of the header published for QlikTenant `namespace/tenant`.
    pub fn set_header_bytes(&self, namespace: &str, tenant: &str, bytes: usize) {
        let labels = TenantLabels {
            namespace: namespace.to_owned(),
            tenant: tenant.to_owned(),
        };
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let mut series = self.header_series();
        self.header_bytes.get_or_create(&labels).set(bytes);
        series.insert(labels);
    }

    /// Forgets a deleted QlikTenant's header size.
    pub fn forget_header(&self, namespace: &str, tenant: &str) {
        let labels = TenantLabels {
            namespace: namespace.to_owned(),
            tenant: tenant.to_owned(),
        };
        let mut series = self.header_series();
        self.header_bytes.remove(&labels);
        series.remove(&labels);
    }

    /// Keeps the header sizes of the QlikTenants `(namespace, name)` for which `keep` holds
    /// (those still in the store) and removes the others.
    pub fn retain_headers(&self, mut keep: impl FnMut(&str, &str) -> bool) {
        let mut series = self.header_series();
        series.retain(|labels| {
            let kept = keep(&labels.namespace, &labels.tenant);
            if !kept {
                self.header_bytes.remove(labels);
            }
            kept
        });
    }

    /// Reports the size of a per-tenant cache as `qlikops_tenant_cache_entries{cache}`,
    /// read by `size` at every scrape; the series goes once `size` returns `None` (the
    /// cache was dropped). A second registration under one name replaces the first.
    pub fn track_cache(
        &self,
        cache: &'static str,
        size: impl Fn() -> Option<usize> + Send + Sync + 'static,
    ) {
        let mut probes = self
            .cache_probes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        probes.retain(|(name, _)| *name != cache);
        probes.push((cache, Box::new(size)));
    }

    fn header_series(&self) -> std::sync::MutexGuard<'_, HashSet<TenantLabels>> {
        self.header_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// For the SecretRotation controller: the credential of SecretRotation `namespace/name`
    /// expires at `expires_at` (`None` for credentials that never expire, such as OAuth
    /// client secrets: the series is removed). `qlikops_credential_expiry_seconds` then
    /// counts down to it at every scrape.
    pub fn set_credential_expiry(
        &self,
        namespace: &str,
        name: &str,
        expires_at: Option<jiff::Timestamp>,
    ) {
        let labels = CredentialLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        let mut expiries = self.expiries.lock().unwrap_or_else(PoisonError::into_inner);
        match expires_at {
            Some(at) => {
                expiries.insert(labels, at);
            }
            None => {
                expiries.remove(&labels);
                self.credential_expiry.remove(&labels);
            }
        }
    }

    /// For the SecretRotation controller: forgets a deleted SecretRotation.
    pub fn forget_credential(&self, namespace: &str, name: &str) {
        self.set_credential_expiry(namespace, name, None);
    }

    /// The registry in the OpenMetrics text format ([`CONTENT_TYPE`]), as of `now`.
    pub fn encode(&self, now: jiff::Timestamp) -> String {
        {
            let expiries = self.expiries.lock().unwrap_or_else(PoisonError::into_inner);
            for (labels, at) in expiries.iter() {
                let left = at.duration_since(now).as_secs_f64();
                self.credential_expiry.get_or_create(labels).set(left);
            }
        }
        {
            let mut probes = self
                .cache_probes
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            probes.retain(|(cache, size)| {
                let labels = CacheLabels {
                    cache: (*cache).to_owned(),
                };
                match size() {
                    Some(entries) => {
                        let entries = i64::try_from(entries).unwrap_or(i64::MAX);
                        self.tenant_cache_entries
                            .get_or_create(&labels)
                            .set(entries);
                        true
                    }
                    None => {
                        self.tenant_cache_entries.remove(&labels);
                        false
                    }
                }
            });
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl RequestObserver for Metrics {
    fn request(&self, operation: &'static str, status: Option<u16>) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.tenant_requests
            .get_or_create(&RequestLabels {
                operation: operation.to_owned(),
                status,
            })
            .inc();
    }

    fn rate_limit_wait(&self, waited: Duration) {
        self.rate_limit_waits.inc();
        self.rate_limit_wait_seconds.inc_by(waited.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn reconciles_errors_and_requests_are_counted_under_their_documented_names() {
        let metrics = Metrics::new();
        metrics.reconciled("tenant", Duration::from_millis(20), None);
        metrics.reconciled("tenant", Duration::from_millis(20), Some("Unauthorized"));
        metrics.request("csp-origins.list", Some(200));
        metrics.request("csp-origins.list", None);
        metrics.rate_limit_wait(Duration::from_millis(1500));
        metrics.set_header_bytes("web", "acme", 120);
        let text = metrics.encode(jiff::Timestamp::UNIX_EPOCH);
        for (prefix, value) in [
            (
                r#"qlikops_reconcile_total{controller="tenant",result="success"}"#,
                "1",
            ),
            (
                r#"qlikops_reconcile_errors_total{controller="tenant",reason="Unauthorized"}"#,
                "1",
            ),
            (
                r#"qlikops_tenant_requests_total{operation="csp-origins.list",status="200"}"#,
                "1",
            ),
            (
                r#"qlikops_tenant_requests_total{operation="csp-origins.list",status="error"}"#,
                "1",
            ),
            ("qlikops_tenant_rate_limit_waits_total", "1"),
            ("qlikops_tenant_rate_limit_wait_seconds_total", "1.5"),
            (
                r#"qlikops_header_bytes{namespace="web",tenant="acme"}"#,
                "120",
            ),
            (
                r#"qlikops_reconcile_duration_seconds_count{controller="tenant"}"#,
                "2",
            ),
        ] {
            let found = line(&text, prefix).unwrap_or_else(|| panic!("{prefix} in\n{text}"));
            assert_eq!(found.rsplit(' ').next(), Some(value), "{found}");
        }
        metrics.forget_header("web", "acme");
        assert!(
            line(
                &metrics.encode(jiff::Timestamp::UNIX_EPOCH),
                "qlikops_header_bytes{"
            )
            .is_none()
        );
    }

    #[test]
    fn header_series_of_tenants_gone_are_removed_and_cache_sizes_are_read_at_scrape() {
        let metrics = Metrics::new();
        metrics.set_header_bytes("web", "acme", 120);
        metrics.set_header_bytes("web", "globex", 80);
        metrics.set_header_bytes("shop", "acme", 60);
        metrics.retain_headers(|namespace, tenant| namespace == "web" && tenant == "globex");
        let text = metrics.encode(jiff::Timestamp::UNIX_EPOCH);
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("qlikops_header_bytes{"))
            .collect();
        assert_eq!(
            series,
            [r#"qlikops_header_bytes{namespace="web",tenant="globex"} 80"#]
        );

        let size = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(3));
        let weak = std::sync::Arc::downgrade(&size);
        metrics.track_cache("tenant-clients", move || {
            weak.upgrade()
                .map(|s| s.load(std::sync::atomic::Ordering::SeqCst))
        });
        let gauge = r#"qlikops_tenant_cache_entries{cache="tenant-clients"}"#;
        let read = |metrics: &Metrics| {
            let text = metrics.encode(jiff::Timestamp::UNIX_EPOCH);
            line(&text, gauge).map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
        };
        assert_eq!(read(&metrics).as_deref(), Some("3"));
        size.store(0, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(read(&metrics).as_deref(), Some("0"));
        drop(size);
        assert_eq!(read(&metrics), None);
    }

    #[test]
    fn credential_expiry_counts_down_to_the_expiry_and_is_removed_when_forgotten() {
        let metrics = Metrics::new();
        let expires = jiff::Timestamp::from_second(1_000).unwrap();
        metrics.set_credential_expiry("web", "rotate-key", Some(expires));
        let series = r#"qlikops_credential_expiry_seconds{namespace="web",name="rotate-key"}"#;
        let at = |second| {
            let text = metrics.encode(jiff::Timestamp::from_second(second).unwrap());
            line(&text, series).map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
        };
        assert_eq!(at(400).as_deref(), Some("600.0"));
        assert_eq!(at(1_100).as_deref(), Some("-100.0"));
        metrics.forget_credential("web", "rotate-key");
        assert_eq!(at(400), None);
    }
}
