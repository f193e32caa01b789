//! The apply step of the `tenant` controller: writing a validated header where the edge
//! reads it: the ConfigMap (only one the tenant may write, see [`claim`](super::claim)),
//! the Ingresses that serve it, then the HTTPRoutes and Middlewares of
//! `spec.header.targets` ([`edge`]). Does I/O (apiserver).
//!
//! - A missing ConfigMap is created with `create` (never with an apply, which would merge
//!   into a ConfigMap someone created a moment earlier and give it an owner reference).
//! - One the operator created for this tenant is kept current with a forced server-side
//!   apply: it is the operator's, hand edits are drift.
//! - One whose owner opted in gets only the key and the SHA-256 annotation, applied
//!   without force: a key that another field manager holds is reported
//!   (`ConfigMapKeyConflict`), not taken, so the operator never fights another writer.
//! - Otherwise nothing is written, and the Ingresses are not touched either.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};

use super::claim::{self, Claim, Claimant};
use super::context::{CONTROLLER_NAME, Context};
use super::edge;
use super::error::Error;
use super::publication::{Facts, Publication};
use super::publish;
use crate::api::QlikTenant;
use crate::api::header::{HeaderSpec, TargetStatus};

/// What publishing did.
pub struct Published {
    /// The current policy's header.
    pub current: Facts,
    /// With `mode: Both`, the candidate policy's.
    pub candidate: Option<Facts>,
    /// The ConfigMap, when one is configured.
    pub config_map: Option<String>,
    pub config_map_written: bool,
    pub ingresses_bumped: Vec<String>,
    /// Each target of `spec.header.targets`, in order.
    pub targets: Vec<TargetStatus>,
    /// A client-managed site: each virtual proxy of `clientManaged.virtualProxyPrefixes`
    /// (set by the reconcile once the site is connected; until then what the status said).
    pub virtual_proxies: Vec<crate::api::client_managed::VirtualProxyStatus>,
}

/// Writes the publication into the ConfigMap (if configured, the tenant may, and it
/// differs), bumps the Ingresses serving it, then writes the header targets.
pub async fn publish_header(
    ctx: &Context,
    tenant: &QlikTenant,
    spec: &HeaderSpec,
    publication: Result<Publication, Error>,
) -> Result<Published, Error> {
    let namespace = tenant.namespace().ok_or(Error::InvalidObject)?;
    let namespace = namespace.as_str();
    // The CRD refuses such a key; one stored before it did must not reach ingress-nginx.
    if !crate::csp::policy::is_header_name(&spec.key) {
        return Err(Error::InvalidHeaderKey);
    }
    let publication = publication?;
    let current = publication.current().ok_or(Error::InvalidObject)?;
    let metrics = &ctx.shared.runtime.metrics;
    metrics.set_header_bytes(namespace, &tenant.name_any(), current.as_str().len());

    let (config_map_written, ingresses_bumped) = match &spec.config_map_name {
        Some(name) => {
            let written =
                write_config_map(ctx, tenant, namespace, name, spec, &publication).await?;
            let bumped = bump_ingresses(ctx, namespace, name, &publication.sha256()).await?;
            (written, bumped)
        }
        None => (false, Vec::new()),
    };
    let targets = edge::publish(ctx, tenant, spec, &publication).await;

    Ok(Published {
        current: Facts::of(current),
        candidate: publication.candidate().map(Facts::of),
        config_map: spec.config_map_name.clone(),
        config_map_written,
        ingresses_bumped,
        targets,
        virtual_proxies: Vec::new(),
    })
}

/// Annotates the Ingresses that serve ConfigMap `name` and lack `sha256`; their names.
async fn bump_ingresses(
    ctx: &Context,
    namespace: &str,
    name: &str,
    sha256: &str,
) -> Result<Vec<String>, Error> {
    let ingresses: Api<Ingress> = Api::namespaced(ctx.shared.kube.clone(), namespace);
    // Metadata only: the annotations are all that is read.
    let listed = ingresses
        .list_metadata(&ListParams::default())
        .await
        .map_err(|source| Error::ListIngresses {
            namespace: namespace.to_owned(),
            source,
        })?;
    let served = listed.items.iter().map(|ingress| &ingress.metadata);
    let to_bump = publish::ingresses_to_bump(served, namespace, name, sha256);
    let apply = PatchParams::apply(CONTROLLER_NAME).force();
    for ingress in &to_bump {
        let patch = publish::ingress_annotation_patch(namespace, ingress, sha256);
        ingresses
            .patch(ingress, &apply, &Patch::Apply(&patch))
            .await
            .map_err(|source| Error::AnnotateIngress {
                namespace: namespace.to_owned(),
                name: ingress.clone(),
                source,
            })?;
    }
    Ok(to_bump)
}

