//! `qlik-csp-operator run` refuses bad flags before it touches any cluster: exit status 2
//! and a message naming the flag; and its text logs stay plain text when they go to a file.
//! No control plane needed.

use std::process::{Command, Stdio};

/// `qlik-csp-operator run <args>` with nothing from the environment that would reach a
/// cluster.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_qlik-csp-operator"));
    command
        .arg("run")
        .args(args)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("POD_NAMESPACE")
        .env_remove("WATCH_NAMESPACE")
        .env_remove("ALLOWED_TENANT_HOSTS")
        .env_remove("LEADER_ELECTION")
        .env_remove("LEADER_ELECTION_NAMESPACE")
        .env_remove("LOG_FORMAT")
        .env_remove("LOG_LEVEL")
        .env_remove("RUST_LOG")
        // A kubeconfig that does not exist: reaching the cluster would fail differently.
        .env("KUBECONFIG", "/nonexistent/kubeconfig");
    command
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = command(args).output().unwrap();
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

#[test]
fn text_logs_redirected_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.log");
    let log = std::fs::File::create(&path).unwrap();
    // Valid flags, so the operator starts logging, then stops on the missing kubeconfig
    // with an ERROR line: the line a user greps for in a log file.
    let status = command(&["--log-format", "text", "--metrics-address", "127.0.0.1:0"])
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .unwrap();
    let text = std::fs::read(&path).unwrap();
    let shown = String::from_utf8_lossy(&text);
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(shown.contains("ERROR"), "no error line was logged: {shown}");
    assert!(
        !text.contains(&0x1b),
        "the log file holds ANSI escape codes:\n{}",
        shown.escape_debug()
    );
}
