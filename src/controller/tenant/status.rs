//! What a `QlikTenant`'s status should say after a reconcile, and whether it must be
//! written. Pure: the caller passes what it observed and did, and `now`.
//!
//! `Ready` says whether the tenant is reachable and accepts the credential;
//! `HeaderPublished` whether the header in the ConfigMap is the current one. A header that
//! could not be checked or failed validation leaves `status.header` (the last good one)
//! as it was; `publishedAt` moves only when the header's SHA-256 changes.
//!
//! For kstatus, a failure also sets `Reconciling` (transient: retried on its own) or
//! `Stalled` (needs a user: a wrong key, a missing Secret, a host not allowed, an invalid
//! header); both are absent once the tenant is Ready and its header published.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::publication::Facts;
use crate::api::client_managed::VirtualProxyStatus;
use crate::api::header::TargetStatus;
use crate::api::tenant::{PublishedHeader, QlikTenantStatus};
use crate::controller::conditions::{self, Desired, Progress, READY};

/// The condition saying whether the current header is in the ConfigMap.
pub const HEADER_PUBLISHED: &str = "HeaderPublished";

/// What a successful connection check proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A Qlik Cloud tenant, by its id (`tenants/me`).
    Tenant(String),
    /// A client-managed site, by its Repository's `buildVersion` (`/qrs/about`).
    Site { build_version: String },
}

/// What the connection check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// The credential works; the tenant or site is the one named.
    Connected { identity: Identity },
    /// No client, or the tenant refused or could not be reached; `transient` when
    /// retrying without a change can help.
    Failed {
        reason: &'static str,
        message: String,
        transient: bool,
    },
}

/// What header publishing found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderState {
    /// `spec.header` is not set: nothing is published.
    NotConfigured,
    /// The header comes from the tenant, which is not ready: nothing was checked.
    NotChecked,
    /// The header is in the ConfigMap (written now or already there) and was offered to
    /// every target; `targets` says what each holds, `virtual_proxies` what each of a
    /// client-managed site's virtual proxies holds.
    Published {
        current: Facts,
        candidate: Option<Facts>,
        /// Where it went, for the condition message, e.g. `ConfigMap csp`.
        destinations: String,
        targets: Vec<TargetStatus>,
        virtual_proxies: Vec<VirtualProxyStatus>,
    },
    /// The header could not be had, was invalid, or could not be written.
    Failed {
        reason: &'static str,
        message: String,
        transient: bool,
    },
}

/// The status after a reconcile that observed `connection` and `header`.
pub fn build(
    previous: Option<&QlikTenantStatus>,
    generation: Option<i64>,
    connection: &Connection,
    header: &HeaderState,
    now: Time,
) -> QlikTenantStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;

    let ready = match connection {
        Connection::Connected {
            identity: Identity::Tenant(tenant_id),
        } => {
            status.tenant_id = Some(tenant_id.clone());
            Desired {
                type_: READY,
                status: true,
                reason: "Connected",
                message: format!("the credential is accepted by tenant {tenant_id}"),
            }
        }
        Connection::Connected {
            identity: Identity::Site { build_version },
        } => {
            status.build_version = Some(build_version.clone());
            Desired {
                type_: READY,
                status: true,
                reason: "Connected",
                message: format!(
                    "the client certificate is accepted by the site's Repository Service (build {build_version})"
                ),
            }
        }
        Connection::Failed {
            reason, message, ..
        } => Desired {
            type_: READY,
            status: false,
            reason,
            message: message.clone(),
        },
    };
    conditions::set(&mut status.conditions, ready, generation, now.clone());

    let published = match header {
        HeaderState::NotConfigured => {
            status.conditions.retain(|c| c.type_ != HEADER_PUBLISHED);
            status.header = None;
            None
        }
        HeaderState::NotChecked => {
            let has_condition = status
                .conditions
                .iter()
                .any(|c| c.type_ == HEADER_PUBLISHED);
            (!has_condition).then(|| Desired {
                type_: HEADER_PUBLISHED,
                status: false,
                reason: crate::api::reasons::TENANT_NOT_READY,
                message: "the header comes from the tenant, which is not Ready".to_owned(),
            })
        }
        HeaderState::Published {
            current,
            candidate,
            destinations,
            targets,
            virtual_proxies,
        } => {
            let before = previous.and_then(|p| p.header.as_ref());
            status.header = Some(published_header(before, current, &now));
            let before = previous.and_then(|p| p.candidate_header.as_ref());
            status.candidate_header = candidate
                .as_ref()
                .map(|facts| published_header(before, facts, &now));
            status.targets = targets.clone();
            status.virtual_proxies = virtual_proxies.clone();
            Some(match first_failure(targets, virtual_proxies) {
                None => Desired {
                    type_: HEADER_PUBLISHED,
                    status: true,
                    reason: "Published",
                    message: format!(
                        "the header ({} characters, {} origins) is in {destinations}",
                        current.length, current.origins
                    ),
                },
                Some(failure) => Desired {
                    type_: HEADER_PUBLISHED,
                    status: false,
                    reason: failure.reason,
                    message: failure.message,
                },
            })
        }
        HeaderState::Failed {
            reason, message, ..
        } => Some(Desired {
            type_: HEADER_PUBLISHED,
            status: false,
            reason,
            message: message.clone(),
        }),
    };
    if let Some(desired) = published {
        conditions::set(&mut status.conditions, desired, generation, now.clone());
    }
    let (progress, message) = progress(connection, header);
    conditions::set_progress(&mut status.conditions, progress, &message, generation, now);
    status
}

