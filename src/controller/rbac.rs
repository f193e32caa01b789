//! Every Kubernetes permission the operator uses: the single source for the Helm chart's
//! RBAC (`charts/qlik-csp-operator/templates/_helpers.tpl`, `rbac.yaml`), the plain manifests
//! rendered from it (`deploy/`) and the README. No I/O.
//!
//! Each entry is a verb some code in `src/` calls (or a library it uses calls for it), and
//! nothing else: no `update` where only patches are sent, no `get` of an object only patched,
//! no `finalizers` subresource while no owner reference sets `blockOwnerDeletion`.
//!
//! `tests/helm_chart.rs` installs the chart on a real apiserver and checks, as the chart's
//! ServiceAccount, that each of these is allowed (SelfSubjectAccessReview) and that its
//! effective rules (SelfSubjectRulesReview) are exactly these, in both install modes and both
//! values of `rbac.rolloutTargets`; that the chart's bindings bind only its own roles to its
//! own ServiceAccount; and it runs the operator with that identity. A controller that starts
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

/// When the chart grants a permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Always: the operator cannot work without it.
    Always,
    /// Only with the chart value `rbac.rolloutTargets` (default `true`). Without it a
    /// cluster-wide install cannot restart every workload of the cluster, and a
    /// SecretRotation that lists `rolloutTargets` stalls with `KubernetesForbidden`.
    RolloutTargets,
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
    pub when: When,
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
        when: When::Always,
        used_by,
    }
}

/// The permissions the chart grants with `rbac.rolloutTargets` set to `rollout_targets`.
pub fn granted_with(rollout_targets: bool) -> impl Iterator<Item = &'static Permission> {
    REQUIRED_PERMISSIONS
        .iter()
        .filter(move |p| rollout_targets || p.when == When::Always)
}

/// Every (group, resource, verb, scope) the operator uses.
pub const REQUIRED_PERMISSIONS: &[Permission] = &[
    watched(
        "qlikops.io",
        "qliktenants",
        &["get", "list", "watch"],
        "tenant controller: watch tenants; csp-entry and secret-rotation controllers: watch or read an object's tenant",
    ),
    watched(
        "qlikops.io",
        "qliktenants/status",
        &["patch"],
        "tenant controller: conditions, observedGeneration, published header (merge patch)",
    ),
    watched(
        "qlikops.io",
        "cspentries",
        &["get", "list", "watch", "patch"],
        "csp-entry controller: watch entries, re-read one before acting; add/remove its finalizer (merge patch); tenant controller: list a tenant's entries",
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
        "secret-rotation controller: watch rotations, re-read one before acting; its finalizer",
    ),
    watched(
        "qlikops.io",
        "secretrotations/status",
        &["update"],
        "secret-rotation controller: the state machine's phase, written with a resourceVersion-guarded update so a stale copy never repeats a step",
    ),
    watched(
        "",
        "configmaps",
        &["get", "list", "watch", "create", "patch"],
        "tenant controller: read and server-side apply the header ConfigMap (apply creates it: `create`); watch the ones it manages",
    ),
    watched(
        "networking.k8s.io",
        "ingresses",
        &["list", "watch", "patch"],
        "tenant controller: bump qlikops.io/header-sha256 on Ingresses serving the header",
    ),
    watched(
        "gateway.networking.k8s.io",
        "httproutes",
        &["get", "patch"],
        "tenant controller: read an opted-in HTTPRoute target and JSON-patch its header entries (resourceVersion-guarded)",
    ),
    watched(
        "traefik.io",
        "middlewares",
        &["get", "patch"],
        "tenant controller: read an opted-in Middleware target and server-side apply its CSP fields",
    ),
    watched(
        "",
        "secrets",
        &["get", "create", "patch"],
        "tenant clients read a tenant's credential; secret-rotation reads its Secret and server-side applies the rotated credential (apply creates it: `create`)",
    ),
    Permission {
        when: When::RolloutTargets,
        ..watched(
            "apps",
            "deployments",
            &["patch"],
            "secret-rotation controller: restart rollout targets (merge patch of a pod-template annotation)",
        )
    },
    Permission {
        when: When::RolloutTargets,
        ..watched(
            "apps",
            "statefulsets",
            &["patch"],
            "secret-rotation controller: restart rollout targets (merge patch of a pod-template annotation)",
        )
    },
    Permission {
        when: When::RolloutTargets,
        ..watched(
            "apps",
            "daemonsets",
            &["patch"],
            "secret-rotation controller: restart rollout targets (merge patch of a pod-template annotation)",
        )
    },
    watched(
        "events.k8s.io",
        "events",
        &["create", "patch"],
        "every controller: events on its resources (kube::runtime::events::Recorder writes events.k8s.io/v1 only; core/v1 readers see them too)",
    ),
    Permission {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "create", "patch"],
        scope: Scope::OperatorNamespace,
        when: When::Always,
        used_by: "leader election: the Lease only one replica holds (kube-lease-manager creates it, renews and releases it by patch; the operator reads it to confirm it still leads)",
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
    fn nothing_is_granted_that_only_a_patch_or_an_apply_uses() {
        // Every write is a patch (merge or server-side apply) except the SecretRotation's
        // status, which is replaced with its resourceVersion; a `get` of a workload was
        // never needed to patch it.
        for permission in REQUIRED_PERMISSIONS {
            let update = permission.verbs.contains(&"update");
            assert_eq!(
                update,
                permission.resource == "secretrotations/status",
                "{}/{}",
                permission.group,
                permission.resource
            );
        }
        for permission in REQUIRED_PERMISSIONS.iter().filter(|p| p.group == "apps") {
            assert_eq!(permission.verbs, ["patch"], "{}", permission.resource);
            assert_eq!(permission.when, When::RolloutTargets);
        }
    }

    #[test]
    fn without_rollout_targets_no_workload_can_be_patched() {
        assert!(granted_with(false).all(|p| p.group != "apps"));
        assert_eq!(granted_with(true).count(), REQUIRED_PERMISSIONS.len());
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
