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
//! effective rules (SelfSubjectRulesReview) are exactly these, in both install modes and with
//! each of the chart's switches ([`ChartSwitches`]) on and off; that the chart's bindings bind
//! only its own roles to its own ServiceAccount; and it runs the operator with that identity.
//! A controller that starts using a new verb adds it here first; the test then fails until
//! the chart grants it.

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
    /// Only with the chart value `secretPush.watchSecrets` (default `false`), which also
    /// runs the operator with `WATCH_PUSH_SECRETS=true`. RBAC can restrict neither a list to
    /// a label nor to metadata: the grant is list/watch of every Secret, values included.
    WatchPushSecrets,
}

/// The chart values that add permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChartSwitches {
    /// `rbac.rolloutTargets`.
    pub rollout_targets: bool,
    /// `secretPush.watchSecrets`.
    pub watch_push_secrets: bool,
}

impl ChartSwitches {
    /// The chart's default values.
    pub const DEFAULTS: ChartSwitches = ChartSwitches {
        rollout_targets: true,
        watch_push_secrets: false,
    };
    /// Every switch on: every permission.
    pub const ALL: ChartSwitches = ChartSwitches {
        rollout_targets: true,
        watch_push_secrets: true,
    };

    /// Whether the chart grants a permission needed `when`.
    pub fn grant(self, when: When) -> bool {
        match when {
            When::Always => true,
            When::RolloutTargets => self.rollout_targets,
            When::WatchPushSecrets => self.watch_push_secrets,
        }
    }
}

impl Default for ChartSwitches {
    fn default() -> ChartSwitches {
        ChartSwitches::DEFAULTS
    }
}

/// The digest key's Secret, in the operator's namespace: the only object the operator reads
/// there by name (`resourceNames`). The SecretPush controller's `digest::KEY_SECRET_NAME`.
pub const PUSH_DIGEST_KEY_SECRET: &str = "qlik-csp-operator-push-digest-key";

/// One resource and the verbs used on it.
#[derive(Clone, Copy, Debug)]
pub struct Permission {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Plural resource name, with `/subresource` where the verb applies to one.
    pub resource: &'static str,
    /// Only these objects (`resourceNames`); empty: every object. Never with `create` (or
    /// `list`/`watch`): RBAC cannot restrict those by name.
    pub resource_names: &'static [&'static str],
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
        resource_names: &[],
        verbs,
        scope: Scope::Watched,
        when: When::Always,
        used_by,
    }
}

const fn operator_namespace(
    group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
    used_by: &'static str,
) -> Permission {
    Permission {
        scope: Scope::OperatorNamespace,
        ..watched(group, resource, verbs, used_by)
    }
}

/// The permissions the chart grants with `switches`.
pub fn granted_with(switches: ChartSwitches) -> impl Iterator<Item = &'static Permission> {
    REQUIRED_PERMISSIONS
        .iter()
        .filter(move |p| switches.grant(p.when))
}

