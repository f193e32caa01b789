//! Whether a `QlikTenant` may write its header into the ConfigMap its `spec.header` names,
//! and how. Pure: the caller passes the ConfigMap's metadata (if it exists) and the
//! tenants of the namespace that name it.
//!
//! The rule (see [`crate::api::ownership`]): the operator writes into a ConfigMap it
//! created for this tenant (its managed-by label and a controller owner reference to the
//! tenant), into one whose owner opted in with `qlikops.io/allow-header-from: <tenant>`
//! (then only the key and the SHA-256 annotation, and never an owner reference), or creates
//! it when it is missing. Anything else is `ConfigMapNotOwned` and nothing is written.
//!
//! A ConfigMap has at most one holder, so two tenants naming one ConfigMap cannot write in
//! turn: the tenant it was created for, or the one its opt-in annotation names, holds it;
//! when it does not exist yet, the oldest claimant (creation time, then name) creates it.
//! Every other claimant reports `ConfigMapConflict`. Both sides reach the same answer from
//! the same observation, so the outcome is stable; and once a ConfigMap is held, its holder
//! keeps it, even against an older tenant the controller had not seen yet when it created
//! the ConfigMap (handing it over would mean rewriting another tenant's owner reference).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::api::ownership::{ALLOW_HEADER_FROM, MANAGED_BY, MANAGED_BY_LABEL};

/// A `QlikTenant` naming the ConfigMap, as far as the decision needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant {
    pub name: String,
    pub uid: String,
    pub created: Option<Time>,
}

impl Claimant {
    /// The order of precedence: older first, then by name.
    fn precedence(&self) -> (Option<jiff::Timestamp>, &str) {
        (self.created.as_ref().map(|t| t.0), &self.name)
    }
}

/// What the tenant may do with the ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// It does not exist and this tenant comes first: create it (managed-by label, controller
    /// owner reference to the tenant).
    Create,
    /// The operator created it for this tenant: keep it current.
    Owned,
    /// Its owner opted in for this tenant: write only the key and the annotation.
    OptedIn,
    /// Not this tenant's to write: nothing is written.
    NotOwned { why: String },
    /// Another tenant naming it holds it (or comes first): nothing is written.
    Conflict { holder: String },
}

/// Who holds an existing ConfigMap.
#[derive(Debug, PartialEq, Eq)]
enum Holder<'a> {
    /// Created by the operator for the QlikTenant with this uid (and name).
    Created {
        uid: &'a str,
        name: &'a str,
    },
    /// Its owner opted in for the QlikTenant of this name.
    OptedIn {
        name: &'a str,
    },
    Nobody,
}

fn holder(meta: &ObjectMeta) -> Holder<'_> {
    let labelled = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY);
    let controller = meta.owner_references.iter().flatten().find(|o| {
        o.controller == Some(true)
            && o.kind == "QlikTenant"
            && o.api_version.split('/').next() == Some("qlikops.io")
    });
    if labelled && let Some(owner) = controller {
        return Holder::Created {
            uid: &owner.uid,
            name: &owner.name,
        };
    }
    match meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(ALLOW_HEADER_FROM))
        .map(|v| v.trim())
    {
        Some(name) if !name.is_empty() => Holder::OptedIn { name },
        _ => Holder::Nobody,
    }
}