/// `status.header` for `facts`: `publishedAt` moves only when the SHA-256 does.
fn published_header(
    before: Option<&PublishedHeader>,
    facts: &Facts,
    now: &Time,
) -> PublishedHeader {
    let published_at = before
        .filter(|h| h.sha256 == facts.sha256)
        .map_or_else(|| now.clone(), |h| h.published_at.clone());
    PublishedHeader {
        sha256: facts.sha256.clone(),
        length: facts.length,
        origins: facts.origins,
        published_at,
    }
}

/// The bounded reason of a target's failure, as a `&'static str` for the condition.
pub fn target_reason(reason: &str) -> &'static str {
    use super::edge::reasons::*;
    [
        NOT_FOUND,
        NOT_OPTED_IN,
        CONFLICT,
        TOO_LONG,
        RULE_NOT_FOUND,
        TOO_MANY_HEADERS,
        REMOVED,
    ]
    .into_iter()
    .find(|r| *r == reason)
    .unwrap_or(WRITE_FAILED)
}

/// Whether a target's failure clears without a person (a failed write, retried).
pub fn target_failure_is_transient(reason: &str) -> bool {
    target_reason(reason) == super::edge::reasons::WRITE_FAILED
}

/// A header target or virtual proxy that does not carry the current header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationFailure {
    pub reason: &'static str,
    /// Names the destination, e.g. `HTTPRoute web: …` or `virtual proxy "sales": …`.
    pub message: String,
    pub transient: bool,
}

/// The first header target, then virtual proxy, that does not carry the current header.
pub fn first_failure(
    targets: &[TargetStatus],
    virtual_proxies: &[VirtualProxyStatus],
) -> Option<DestinationFailure> {
    if let Some(target) = targets.iter().find(|t| !t.published) {
        let reason = target_reason(&target.reason);
        return Some(DestinationFailure {
            reason,
            message: format!("{} {}: {}", target.kind, target.name, target.message),
            transient: target_failure_is_transient(reason),
        });
    }
    let proxy = virtual_proxies.iter().find(|p| !p.published)?;
    let reason = super::virtual_proxies::reason(&proxy.reason);
    Some(DestinationFailure {
        reason,
        message: format!("virtual proxy {:?}: {}", proxy.prefix, proxy.message),
        transient: super::virtual_proxies::is_transient(reason),
    })
}