/// Every (group, resource, names, verb, scope) the operator uses.
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
        "qlikops.io",
        "secretpushes",
        &["list", "watch"],
        "secret-push controller: watch pushes (never read one by name or patched: no finalizer)",
    ),
    watched(
        "qlikops.io",
        "secretpushes/status",
        &["patch"],
        "secret-push controller: conditions, digest of what was pushed, observedGeneration (JSON patch of /status, its own field manager)",
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
        "tenant clients read a tenant's credential; secret-rotation reads its Secret and server-side applies the rotated credential (apply creates it: `create`); secret-push reads its source Secret by name",
    ),
    Permission {
        when: When::WatchPushSecrets,
        ..watched(
            "",
            "secrets",
            &["list", "watch"],
            "secret-push controller, only with --watch-push-secrets: a metadata-only watch (PartialObjectMeta) of the Secrets labelled qlikops.io/push-source=true, so a push follows its Secret within seconds; values are still read by name (`get`)",
        )
    },
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
    operator_namespace(
        "coordination.k8s.io",
        "leases",
        &["get", "create", "patch"],
        "leader election: the Lease only one replica holds (kube-lease-manager creates it, renews and releases it by patch; the operator reads it to confirm it still leads)",
    ),
    Permission {
        resource_names: &[PUSH_DIGEST_KEY_SECRET],
        ..operator_namespace(
            "",
            "secrets",
            &["get"],
            "secret-push controller: read the key of its status digests (HMAC-SHA256), whether or not leader election is on",
        )
    },
    operator_namespace(
        "",
        "secrets",
        &["create"],
        "secret-push controller: create the digest key's Secret when it is missing (`create` cannot be restricted by name)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn is_secrets(p: &Permission) -> bool {
        p.group.is_empty() && p.resource == "secrets"
    }

    #[test]
    fn each_resource_is_listed_once_per_scope_and_switch_with_unique_verbs() {
        for (i, a) in REQUIRED_PERMISSIONS.iter().enumerate() {
            let key = |p: &Permission| (p.group, p.resource, p.resource_names, p.scope, p.when);
            for b in &REQUIRED_PERMISSIONS[i + 1..] {
                assert!(key(a) != key(b), "{:?} is listed twice", key(a));
                // The same verb under two switches would survive turning one of them off.
                if (a.group, a.resource, a.resource_names, a.scope)
                    == (b.group, b.resource, b.resource_names, b.scope)
                {
                    assert!(
                        a.verbs.iter().all(|verb| !b.verbs.contains(verb)),
                        "{}/{}: a verb granted under both {:?} and {:?}",
                        a.group,
                        a.resource,
                        a.when,
                        b.when
                    );
                }
            }
            let mut verbs = a.verbs.to_vec();
            verbs.sort_unstable();
            verbs.dedup();
            assert_eq!(verbs.len(), a.verbs.len(), "{}: duplicate verb", a.resource);
        }
    }

    #[test]
    fn secrets_are_listed_or_watched_only_with_watch_push_secrets_and_by_metadata_only() {
        // The operator reads only the Secrets its resources name; list/watch would let it
        // read every Secret in every watched namespace, so they come only with the opt-in
        // switch, for the metadata watch of labelled Secrets, and nothing else comes with it.
        for permission in REQUIRED_PERMISSIONS.iter().filter(|p| is_secrets(p)) {
            let lists = permission
                .verbs
                .iter()
                .any(|verb| ["list", "watch", "deletecollection"].contains(verb));
            assert_eq!(
                lists,
                permission.when == When::WatchPushSecrets,
                "{permission:?}"
            );
        }
        let watch_only: Vec<_> = REQUIRED_PERMISSIONS
            .iter()
            .filter(|p| p.when == When::WatchPushSecrets)
            .collect();
        assert_eq!(watch_only.len(), 1, "{watch_only:#?}");
        let watch = watch_only[0];
        assert!(is_secrets(watch));
        assert_eq!(watch.verbs, ["list", "watch"]);
        assert_eq!(watch.scope, Scope::Watched);
        assert!(watch.used_by.contains("metadata-only"), "{}", watch.used_by);

        let lists_secrets = |switches: ChartSwitches| {
            granted_with(switches)
                .filter(|p| is_secrets(p))
                .any(|p| p.verbs.contains(&"list") || p.verbs.contains(&"watch"))
        };
        assert!(!lists_secrets(ChartSwitches::default()));
        for rollout_targets in [true, false] {
            let switches = |watch_push_secrets| ChartSwitches {
                rollout_targets,
                watch_push_secrets,
            };
            assert!(!lists_secrets(switches(false)));
            assert!(lists_secrets(switches(true)));
        }
    }

    #[test]
    fn in_the_operators_namespace_only_the_digest_key_secret_is_read() {
        let secrets: Vec<_> = REQUIRED_PERMISSIONS
            .iter()
            .filter(|p| p.scope == Scope::OperatorNamespace && is_secrets(p))
            .map(|p| (p.verbs, p.resource_names, p.when))
            .collect();
        let create: &[&str] = &["create"];
        assert_eq!(
            secrets,
            [
                (&["get"][..], &[PUSH_DIGEST_KEY_SECRET][..], When::Always),
                (create, &[][..], When::Always),
            ]
        );
    }

    #[test]
    fn resource_names_never_restrict_a_verb_rbac_cannot_restrict_by_name() {
        // The apiserver authorizes these before there is a name: a rule with resourceNames
        // would silently never allow them.
        for permission in REQUIRED_PERMISSIONS
            .iter()
            .filter(|p| !p.resource_names.is_empty())
        {
            for verb in ["create", "list", "watch", "deletecollection"] {
                assert!(!permission.verbs.contains(&verb), "{permission:?}");
            }
        }
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
        for watch_push_secrets in [true, false] {
            let switches = ChartSwitches {
                rollout_targets: false,
                watch_push_secrets,
            };
            assert!(granted_with(switches).all(|p| p.group != "apps"));
        }
        assert!(granted_with(ChartSwitches::default()).any(|p| p.group == "apps"));
        assert_eq!(
            granted_with(ChartSwitches::ALL).count(),
            REQUIRED_PERMISSIONS.len()
        );
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
