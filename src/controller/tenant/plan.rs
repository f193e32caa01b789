//! The plan step of the `tenant` controller: from what observe gathered, decide whether to
//! go on now, which header to publish, and the status to record. Pure: no kube client, no
//! I/O; the time comes in as `now`.
//!
//! A reconcile asks three questions in turn:
//! 1. [`pace`]: hold the header while the tenant's entries are settling, or go on (and
//!    whether the connection must be proven again)?
//! 2. [`header`]: where the header comes from: nowhere (none configured, or the tenant it
//!    comes from is not connected), the tenant (`generate-header`, or the value fetched last
//!    when nothing it depends on has changed), or compiled from the entries.
//! 3. [`status`]: what the status says about the connection and the publish.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::apply::Published;
use super::error::Error;
use super::observe::Seen;
use super::pacing;
use super::publication::Publication;
use super::status::{self, Connection, HeaderState, Identity};
use crate::api::QlikTenant;
use crate::api::header::{HeaderMode, HeaderSpec, TargetStatus};
use crate::api::tenant::{HeaderSource, QlikTenantStatus};
use crate::csp::header::{self, BaseDirectives, Header};

/// Whether this reconcile goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Entries are settling: the last one to settle triggers the publish; look again at
    /// `until` at the latest (the drift interval after the last publish).
    Hold { until: Instant },
    /// Go on; prove the connection (`tenants/me`) first when `check_connection`.
    Proceed { check_connection: bool },
}

/// See [`Pace`]. Held only while entries are settling, the status already describes this
/// generation, and the last publish is younger than the drift interval.
pub fn pace(tenant: &QlikTenant, seen: &Seen, drift: Duration, now: Instant) -> Pace {
    let generation = tenant.metadata.generation;
    if let Some(entries) = &seen.entries {
        let status_current =
            tenant.status.as_ref().and_then(|s| s.observed_generation) == generation;
        let settling =
            pacing::settling_entries(entries.iter().map(AsRef::as_ref), &tenant.name_any());
        let since_last_publish = seen.memory.published_at.map(|at| now.duration_since(at));
        if let Some(wait) = pacing::hold_header(settling, status_current, since_last_publish, drift)
        {
            return Pace::Hold { until: now + wait };
        }
    }
    let check_connection =
        pacing::needs_connection_check(seen.memory.checked.as_ref(), generation, drift, now);
    Pace::Proceed { check_connection }
}

/// Where the header to publish comes from.
#[derive(Debug)]
pub enum HeaderPlan {
    /// Nothing to publish: no header configured, or it comes from a tenant that is not
    /// connected (the ConfigMap keeps the last good one).
    Skip,
    /// Ask the tenant (`generate-header`); remember the value with this entries digest.
    Fetch { digest: u64 },
    /// The value fetched last still stands (same tenant generation, no entry event since,
    /// younger than the drift interval): saves the tenant call when the reconcile was
    /// triggered by the controller's own writes.
    Fetched(String),
    /// Compiled from the tenant's entries (also when the tenant is down).
    Compiled(Result<Header, Error>),
}

/// See [`HeaderPlan`].
pub fn header(
    tenant: &QlikTenant,
    seen: &Seen,
    connected: bool,
    drift: Duration,
    now: Instant,
) -> HeaderPlan {
    let (Some(spec), Some(entries)) = (tenant.spec.effective_header(), &seen.entries) else {
        return HeaderPlan::Skip;
    };
    let name = tenant.name_any();
    let entries = entries.iter().map(AsRef::as_ref);
    match spec.source {
        HeaderSource::Tenant if !connected => HeaderPlan::Skip,
        HeaderSource::Tenant => {
            let digest = pacing::entries_digest(entries, &name);
            let generation = tenant.metadata.generation;
            match &seen.memory.fetched {
                Some(fetched)
                    if pacing::header_still_fresh(fetched, generation, digest, drift, now) =>
                {
                    HeaderPlan::Fetched(fetched.value.clone())
                }
                _ => HeaderPlan::Fetch { digest },
            }
        }
        HeaderSource::Local => {
            let grants = super::grants::local_grants(entries, &name);
            let base: BaseDirectives = spec.base_directives.clone().unwrap_or_default();
            HeaderPlan::Compiled(header::compile(&base, &grants).map_err(Error::InvalidHeader))
        }
    }
}

