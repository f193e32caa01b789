//! The Helm chart and the plain manifests, proven on a real kube-apiserver (RBAC and
//! owner-reference permissions enforced):
//!
//! - `helm lint` is clean, `helm template` renders both install modes, the schema rejects
//!   unknown values, the Deployment is hardened, the NetworkPolicy admits metrics scrapes
//!   from the selected scrapers only; the chart declares the Kubernetes version its CRDs
//!   need, and the test control plane reports its real version;
//! - the chart's roles grant exactly `REQUIRED_PERMISSIONS` (src/controller/rbac.rs), nothing
//!   missing, nothing extra (non-resource URLs and wildcards included), in both install modes
//!   and with `rbac.rolloutTargets` and `secretPush.watchSecrets` each on and off (the latter
//!   also sets `WATCH_PUSH_SECRETS`); the release namespace's roles hold the Lease and the
//!   digest key's Secret only, the latter with or without leader election; every binding
//!   binds the chart's own role to the chart's ServiceAccount only;
//! - `helm install` succeeds, and the installed ServiceAccount is allowed every required
//!   permission (SelfSubjectAccessReview as the ServiceAccount) and its effective rules
//!   (SelfSubjectRulesReview, beyond what any identity has) are exactly the required ones,
//!   cluster-wide or only in the watched namespace, where it is refused Secrets in any other
//!   and in its own every Secret but the digest key; it may list Secrets (metadata) only with
//!   `secretPush.watchSecrets`;
//! - the operator binary, run with the ServiceAccount's identity (impersonation), syncs a
//!   CspEntry end to end and completes two rotations of a SecretRotation with a rollout
//!   target with only the chart's RBAC; the revoked key is refused by the tenant;
//! - `deploy/qlik-csp-operator.yaml` is what `cargo xtask manifests` renders today, every
//!   object in it applies on the apiserver, and its ServiceAccount gets exactly the rules.

mod support;

#[allow(dead_code)] // `write` is for the xtask; the test uses `render`
#[path = "../xtask/src/manifests.rs"]
mod manifests;

#[path = "helm_chart/rbac.rs"]
mod rbac;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use qlik_csp_operator::api::secret_push::PUSH_SOURCE_LABEL;
use qlik_csp_operator::api::secret_rotation::{CREDENTIAL_REVISION, Phase};
use qlik_csp_operator::api::{CspEntry, QlikTenant, SecretRotation};
use qlik_csp_operator::controller::rbac::{
    ChartSwitches, PUSH_DIGEST_KEY_SECRET, Permission, REQUIRED_PERMISSIONS, Scope,
};
use qlik_csp_operator::controller::tenant::publish::{HEADER_SHA256, header_sha256};
use qlik_csp_operator::emulator::EmulatorConfig;
use rbac::{
    Binding, Grant, access_differs, assert_bindings, assert_effective, assert_grants, granted,
    grants_of, refused, required,
};
use serde::Deserialize;
use serde_json::{Value, json};
use support::tenant_rig::{create_example_surroundings, from_json, tenant_json};
use support::{Operator, TestEnv, eventually, is_ready, wait_ready};

const KEY: &str = "helm-chart-admin-key-0123456789abcdef";
const DEADLINE: Duration = Duration::from_secs(60);
const CHART_NAME: &str = "qlik-csp-operator";
/// A ServiceAccount bound to nothing: what every identity may do.
const NOBODY: &str = "qlikops-nobody";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn helm_binary() -> PathBuf {
    let dir = std::env::var_os(qlikops_testenv::BIN_DIR_VAR).unwrap_or_else(|| {
        panic!(
            "{} is not set: run the tests with `cargo xtask test`, which builds helm",
            qlikops_testenv::BIN_DIR_VAR
        )
    });
    PathBuf::from(dir).join("helm")
}

/// Runs helm with its own (empty) config, cache and data dirs; returns stdout, or fails the
/// test with stderr.
fn helm(args: &[&str]) -> String {
    let home = std::env::temp_dir().join("qlikops-helm-home");
    let output = Command::new(helm_binary())
        .current_dir(root())
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap_or_else(|e| panic!("failed to run helm: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "helm {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

/// The objects of a multi-document YAML stream (empty documents dropped).
fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).unwrap_or_else(|e| panic!("{e}\n{text}")))
        .filter(|value| !value.is_null())
        .collect()
}

/// `helm template` of the chart as release `release` in namespace `namespace`.
fn template(release: &str, namespace: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        release,
        manifests::CHART,
        "--namespace",
        namespace,
    ];
    args.extend_from_slice(extra);
    documents(&helm(&args))
}

fn fullname(release: &str) -> String {
    if release.contains(CHART_NAME) {
        release.to_owned()
    } else {
        format!("{release}-{CHART_NAME}")
    }
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let text = std::fs::read_to_string(root().join(manifests::CHART).join("Chart.yaml")).unwrap();
    let chart: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], CHART_NAME);
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "Chart.yaml appVersion must equal Cargo.toml's version"
    );
}

