//! What the chart grants, compared with `REQUIRED_PERMISSIONS` (src/controller/rbac.rs): the
//! rendered roles and bindings, and what the apiserver says the installed ServiceAccount may
//! do (access and rules reviews as that ServiceAccount).

use std::collections::BTreeSet;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Client;
use kube::api::{Api, PostParams};
use qlik_csp_operator::controller::rbac::{
    ChartSwitches, Permission, REQUIRED_PERMISSIONS, Scope, granted_with,
};
use serde_json::Value;

/// (apiGroup, resource, verb); a non-resource URL is (`nonResourceURL`, url, verb).
pub type Grant = (String, String, String);

/// Every grant of a Role or ClusterRole. A rule restricted by `resourceNames` counts as its
/// own resource (`configmaps[a,b]`), so it never passes for the unrestricted one.
pub fn grants_of(role: &Value) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        let keys: BTreeSet<&str> = rule
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys().map(String::as_str))
            .collect();
        let known = BTreeSet::from([
            "apiGroups",
            "resources",
            "resourceNames",
            "nonResourceURLs",
            "verbs",
        ]);
        assert!(keys.is_subset(&known), "unknown keys in rule {rule}");
        let strings = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect()
        };
        add(
            &mut grants,
            &strings("apiGroups"),
            &strings("resources"),
            &strings("resourceNames"),
            &strings("nonResourceURLs"),
            &strings("verbs"),
        );
    }
    grants
}

fn add(
    grants: &mut BTreeSet<Grant>,
    groups: &[String],
    resources: &[String],
    names: &[String],
    urls: &[String],
    verbs: &[String],
) {
    for verb in verbs {
        for group in groups {
            for resource in resources {
                grants.insert((group.clone(), named(resource, names), verb.clone()));
            }
        }
        for url in urls {
            grants.insert(("nonResourceURL".to_owned(), url.clone(), verb.clone()));
        }
    }
}

/// `resource`, or `resource[a,b]` when restricted to the objects `names`.
fn named(resource: &str, names: &[impl AsRef<str>]) -> String {
    if names.is_empty() {
        resource.to_owned()
    } else {
        let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        format!("{resource}[{}]", names.join(","))
    }
}

/// Fails with what is missing and what is extra when `actual` is not `expected`.
pub fn assert_grants(actual: &BTreeSet<Grant>, expected: &BTreeSet<Grant>, what: &str) {
    let missing: Vec<_> = expected.difference(actual).collect();
    let extra: Vec<_> = actual.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, not in REQUIRED_PERMISSIONS {extra:?}"
    );
}

/// The grants of `scope` the chart should give with `switches`.
pub fn required(scope: Scope, switches: ChartSwitches) -> BTreeSet<Grant> {
    grants_from(granted_with(switches).filter(|p| p.scope == scope))
}

pub fn grants_from<'a>(permissions: impl Iterator<Item = &'a Permission>) -> BTreeSet<Grant> {
    permissions
        .flat_map(|p| {
            p.verbs.iter().map(|verb| {
                (
                    p.group.to_owned(),
                    named(p.resource, p.resource_names),
                    (*verb).to_owned(),
                )
            })
        })
        .collect()
}

/// One binding as the chart should render it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Binding {
    pub kind: String,
    /// `None` for a ClusterRoleBinding.
    pub namespace: Option<String>,
    pub name: String,
    pub role_kind: String,
    pub role_name: String,
}

impl Binding {
    pub fn new(
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        role_kind: &str,
        role_name: &str,
    ) -> Binding {
        Binding {
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            role_kind: role_kind.to_owned(),
            role_name: role_name.to_owned(),
        }
    }
}

