//! What a CspEntry means to every part of the operator, defined once: when its latest change
//! has settled, which of two entries with one origin owns it, and the header grant it
//! contributes. The csp-entry controller, the tenant controller and `render` all read these,
//! so they cannot disagree. No I/O.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::CspEntry;
use super::reasons::{DELETING, PENDING};
use crate::csp::origin::{Origin, OriginError};
use crate::csp::{Directive, Grant};

/// A namespace and a QlikTenant name: the key of every per-tenant cache and map.
pub type TenantKey = (String, String);

impl CspEntry {
    /// The QlikTenant this entry belongs to: `spec.tenantRef` in the entry's namespace.
    pub fn tenant_key(&self) -> TenantKey {
        self.spec
            .tenant_ref
            .key_in(self.metadata.namespace.as_deref())
    }

    /// Whether the csp-entry controller has finished this entry's latest change: not being
    /// deleted, its status describes this generation, and `Ready` is not under way
    /// (`Pending`, `Deleting`). The tenant controller publishes once every entry of the
    /// tenant has settled.
    pub fn has_settled(&self) -> bool {
        let status = self.status.as_ref();
        let observed = status.and_then(|s| s.observed_generation);
        let in_progress = status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.reason == PENDING || c.reason == DELETING);
        self.metadata.deletion_timestamp.is_none()
            && observed == self.metadata.generation
            && !in_progress
    }

    /// The grant this entry adds to its tenant's header (directives deduplicated), or why its
    /// origin cannot be one.
    pub fn grant(&self) -> Result<Grant, OriginError> {
        Ok(Grant {
            origin: Origin::parse(&self.spec.origin)?,
            directives: self
                .spec
                .directives
                .iter()
                .copied()
                .map(Directive::from)
                .collect::<BTreeSet<_>>(),
            allow_web_socket: self.spec.allow_web_socket,
        })
    }

    /// Where this entry ranks among entries claiming one origin: the smallest rank owns it.
    /// See [`claim_rank`].
    pub fn claim_rank(&self) -> (Timestamp, &str) {
        claim_rank(
            self.metadata.creation_timestamp.as_ref().map(|t| t.0),
            self.metadata.name.as_deref().unwrap_or_default(),
        )
    }
}

/// The rank of a claim on an origin: the older entry owns it, a tie goes to the smaller
/// name, and an unknown creation time counts as the newest (an entry not yet stored cannot
/// take an origin from one that is).
pub fn claim_rank(created: Option<Timestamp>, name: &str) -> (Timestamp, &str) {
    (created.unwrap_or(Timestamp::MAX), name)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::*;
    use crate::api::TenantRef;
    use crate::api::csp_entry::{CspEntrySpec, CspEntryStatus, DeletionPolicy, DirectiveName};

    fn entry(generation: i64, observed: Option<i64>, reason: &str) -> CspEntry {
        let mut entry = CspEntry::new(
            "cdn",
            CspEntrySpec {
                tenant_ref: TenantRef {
                    name: "acme".into(),
                },
                origin: "https://cdn.example.com".into(),
                directives: vec![DirectiveName::ImgSrc, DirectiveName::ImgSrc],
                allow_web_socket: true,
                description: None,
                deletion_policy: DeletionPolicy::Delete,
            },
        );
        entry.metadata.generation = Some(generation);
        entry.status = Some(CspEntryStatus {
            observed_generation: observed,
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: reason.into(),
                message: String::new(),
                observed_generation: observed,
                last_transition_time: Time(Timestamp::UNIX_EPOCH),
            }],
            ..CspEntryStatus::default()
        });
        entry
    }

    #[test]
    fn an_entry_has_settled_once_its_status_describes_its_generation_and_nothing_is_under_way() {
        assert!(entry(2, Some(2), "Created").has_settled());
        assert!(entry(2, Some(2), "DuplicateOrigin").has_settled());
        assert!(!entry(2, Some(1), "Created").has_settled(), "an edit");
        assert!(!entry(1, None, "Created").has_settled(), "new");
        assert!(!entry(2, Some(2), PENDING).has_settled());
        assert!(!entry(2, Some(2), DELETING).has_settled());
        let mut deleting = entry(2, Some(2), "Created");
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert!(!deleting.has_settled());
    }

    #[test]
    fn the_grant_carries_the_origin_the_directives_once_and_the_web_socket_flag() {
        let grant = entry(1, None, "Created").grant().unwrap();
        assert_eq!(grant.origin.as_str(), "https://cdn.example.com");
        assert_eq!(grant.directives.len(), 1);
        assert!(grant.allow_web_socket);
        let mut bad = entry(1, None, "Created");
        bad.spec.origin = "https://cdn.example.com/path".into();
        assert!(bad.grant().is_err());
    }

    #[test]
    fn the_older_claim_wins_ties_go_to_the_smaller_name_and_an_unknown_time_is_newest() {
        let at = |s| Some(Timestamp::from_second(s).unwrap());
        assert!(claim_rank(at(10), "b") < claim_rank(at(20), "a"));
        assert!(claim_rank(at(10), "a") < claim_rank(at(10), "b"));
        assert!(claim_rank(at(10), "z") < claim_rank(None, "a"));
    }
}