/// With `mode: Both` (and `source: Local`, which the CRD requires for it): the candidate
/// policy, compiled from `candidateDirectives` and the same entries. `None` otherwise.
pub fn candidate(tenant: &QlikTenant, seen: &Seen) -> Option<Result<Header, Error>> {
    let spec = tenant.spec.effective_header()?;
    if spec.effective_mode() != HeaderMode::Both {
        return None;
    }
    let entries = seen.entries.as_ref()?;
    let name = tenant.name_any();
    let grants = super::grants::local_grants(entries.iter().map(AsRef::as_ref), &name);
    let base: BaseDirectives = spec.candidate_directives.clone().unwrap_or_default();
    Some(header::compile(&base, &grants).map_err(Error::InvalidHeader))
}

/// The header names with their values; the candidate is needed (and given) only with
/// `mode: Both`.
pub fn publication(
    spec: &HeaderSpec,
    current: Result<Header, Error>,
    candidate: Option<Result<Header, Error>>,
) -> Result<Publication, Error> {
    let current = current?;
    let candidate = candidate.transpose()?;
    Publication::new(spec, current, candidate).ok_or(Error::MissingCandidate)
}

/// The status after a reconcile that connected (or not) and published (or not: `None`
/// when nothing was to be published). `withdrawing`: targets removed from the spec that
/// still hold the operator's header.
pub fn status(
    tenant: &QlikTenant,
    connection: Result<&Identity, &Error>,
    published: Option<Result<&Published, &Error>>,
    withdrawing: Vec<TargetStatus>,
    now: Timestamp,
) -> QlikTenantStatus {
    let connection = match connection {
        Ok(identity) => Connection::Connected {
            identity: identity.clone(),
        },
        Err(e) => Connection::Failed {
            reason: e.reason(),
            message: e.describe(),
            transient: e.is_transient(),
        },
    };
    let header = match (tenant.spec.effective_header(), published) {
        (None, _) => HeaderState::NotConfigured,
        (Some(_), None) => HeaderState::NotChecked,
        (Some(_), Some(Ok(published))) => HeaderState::Published {
            current: published.current.clone(),
            candidate: published.candidate.clone(),
            destinations: destinations(published),
            targets: published.targets.clone(),
            virtual_proxies: published.virtual_proxies.clone(),
        },
        (Some(_), Some(Err(e))) => HeaderState::Failed {
            reason: e.reason(),
            message: e.describe(),
            transient: e.is_transient(),
        },
    };
    let mut next = status::build(
        tenant.status.as_ref(),
        tenant.metadata.generation,
        &connection,
        &header,
        Time(now),
    );
    // Targets that left the spec leave the status once their header is out of them.
    let targets = tenant.spec.header.as_ref().map(|h| h.targets.as_slice());
    next.targets.retain(|t| {
        targets
            .unwrap_or_default()
            .iter()
            .any(|x| x.kind == t.kind && x.name == t.name)
    });
    next.targets.extend(withdrawing);
    next
}