/// `Reconciling` or `Stalled` for the first failure (the connection's, then the header's).
fn progress(connection: &Connection, header: &HeaderState) -> (Progress<'static>, String) {
    if let HeaderState::Published {
        targets,
        virtual_proxies,
        ..
    } = header
        && !matches!(connection, Connection::Failed { .. })
        && let Some(failure) = first_failure(targets, virtual_proxies)
    {
        return if failure.transient {
            (Progress::Reconciling(failure.reason), failure.message)
        } else {
            (Progress::Stalled(failure.reason), failure.message)
        };
    }
    let failure = match (connection, header) {
        (
            Connection::Failed {
                reason,
                message,
                transient,
            },
            _,
        )
        | (
            _,
            HeaderState::Failed {
                reason,
                message,
                transient,
            },
        ) => Some((*reason, message.as_str(), *transient)),
        _ => None,
    };
    match failure {
        None => (Progress::Done, String::new()),
        Some((reason, message, true)) => (Progress::Reconciling(reason), message.to_owned()),
        Some((reason, message, false)) => (Progress::Stalled(reason), message.to_owned()),
    }
}

/// Whether `next` says something `previous` does not (condition times aside).
pub fn changed(previous: Option<&QlikTenantStatus>, next: &QlikTenantStatus) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    !(conditions::same_ignoring_time(&previous.conditions, &next.conditions)
        && previous.observed_generation == next.observed_generation
        && previous.tenant_id == next.tenant_id
        && previous.build_version == next.build_version
        && previous.virtual_proxies == next.virtual_proxies
        && previous.header == next.header
        && previous.candidate_header == next.candidate_header
        && previous.targets == next.targets)
}

/// The condition of `type_`, if any.
pub fn condition<'a>(status: Option<&'a QlikTenantStatus>, type_: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

