//! Cleanup when a SecretRotation is deleted: its finalizer holds the deletion until the
//! credentials it created and nobody can use any more are revoked (an OAuth client secret
//! never expires and a client holds only 5): the previous one once its `revokeAfter` has
//! passed (consumers still cutting across keep working until then), a created credential
//! whose Secret write never succeeded, stray API keys (or automation copies) of this
//! SecretRotation, and the current one only when its Secret goes too (owned by the
//! SecretRotation) or is gone already: a Secret of the user's (the QlikTenant's own, for a
//! self-rotation) keeps a working credential. The current automation is never deleted,
//! whatever happens to the Secret: it is the user's workload. Each is revoked only when
//! provably the operator's ([`super::proof`]). A tenant that is gone or refuses the
//! operator does not hold the deletion forever.

use jiff::Timestamp;
use kube::api::Api;
use kube::runtime::events::Recorder;
use kube::{Resource, ResourceExt};

use super::act;
use super::automation;
use super::failure::{self, Error};
use super::held::Held;
use super::observe;
use super::observed::{FailureKind, Kind, Note, Remote, RemoteCredential};
use super::proof::{automation_deletable, provably_ours};
use super::record;
use super::step::handle;
use crate::api::secret_rotation::{CredentialRef, SecretRotationStatus};
use crate::api::{QlikTenant, SecretRotation};
use crate::controller::Shared;
use crate::controller::own_writes;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Holds a SecretRotation until its credentials are revoked.
pub const FINALIZER: &str = "qlikops.io/secret-rotation";

pub fn has_finalizer(object: &SecretRotation) -> bool {
    object.finalizers().iter().any(|f| f == FINALIZER)
}

/// What status names for revoking when the SecretRotation goes (pure), or when to look
/// again: the previous credential (not before its `revokeAfter`), the created one whose
/// Secret write never succeeded, and the current one only when no Secret that stays
/// holds it.
pub fn to_revoke(
    status: &SecretRotationStatus,
    secret_stays: bool,
    now: Timestamp,
) -> Result<Vec<CredentialRef>, Timestamp> {
    let mut refs = Vec::new();
    if let Some(previous) = status.previous.as_ref().filter(|p| handle(p).is_some()) {
        if let Some(at) = previous.revoke_after.as_ref().map(|t| t.0)
            && at > now
        {
            return Err(at);
        }
        refs.push(previous.clone());
    }
    if let Some(created) = status.pending.as_ref().and_then(|p| p.created.as_ref()) {
        refs.push(created.clone());
    }
    if !secret_stays && let Some(current) = &status.current {
        refs.push(current.clone());
    }
    refs.retain(|r| handle(r).is_some());
    Ok(refs)
}

/// Of `named` (and, for API keys and automations, every one carrying this
/// SecretRotation's marker except the current one when it stays), what is provably ours
/// and still active: the ids to revoke, and those left alone because they are not provably
/// ours. `original` is the automation the spec names.
pub fn select(
    kind: Kind,
    original: &str,
    named: &[CredentialRef],
    current_stays: Option<&str>,
    remote: &Remote,
    identity: &str,
) -> (Vec<String>, Vec<String>) {
    let proven = |credential: &RemoteCredential, recorded: Option<&CredentialRef>| match kind {
        Kind::AutomationToken => {
            automation_deletable(credential, Some(identity), original, current_stays)
        }
        kind => provably_ours(kind == Kind::ApiKey, credential, Some(identity), recorded),
    };
    let (mut revoke, mut refused) = (Vec::new(), Vec::new());
    let mut consider = |credential: &RemoteCredential, recorded: Option<&CredentialRef>| {
        if !credential.active || revoke.contains(&credential.id) || refused.contains(&credential.id)
        {
            return;
        }
        if proven(credential, recorded) {
            revoke.push(credential.id.clone());
        } else {
            refused.push(credential.id.clone());
        }
    };
    for recorded in named {
        if let Some(found) = handle(recorded).and_then(|id| remote.find(id)) {
            consider(found, Some(recorded));
        }
    }
    if kind != Kind::OAuthClientSecret {
        for credential in &remote.credentials {
            let stays = current_stays == Some(credential.id.as_str());
            let marked = credential.revision.is_some();
            if !stays && marked && proven(credential, None) {
                consider(credential, None);
            }
        }
    }
    (revoke, refused)
}

pub async fn add(shared: &Shared, object: &SecretRotation) -> Result<(), Error> {
    set(shared, object, true).await
}