/// Decides for `me` given the ConfigMap's metadata (`None`: it does not exist) and every
/// tenant of the namespace that names it (`me` among them or not).
pub fn decide(config_map: Option<&ObjectMeta>, me: &Claimant, claimants: &[Claimant]) -> Claim {
    let Some(meta) = config_map else {
        let first = claimants
            .iter()
            .chain(std::iter::once(me))
            .min_by(|a, b| a.precedence().cmp(&b.precedence()))
            .unwrap_or(me);
        return if first.uid == me.uid {
            Claim::Create
        } else {
            Claim::Conflict {
                holder: first.name.clone(),
            }
        };
    };
    let rival = |holds: &dyn Fn(&Claimant) -> bool| {
        claimants
            .iter()
            .find(|c| c.uid != me.uid && holds(c))
            .map(|c| Claim::Conflict {
                holder: c.name.clone(),
            })
    };
    match holder(meta) {
        Holder::Created { uid, .. } if uid == me.uid => Claim::Owned,
        Holder::Created { uid, name } => rival(&|c| c.uid == uid).unwrap_or_else(|| {
            Claim::NotOwned {
                why: format!(
                    "it was created for another QlikTenant {name:?} (uid {uid}) that does not name it any more"
                ),
            }
        }),
        Holder::OptedIn { name } if name == me.name => Claim::OptedIn,
        Holder::OptedIn { name } => rival(&|c| c.name == name).unwrap_or_else(|| {
            Claim::NotOwned {
                why: format!("its annotation {ALLOW_HEADER_FROM} names QlikTenant {name:?}"),
            }
        }),
        Holder::Nobody => Claim::NotOwned {
            why: format!(
                "the operator did not create it; to have the header written into it, annotate it with {ALLOW_HEADER_FROM}: {}",
                me.name
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    fn tenant(name: &str, created: i64) -> Claimant {
        Claimant {
            name: name.into(),
            uid: format!("uid-{name}"),
            created: Some(Time(jiff::Timestamp::from_second(created).unwrap())),
        }
    }

    fn created_for(owner: &Claimant, labelled: bool) -> ObjectMeta {
        ObjectMeta {
            labels: labelled
                .then(|| BTreeMap::from([(MANAGED_BY_LABEL.into(), MANAGED_BY.into())])),
            owner_references: Some(vec![OwnerReference {
                api_version: "qlikops.io/v1alpha1".into(),
                kind: "QlikTenant".into(),
                name: owner.name.clone(),
                uid: owner.uid.clone(),
                controller: Some(true),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        }
    }

    fn opted_in(name: &str) -> ObjectMeta {
        ObjectMeta {
            annotations: Some(BTreeMap::from([(ALLOW_HEADER_FROM.into(), name.into())])),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn a_missing_config_map_is_created_by_the_oldest_claimant_only() {
        let (old, young) = (tenant("zeta", 100), tenant("alpha", 200));
        let both = [old.clone(), young.clone()];
        assert_eq!(decide(None, &old, &both), Claim::Create);
        assert_eq!(
            decide(None, &young, &both),
            Claim::Conflict {
                holder: "zeta".into()
            }
        );
        assert_eq!(decide(None, &young, &[]), Claim::Create, "alone");
    }

    #[test]
    fn created_in_the_same_second_the_name_decides() {
        let (a, b) = (tenant("a", 100), tenant("b", 100));
        let both = [b.clone(), a.clone()];
        assert_eq!(decide(None, &a, &both), Claim::Create);
        assert_eq!(
            decide(None, &b, &both),
            Claim::Conflict { holder: "a".into() }
        );
    }

    #[test]
    fn a_users_config_map_is_not_owned_and_says_how_to_opt_in() {
        let me = tenant("acme", 100);
        let Claim::NotOwned { why } = decide(Some(&ObjectMeta::default()), &me, &[]) else {
            panic!("a user's ConfigMap must not be written");
        };
        assert!(why.contains("qlikops.io/allow-header-from: acme"), "{why}");
    }

    #[test]
    fn the_opt_in_must_name_this_tenant() {
        let me = tenant("acme", 100);
        assert_eq!(decide(Some(&opted_in("acme")), &me, &[]), Claim::OptedIn);
        assert_eq!(decide(Some(&opted_in(" acme ")), &me, &[]), Claim::OptedIn);
        assert!(matches!(
            decide(Some(&opted_in("globex")), &me, &[]),
            Claim::NotOwned { .. }
        ));
        assert!(matches!(
            decide(Some(&opted_in("")), &me, &[]),
            Claim::NotOwned { .. }
        ));
    }

    #[test]
    fn only_a_config_map_created_for_this_very_tenant_is_owned() {
        let me = tenant("acme", 100);
        assert_eq!(
            decide(Some(&created_for(&me, true)), &me, &[]),
            Claim::Owned
        );
        // Without the label it is not the operator's: an owner reference alone proves nothing.
        assert!(matches!(
            decide(Some(&created_for(&me, false)), &me, &[]),
            Claim::NotOwned { .. }
        ));
        // A former tenant of the same name (deleted and created again) is another tenant.
        let former = Claimant {
            uid: "uid-old".into(),
            ..me.clone()
        };
        let Claim::NotOwned { why } = decide(Some(&created_for(&former, true)), &me, &[]) else {
            panic!("another tenant's ConfigMap must not be written");
        };
        assert!(why.contains("uid-old"), "{why}");
    }

    #[test]
    fn the_holder_keeps_the_config_map_whatever_the_rivals_age() {
        let (old, young) = (tenant("old", 100), tenant("young", 200));
        let both = [old.clone(), young.clone()];
        let held_by_young = created_for(&young, true);
        assert_eq!(decide(Some(&held_by_young), &young, &both), Claim::Owned);
        assert_eq!(
            decide(Some(&held_by_young), &old, &both),
            Claim::Conflict {
                holder: "young".into()
            }
        );
        let opted_for_young = opted_in("young");
        assert_eq!(
            decide(Some(&opted_for_young), &young, &both),
            Claim::OptedIn
        );
        assert_eq!(
            decide(Some(&opted_for_young), &old, &both),
            Claim::Conflict {
                holder: "young".into()
            }
        );
    }

    #[test]
    fn an_operator_created_config_map_ignores_an_opt_in_for_another_tenant() {
        // Otherwise the creator and the named tenant would both write, in turn.
        let (creator, named) = (tenant("creator", 100), tenant("named", 200));
        let both = [creator.clone(), named.clone()];
        let mut meta = created_for(&creator, true);
        meta.annotations = opted_in("named").annotations;
        assert_eq!(decide(Some(&meta), &creator, &both), Claim::Owned);
        assert_eq!(
            decide(Some(&meta), &named, &both),
            Claim::Conflict {
                holder: "creator".into()
            }
        );
    }
}
