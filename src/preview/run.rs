//! The `plan` command's I/O: read the manifests, list the tenant's entries, preview. The
//! decisions are in the parent module.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{Input, Preview, Tracked, preview};
use crate::api::{CspEntry, DeletionPolicy, TenantKey};
use crate::manifests::{self, Manifests, Problem};
use crate::tenant::environment::{self, EnvironmentError};

/// What `plan` was asked.
#[derive(Clone, Debug)]
pub struct PlanArgs {
    pub paths: Vec<PathBuf>,
    /// The tenant's URL; by default the QlikTenant manifest's `spec.url`.
    pub tenant_url: Option<String>,
    /// `namespace/name` of the QlikTenant, needed when the manifests name several.
    pub tenant: Option<String>,
    /// Extra CA certificates (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Read the tenant's CspEntries from the current kubeconfig context (get and list).
    pub cluster: bool,
}

/// Why `plan` could not preview.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the manifests have problems:\n{}", list(.0))]
    Manifests(Vec<Problem>),
    #[error("no CspEntry in the input")]
    NoEntries,
    #[error("the manifests name several tenants ({}): choose one with --tenant namespace/name", .0.join(", "))]
    SeveralTenants(Vec<String>),
    #[error("no CspEntry of tenant {0} in the input")]
    NoSuchTenant(String),
    #[error("no tenant URL: pass --tenant-url, or include the QlikTenant manifest")]
    NoUrl,
    #[error(
        "QlikTenant {0} is a client-managed site: it holds no CSP entries (`render` shows the header it gets)"
    )]
    ClientManaged(String),
    #[error(transparent)]
    Environment(#[from] EnvironmentError),
    #[error("failed to list the tenant's CSP entries")]
    List(#[source] crate::tenant::Error),
    #[error("failed to read the CspEntries from the cluster (the current kubeconfig context)")]
    Cluster(#[source] kube::Error),
}

fn list(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    lines.join("\n")
}

/// Reads the manifests and the tenant and previews what applying them would do.
pub async fn run(args: &PlanArgs) -> Result<Preview, PlanError> {
    let manifests = manifests::read_paths(&args.paths).map_err(PlanError::Manifests)?;
    let input = input(&manifests, args)?;
    let credential = environment::process_credential()?;
    let client = environment::client(&input.url, args.ca_file.as_deref(), credential)?;
    let remote = client.list_csp_origins().await.map_err(PlanError::List)?;
    let cluster = if args.cluster {
        Some(cluster_entries(&input.namespace, &input.tenant).await?)
    } else {
        None
    };
    let input = Input {
        remote,
        cluster,
        ..input
    };
    Ok(preview(&input, jiff::Timestamp::now()))
}

/// The tenant's CspEntries in its namespace, from the current kubeconfig context.
async fn cluster_entries(namespace: &str, tenant: &str) -> Result<Vec<Tracked>, PlanError> {
    let client = kube::Client::try_default()
        .await
        .map_err(PlanError::Cluster)?;
    let api: kube::Api<CspEntry> = kube::Api::namespaced(client, namespace);
    let listed = api
        .list(&Default::default())
        .await
        .map_err(PlanError::Cluster)?;
    Ok(listed
        .items
        .into_iter()
        .filter(|e| e.spec.tenant_ref.name == tenant)
        .map(|e| Tracked {
            name: e.metadata.name.unwrap_or_default(),
            id: e.status.and_then(|s| s.id),
            orphan: e.spec.deletion_policy == DeletionPolicy::Orphan,
        })
        .collect())
}

/// The tenant's manifests, without its live entries yet.
fn input(manifests: &Manifests, args: &PlanArgs) -> Result<Input, PlanError> {
    let tenants: BTreeSet<TenantKey> = manifests
        .entries
        .iter()
        .map(|e| Manifests::entry_tenant(&e.object))
        .collect();
    let key = match &args.tenant {
        Some(wanted) => {
            let (namespace, name) = wanted.split_once('/').unwrap_or(("default", wanted));
            (namespace.to_owned(), name.to_owned())
        }
        None => match tenants.len() {
            0 => return Err(PlanError::NoEntries),
            1 => tenants.iter().next().cloned().ok_or(PlanError::NoEntries)?,
            _ => {
                let names = tenants.iter().map(|(ns, n)| format!("{ns}/{n}")).collect();
                return Err(PlanError::SeveralTenants(names));
            }
        },
    };
    let label = format!("{}/{}", key.0, key.1);
    if !tenants.contains(&key) {
        return Err(PlanError::NoSuchTenant(label));
    }
    let tenant_manifest = manifests
        .tenants
        .iter()
        .map(|t| &t.object)
        .find(|t| Manifests::tenant_key(t) == key)
        .cloned();
    if tenant_manifest
        .as_ref()
        .is_some_and(|t| t.spec.is_client_managed())
    {
        return Err(PlanError::ClientManaged(label));
    }
    let url = args
        .tenant_url
        .clone()
        .or_else(|| tenant_manifest.as_ref().and_then(|t| t.spec.url.clone()))
        .ok_or(PlanError::NoUrl)?;
    let entries = manifests
        .entries
        .iter()
        .map(|e| &e.object)
        .filter(|e| Manifests::entry_tenant(e) == key)
        .cloned()
        .collect();
    Ok(Input {
        namespace: key.0,
        tenant: key.1,
        url,
        entries,
        tenant_manifest,
        remote: Vec::new(),
        cluster: None,
    })
}