/// Every ClusterRoleBinding and RoleBinding rendered is one of `expected` (and each of
/// `expected` is rendered); each binds a role the chart renders itself (never a built-in
/// such as `edit`) to the chart's ServiceAccount and nobody else; no ClusterRole of the
/// chart aggregates into or from other roles.
pub fn assert_bindings(objects: &[Value], service_account: &Value, expected: &[Binding]) {
    let mut actual = Vec::new();
    for binding in objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
    {
        let kind = binding["kind"].as_str().unwrap_or_default();
        let namespace = binding["metadata"]["namespace"].as_str();
        let role = &binding["roleRef"];
        assert_eq!(role["apiGroup"], "rbac.authorization.k8s.io", "{binding}");
        let role_kind = role["kind"].as_str().unwrap_or_default();
        let role_name = role["name"].as_str().unwrap_or_default();
        let rendered = objects.iter().any(|o| {
            o["kind"] == role_kind
                && o["metadata"]["name"] == role_name
                && (role_kind == "ClusterRole" || o["metadata"]["namespace"].as_str() == namespace)
        });
        assert!(
            rendered,
            "{kind} {namespace:?}/{} binds {role_kind} {role_name}, which the chart does not render",
            binding["metadata"]["name"]
        );
        assert_eq!(
            binding["subjects"],
            Value::Array(vec![service_account.clone()]),
            "{kind} {namespace:?}/{} must bind the chart's ServiceAccount only",
            binding["metadata"]["name"]
        );
        actual.push(Binding::new(
            kind,
            namespace,
            binding["metadata"]["name"].as_str().unwrap_or_default(),
            role_kind,
            role_name,
        ));
    }
    actual.sort();
    let mut expected: Vec<&Binding> = expected.iter().collect();
    expected.sort();
    assert_eq!(actual.iter().collect::<Vec<_>>(), expected, "the bindings");

    for role in objects.iter().filter(|o| o["kind"] == "ClusterRole") {
        assert!(
            role.get("aggregationRule").is_none(),
            "an aggregated ClusterRole: {role}"
        );
        let aggregates_into = role["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .any(|(label, _)| label.starts_with("rbac.authorization.k8s.io/aggregate-to-"));
        assert!(
            !aggregates_into,
            "a ClusterRole that adds its rules to built-in roles: {role}"
        );
    }
}

/// Whether the client's identity may `verb` the resource in `namespace` (all namespaces
/// when `None`).
pub async fn allowed(
    client: &Client,
    namespace: Option<&str>,
    group: &str,
    resource: &str,
    verb: &str,
) -> bool {
    allowed_on(client, namespace, group, resource, None, verb).await
}

/// Whether the client's identity may `verb` the resource, or only the object `name` of it.
pub async fn allowed_on(
    client: &Client,
    namespace: Option<&str>,
    group: &str,
    resource: &str,
    name: Option<&str>,
    verb: &str,
) -> bool {
    let (resource, subresource) = match resource.split_once('/') {
        Some((resource, subresource)) => (resource, Some(subresource.to_owned())),
        None => (resource, None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                subresource,
                name: name.map(str::to_owned),
                verb: Some(verb.to_owned()),
                namespace: namespace.map(str::to_owned),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap_or_else(|e| panic!("SelfSubjectAccessReview failed: {e}"));
    created.status.is_some_and(|s| s.allowed)
}

/// Every verb of `permissions` that `client` is refused (`want == true`) or granted
/// (`want == false`) in `namespace`; one restricted to names is asked for each name.
pub async fn access_differs<'a>(
    client: &Client,
    permissions: impl Iterator<Item = &'a Permission>,
    namespace: Option<&str>,
    want: bool,
) -> Vec<String> {
    let mut differing = Vec::new();
    for permission in permissions {
        let names: Vec<Option<&str>> = if permission.resource_names.is_empty() {
            vec![None]
        } else {
            permission
                .resource_names
                .iter()
                .copied()
                .map(Some)
                .collect()
        };
        for verb in permission.verbs {
            for name in &names {
                let allowed = allowed_on(
                    client,
                    namespace,
                    permission.group,
                    permission.resource,
                    *name,
                    verb,
                )
                .await;
                if allowed != want {
                    differing.push(format!(
                        "{verb} {}/{}{} in {namespace:?} ({})",
                        permission.group,
                        permission.resource,
                        name.map(|n| format!(" {n}")).unwrap_or_default(),
                        permission.used_by
                    ));
                }
            }
        }
    }
    differing
}

/// Every permission of `scope` the chart grants with `switches` that `client` is refused in
/// `namespace`.
pub async fn refused(
    client: &Client,
    switches: ChartSwitches,
    scope: Scope,
    namespace: Option<&str>,
) -> Vec<String> {
    let permissions = granted_with(switches).filter(|p| p.scope == scope);
    access_differs(client, permissions, namespace, true).await
}

/// Every permission of `scope` (with every switch on) that `client` is granted in
/// `namespace`.
pub async fn granted(client: &Client, scope: Scope, namespace: Option<&str>) -> Vec<String> {
    let permissions = REQUIRED_PERMISSIONS.iter().filter(|p| p.scope == scope);
    access_differs(client, permissions, namespace, false).await
}

/// What the apiserver says the client's identity may do in `namespace` (cluster-wide grants
/// included): a SelfSubjectRulesReview, expanded to grants.
pub async fn effective_grants(client: &Client, namespace: &str) -> BTreeSet<Grant> {
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(namespace.to_owned()),
        },
        ..Default::default()
    };
    let created = Api::<SelfSubjectRulesReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap_or_else(|e| panic!("SelfSubjectRulesReview failed: {e}"));
    let status = created
        .status
        .unwrap_or_else(|| panic!("SelfSubjectRulesReview has no status"));
    assert!(
        !status.incomplete,
        "the rules review is incomplete: {:?}",
        status.evaluation_error
    );
    let mut grants = BTreeSet::new();
    for rule in &status.resource_rules {
        add(
            &mut grants,
            rule.api_groups.as_deref().unwrap_or_default(),
            rule.resources.as_deref().unwrap_or_default(),
            rule.resource_names.as_deref().unwrap_or_default(),
            &[],
            &rule.verbs,
        );
    }
    for rule in &status.non_resource_rules {
        add(
            &mut grants,
            &[],
            &[],
            &[],
            rule.non_resource_urls.as_deref().unwrap_or_default(),
            &rule.verbs,
        );
    }
    grants
}

