//! Which CspEntries a `Local` header is compiled from. Pure.

use std::collections::BTreeSet;

use crate::api::CspEntry;
use crate::csp::Grant;

/// The grants of the CspEntries of tenant `tenant_name` among `entries` (one namespace).
/// Entries being deleted and origins that do not parse are left out; when two entries
/// share an origin the one that owns it counts ([`CspEntry::claim_rank`]), as the
/// `csp-entry` controller syncs only that one.
pub fn local_grants<'a>(
    entries: impl IntoIterator<Item = &'a CspEntry>,
    tenant_name: &str,
) -> Vec<Grant> {
    let mut ours: Vec<&CspEntry> = entries
        .into_iter()
        .filter(|e| e.spec.tenant_ref.name == tenant_name)
        .filter(|e| e.metadata.deletion_timestamp.is_none())
        .collect();
    ours.sort_by(|a, b| a.claim_rank().cmp(&b.claim_rank()));
    let mut seen = BTreeSet::new();
    ours.into_iter()
        .filter_map(|entry| {
            let grant = entry.grant().ok()?;
            seen.insert(grant.origin.as_str().to_ascii_lowercase())
                .then_some(grant)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;
    use crate::api::TenantRef;
    use crate::api::csp_entry::{CspEntrySpec, DeletionPolicy, DirectiveName};
    use crate::csp::Directive;

    fn entry(name: &str, tenant: &str, origin: &str, created: i64) -> CspEntry {
        CspEntry {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("web".into()),
                creation_timestamp: Some(Time(jiff::Timestamp::from_second(created).unwrap())),
                ..ObjectMeta::default()
            },
            spec: CspEntrySpec {
                tenant_ref: TenantRef {
                    name: tenant.into(),
                },
                origin: origin.into(),
                directives: vec![DirectiveName::FrameSrc],
                allow_web_socket: false,
                description: None,
                deletion_policy: DeletionPolicy::Delete,
            },
            status: None,
        }
    }

    fn origins(grants: &[Grant]) -> Vec<&str> {
        grants.iter().map(|g| g.origin.as_str()).collect()
    }

    #[test]
    fn local_grants_take_only_this_tenants_live_entries_with_valid_origins() {
        let mut deleting = entry("deleting", "acme", "https://gone.example.com", 1);
        deleting.metadata.deletion_timestamp = deleting.metadata.creation_timestamp.clone();
        let entries = [
            entry("a", "acme", "https://a.example.com", 1),
            entry("other", "globex", "https://b.example.com", 1),
            entry("bad", "acme", "https://x.example.com/path", 1),
            deleting,
        ];
        assert_eq!(
            origins(&local_grants(&entries, "acme")),
            ["https://a.example.com"]
        );
    }

    #[test]
    fn local_grants_keep_the_older_of_two_entries_with_the_same_origin() {
        let mut newer = entry("newer", "acme", "https://A.example.com", 20);
        newer.spec.directives = vec![DirectiveName::ScriptSrc];
        let older = entry("older", "acme", "https://a.example.com", 10);
        let grants = local_grants(&[newer, older], "acme");
        assert_eq!(grants.len(), 1);
        assert!(grants[0].directives.contains(&Directive::FrameSrc));
        assert!(!grants[0].directives.contains(&Directive::ScriptSrc));
    }

    #[test]
    fn an_entry_of_unknown_age_never_takes_an_origin_from_a_dated_one() {
        // The csp-entry controller syncs the dated entry; the header must carry its grant.
        let mut undated = entry("a-undated", "acme", "https://a.example.com", 0);
        undated.metadata.creation_timestamp = None;
        undated.spec.directives = vec![DirectiveName::ScriptSrc];
        let dated = entry("b-dated", "acme", "https://a.example.com", 10);
        let grants = local_grants(&[undated, dated], "acme");
        assert_eq!(grants.len(), 1);
        assert!(grants[0].directives.contains(&Directive::FrameSrc));
    }
}
