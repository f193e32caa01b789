//! Which credentials on the tenant are provably this SecretRotation's, and so may be
//! revoked. Pure. Status can be written by anyone with `secretrotations/status` access and
//! a description by any tenant user, so neither alone proves anything:
//!
//! - an API key needs the marker of this SecretRotation's uid in its description **and**
//!   the operator's own identity as both its subject (`sub`) and its creator
//!   (`createdByUser`) **and** status `active` (an expired key needs no revoking);
//! - an OAuth client secret needs the operator's identity as its creator (`createdBy`);
//!   when the tenant does not say who created it, the creation time recorded from the
//!   create response must match the tenant's.
//! - an automation (deleting it is its "revoke") is never the current one (the user's
//!   workload); otherwise it is either the one named in the spec, which the user asked to
//!   have replaced by choosing this kind, or a copy whose name carries this
//!   SecretRotation's marker **and** whose owner (`ownerId`) is the operator's identity.
//!
//! Every id taken from status goes through the same check before a revoke.

use super::observed::RemoteCredential;
use crate::api::secret_rotation::CredentialRef;

/// Whether `credential` may be revoked by this SecretRotation, whose credentials are API
/// keys when `api_key`; `identity` is the user the operator authenticates as, `recorded`
/// what status says about the credential (if it names it).
pub fn provably_ours(
    api_key: bool,
    credential: &RemoteCredential,
    identity: Option<&str>,
    recorded: Option<&CredentialRef>,
) -> bool {
    let Some(me) = identity.filter(|me| !me.is_empty()) else {
        return false;
    };
    if api_key {
        return credential.revision.is_some()
            && credential.active
            && credential.subject.as_deref() == Some(me)
            && credential.created_by.as_deref() == Some(me);
    }
    match credential.created_by.as_deref() {
        Some(by) => by == me,
        None => {
            let recorded = recorded.and_then(|r| r.created_at.as_ref()).map(|t| t.0);
            recorded.is_some() && recorded == credential.created_at
        }
    }
}

/// Whether the automation `credential` may be deleted by this SecretRotation: `original`
/// is the spec's automation id, `current` status' current one.
pub fn automation_deletable(
    credential: &RemoteCredential,
    identity: Option<&str>,
    original: &str,
    current: Option<&str>,
) -> bool {
    if current == Some(credential.id.as_str()) || !credential.active {
        return false;
    }
    if credential.id == original {
        return true;
    }
    let Some(me) = identity.filter(|me| !me.is_empty()) else {
        return false;
    };
    credential.revision.is_some() && credential.created_by.as_deref() == Some(me)
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn key(sub: &str, by: &str) -> RemoteCredential {
        RemoteCredential {
            id: "k".into(),
            revision: Some(1),
            active: true,
            created_at: None,
            expires_at: None,
            created_by: Some(by.into()),
            subject: Some(sub.into()),
        }
    }

    #[test]
    fn an_api_key_is_ours_only_with_marker_subject_creator_and_active_status() {
        let me = Some("op");
        assert!(provably_ours(true, &key("op", "op"), me, None));
        assert!(
            !provably_ours(true, &key("op", "op"), None, None),
            "identity unknown"
        );
        assert!(!provably_ours(true, &key("other", "other"), me, None));
        assert!(
            !provably_ours(true, &key("op", "other"), me, None),
            "made for us by another"
        );
        assert!(
            !provably_ours(true, &key("other", "op"), me, None),
            "made by us for another"
        );
        let unmarked = RemoteCredential {
            revision: None,
            ..key("op", "op")
        };
        assert!(!provably_ours(true, &unmarked, me, None));
        let expired = RemoteCredential {
            active: false,
            ..key("op", "op")
        };
        assert!(!provably_ours(true, &expired, me, None));
    }

    #[test]
    fn an_oauth_secret_is_ours_by_creator_or_else_by_its_recorded_creation_time() {
        let me = Some("op");
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let hint = |by: Option<&str>| RemoteCredential {
            id: "ab12".into(),
            revision: None,
            active: true,
            created_at: Some(at),
            expires_at: None,
            created_by: by.map(str::to_owned),
            subject: None,
        };
        assert!(provably_ours(false, &hint(Some("op")), me, None));
        assert!(!provably_ours(false, &hint(Some("admin")), me, None));
        let recorded = CredentialRef {
            id: None,
            hint: Some("ab12".into()),
            created_at: Some(Time(at)),
            expires_at: None,
            revoke_after: None,
        };
        assert!(provably_ours(false, &hint(None), me, Some(&recorded)));
        assert!(!provably_ours(false, &hint(None), me, None));
        let other_time = CredentialRef {
            created_at: Some(Time(at + jiff::SignedDuration::from_secs(1))),
            ..recorded
        };
        assert!(!provably_ours(false, &hint(None), me, Some(&other_time)));
    }

    #[test]
    fn an_automation_is_deleted_only_as_the_original_or_a_marked_copy_of_ours_never_current() {
        let automation = |id: &str, revision: Option<i64>, owner: &str| RemoteCredential {
            id: id.into(),
            revision,
            active: true,
            created_at: None,
            expires_at: None,
            created_by: Some(owner.into()),
            subject: None,
        };
        let me = Some("op");
        let deletable =
            |c: &RemoteCredential, current| automation_deletable(c, me, "orig", current);
        // The original, whoever owns it (the user chose this kind), unless it is current.
        assert!(deletable(&automation("orig", None, "alice"), Some("copy1")));
        assert!(!deletable(&automation("orig", None, "alice"), Some("orig")));
        // A marked copy made by the operator's identity.
        assert!(deletable(
            &automation("copy1", Some(1), "op"),
            Some("copy2")
        ));
        assert!(
            !deletable(&automation("copy2", Some(2), "op"), Some("copy2")),
            "never the current one"
        );
        assert!(
            !deletable(&automation("copy1", Some(1), "alice"), None),
            "a marked copy someone else owns"
        );
        assert!(
            !deletable(&automation("other", None, "op"), None),
            "an unmarked automation of the operator's"
        );
        assert!(!automation_deletable(
            &automation("copy1", Some(1), "op"),
            None,
            "orig",
            None
        ));
    }
}
