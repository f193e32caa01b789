//! What a kubelet and a container runtime do for the image's pod, done by hand: the
//! ServiceAccount's files mounted into the unpacked root file system, and the entrypoint run
//! there with `chroot`, as the image's user, as PID 1 of its own PID namespace.

use std::path::Path;
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::archive::Image;
use super::support::TestEnv;
use super::tools::Killed;

/// Writes what the kubelet mounts into a pod of ServiceAccount `name` (created here, and
/// allowed anything in the test's namespace: the chart's RBAC is tested in
/// tests/helm_chart.rs, here only the image is under test) under `rootfs`.
pub async fn mount_service_account(env: &TestEnv, rootfs: &Path, name: &str) {
    create(
        env,
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": name } }),
    )
    .await;
    create(env, json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": { "name": name },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
        "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": env.namespace }],
    }))
    .await;
    let request = serde_json::from_value(json!({ "spec": { "audiences": [] } })).unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client.clone(), &env.namespace);
    let issued = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap();
    let token = issued.status.and_then(|s| s.token);
    let mount = rootfs.join("var/run/secrets/kubernetes.io/serviceaccount");
    std::fs::create_dir_all(&mount).unwrap();
    std::fs::write(mount.join("token"), token.expect("a token")).unwrap();
    let ca = env.control_plane.run_dir.join("ca.crt");
    std::fs::copy(ca, mount.join("ca.crt")).unwrap();
    std::fs::write(mount.join("namespace"), &env.namespace).unwrap();
}

/// The container: the image's entrypoint and default command with its environment, plus a
/// pod's (the in-cluster API address, the Downward API names, the chart's settings as their
/// environment variables), run in `rootfs` as the image's user, as PID 1 of its own PID
/// namespace.
pub fn start_container(image: &Image, rootfs: &Path, env: &TestEnv, metrics: &str) -> Killed {
    let ns = &env.namespace;
    let apiserver_port = env.control_plane.url.rsplit(':').next().unwrap();
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--kill-child", "chroot"])
        .arg(format!("--userspec={}", image.config_str("User")))
        .arg(rootfs)
        .args(image.config_strings("Entrypoint"))
        .args(image.config_strings("Cmd"))
        .env_clear()
        .envs(
            image
                .config_strings("Env")
                .iter()
                .filter_map(|e| e.split_once('=')),
        )
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", apiserver_port)
        .env("POD_NAMESPACE", ns)
        .env("POD_NAME", "qlik-csp-operator-0")
        .env("WATCH_NAMESPACE", ns)
        .env("METRICS_ADDRESS", metrics)
        .env("ALLOWED_TENANT_HOSTS", "127.0.0.1")
        .env("LOG_FORMAT", "text")
        .stdin(Stdio::null());
    qlikops_testenv::die_with_parent(&mut command);
    Killed(command.spawn().unwrap())
}

/// The host PID of the process `unshare --fork` started (then `chroot` became the operator).
pub fn operator_pid(unshare: u32) -> i32 {
    let children = format!("/proc/{unshare}/task/{unshare}/children");
    let text = std::fs::read_to_string(&children).unwrap();
    let pid = text.split_whitespace().next();
    pid.and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no child in {children}: {text:?}"))
}

pub fn ready(conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Creates a core or RBAC object from its JSON in the test's namespace.
pub async fn create(env: &TestEnv, object: Value) {
    async fn create_as<K>(env: &TestEnv, object: Value)
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::Serialize
            + DeserializeOwned,
    {
        let object: K = serde_json::from_value(object).unwrap();
        Api::<K>::namespaced(env.client.clone(), &env.namespace)
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
    match object["kind"].as_str() {
        Some("Secret") => create_as::<Secret>(env, object).await,
        Some("ServiceAccount") => create_as::<ServiceAccount>(env, object).await,
        Some("RoleBinding") => create_as::<RoleBinding>(env, object).await,
        other => panic!("create() does not know {other:?}"),
    }
}