/// Whether condition `type_` moved to another status or reason from `previous` to `next`.
pub fn transitioned(
    previous: Option<&QlikTenantStatus>,
    next: &QlikTenantStatus,
    type_: &str,
) -> bool {
    let before = condition(previous, type_).map(|c| (&c.status, &c.reason));
    let after = condition(Some(next), type_).map(|c| (&c.status, &c.reason));
    after.is_some() && before != after
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn connected() -> Connection {
        Connection::Connected {
            identity: Identity::Tenant("t-1".into()),
        }
    }

    fn published(sha: &str) -> HeaderState {
        published_with(sha, Vec::new())
    }

    fn published_with(sha: &str, targets: Vec<TargetStatus>) -> HeaderState {
        HeaderState::Published {
            current: Facts {
                sha256: sha.into(),
                length: 20,
                origins: 2,
            },
            candidate: None,
            destinations: "ConfigMap csp".into(),
            targets,
            virtual_proxies: Vec::new(),
        }
    }

    fn target(published: bool, reason: &str) -> TargetStatus {
        TargetStatus {
            kind: crate::api::header::TargetKind::HttpRoute,
            name: "web".into(),
            published,
            reason: reason.into(),
            message: format!("{reason} happened"),
            sha256: None,
        }
    }

    #[test]
    fn a_target_that_refused_the_header_fails_header_published_and_stalls() {
        let next = build(
            None,
            Some(1),
            &connected(),
            &published_with(
                "abc",
                vec![
                    target(true, "Published"),
                    target(false, "HeaderTooLongForTarget"),
                ],
            ),
            at(100),
        );
        let c = condition(Some(&next), HEADER_PUBLISHED).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "HeaderTooLongForTarget")
        );
        assert!(c.message.starts_with("HTTPRoute web: "));
        // The ConfigMap holds the new header even though a target could not.
        assert_eq!(next.header.as_ref().map(|h| h.sha256.as_str()), Some("abc"));
        assert_eq!(next.targets.len(), 2);
        let stalled = condition(Some(&next), "Stalled").unwrap();
        assert_eq!(stalled.reason, "HeaderTooLongForTarget");
        // A failed write is retried on its own: Reconciling, not Stalled.
        let retrying = build(
            None,
            Some(1),
            &connected(),
            &published_with("abc", vec![target(false, "TargetWriteFailed")]),
            at(100),
        );
        assert!(condition(Some(&retrying), "Reconciling").is_some());
        assert!(condition(Some(&retrying), "Stalled").is_none());
    }

    fn failed(reason: &'static str) -> HeaderState {
        HeaderState::Failed {
            reason,
            message: format!("{reason} happened"),
            transient: false,
        }
    }

    fn ready_reason(status: &QlikTenantStatus) -> (&str, &str) {
        let c = condition(Some(status), READY).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn a_first_successful_reconcile_reports_ready_the_tenant_id_and_the_header() {
        let status = build(None, Some(2), &connected(), &published("abc"), at(100));
        assert_eq!(ready_reason(&status), ("True", "Connected"));
        assert_eq!(status.tenant_id.as_deref(), Some("t-1"));
        assert_eq!(status.observed_generation, Some(2));
        let header = status.header.as_ref().unwrap();
        assert_eq!(
            (header.sha256.as_str(), header.published_at.clone()),
            ("abc", at(100))
        );
        let c = condition(Some(&status), HEADER_PUBLISHED).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "Published")
        );
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(2))
        );
    }

    fn proxy(prefix: &str, reason: &str, sha: Option<&str>) -> VirtualProxyStatus {
        VirtualProxyStatus {
            prefix: prefix.into(),
            published: reason == "Published",
            reason: reason.into(),
            message: format!("{reason} message"),
            sha256: sha.map(Into::into),
        }
    }

    #[test]
    fn a_site_reports_its_build_and_each_virtual_proxy() {
        let site = Connection::Connected {
            identity: Identity::Site {
                build_version: "38.22.0".into(),
            },
        };
        let header = HeaderState::Published {
            current: Facts {
                sha256: "abc".into(),
                length: 20,
                origins: 2,
            },
            candidate: None,
            destinations: "virtual proxy \"\"".into(),
            targets: Vec::new(),
            virtual_proxies: vec![proxy("", "Published", Some("abc"))],
        };
        let status = build(None, Some(1), &site, &header, at(100));
        assert_eq!(ready_reason(&status), ("True", "Connected"));
        assert_eq!(status.build_version.as_deref(), Some("38.22.0"));
        assert_eq!(status.tenant_id, None);
        assert_eq!(status.virtual_proxies.len(), 1);
        assert!(changed(Some(&QlikTenantStatus::default()), &status));
    }

    #[test]
    fn a_virtual_proxy_the_header_does_not_fit_stalls_and_keeps_its_last_header() {
        let header = HeaderState::Published {
            current: Facts {
                sha256: "new".into(),
                length: 20,
                origins: 2,
            },
            candidate: None,
            destinations: String::new(),
            targets: Vec::new(),
            virtual_proxies: vec![
                proxy("", "Published", Some("new")),
                proxy("embed", "HeaderTooLongForTarget", Some("old")),
            ],
        };
        let status = build(None, Some(1), &connected(), &header, at(100));
        let c = condition(Some(&status), HEADER_PUBLISHED).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "HeaderTooLongForTarget")
        );
        assert!(c.message.contains("\"embed\""), "{}", c.message);
        let stalled = condition(Some(&status), "Stalled").unwrap();
        assert_eq!(stalled.status, "True");
        assert_eq!(status.virtual_proxies[1].sha256.as_deref(), Some("old"));
    }

    #[test]
    fn a_conflicting_virtual_proxy_is_retried_not_stalled() {
        let failure = first_failure(&[], &[proxy("", "VirtualProxyConflict", None)]).unwrap();
        assert!(failure.transient);
        let failure = first_failure(&[], &[proxy("", "VirtualProxyNotFound", None)]).unwrap();
        assert!(!failure.transient);
        assert_eq!(failure.reason, "VirtualProxyNotFound");
    }

    #[test]
    fn nothing_new_gives_an_unchanged_status_and_keeps_the_publish_time() {
        let first = build(None, Some(1), &connected(), &published("abc"), at(100));
        let again = build(
            Some(&first),
            Some(1),
            &connected(),
            &published("abc"),
            at(500),
        );
        assert!(!changed(Some(&first), &again));
        assert_eq!(again.header.unwrap().published_at, at(100));
    }

    #[test]
    fn a_new_header_moves_the_publish_time() {
        let first = build(None, Some(1), &connected(), &published("abc"), at(100));
        let next = build(
            Some(&first),
            Some(1),
            &connected(),
            &published("def"),
            at(500),
        );
        assert!(changed(Some(&first), &next));
        assert_eq!(next.header.unwrap().published_at, at(500));
    }

    #[test]
    fn an_invalid_header_keeps_the_last_good_summary_and_reports_why() {
        let first = build(None, Some(1), &connected(), &published("abc"), at(100));
        let next = build(
            Some(&first),
            Some(1),
            &connected(),
            &failed("InvalidHeader"),
            at(500),
        );
        assert_eq!(next.header, first.header);
        let c = condition(Some(&next), HEADER_PUBLISHED).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InvalidHeader")
        );
        assert!(transitioned(Some(&first), &next, HEADER_PUBLISHED));
        assert!(!transitioned(Some(&first), &next, READY));
    }

    #[test]
    fn a_failed_connection_keeps_the_known_tenant_id_and_leaves_the_header_condition() {
        let first = build(None, Some(1), &connected(), &published("abc"), at(100));
        let down = Connection::Failed {
            reason: "Unreachable",
            message: "failed to connect".into(),
            transient: true,
        };
        let next = build(
            Some(&first),
            Some(1),
            &down,
            &HeaderState::NotChecked,
            at(500),
        );
        assert_eq!(ready_reason(&next), ("False", "Unreachable"));
        assert_eq!(next.tenant_id.as_deref(), Some("t-1"));
        assert_eq!(
            condition(Some(&next), HEADER_PUBLISHED),
            condition(Some(&first), HEADER_PUBLISHED)
        );
        assert!(transitioned(Some(&first), &next, READY));
    }

    #[test]
    fn a_tenant_header_never_checked_is_reported_as_waiting_for_the_tenant() {
        let down = Connection::Failed {
            reason: "SecretNotFound",
            message: "Secret web/qlik not found".into(),
            transient: false,
        };
        let status = build(None, Some(1), &down, &HeaderState::NotChecked, at(100));
        let c = condition(Some(&status), HEADER_PUBLISHED).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "TenantNotReady")
        );
        assert!(status.tenant_id.is_none());
    }

    #[test]
    fn removing_the_header_spec_removes_the_condition_and_the_summary() {
        let first = build(None, Some(1), &connected(), &published("abc"), at(100));
        let next = build(
            Some(&first),
            Some(2),
            &connected(),
            &HeaderState::NotConfigured,
            at(500),
        );
        assert!(next.header.is_none());
        assert!(condition(Some(&next), HEADER_PUBLISHED).is_none());
        assert!(changed(Some(&first), &next));
    }

    fn has(status: &QlikTenantStatus, type_: &str) -> Option<String> {
        condition(Some(status), type_).map(|c| format!("{} {}", c.status, c.reason))
    }

    #[test]
    fn failures_are_reconciling_when_transient_stalled_when_not_and_neither_once_ready() {
        let unreachable = Connection::Failed {
            reason: "Unreachable",
            message: "failed to connect".into(),
            transient: true,
        };
        let down = build(None, Some(1), &unreachable, &HeaderState::NotChecked, at(1));
        assert_eq!(
            has(&down, "Reconciling").as_deref(),
            Some("True Unreachable")
        );
        assert_eq!(has(&down, "Stalled"), None);

        let invalid = build(
            Some(&down),
            Some(1),
            &connected(),
            &failed("InvalidHeader"),
            at(2),
        );
        assert_eq!(
            has(&invalid, "Stalled").as_deref(),
            Some("True InvalidHeader")
        );
        assert_eq!(has(&invalid, "Reconciling"), None);

        let fine = build(
            Some(&invalid),
            Some(1),
            &connected(),
            &published("abc"),
            at(3),
        );
        assert_eq!(
            (has(&fine, "Stalled"), has(&fine, "Reconciling")),
            (None, None)
        );
        assert!(changed(Some(&invalid), &fine));
    }

    #[test]
    fn a_new_generation_alone_is_a_change() {
        let first = build(None, Some(1), &connected(), &published("abc"), at(100));
        let next = build(
            Some(&first),
            Some(2),
            &connected(),
            &published("abc"),
            at(100),
        );
        assert!(changed(Some(&first), &next));
    }
}