#[test]
fn the_chart_declares_the_kubernetes_version_its_crds_need() {
    let text = std::fs::read_to_string(root().join(manifests::CHART).join("Chart.yaml")).unwrap();
    let chart: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(chart["kubeVersion"], ">=1.29.0-0");
    // Helm enforces it: a cluster older than CEL validation's GA is refused.
    let home = std::env::temp_dir().join("qlikops-helm-home");
    let output = Command::new(helm_binary())
        .current_dir(root())
        .args([
            "template",
            "r",
            manifests::CHART,
            "--kube-version",
            "1.28.9",
        ])
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("kubeVersion"),
        "a 1.28 cluster was accepted: {stderr}"
    );
    template("r", "ops", &["--kube-version", "1.29.0"]);
}

#[tokio::test]
async fn the_tools_report_the_versions_they_were_built_from() {
    // kube-apiserver's /version is what `helm install` checks `kubeVersion` against: a
    // development placeholder (v0.0.0-master) would fail every install.
    let go_mod = |module: &str| {
        let path = root().join("tests/envtest").join(module).join("go.mod");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let required = |text: &str, path: &str| -> String {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(&format!("require {path} ")))
            .unwrap_or_else(|| panic!("no `require {path}` in go.mod"))
            .trim()
            .to_owned()
    };
    let kubernetes = required(&go_mod("apiserver"), "k8s.io/kubernetes");
    let env = TestEnv::new().await;
    let version = env.client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, kubernetes);
    let minor = kubernetes.split('.').nth(1).unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", minor)
    );
    assert!(!version.build_date.starts_with("1970"), "{version:?}");

    // helm reports its own version. (`helm template` and `helm lint`, which ask no cluster,
    // assume the Kubernetes version of the client-go helm is built with instead of v1.20:
    // every `template` here without `--kube-version` proves it against `kubeVersion`.)
    let helm_version = required(&go_mod("helm"), "helm.sh/helm/v3");
    let out = helm(&["version", "--template", "{{ .Version }}"]);
    assert_eq!(out.trim(), helm_version);
}

#[test]
fn the_dockerfile_runs_the_operator_as_the_charts_user() {
    // tests/image.rs checks the Dockerfile against the image `cargo xtask image` builds;
    // this keeps it consistent with the chart.
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("\nUSER 65532:65532\n"), "{dockerfile}");
    assert!(dockerfile.contains("--bin qlik-csp-operator"));
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/qlik-csp-operator\"]"));
    let objects = template("qco", "ops", &[]);
    let pod = &of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["containers"][0]["args"][0], "run");
    let ignored = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(
        ignored.lines().any(|l| l == "target"),
        "the build context must leave out target/"
    );
}

#[test]
fn helm_lint_is_clean() {
    for values in [
        &[][..],
        &["--set", "watchNamespaces={a}"][..],
        &["--set", "secretPush.watchSecrets=true"][..],
    ] {
        let mut args = vec!["lint", "--strict", manifests::CHART];
        args.extend_from_slice(values);
        let out = helm(&args);
        assert!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{out}"
        );
        assert!(
            !out.contains("[WARNING]") && !out.contains("[ERROR]"),
            "{out}"
        );
    }
}

