//! The harness restarts kube-apiserver and etcd in place (same port, flags and data) and
//! cuts a client's connections at a relay: what `cargo xtask chaos`'s `control_plane`
//! scenario and the tests of riding out a control-plane fault rely on. What was written
//! before a restart is there after it, through the same client.

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use qlikops_testenv::Relay;

/// The tests share the binary's control plane: a restart must not fall in the middle of
/// the other test.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config_map(name: &str) -> ConfigMap {
    let mut object = ConfigMap::default();
    object.metadata.name = Some(name.to_owned());
    object
}

#[tokio::test]
async fn the_apiserver_and_etcd_restart_in_place_and_keep_what_was_written() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let env = support::TestEnv::new().await;
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let create = |name: &'static str| {
        let config_maps = config_maps.clone();
        async move {
            config_maps
                .create(&PostParams::default(), &config_map(name))
                .await
                .unwrap_or_else(|e| panic!("failed to create {name}: {e}"))
        }
    };
    create("before-apiserver").await;

    let down = env
        .control_plane
        .restart_apiserver()
        .await
        .unwrap_or_else(|e| panic!("the apiserver did not come back: {e}"));
    println!("apiserver down for {down:?}");
    config_maps
        .get("before-apiserver")
        .await
        .unwrap_or_else(|e| panic!("lost what was written before the apiserver restart: {e}"));
    create("before-etcd").await;

    let down = env
        .control_plane
        .restart_etcd()
        .await
        .unwrap_or_else(|e| panic!("the apiserver did not serve after etcd restarted: {e}"));
    println!("etcd down for {down:?}");
    for name in ["before-apiserver", "before-etcd"] {
        config_maps
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("lost {name} to the etcd restart: {e}"));
    }
    create("after-etcd").await;
    assert_eq!(env.control_plane.exit_status(), None);
}

/// `cargo xtask chaos` runs the soak on a control plane of its own, in the same process as
/// the one the other scenarios restart: each must keep its own data directory and files.
#[tokio::test]
async fn a_second_control_plane_in_the_process_leaves_the_first_ones_data_alone() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let env = support::TestEnv::new().await;
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    config_maps
        .create(&PostParams::default(), &config_map("before-the-second"))
        .await
        .unwrap_or_else(|e| panic!("failed to create the ConfigMap: {e}"));
    let kubeconfig_before = std::fs::read_to_string(&env.control_plane.kubeconfig)
        .unwrap_or_else(|e| panic!("failed to read the kubeconfig: {e}"));

    let bin_dir = qlikops_testenv::bin_dir_from_env()
        .unwrap_or_else(|e| panic!("no control-plane binaries: {e}"));
    let crds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let second = qlikops_testenv::ControlPlane::start(&bin_dir, &crds)
        .unwrap_or_else(|e| panic!("the second control plane did not start: {e}"));
    assert_ne!(second.run_dir, env.control_plane.run_dir);
    let kubeconfig_after = std::fs::read_to_string(&env.control_plane.kubeconfig)
        .unwrap_or_else(|e| panic!("the first kubeconfig is gone: {e}"));
    assert_eq!(
        kubeconfig_after, kubeconfig_before,
        "the first kubeconfig was replaced"
    );

    // etcd reads its data directory again on a restart: it must still be the first's.
    env.control_plane
        .restart_etcd()
        .await
        .unwrap_or_else(|e| panic!("the apiserver did not serve after etcd restarted: {e}"));
    config_maps
        .get("before-the-second")
        .await
        .unwrap_or_else(|e| panic!("the first control plane lost its data: {e}"));
}

#[tokio::test]
async fn a_relay_cuts_open_connections_and_relays_new_ones() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let env = support::TestEnv::new().await;
    let control_plane = env.control_plane;
    let upstream = control_plane
        .url
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("unexpected apiserver URL {}", control_plane.url));
    let relay = Relay::start(upstream)
        .await
        .unwrap_or_else(|e| panic!("the relay did not start: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
    let kubeconfig = relay
        .kubeconfig(
            &control_plane.kubeconfig,
            &control_plane.url,
            dir.path().join("kubeconfig"),
        )
        .unwrap_or_else(|e| panic!("no relayed kubeconfig: {e}"));
    let client = support::client_from_kubeconfig(&kubeconfig, None)
        .await
        .unwrap_or_else(|e| panic!("no client through the relay: {e}"));
    let config_maps: Api<ConfigMap> = Api::namespaced(client, &env.namespace);
    config_maps
        .create(&PostParams::default(), &config_map("through-relay"))
        .await
        .unwrap_or_else(|e| panic!("failed to create through the relay: {e}"));
    assert!(
        relay.accepted() >= 1,
        "the client did not go through the relay"
    );

    assert!(relay.cut() >= 1, "the client's connection was not open");
    // The client's pooled connection is gone; a request that raced the cut fails, and the
    // one after it opens a new connection.
    let mut read = config_maps.get("through-relay").await;
    if read.is_err() {
        read = config_maps.get("through-relay").await;
    }
    read.unwrap_or_else(|e| panic!("no read through the relay after a cut: {e}"));
}