/// Revokes what must go, then lets the deletion proceed; or says when to look again (the
/// previous credential's grace period is not over).
pub async fn finalize(
    shared: &Shared,
    recorder: &Recorder,
    held: &Held,
    object: &SecretRotation,
    now: Timestamp,
) -> Result<Option<Timestamp>, Error> {
    if !has_finalizer(object) {
        return Ok(None);
    }
    let namespace = object.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(shared.kube.clone(), &namespace);
    let secret = secrets
        .get_opt(&object.spec.secret.name)
        .await
        .map_err(|source| Error::ReadSecret {
            name: object.spec.secret.name.clone(),
            source,
        })?;
    let kind = Kind::of(&object.spec);
    // The current automation is the user's workload: it stays, whatever the Secret does.
    let secret_stays = kind == Kind::AutomationToken
        || secret.as_ref().is_some_and(|s| !super::owned_by(s, object));
    let mut status = object.status.clone().unwrap_or_default();
    let uid = object.meta().uid.clone().unwrap_or_default();
    // A credential whose status write failed too is known only here.
    let held_now = status
        .pending
        .as_ref()
        .and_then(|p| held.facts(&uid, p.revision));
    if let (Some(pending), Some(held_now)) = (status.pending.as_mut(), held_now) {
        let by_id = kind.named_by_id();
        pending.created.get_or_insert(CredentialRef {
            id: by_id.then(|| held_now.id.clone()),
            hint: (!by_id).then(|| held_now.id.clone()),
            created_at: held_now.created_at.map(Time),
            expires_at: None,
            revoke_after: None,
        });
    }
    let named = match to_revoke(&status, secret_stays, now) {
        Ok(named) => named,
        Err(at) => return Ok(Some(at)),
    };
    let current_stays = status
        .current
        .as_ref()
        .and_then(handle)
        .filter(|_| secret_stays);
    // API keys and automations: strays with the marker are looked for too, once anything
    // may have been created.
    let marked = kind != Kind::OAuthClientSecret;
    let started = status.revision > 0 || status.pending.is_some();
    if !named.is_empty() || (marked && started) {
        let note = match revoke_all(shared, object, &named, current_stays).await {
            Ok(None) => None,
            Ok(Some(note)) => Some(note),
            Err(f) if f.kind == FailureKind::Transient => return Err(Error::Cleanup(f.message)),
            Err(f) => Some(Note {
                warning: true,
                reason: f.reason,
                message: format!(
                    "left what this SecretRotation created on the tenant: {}",
                    f.message
                ),
            }),
        };
        if let Some(note) = note {
            record::publish_notes(recorder, object, &[note]).await;
        }
    }
    held.forget(&uid);
    set(shared, object, false).await?;
    Ok(None)
}

/// Revokes what [`select`] allows; says what it did (or refused).
async fn revoke_all(
    shared: &Shared,
    object: &SecretRotation,
    named: &[CredentialRef],
    current_stays: Option<&str>,
) -> Result<Option<Note>, super::observed::Failure> {
    let namespace = object.namespace().unwrap_or_default();
    let kind = Kind::of(&object.spec);
    let tenants: Api<QlikTenant> = Api::namespaced(shared.kube.clone(), &namespace);
    let tenant = tenants
        .get_opt(&object.spec.tenant_ref.name)
        .await
        .map_err(|e| failure::from_kube("read the QlikTenant", &e, true))?
        .ok_or_else(|| failure::tenant_not_found(&namespace, &object.spec.tenant_ref.name))?;
    let client = shared
        .tenants
        .for_tenant(&shared.kube, &tenant)
        .await
        .map_err(|e| failure::from_access(&e))?;
    let (remote, me) = observe::remote_and_identity(&client, object).await?;
    let original = automation::original(object);
    let (revoke, refused) = select(kind, original, named, current_stays, &remote, &me);
    for id in &revoke {
        act::revoke(&client, object, id)
            .await
            .map_err(|e| failure::from_tenant(&e, kind))?;
    }
    let note = if !refused.is_empty() {
        Some(Note {
            warning: true,
            reason: failure::CREDENTIAL_NOT_OWNED,
            message: format!(
                "revoked {} on deletion; left {} alone: not provably this SecretRotation's",
                if revoke.is_empty() {
                    "nothing".to_owned()
                } else {
                    revoke.join(", ")
                },
                refused.join(", ")
            ),
        })
    } else if !revoke.is_empty() {
        Some(Note {
            warning: false,
            reason: "Revoked",
            message: format!("revoked {} on deletion", revoke.join(", ")),
        })
    } else {
        None
    };
    Ok(note)
}