#[test]
fn the_schema_rejects_unknown_and_invalid_values() {
    let home = std::env::temp_dir().join("qlikops-helm-home");
    for bad in [
        "watchNamespace=web",              // a typo of watchNamespaces
        "logFormat=xml",                   // not json or text
        "image.digest=latest",             // not a digest
        "securityContext.x=y",             // security settings are not configurable
        "metrics.port=70000",              // not a port
        "watchNamespaces={Web}",           // not a namespace name
        "watchNamespaces={a,b}",           // the operator watches one namespace or all
        "rbac.rolloutTargets=maybe",       // a switch
        "secretPush.watchSecrets=yes",     // a switch
        "secretPush.watchSecret=true",     // a typo of watchSecrets
        "networkPolicy.metrics.from=null", // never open to everyone by omission
        "networkPolicy.metrics.from={}",   // nor by an empty list
        "networkPolicy.metrics.from[0].podSelector.matchLabel.app=x", // a typo of matchLabels
    ] {
        let output = Command::new(helm_binary())
            .current_dir(root())
            .args(["template", "r", manifests::CHART, "--set", bad])
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .output()
            .unwrap();
        assert!(
            !output.status.success(),
            "--set {bad} was accepted:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn the_deployment_is_hardened_and_configured_from_values() {
    let objects = template(
        "qco",
        "ops",
        &[
            "--set",
            "watchNamespaces={a}",
            "--set",
            "allowedTenantHosts={*.qlikcloud.com,qlik.example.com}",
            "--set",
            "logFormat=text",
            "--set",
            "logLevel=debug",
        ],
    );
    let deployments = of_kind(&objects, "Deployment");
    assert_eq!(deployments.len(), 1);
    let pod = &deployments[0]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "qco-qlik-csp-operator");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["ports"][0]["name"], "metrics");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "run",
            "--log-format=text",
            "--metrics-address=0.0.0.0:8080",
            "--leader-election",
            "--leader-election-lease-name=qco-qlik-csp-operator",
            "--namespace=a",
            "--allowed-tenant-hosts=*.qlikcloud.com,qlik.example.com",
        ]
    );
    let env = container["env"].as_array().unwrap();
    let pod_namespace = env.iter().find(|e| e["name"] == "POD_NAMESPACE").unwrap();
    assert_eq!(
        pod_namespace["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    let level = env.iter().find(|e| e["name"] == "RUST_LOG").unwrap();
    assert_eq!(level["value"], "debug");

    // Optional objects are off by default and render when enabled.
    let defaults = template("qco", "ops", &[]);
    for kind in [
        "PodDisruptionBudget",
        "ServiceMonitor",
        "NetworkPolicy",
        "CustomResourceDefinition",
    ] {
        assert!(
            of_kind(&defaults, kind).is_empty(),
            "{kind} rendered by default"
        );
    }
    assert_eq!(of_kind(&defaults, "Service").len(), 1);
    let everything = template(
        "qco",
        "ops",
        &[
            "--set",
            "podDisruptionBudget.enabled=true",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "crds.install=true",
        ],
    );
    for (kind, count) in [
        ("PodDisruptionBudget", 1),
        ("ServiceMonitor", 1),
        ("NetworkPolicy", 1),
        (
            "CustomResourceDefinition",
            qlik_csp_operator::api::crds().len(),
        ),
    ] {
        assert_eq!(of_kind(&everything, kind).len(), count, "{kind}");
    }
    let policy = of_kind(&everything, "NetworkPolicy")[0];
    let egress_ports: BTreeSet<i64> = policy["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_array().unwrap().iter())
        .map(|port| port["port"].as_i64().unwrap())
        .collect();
    assert_eq!(egress_ports, BTreeSet::from([53, 443, 6443]));
    // Metrics only from the scrapers selected: by default the Prometheus pods in any
    // namespace, never from anyone.
    assert_eq!(
        policy["spec"]["ingress"],
        json!([{
            "ports": [{ "port": "metrics", "protocol": "TCP" }],
            "from": [{
                "namespaceSelector": {},
                "podSelector": { "matchLabels": { "app.kubernetes.io/name": "prometheus" } },
            }],
        }])
    );
    let narrowed = template(
        "qco",
        "ops",
        &[
            "--set",
            "networkPolicy.enabled=true",
            "--set-json",
            r#"networkPolicy.metrics.from=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}},"podSelector":{"matchExpressions":[{"key":"app","operator":"In","values":["vmagent"]}]}},{"ipBlock":{"cidr":"192.0.2.0/24"}}]"#,
        ],
    );
    assert_eq!(
        of_kind(&narrowed, "NetworkPolicy")[0]["spec"]["ingress"][0]["from"],
        json!([
            {
                "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "monitoring" } },
                "podSelector": { "matchExpressions": [{ "key": "app", "operator": "In", "values": ["vmagent"] }] },
            },
            { "ipBlock": { "cidr": "192.0.2.0/24" } },
        ])
    );
    // The templated CRDs are the generated ones, kept on uninstall.
    for crd in of_kind(&everything, "CustomResourceDefinition") {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
        let name = crd["metadata"]["name"].as_str().unwrap();
        let (_, generated) = qlik_csp_operator::api::crds()
            .into_iter()
            .find(|(_, c)| c.name_any() == name)
            .unwrap();
        // Helm's toYaml writes `1000.0` as `1000`: the same number to the apiserver.
        let generated = serde_json::to_value(&generated.spec).unwrap();
        assert!(
            numbers_as_f64(&crd["spec"]) == numbers_as_f64(&generated),
            "the templated CRD {name} differs from the generated one"
        );
    }
}

fn numbers_as_f64(value: &Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_f64).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The grants of every `kind` object in `namespace`, together.
fn grants_in(objects: &[Value], kind: &str, namespace: &str) -> BTreeSet<Grant> {
    of_kind(objects, kind)
        .into_iter()
        .filter(|o| o["metadata"]["namespace"] == namespace)
        .flat_map(grants_of)
        .collect()
}

/// The operator container's value of environment variable `name`, if set.
fn container_env<'a>(deployment: &'a Value, name: &str) -> Option<&'a Value> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
}

