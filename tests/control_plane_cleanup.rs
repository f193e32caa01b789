//! No etcd, kube-apiserver or kube-controller-manager outlives the test binary that started
//! it, even when a test panics. The check runs this binary again as a child whose test panics with the control
//! plane up, then waits for the processes it reported to be gone.

mod support;

use std::process::Command;
use std::time::Duration;

const CHILD_VAR: &str = "QLIKOPS_CLEANUP_CHILD";

#[tokio::test]
async fn control_plane_processes_die_with_a_test_binary_that_panics() {
    if std::env::var_os(CHILD_VAR).is_some() {
        // Child side: start the control plane, report its processes, then fail hard.
        let env = support::TestEnv::new().await;
        println!("pids={:?}", env.control_plane.pids);
        panic!("deliberate panic with the control plane running");
    }

    let output = Command::new(std::env::current_exe().expect("the test binary has a path"))
        .args([
            "--exact",
            "control_plane_processes_die_with_a_test_binary_that_panics",
            "--nocapture",
        ])
        .env(CHILD_VAR, "1")
        .output()
        .expect("the child test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "the child should have failed: {stdout}"
    );
    let pids: Vec<u32> = stdout
        .lines()
        .find_map(|line| line.strip_prefix("pids="))
        .map(|list| {
            list.trim_matches(['[', ']'])
                .split(", ")
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_else(|| {
            panic!(
                "the child did not report its processes:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert_eq!(
        pids.len(),
        3,
        "expected etcd, kube-apiserver and kube-controller-manager: {pids:?}"
    );

    // The kernel delivers SIGKILL on the parent's exit; reaping by init takes a moment.
    support::eventually(
        "etcd, kube-apiserver and kube-controller-manager to exit",
        Duration::from_secs(30),
        || async {
            let alive: Vec<&u32> = pids.iter().filter(|pid| is_running(**pid)).collect();
            alive.is_empty().then_some(())
        },
    )
    .await;
}

/// A process that exists and is not a zombie.
fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