/// Writes the ConfigMap if the tenant may and it differs; whether it wrote. Fails with
/// `ConfigMapNotOwned` or `ConfigMapConflict` when it may not.
async fn write_config_map(
    ctx: &Context,
    tenant: &QlikTenant,
    namespace: &str,
    name: &str,
    spec: &HeaderSpec,
    publication: &Publication,
) -> Result<bool, Error> {
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.shared.kube.clone(), namespace);
    let me = claimant(tenant).ok_or(Error::InvalidObject)?;
    let claimants = claimants(ctx, namespace, name);
    let owned = spec.owned_names();
    let located = |source| (namespace.to_owned(), name.to_owned(), source);
    // Twice at most: a create that finds the ConfigMap created meanwhile decides again.
    for _ in 0..2 {
        let existing = config_maps.get_opt(name).await.map_err(|source| {
            let (namespace, name, source) = located(source);
            Error::ReadConfigMap {
                namespace,
                name,
                source,
            }
        })?;
        let decision = claim::decide(existing.as_ref().map(|c| &c.metadata), &me, &claimants);
        let needs_write = publish::config_map_needs_write(existing.as_ref(), publication, &owned);
        match decision {
            Claim::Create => {
                let owner = tenant
                    .controller_owner_ref(&())
                    .ok_or(Error::InvalidObject)?;
                let desired = publish::build_config_map(namespace, name, publication, Some(owner));
                let params = PostParams {
                    field_manager: Some(CONTROLLER_NAME.to_owned()),
                    ..PostParams::default()
                };
                match config_maps.create(&params, &desired).await {
                    Ok(_) => return Ok(true),
                    Err(kube::Error::Api(status)) if status.code == 409 => continue,
                    Err(source) => {
                        let (namespace, name, source) = located(source);
                        return Err(Error::CreateConfigMap {
                            namespace,
                            name,
                            source,
                        });
                    }
                }
            }
            Claim::Owned if needs_write => {
                let owner = tenant
                    .controller_owner_ref(&())
                    .ok_or(Error::InvalidObject)?;
                let desired = publish::build_config_map(namespace, name, publication, Some(owner));
                let apply = PatchParams::apply(CONTROLLER_NAME).force();
                config_maps
                    .patch(name, &apply, &Patch::Apply(&desired))
                    .await
                    .map_err(|source| {
                        let (namespace, name, source) = located(source);
                        Error::ApplyConfigMap {
                            namespace,
                            name,
                            source,
                        }
                    })?;
                return Ok(true);
            }
            Claim::OptedIn if needs_write => {
                let desired = publish::build_config_map(namespace, name, publication, None);
                let apply = PatchParams::apply(CONTROLLER_NAME);
                return match config_maps
                    .patch(name, &apply, &Patch::Apply(&desired))
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        Err(Error::ConfigMapKeyConflict {
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                            key: publication
                                .values()
                                .map(|(k, _)| k)
                                .collect::<Vec<_>>()
                                .join(", "),
                            detail: status.message.clone(),
                        })
                    }
                    Err(source) => {
                        let (namespace, name, source) = located(source);
                        Err(Error::ApplyConfigMap {
                            namespace,
                            name,
                            source,
                        })
                    }
                };
            }
            Claim::Owned | Claim::OptedIn => return Ok(false),
            Claim::NotOwned { why } => {
                return Err(Error::ConfigMapNotOwned {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    why,
                });
            }
            Claim::Conflict { holder } => {
                return Err(Error::ConfigMapConflict {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    holder,
                });
            }
        }
    }
    Err(Error::ConfigMapRace {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

/// A tenant as the ownership decision sees it; `None` without a uid (never from the
/// apiserver).
pub fn claimant(tenant: &QlikTenant) -> Option<Claimant> {
    Some(Claimant {
        name: tenant.name_any(),
        uid: tenant.uid()?,
        created: tenant.meta().creation_timestamp.clone(),
    })
}

/// The tenants in `namespace` (from the controller's store) whose header goes to ConfigMap
/// `name`. QlikTenants have no finalizer, so a deleted one has already left the store.
fn claimants(ctx: &Context, namespace: &str, name: &str) -> Vec<Claimant> {
    ctx.tenants
        .state()
        .iter()
        .filter(|t| names_config_map(t, namespace, name))
        .filter_map(|t| claimant(t))
        .collect()
}

/// Whether `tenant`'s header goes to ConfigMap `namespace/name`.
pub fn names_config_map(tenant: &QlikTenant, namespace: &str, name: &str) -> bool {
    tenant.metadata.namespace.as_deref() == Some(namespace)
        && tenant
            .spec
            .header
            .as_ref()
            .is_some_and(|h| h.config_map_name.as_deref() == Some(name))
}