#[test]
fn the_chart_grants_exactly_the_required_permissions_in_both_modes() {
    let fullname = "qco-qlik-csp-operator";
    let leader = "qco-qlik-csp-operator-leader-election";
    let digest_key = "qco-qlik-csp-operator-push-digest-key";
    let service_account = json!({ "kind": "ServiceAccount", "name": fullname, "namespace": "ops" });
    for (rollout_targets, watch_push_secrets) in
        [(true, false), (true, true), (false, false), (false, true)]
    {
        let switches = ChartSwitches {
            rollout_targets,
            watch_push_secrets,
        };
        let values = [
            "--set".to_owned(),
            format!("rbac.rolloutTargets={rollout_targets}"),
            "--set".to_owned(),
            format!("secretPush.watchSecrets={watch_push_secrets}"),
        ];
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let what = |role: &str| format!("{role} with {switches:?}");

        // Cluster-wide (default): one ClusterRole for the watched resources, Roles in the
        // release namespace for the Lease and the digest key's Secret, each bound to the
        // chart's ServiceAccount only.
        let objects = template("qco", "ops", &values);
        let cluster_roles = of_kind(&objects, "ClusterRole");
        assert_eq!(cluster_roles.len(), 1);
        assert_grants(
            &grants_of(cluster_roles[0]),
            &required(Scope::Watched, switches),
            &what("ClusterRole"),
        );
        assert_eq!(of_kind(&objects, "Role").len(), 2);
        assert_grants(
            &grants_in(&objects, "Role", "ops"),
            &required(Scope::OperatorNamespace, switches),
            &what("Roles in the release namespace"),
        );
        assert_bindings(
            &objects,
            &service_account,
            &[
                Binding::new(
                    "ClusterRoleBinding",
                    None,
                    fullname,
                    "ClusterRole",
                    fullname,
                ),
                Binding::new("RoleBinding", Some("ops"), leader, "Role", leader),
                Binding::new("RoleBinding", Some("ops"), digest_key, "Role", digest_key),
            ],
        );
        // The switch that grants the Secret watch is the one that turns it on.
        let deployment = of_kind(&objects, "Deployment")[0];
        assert_eq!(
            container_env(deployment, "WATCH_PUSH_SECRETS"),
            watch_push_secrets
                .then(|| json!({ "name": "WATCH_PUSH_SECRETS", "value": "true" }))
                .as_ref(),
            "{switches:?}"
        );

        // Namespaced: the same rules in a Role in the watched namespace, nothing cluster-wide.
        let mut namespaced = values.clone();
        namespaced.extend(["--set", "watchNamespaces={a}"]);
        let objects = template("qco", "ops", &namespaced);
        assert!(of_kind(&objects, "ClusterRole").is_empty());
        assert_eq!(of_kind(&objects, "Role").len(), 3);
        assert_grants(
            &grants_in(&objects, "Role", "a"),
            &required(Scope::Watched, switches),
            &what("Role in a"),
        );
        assert_grants(
            &grants_in(&objects, "Role", "ops"),
            &required(Scope::OperatorNamespace, switches),
            &what("Roles in the release namespace"),
        );
        assert_bindings(
            &objects,
            &service_account,
            &[
                Binding::new("RoleBinding", Some("a"), fullname, "Role", fullname),
                Binding::new("RoleBinding", Some("ops"), leader, "Role", leader),
                Binding::new("RoleBinding", Some("ops"), digest_key, "Role", digest_key),
            ],
        );
    }

    // Without leader election, no Lease, but still the digest key's Secret.
    let objects = template("qco", "ops", &["--set", "leaderElection.enabled=false"]);
    let without_lease: BTreeSet<Grant> =
        required(Scope::OperatorNamespace, ChartSwitches::DEFAULTS)
            .into_iter()
            .filter(|(group, _, _)| group != "coordination.k8s.io")
            .collect();
    assert!(without_lease.contains(&(
        String::new(),
        format!("secrets[{PUSH_DIGEST_KEY_SECRET}]"),
        "get".to_owned()
    )));
    assert_grants(
        &grants_in(&objects, "Role", "ops"),
        &without_lease,
        "Roles in the release namespace without leader election",
    );
    assert_bindings(
        &objects,
        &service_account,
        &[
            Binding::new(
                "ClusterRoleBinding",
                None,
                fullname,
                "ClusterRole",
                fullname,
            ),
            Binding::new("RoleBinding", Some("ops"), digest_key, "Role", digest_key),
        ],
    );
}

fn helm_install(env: &TestEnv, release: &str, namespace: &str, extra: &[&str]) -> String {
    let kubeconfig = env.control_plane.kubeconfig.to_string_lossy().into_owned();
    let mut args = vec![
        "install",
        release,
        manifests::CHART,
        "--namespace",
        namespace,
        "--kubeconfig",
        &kubeconfig,
        // No kubelet runs here, so no pod ever starts: don't --wait.
        "--timeout",
        "60s",
    ];
    args.extend_from_slice(extra);
    helm(&args)
}

async fn create_namespace(client: &Client, name: &str) {
    let namespace: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))
        .unwrap_or_else(|e| panic!("{e}"));
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|e| panic!("failed to create namespace {name}: {e}"));
}

/// Asserts that `client` may list and watch Secrets in `namespace`, in `default` and across
/// all namespaces exactly when `watched` (access reviews), and that the SecretPush
/// controller's own request, a metadata-only list of the labelled Secrets in `namespace`, is
/// answered or refused accordingly.
async fn assert_secret_watch(client: &Client, namespace: &str, watched: bool) {
    for scope in [Some(namespace), Some("default"), None] {
        for verb in ["list", "watch"] {
            assert_eq!(
                rbac::allowed(client, scope, "", "secrets", verb).await,
                watched,
                "{verb} secrets in {scope:?}"
            );
        }
    }
    let labelled = ListParams::default().labels(&format!("{PUSH_SOURCE_LABEL}=true"));
    let listed = Api::<Secret>::namespaced(client.clone(), namespace)
        .list_metadata(&labelled)
        .await;
    match listed {
        Ok(_) if watched => {}
        Err(kube::Error::Api(status)) if !watched => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("listing Secret metadata (watched: {watched}): {other:?}"),
    }
}

