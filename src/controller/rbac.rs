//! Every Kubernetes permission the operator uses: the single source for the Helm chart's
//! RBAC (`charts/qlik-csp-operator/templates/_helpers.tpl`, `rbac.yaml`), the plain manifests
//! rendered from it (`deploy/`) and the README.
//!
//! `tests/helm_chart.rs` installs the chart on a real apiserver and checks, as the chart's
//! ServiceAccount, that each of these is allowed (SelfSubjectAccessReview) in both install
//! modes, and that the chart grants nothing that is not listed here. A controller that starts
//! using a new verb adds it here first; the test then fails until the chart grants it.

/// Where a permission is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// In every watched namespace: cluster-wide with the default install, a Role per
    /// namespace with `watchNamespaces`.
    Watched,
    /// Only in the namespace the operator runs in (`POD_NAMESPACE`).
    OperatorNamespace,
}

/// One resource and the verbs used on it.
#[derive(Clone, Copy, Debug)]
pub struct Permission {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Plural resource name, with `/subresource` where the verb applies to one.
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    pub scope: Scope,
    /// Which part of the operator needs it and why.
    pub used_by: &'static str,
}

impl Permission {
    /// The resource and subresource, split for an access review.
    pub fn resource_and_subresource(&self) -> (&'static str, Option<&'static str>) {
        match self.resource.split_once('/') {
            Some((resource, subresource)) => (resource, Some(subresource)),
            None => (self.resource, None),
        }
    }
}

const fn watched(
    group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
    used_by: &'static str,
) -> Permission {
    Permission {
        group,
        resource,
        verbs,
        scope: Scope::Watched,
        used_by,
    }
}

/// Every (group, resource, verb, scope) the operator uses.
pub const REQUIRED_PERMISSIONS: &[Permission] = &[
    watched(
        "qlikops.io",
        "qliktenants",
        &["get", "list", "watch"],
        "tenant and csp-entry controllers: watch tenants; read an entry's tenant",
    ),
    watched(
        "qlikops.io",
        "qliktenants/status",
        &["patch"],
        "tenant controller: conditions, observedGeneration, published header",
    ),
    watched(
        "qlikops.io",
        "qliktenants/finalizers",
        &["update"],
        "tenant controller: the header ConfigMap's controller owner reference (blockOwnerDeletion)",
    ),
    watched(
        "qlikops.io",
        "cspentries",
        &["get", "list", "watch", "patch"],
        "csp-entry controller: watch entries; add/remove its finalizer (merge patch)",
    ),
    watched(
        "qlikops.io",
        "cspentries/status",
        &["patch"],
        "csp-entry controller: conditions, remote id, observedGeneration",
    ),
    watched(
        "qlikops.io",
        "secretrotations",
        &["get", "list", "watch", "patch"],
        "secret-rotation controller: watch rotations; its finalizer",
    ),
    watched(
        "qlikops.io",
        "secretrotations/status",
        &["update", "patch"],
        "secret-rotation controller: the state machine's phase, written with a resourceVersion-guarded update so a stale copy never repeats a step",
    ),
    watched(
        "qlikops.io",
        "secretrotations/finalizers",
        &["update"],
        "secret-rotation controller: owner reference on the Secret it creates",
    ),
    watched(
        "",
        "configmaps",
        &["get", "list", "watch", "create", "patch"],
        "tenant controller: read and server-side apply the header ConfigMap; watch the owned ones",
    ),
    watched(
        "networking.k8s.io",
        "ingresses",
        &["list", "watch", "patch"],
        "tenant controller: bump qlikops.io/header-sha256 on Ingresses serving the header",
    ),
    watched(
        "",
        "secrets",
        &["get", "create", "patch", "update"],
        "tenant clients read a tenant's credential; secret-rotation writes the rotated one",
    ),
    watched(
        "apps",
        "deployments",
        &["get", "patch"],
        "secret-rotation controller: restart rollout targets (pod-template annotation)",
    ),
    watched(
        "apps",
        "statefulsets",
        &["get", "patch"],
        "secret-rotation controller: restart rollout targets (pod-template annotation)",
    ),
    watched(
        "apps",
        "daemonsets",
        &["get", "patch"],
        "secret-rotation controller: restart rollout targets (pod-template annotation)",
    ),
    watched(
        "events.k8s.io",
        "events",
        &["create", "patch"],
        "every controller: events on its resources (kube::runtime::events::Recorder)",
    ),
    watched(
        "",
        "events",
        &["create", "patch"],
        "every controller: events, for clients that read core/v1 events",
    ),
    Permission {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "create", "update", "patch"],
        scope: Scope::OperatorNamespace,
        used_by: "leader election: the Lease only one replica holds",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_resource_is_listed_once_with_unique_verbs() {
        for (i, a) in REQUIRED_PERMISSIONS.iter().enumerate() {
            for b in &REQUIRED_PERMISSIONS[i + 1..] {
                assert!(
                    (a.group, a.resource) != (b.group, b.resource),
                    "{}/{} is listed twice",
                    a.group,
                    a.resource
                );
            }
            let mut verbs = a.verbs.to_vec();
            verbs.sort_unstable();
            verbs.dedup();
            assert_eq!(verbs.len(), a.verbs.len(), "{}: duplicate verb", a.resource);
        }
    }

    #[test]
    fn secrets_are_never_listed_or_watched() {
        // The operator reads only the Secrets its resources name; list/watch would let it
        // read every Secret in every watched namespace.
        let secrets = REQUIRED_PERMISSIONS
            .iter()
            .find(|p| p.group.is_empty() && p.resource == "secrets")
            .map(|p| p.verbs)
            .unwrap_or_default();
        assert!(!secrets.contains(&"list") && !secrets.contains(&"watch"));
    }

    #[test]
    fn subresources_split() {
        let status = watched("qlikops.io", "cspentries/status", &["patch"], "");
        assert_eq!(
            status.resource_and_subresource(),
            ("cspentries", Some("status"))
        );
    }
}