/// `ConfigMap csp, HTTPRoute web, Middleware csp`: where a publish went.
fn destinations(published: &Published) -> String {
    let config_map = published
        .config_map
        .iter()
        .map(|name| format!("ConfigMap {name}"));
    let targets = published
        .targets
        .iter()
        .map(|t| format!("{} {}", t.kind, t.name));
    let proxies = published
        .virtual_proxies
        .iter()
        .map(|p| format!("virtual proxy {:?}", p.prefix));
    let all: Vec<String> = config_map.chain(targets).chain(proxies).collect();
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::api::CspEntry;
    use crate::api::csp_entry::CspEntryStatus;
    use crate::controller::tenant::pacing::{Checked, Fetched, Memory};

    const DRIFT: Duration = Duration::from_secs(600);

    fn tenant(source: &str, generation: i64, observed: Option<i64>) -> QlikTenant {
        let mut tenant: QlikTenant = serde_json::from_value(serde_json::json!({
            "apiVersion": "qlikops.io/v1alpha1",
            "kind": "QlikTenant",
            "metadata": { "name": "acme", "namespace": "web", "generation": generation },
            "spec": {
                "url": "https://acme.eu.qlikcloud.com",
                "credentials": { "apiKey": { "secretRef": { "name": "qlik", "key": "api-key" } } },
                "header": { "configMapName": "csp", "source": source },
            },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        tenant.status = observed.map(|g| QlikTenantStatus {
            observed_generation: Some(g),
            ..QlikTenantStatus::default()
        });
        tenant
    }

    /// An entry of `acme`; settled when its status has seen its generation.
    fn entry(origin: &str, settled: bool) -> Arc<CspEntry> {
        let mut entry: CspEntry = serde_json::from_value(serde_json::json!({
            "apiVersion": "qlikops.io/v1alpha1",
            "kind": "CspEntry",
            "metadata": { "name": origin, "namespace": "web", "generation": 1, "uid": origin },
            "spec": { "tenantRef": { "name": "acme" }, "origin": format!("https://{origin}"), "directives": ["img-src"] },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        entry.status = settled.then(|| CspEntryStatus {
            observed_generation: Some(1),
            ..CspEntryStatus::default()
        });
        Arc::new(entry)
    }

    fn seen(entries: Vec<Arc<CspEntry>>, memory: Memory) -> Seen {
        Seen {
            entries: Some(entries),
            memory,
        }
    }

    fn checked(at: Instant, generation: i64) -> Option<Checked> {
        Some(Checked {
            at,
            generation: Some(generation),
            identity: Identity::Tenant("t-1".into()),
        })
    }

    #[test]
    fn a_settling_entry_holds_the_header_until_the_drift_interval_after_the_last_publish() {
        let now = Instant::now();
        let published = now.checked_sub(Duration::from_secs(100)).unwrap_or(now);
        let memory = Memory {
            published_at: Some(published),
            checked: checked(published, 1),
            fetched: None,
        };
        let settling = seen(
            vec![entry("a.example", true), entry("b.example", false)],
            memory.clone(),
        );
        assert_eq!(
            pace(&tenant("Local", 1, Some(1)), &settling, DRIFT, now),
            Pace::Hold {
                until: published + DRIFT
            }
        );
        // Not held: nothing settling; a new generation; never published.
        let settled = seen(vec![entry("a.example", true)], memory.clone());
        assert_eq!(
            pace(&tenant("Local", 1, Some(1)), &settled, DRIFT, now),
            Pace::Proceed {
                check_connection: false
            }
        );
        assert_eq!(
            pace(&tenant("Local", 2, Some(1)), &settling, DRIFT, now),
            Pace::Proceed {
                check_connection: true
            },
            "a new generation is published, and its connection proven, at once"
        );
        let never = seen(vec![entry("b.example", false)], Memory::default());
        assert_eq!(
            pace(&tenant("Local", 1, Some(1)), &never, DRIFT, now),
            Pace::Proceed {
                check_connection: true
            }
        );
    }

    #[test]
    fn the_connection_is_proven_again_after_the_drift_interval() {
        let now = Instant::now();
        let long_ago = now.checked_sub(DRIFT).unwrap_or(now);
        let memory = Memory {
            checked: checked(long_ago, 1),
            ..Memory::default()
        };
        assert_eq!(
            pace(
                &tenant("Local", 1, Some(1)),
                &seen(vec![], memory),
                DRIFT,
                now
            ),
            Pace::Proceed {
                check_connection: true
            }
        );
    }

    #[test]
    fn a_tenant_header_is_fetched_once_per_change_of_what_it_depends_on() {
        let now = Instant::now();
        let tenant = tenant("Tenant", 1, Some(1));
        let entries = vec![entry("a.example", true)];
        let digest = pacing::entries_digest(entries.iter().map(AsRef::as_ref), "acme");
        assert!(matches!(
            header(&tenant, &seen(entries.clone(), Memory::default()), true, DRIFT, now),
            HeaderPlan::Fetch { digest: d } if d == digest
        ));
        assert!(
            matches!(
                header(
                    &tenant,
                    &seen(entries.clone(), Memory::default()),
                    false,
                    DRIFT,
                    now
                ),
                HeaderPlan::Skip
            ),
            "a tenant that is not connected is not asked"
        );
        let fetched = |entries: u64| Memory {
            fetched: Some(Fetched {
                at: now,
                generation: Some(1),
                entries,
                value: "img-src https://a.example".into(),
            }),
            ..Memory::default()
        };
        assert!(matches!(
            header(&tenant, &seen(entries.clone(), fetched(digest)), true, DRIFT, now),
            HeaderPlan::Fetched(value) if value == "img-src https://a.example"
        ));
        assert!(
            matches!(
                header(
                    &tenant,
                    &seen(entries, fetched(digest ^ 1)),
                    true,
                    DRIFT,
                    now
                ),
                HeaderPlan::Fetch { .. }
            ),
            "an entry changed since the fetch"
        );
    }

    #[test]
    fn a_local_header_is_compiled_from_the_entries_even_when_the_tenant_is_down() {
        let now = Instant::now();
        let entries = vec![entry("a.example", true), entry("b.example", false)];
        let plan = header(
            &tenant("Local", 1, Some(1)),
            &seen(entries, Memory::default()),
            false,
            DRIFT,
            now,
        );
        let HeaderPlan::Compiled(Ok(compiled)) = plan else {
            panic!("not compiled: {plan:?}");
        };
        assert!(
            compiled.as_str().contains("https://a.example"),
            "{}",
            compiled.as_str()
        );
        assert!(
            compiled.as_str().contains("https://b.example"),
            "{}",
            compiled.as_str()
        );
    }

    #[test]
    fn the_status_reports_the_connection_and_the_publish() {
        let tenant = tenant("Local", 2, Some(1));
        let now = Timestamp::UNIX_EPOCH;
        let published = Published {
            current: crate::controller::tenant::publication::Facts {
                sha256: "abc".into(),
                length: 10,
                origins: 1,
            },
            candidate: None,
            config_map: Some("csp".into()),
            config_map_written: true,
            ingresses_bumped: vec![],
            targets: vec![],
            virtual_proxies: vec![],
        };
        let identity = Identity::Tenant("t-1".into());
        let next = status(
            &tenant,
            Ok(&identity),
            Some(Ok(&published)),
            Vec::new(),
            now,
        );
        assert_eq!(next.observed_generation, Some(2));
        assert_eq!(next.tenant_id.as_deref(), Some("t-1"));
        let ready = status::condition(Some(&next), crate::controller::conditions::READY);
        assert_eq!(ready.map(|c| c.status.as_str()), Some("True"));
        let header = status::condition(Some(&next), status::HEADER_PUBLISHED);
        assert_eq!(header.map(|c| c.status.as_str()), Some("True"));

        let failed = Error::InvalidHeaderKey;
        let next = status(
            &tenant,
            Err(&Error::EntriesUnavailable),
            Some(Err(&failed)),
            Vec::new(),
            now,
        );
        let ready = status::condition(Some(&next), crate::controller::conditions::READY);
        assert_eq!(ready.map(|c| c.reason.as_str()), Some("EntriesUnavailable"));
        let header = status::condition(Some(&next), status::HEADER_PUBLISHED);
        assert_eq!(header.map(|c| c.reason.as_str()), Some("InvalidSpec"));
    }
}