/// The permissions needed in the release namespace that no `Watched` rule covers anyway.
fn only_in_the_release_namespace() -> impl Iterator<Item = &'static Permission> {
    REQUIRED_PERMISSIONS.iter().filter(|p| {
        p.scope == Scope::OperatorNamespace
            && !REQUIRED_PERMISSIONS.iter().any(|w| {
                w.scope == Scope::Watched && (w.group, w.resource) == (p.group, p.resource)
            })
    })
}

#[tokio::test]
async fn cluster_wide_install_grants_every_required_permission_and_manages_kept_crds() {
    let env = TestEnv::new().await;
    let ns = env.namespace.clone();
    let release = format!("qco-{ns}");
    // The control plane already has the CRDs (without Helm's ownership): this is the
    // documented switch to Helm-managed CRDs.
    let out = helm_install(
        &env,
        &release,
        &ns,
        &[
            "--skip-crds",
            "--take-ownership",
            "--set",
            "crds.install=true",
        ],
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(out.contains("It watches all namespaces"), "NOTES: {out}");

    let sa = fullname(&release);
    let as_sa = env.client_as_service_account(&ns, &sa).await;
    let switches = ChartSwitches::DEFAULTS;
    let missing = refused(&as_sa, switches, Scope::Watched, None).await;
    assert!(missing.is_empty(), "the chart's RBAC misses: {missing:#?}");
    let missing = refused(&as_sa, switches, Scope::OperatorNamespace, Some(&ns)).await;
    assert!(missing.is_empty(), "the chart's RBAC misses: {missing:#?}");
    // The Lease permission is for the release namespace only (the digest key's Secret is
    // within what the ClusterRole grants on Secrets everywhere).
    let elsewhere = access_differs(
        &as_sa,
        only_in_the_release_namespace(),
        Some("default"),
        false,
    )
    .await;
    assert!(
        elsewhere.is_empty(),
        "granted outside the release namespace: {elsewhere:?}"
    );
    // By default Secrets are never listed or watched.
    assert_secret_watch(&as_sa, &ns, false).await;
    // And nothing else, as the apiserver evaluates every binding there is.
    let baseline = env.client_as_service_account(&ns, NOBODY).await;
    let watched = required(Scope::Watched, switches);
    let in_release_namespace = &watched | &required(Scope::OperatorNamespace, switches);
    assert_effective(
        &env.client,
        &as_sa,
        &baseline,
        &ns,
        &in_release_namespace,
        "cluster-wide install",
    )
    .await;
    assert_effective(
        &env.client,
        &as_sa,
        &baseline,
        "default",
        &watched,
        "cluster-wide install",
    )
    .await;

    // Helm now owns the CRDs; uninstalling keeps them (and so every custom resource).
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    for (_, crd) in qlik_csp_operator::api::crds() {
        let installed = crds.get(&crd.name_any()).await.unwrap();
        assert_eq!(
            installed.annotations().get("meta.helm.sh/release-name"),
            Some(&release)
        );
        assert_eq!(
            installed.annotations().get("helm.sh/resource-policy"),
            Some(&"keep".to_owned())
        );
    }
    let kubeconfig = env.control_plane.kubeconfig.to_string_lossy().into_owned();
    let out = helm(&[
        "uninstall",
        &release,
        "--namespace",
        &ns,
        "--kubeconfig",
        &kubeconfig,
    ]);
    assert!(out.contains("uninstalled"), "{out}");
    for (_, crd) in qlik_csp_operator::api::crds() {
        let kept = crds.get_opt(&crd.name_any()).await.unwrap();
        assert!(
            kept.is_some_and(|c| c.metadata.deletion_timestamp.is_none()),
            "{} was deleted with the release",
            crd.name_any()
        );
    }
    let gone = Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(env.client.clone())
        .get_opt(&sa)
        .await
        .unwrap();
    assert!(gone.is_none(), "the ClusterRole outlived the release");
}

/// Both switches away from their defaults in one install: they grant independent rules
/// (the template test covers every combination).
#[tokio::test]
async fn cluster_wide_install_without_rollout_targets_and_with_the_secret_watch_grants_exactly_that()
 {
    let env = TestEnv::new().await;
    let ns = env.namespace.clone();
    let release = format!("qco-{ns}");
    let out = helm_install(
        &env,
        &release,
        &ns,
        &[
            "--skip-crds",
            "--set",
            "rbac.rolloutTargets=false",
            "--set",
            "secretPush.watchSecrets=true",
        ],
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(
        out.contains("it may list and watch Secrets"),
        "NOTES: {out}"
    );
    let sa = fullname(&release);
    let as_sa = env.client_as_service_account(&ns, &sa).await;
    let switches = ChartSwitches {
        rollout_targets: false,
        watch_push_secrets: true,
    };
    for kind in ["deployments", "statefulsets", "daemonsets"] {
        for namespace in [Some(ns.as_str()), Some("default"), None] {
            assert!(
                !rbac::allowed(&as_sa, namespace, "apps", kind, "patch").await,
                "may patch {kind} in {namespace:?}"
            );
        }
    }
    let missing = refused(&as_sa, switches, Scope::Watched, None).await;
    assert!(missing.is_empty(), "the chart's RBAC misses: {missing:#?}");
    let missing = refused(&as_sa, switches, Scope::OperatorNamespace, Some(&ns)).await;
    assert!(missing.is_empty(), "the chart's RBAC misses: {missing:#?}");
    assert_secret_watch(&as_sa, &ns, true).await;
    // The operator is told to watch: the installed Deployment sets the variable.
    let deployment = Api::<Deployment>::namespaced(env.client.clone(), &ns)
        .get(&sa)
        .await
        .unwrap();
    let deployment = serde_json::to_value(&deployment).unwrap();
    assert_eq!(
        container_env(&deployment, "WATCH_PUSH_SECRETS"),
        Some(&json!({ "name": "WATCH_PUSH_SECRETS", "value": "true" }))
    );

    let baseline = env.client_as_service_account(&ns, NOBODY).await;
    let watched = required(Scope::Watched, switches);
    let in_release_namespace = &watched | &required(Scope::OperatorNamespace, switches);
    assert_effective(
        &env.client,
        &as_sa,
        &baseline,
        &ns,
        &in_release_namespace,
        "without rollout targets, with the Secret watch",
    )
    .await;
    assert_effective(
        &env.client,
        &as_sa,
        &baseline,
        "default",
        &watched,
        "without rollout targets, with the Secret watch",
    )
    .await;
}

#[tokio::test]
async fn namespaced_install_runs_the_operator_and_refuses_secrets_elsewhere() {
    let env = TestEnv::new().await;
    let ns = env.namespace.clone();
    // The release in a namespace of its own, as the README installs it: there the operator
    // has its Lease and its digest key's Secret, and no other Secret.
    let release_ns = format!("{ns}-operator");
    let other = format!("{ns}-unwatched");
    create_namespace(&env.client, &release_ns).await;
    create_namespace(&env.client, &other).await;
    let release = "qco";
    // With the NetworkPolicy, so the apiserver validates it too.
    let out = helm_install(
        &env,
        release,
        &release_ns,
        &[
            "--set-json",
            &format!("watchNamespaces=[\"{ns}\"]"),
            "--set",
            "networkPolicy.enabled=true",
        ],
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    let sa = fullname(release);
    let as_sa = env.client_as_service_account(&release_ns, &sa).await;

    // Everything the operator needs, in the watched namespace and in its own.
    let switches = ChartSwitches::DEFAULTS;
    let missing = refused(&as_sa, switches, Scope::Watched, Some(&ns)).await;
    assert!(missing.is_empty(), "the chart's RBAC misses: {missing:#?}");
    let missing = refused(
        &as_sa,
        switches,
        Scope::OperatorNamespace,
        Some(&release_ns),
    )
    .await;
    assert!(missing.is_empty(), "the chart's RBAC misses: {missing:#?}");
    // Nothing in another namespace, nothing cluster-wide.
    for namespace in [Some(other.as_str()), None] {
        for scope in [Scope::Watched, Scope::OperatorNamespace] {
            let extra = granted(&as_sa, scope, namespace).await;
            assert!(
                extra.is_empty(),
                "granted beyond the watched namespace: {extra:#?}"
            );
        }
    }
    assert_secret_watch(&as_sa, &ns, false).await;
    // And a real read of a Secret there is refused, as is one of any Secret but the digest
    // key in the operator's own namespace; the digest key can be created and read.
    let secret: Secret = serde_json::from_value(
        json!({ "metadata": { "name": "not-yours" }, "stringData": { "token": "s3cr3t" } }),
    )
    .unwrap();
    for namespace in [&other, &release_ns] {
        Api::<Secret>::namespaced(env.client.clone(), namespace)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        match Api::<Secret>::namespaced(as_sa.clone(), namespace)
            .get("not-yours")
            .await
        {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
            other => panic!("reading a Secret of namespace {namespace}: {other:?}"),
        }
    }
    let own_secrets = Api::<Secret>::namespaced(as_sa.clone(), &release_ns);
    let key: Secret = serde_json::from_value(json!({
        "metadata": { "name": PUSH_DIGEST_KEY_SECRET },
        "stringData": { "hmac-sha256-key": "0123456789abcdef0123456789abcdef" },
    }))
    .unwrap();
    own_secrets
        .create(&PostParams::default(), &key)
        .await
        .unwrap_or_else(|e| panic!("creating the digest key's Secret: {e}"));
    own_secrets
        .get(PUSH_DIGEST_KEY_SECRET)
        .await
        .unwrap_or_else(|e| panic!("reading the digest key's Secret: {e}"));
    // Exactly the required rules in the watched namespace and in the release namespace, and
    // nothing at all elsewhere, as the apiserver evaluates every binding there is.
    let baseline = env.client_as_service_account(&release_ns, NOBODY).await;
    for (namespace, expected) in [
        (&ns, required(Scope::Watched, switches)),
        (&release_ns, required(Scope::OperatorNamespace, switches)),
        (&other, BTreeSet::new()),
    ] {
        assert_effective(
            &env.client,
            &as_sa,
            &baseline,
            namespace,
            &expected,
            "namespaced install",
        )
        .await;
    }

    // The operator, with exactly the chart's RBAC, syncs a CspEntry end to end.
    let emulator = support::emulator::start(EmulatorConfig {
        admin_api_keys: vec![KEY.into()],
        ..Default::default()
    })
    .await;
    let admin =
        |kind| -> Api<DynamicObject> { Api::namespaced_with(env.client.clone(), &ns, &kind) };
    create_example_surroundings(&env, KEY).await;
    let header = json!({ "header": { "configMapName": "qlik-csp-header", "source": "Local" } });
    let tenant: DynamicObject = from_json(tenant_json(&emulator, "acme", header));
    admin(ApiResource::erase::<QlikTenant>(&()))
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    let entry: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "CspEntry",
        "metadata": { "name": "cdn" },
        "spec": { "tenantRef": { "name": "acme" }, "origin": "https://cdn.example.com", "directives": ["script-src"] },
    }))
    .unwrap();
    admin(ApiResource::erase::<CspEntry>(&()))
        .create(&PostParams::default(), &entry)
        .await
        .unwrap();

    let kubeconfig = env.kubeconfig_as_service_account(&release_ns, &sa);
    // The Deployment's arguments that bear on RBAC: the watched namespace and leader
    // election (its Lease in the release namespace). The emulator is on loopback, which the
    // default allow-list refuses.
    let _operator = Operator::builder(&ns, &kubeconfig)
        .args(["--leader-election"])
        // The CRD's shortest gracePeriod is 1 m; the rotation here need not wait it out.
        .args(["--grace-period-override", "0s"])
        .env("POD_NAMESPACE", &release_ns)
        .env("POD_NAME", "qco-operator-0")
        .spawn();

    let entries: Api<CspEntry> = Api::namespaced(env.client.clone(), &ns);
    let entry = wait_ready(&entries, "cdn", DEADLINE).await;
    assert!(
        entry
            .finalizers()
            .iter()
            .any(|f| f.starts_with("qlikops.io")),
        "the finalizer was added: {:?}",
        entry.finalizers()
    );
    let tenants: Api<QlikTenant> = Api::namespaced(env.client.clone(), &ns);
    wait_ready(&tenants, "acme", DEADLINE).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let header = eventually("the header in the ConfigMap", DEADLINE, || async {
        let map = config_maps.get_opt("qlik-csp-header").await.ok()??;
        let value = map.data?.get("Content-Security-Policy")?.clone();
        value
            .contains("script-src https://cdn.example.com")
            .then_some(value)
    })
    .await;
    let ingresses: Api<Ingress> = Api::namespaced(env.client.clone(), &ns);
    let sha = header_sha256(&header);
    eventually("the Ingress annotated", DEADLINE, || async {
        let ingress = ingresses.get("reports").await.ok()?;
        (ingress.metadata.annotations?.get(HEADER_SHA256) == Some(&sha)).then_some(())
    })
    .await;

    // A rotation, by the same process and identity: the Secret is created and owned, the
    // status is updated, the rollout target restarted, and a requested rotation revokes the
    // previous key.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "reports" },
        "spec": {
            "selector": { "matchLabels": { "app": "reports" } },
            "template": {
                "metadata": { "labels": { "app": "reports" } },
                "spec": { "containers": [{ "name": "reports", "image": "reports:1" }] },
            },
        },
    }))
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let rotation: SecretRotation = serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "SecretRotation",
        "metadata": { "name": "reports-key" },
        "spec": {
            "tenantRef": { "name": "acme" },
            "credential": { "apiKey": { "expiry": "24h" } },
            "secret": { "name": "reports-qlik", "key": "api-key" },
            "gracePeriod": "1m",
            "rolloutTargets": [{ "kind": "Deployment", "name": "reports" }],
        },
    }))
    .unwrap();
    let rotations: Api<SecretRotation> = Api::namespaced(env.client.clone(), &ns);
    rotations
        .create(&PostParams::default(), &rotation)
        .await
        .unwrap();
    let settled = |revision: i64| {
        let rotations = rotations.clone();
        async move {
            eventually(
                &format!("rotation revision {revision} settled"),
                DEADLINE,
                || async {
                    let r = rotations.get("reports-key").await.ok()?;
                    let status = r.status.as_ref()?;
                    let done = status.revision >= revision
                        && status.phase == Phase::Idle
                        && status.previous.is_none();
                    (done && is_ready(serde_json::to_value(&r).ok()?.get("status"))).then_some(r)
                },
            )
            .await
        }
    };
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    let stored_key = || async {
        let secret = secrets.get("reports-qlik").await.unwrap();
        String::from_utf8(secret.data.unwrap()["api-key"].0.clone()).unwrap()
    };
    let restarted_at = || async {
        let deployment = deployments.get("reports").await.unwrap();
        deployment
            .spec
            .template
            .metadata?
            .annotations?
            .get(CREDENTIAL_REVISION)
            .cloned()
    };
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(emulator.client_tls_config().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer_to = |token: String| {
        let request = http
            .get(format!("{}/api/v1/users/me", emulator.base_url()))
            .bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };

    let first = settled(1).await;
    let first_key = stored_key().await;
    assert_eq!(restarted_at().await.as_deref(), Some("1"));
    let last = first
        .status
        .as_ref()
        .and_then(|s| s.last_rotation_time.clone())
        .map(|t| t.0)
        .unwrap();
    // A whole-second request newer than the last rotation.
    let requested = eventually("a second after the first rotation", DEADLINE, || async {
        let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).ok()?;
        (now > last).then_some(now)
    })
    .await;
    rotations
        .patch(
            "reports-key",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                "qlikops.io/rotate-requested-at": requested.to_string(),
            } } })),
        )
        .await
        .unwrap();
    settled(2).await;
    assert_eq!(restarted_at().await.as_deref(), Some("2"));
    let second_key = stored_key().await;
    assert_ne!(first_key, second_key, "the rotation stored a new key");
    let answer = answer_to(second_key).await;
    assert!(
        answer.is_redirection() || answer.is_success(),
        "the rotated key is refused: {answer}"
    );
    // `previous` is cleared only once the old key is revoked: the tenant refuses it.
    assert_eq!(
        answer_to(first_key).await,
        reqwest::StatusCode::UNAUTHORIZED,
        "the previous key still authenticates"
    );
}

