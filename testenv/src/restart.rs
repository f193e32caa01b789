//! Restarting etcd or kube-apiserver of a running [`ControlPlane`], as a crash and a
//! supervisor's restart would: killed (SIGKILL) and started again with the same port,
//! flags and data directory, tied to the process like the first (the same keeper thread
//! spawns it). Each call returns once the apiserver serves again, with how long it did
//! not. For the chaos runs and the tests of how the operator rides out a control-plane
//! outage. Does process and network I/O.

use std::time::{Duration, Instant};

use kube::Client;

use crate::{ControlPlane, STARTUP_DEADLINE, client_from_kubeconfig, tail};

/// The keeper's index of etcd, then of kube-apiserver (the order `start` spawns them in).
pub(crate) const ETCD: usize = 0;
pub(crate) const APISERVER: usize = 1;
/// How long one readiness probe may take: a request to an apiserver whose etcd is gone
/// hangs until etcd's own timeout otherwise.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

impl ControlPlane {
    /// Kills kube-apiserver and starts it again on the same port, with the same flags and
    /// etcd. Returns how long it was down: from the kill until it is ready and reads from
    /// etcd again. Connections to it (watches included) break.
    pub async fn restart_apiserver(&self) -> Result<Duration, String> {
        let killed_at = self.keeper.restart(APISERVER).await?;
        self.wait_serving(killed_at, "kube-apiserver").await
    }

    /// Kills etcd and starts it again on the same ports and data directory, the apiserver
    /// left running. Returns how long the apiserver could not serve: from the kill until
    /// it is ready and reads from etcd again.
    pub async fn restart_etcd(&self) -> Result<Duration, String> {
        let killed_at = self.keeper.restart(ETCD).await?;
        self.wait_serving(killed_at, "etcd").await
    }

    /// Waits until the apiserver answers `/readyz` with `ok` and a read that goes to etcd
    /// (a GET of one object is never served from the watch cache), with a deadline.
    async fn wait_serving(&self, since: Instant, restarted: &str) -> Result<Duration, String> {
        let client = client_from_kubeconfig(&self.kubeconfig, None).await?;
        let deadline = since + STARTUP_DEADLINE;
        loop {
            if let Some(status) = self.exited.get() {
                return Err(format!(
                    "kube-apiserver exited after {restarted} restarted ({status})\n{}",
                    self.logs()
                ));
            }
            let last_error = match tokio::time::timeout(PROBE_TIMEOUT, serving(&client)).await {
                Ok(Ok(())) => return Ok(since.elapsed()),
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "kube-apiserver did not serve within {STARTUP_DEADLINE:?} of restarting {restarted}: {last_error}\n{}",
                    self.logs()
                ));
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    fn logs(&self) -> String {
        let [etcd, apiserver] =
            ["etcd.log", "kube-apiserver.log"].map(|name| tail(&self.run_dir.join(name)));
        format!("--- etcd.log (tail) ---\n{etcd}\n--- kube-apiserver.log (tail) ---\n{apiserver}")
    }
}

async fn serving(client: &Client) -> Result<(), String> {
    let readyz = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let body = client
        .request_text(readyz)
        .await
        .map_err(|e| e.to_string())?;
    if body.trim() != "ok" {
        return Err(body);
    }
    let read = http::Request::get("/api/v1/namespaces/default")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    client
        .request_text(read)
        .await
        .map(|_| ())
        .map_err(|e| format!("failed to read from etcd: {e}"))
}