/// Adds or removes the finalizer (see [`own_writes::set_finalizer`]).
async fn set(shared: &Shared, object: &SecretRotation, present: bool) -> Result<(), Error> {
    let api: Api<SecretRotation> =
        Api::namespaced(shared.kube.clone(), &object.namespace().unwrap_or_default());
    own_writes::set_finalizer(&api, object, FINALIZER, present)
        .await
        .map_err(Error::Finalizer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::secret_rotation::PendingRotation;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn reference(id: &str) -> CredentialRef {
        CredentialRef {
            id: Some(id.into()),
            hint: None,
            created_at: None,
            expires_at: None,
            revoke_after: None,
        }
    }

    fn ids(refs: &[CredentialRef]) -> Vec<&str> {
        refs.iter().filter_map(handle).collect()
    }

    #[test]
    fn a_secret_that_stays_keeps_its_credential_and_the_previous_one_goes_after_its_grace() {
        let status = SecretRotationStatus {
            current: Some(reference("k2")),
            previous: Some(CredentialRef {
                revoke_after: Some(Time(at(1_000))),
                ..reference("k1")
            }),
            ..SecretRotationStatus::default()
        };
        assert_eq!(to_revoke(&status, true, at(999)), Err(at(1_000)));
        assert_eq!(
            ids(&to_revoke(&status, true, at(1_000)).unwrap()),
            vec!["k1"]
        );
        assert_eq!(
            ids(&to_revoke(&status, false, at(1_000)).unwrap()),
            vec!["k1", "k2"]
        );
        let bootstrap = SecretRotationStatus {
            current: Some(reference("k1")),
            previous: Some(CredentialRef {
                id: None,
                revoke_after: Some(Time(at(1_000))),
                ..reference("unused")
            }),
            ..SecretRotationStatus::default()
        };
        assert_eq!(
            ids(&to_revoke(&bootstrap, false, at(0)).unwrap()),
            vec!["k1"],
            "a value the operator did not create holds nothing up"
        );
        assert!(
            to_revoke(&SecretRotationStatus::default(), false, at(0))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_created_credential_whose_secret_write_failed_is_revoked_too() {
        let status = SecretRotationStatus {
            current: Some(reference("k1")),
            pending: Some(PendingRotation {
                revision: 2,
                created: Some(reference("k2")),
                ..PendingRotation::default()
            }),
            ..SecretRotationStatus::default()
        };
        assert_eq!(ids(&to_revoke(&status, true, at(0)).unwrap()), vec!["k2"]);
    }

    fn key(id: &str, revision: Option<i64>, owner: &str, active: bool) -> RemoteCredential {
        RemoteCredential {
            id: id.into(),
            revision,
            active,
            created_at: None,
            expires_at: None,
            created_by: Some(owner.into()),
            subject: Some(owner.into()),
        }
    }

    #[test]
    fn only_what_is_provably_ours_and_active_is_revoked() {
        let remote = Remote {
            credentials: vec![
                key("k1", Some(1), "op", true),
                key("k2", Some(2), "op", true),
                key("stray", Some(1), "op", true),
                key("forged", Some(1), "mallory", true),
                key("expired", Some(1), "op", false),
            ],
            max_expiry: None,
        };
        // Status names k1 and the forged key; k2 stays in a Secret that stays.
        let named = [reference("k1"), reference("forged"), reference("gone")];
        let (revoke, refused) = select(Kind::ApiKey, "", &named, Some("k2"), &remote, "op");
        assert_eq!(revoke, vec!["k1".to_owned(), "stray".to_owned()]);
        assert_eq!(refused, vec!["forged".to_owned()]);
    }

    #[test]
    fn a_deleted_automation_rotation_never_deletes_the_current_automation() {
        let automation = |id: &str, revision: Option<i64>, owner: &str| RemoteCredential {
            subject: None,
            expires_at: None,
            ..key(id, revision, owner, true)
        };
        let remote = Remote {
            credentials: vec![
                automation("orig", None, "alice"),
                automation("c1", Some(1), "op"),
                automation("c2", Some(2), "op"),
                automation("unpublished", Some(3), "op"),
                automation("theirs", Some(1), "alice"),
            ],
            max_expiry: None,
        };
        // The first rotation's grace: the original is previous. The current copy (c2 here,
        // as if status were behind) stays; marked copies of the operator's go.
        let status = SecretRotationStatus {
            current: Some(reference("c2")),
            previous: Some(reference("orig")),
            ..SecretRotationStatus::default()
        };
        let named = to_revoke(&status, true, at(0)).unwrap();
        assert_eq!(ids(&named), vec!["orig"]);
        let (revoke, refused) = select(
            Kind::AutomationToken,
            "orig",
            &named,
            Some("c2"),
            &remote,
            "op",
        );
        assert_eq!(
            revoke,
            vec!["orig".to_owned(), "c1".to_owned(), "unpublished".to_owned()]
        );
        assert!(refused.is_empty(), "{refused:?}");
        // Status naming the current one, however edited, changes nothing.
        let (revoke, _) = select(
            Kind::AutomationToken,
            "orig",
            &[reference("c2")],
            Some("c2"),
            &remote,
            "op",
        );
        assert!(!revoke.contains(&"c2".to_owned()), "{revoke:?}");
    }
}