#[test]
fn deploy_manifest_is_current() {
    let rendered = manifests::render(&helm_binary(), root()).unwrap();
    let path = root().join(manifests::OUTPUT);
    let checked_in = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    assert!(
        checked_in == rendered,
        "{} is out of date: run `cargo xtask manifests` and commit the result",
        path.display()
    );
}

#[tokio::test]
async fn deploy_manifest_applies_on_a_real_apiserver() {
    let env = TestEnv::new().await;
    let text = std::fs::read_to_string(root().join(manifests::OUTPUT)).unwrap();
    let objects = documents(&text);
    assert_eq!(objects[0]["kind"], "Namespace");
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for kind in [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    ] {
        assert!(
            kinds.contains(kind),
            "{kind} missing from {}",
            manifests::OUTPUT
        );
    }

    // What `kubectl apply --server-side -f` does: each object in order, by its kind's REST
    // mapping from discovery.
    let apply = PatchParams::apply("kubectl").force();
    for object in &objects {
        let api_version = object["apiVersion"].as_str().unwrap();
        let kind = object["kind"].as_str().unwrap();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, capabilities) = kube::discovery::pinned_kind(&env.client, &gvk)
            .await
            .unwrap_or_else(|e| panic!("{api_version} {kind} is not served: {e}"));
        let name = object["metadata"]["name"].as_str().unwrap();
        let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
            Some(namespace) if capabilities.scope == kube::discovery::Scope::Namespaced => {
                Api::namespaced_with(env.client.clone(), namespace, &resource)
            }
            _ => Api::all_with(env.client.clone(), &resource),
        };
        api.patch(name, &apply, &Patch::Apply(object))
            .await
            .unwrap_or_else(|e| panic!("applying {kind} {name} failed: {e}"));
    }

    // The plain install's ServiceAccount has every permission the operator needs.
    let as_sa = env
        .client_as_service_account(manifests::NAMESPACE, CHART_NAME)
        .await;
    let switches = ChartSwitches::DEFAULTS;
    let missing = refused(&as_sa, switches, Scope::Watched, None).await;
    assert!(
        missing.is_empty(),
        "the manifests' RBAC misses: {missing:#?}"
    );
    let missing = refused(
        &as_sa,
        switches,
        Scope::OperatorNamespace,
        Some(manifests::NAMESPACE),
    )
    .await;
    assert!(
        missing.is_empty(),
        "the manifests' RBAC misses: {missing:#?}"
    );
    // And nothing more, bound to it and nobody else.
    let baseline = env
        .client_as_service_account(manifests::NAMESPACE, NOBODY)
        .await;
    let watched = required(Scope::Watched, switches);
    let in_release_namespace = &watched | &required(Scope::OperatorNamespace, switches);
    assert_effective(
        &env.client,
        &as_sa,
        &baseline,
        manifests::NAMESPACE,
        &in_release_namespace,
        "the plain manifests",
    )
    .await;
    assert_effective(
        &env.client,
        &as_sa,
        &baseline,
        &env.namespace,
        &watched,
        "the plain manifests",
    )
    .await;
    let leader = format!("{CHART_NAME}-leader-election");
    let digest_key = format!("{CHART_NAME}-push-digest-key");
    assert_bindings(
        &objects,
        &json!({ "kind": "ServiceAccount", "name": CHART_NAME, "namespace": manifests::NAMESPACE }),
        &[
            Binding::new(
                "ClusterRoleBinding",
                None,
                CHART_NAME,
                "ClusterRole",
                CHART_NAME,
            ),
            Binding::new(
                "RoleBinding",
                Some(manifests::NAMESPACE),
                &leader,
                "Role",
                &leader,
            ),
            Binding::new(
                "RoleBinding",
                Some(manifests::NAMESPACE),
                &digest_key,
                "Role",
                &digest_key,
            ),
        ],
    );
}
