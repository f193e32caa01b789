//! `qlik-csp-operator run` refuses bad flags before it touches any cluster: exit status 2
//! and a message naming the flag. No control plane needed.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_qlik-csp-operator"))
        .arg("run")
        .args(args)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("POD_NAMESPACE")
        .env_remove("WATCH_NAMESPACE")
        .env_remove("ALLOWED_TENANT_HOSTS")
        .env_remove("LEADER_ELECTION")
        .env_remove("LEADER_ELECTION_NAMESPACE")
        // A kubeconfig that does not exist: reaching the cluster would fail differently.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_wildcard_anywhere_but_the_first_label_is_refused() {
    let (code, stderr) = run(&["--allowed-tenant-hosts", "*.qlikcloud.com,qlik.*.com"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--allowed-tenant-hosts"), "{stderr}");
    assert!(stderr.contains("qlik.*.com"), "{stderr}");
}

#[test]
fn several_namespaces_are_refused_with_a_hint() {
    let (code, stderr) = run(&["--namespace", "a,b"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("only one namespace"), "{stderr}");
}

#[test]
fn leader_election_outside_a_cluster_needs_a_lease_namespace() {
    let (code, stderr) = run(&["--leader-election"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--leader-election-namespace"), "{stderr}");
}

#[test]
fn a_lease_shorter_than_two_seconds_is_refused() {
    let (code, stderr) = run(&["--leader-election-lease-seconds", "1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--leader-election-lease-seconds"),
        "{stderr}"
    );
}