/// Waits until the controller-manager has filled the built-in aggregated ClusterRoles (a
/// binding to `edit` grants nothing before), so that a rules review sees what they grant.
pub async fn wait_for_aggregated_roles(client: &Client) {
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let aggregated = |role: Option<&ClusterRole>| {
        role.and_then(|r| r.rules.as_ref())
            .is_some_and(|rules| !rules.is_empty())
    };
    let waited = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        kube::runtime::wait::await_condition(roles, "edit", aggregated),
    )
    .await;
    match waited {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("failed to watch ClusterRole edit: {e}"),
        Err(_) => panic!("the built-in ClusterRole edit was never aggregated"),
    }
}

/// Asserts that `subject` may do exactly `expected` in `namespace` beyond what every
/// identity may (`baseline`: a ServiceAccount bound to nothing, which still has discovery
/// and self-reviews through the built-in roles for `system:authenticated`). `admin` reads
/// the built-in roles.
pub async fn assert_effective(
    admin: &Client,
    subject: &Client,
    baseline: &Client,
    namespace: &str,
    expected: &BTreeSet<Grant>,
    what: &str,
) {
    wait_for_aggregated_roles(admin).await;
    let everyone = effective_grants(baseline, namespace).await;
    let actual: BTreeSet<Grant> = effective_grants(subject, namespace)
        .await
        .difference(&everyone)
        .cloned()
        .collect();
    assert_grants(
        &actual,
        expected,
        &format!("{what}: effective rules in {namespace}"),
    );
}
