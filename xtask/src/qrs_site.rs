//! A running `qlik-tenant-emulator qrs`: an emulated Qlik Sense Enterprise on Windows site
//! (its Repository Service), with the client certificate it wrote out the way the QMC
//! exports one. Killed when its handle is dropped (and by the kernel if xtask dies first).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

use crate::processes::spawn_tied;

/// The site and what a QlikTenant needs to reach it.
pub struct QrsSite {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub url: String,
    /// QMC's `root.pem`, `client.pem` and `client_key.pem`.
    pub ca_pem: String,
    pub client_pem: String,
    pub client_key_pem: String,
    control: reqwest::Client,
}

impl QrsSite {
    /// Starts a site with a virtual proxy for each of `prefixes`.
    pub fn start(bins: &Path, work: &Path, prefixes: &[&str]) -> Result<QrsSite, String> {
        let [ca, cert, key] = ["root.pem", "client.pem", "client_key.pem"].map(|f| work.join(f));
        let mut command = Command::new(bins.join("qlik-tenant-emulator"));
        command
            .arg("qrs")
            .arg("--ca-out")
            .arg(&ca)
            .arg("--client-cert-out")
            .arg(&cert)
            .arg("--client-key-out")
            .arg(&key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for prefix in prefixes {
            command.arg(format!("--seed-virtual-proxy={prefix}"));
        }
        let mut child = spawn_tied(&mut command)?;
        let stdout = child.stdout.take().ok_or("the QRS site has no stdout")?;
        // Kept open for the site's life: it prints a line per seeded proxy after the
        // address, and a closed pipe would kill it on the next write.
        let mut stdout = BufReader::new(stdout);
        let mut first = String::new();
        stdout
            .read_line(&mut first)
            .map_err(|e| format!("failed to read the QRS site's address: {e}"))?;
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line from the QRS site: {first:?}"))?
            .to_owned();
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|e| format!("failed to read {}: {e}", path.display()))
        };
        let (ca_pem, client_pem, client_key_pem) = (read(&ca)?, read(&cert)?, read(&key)?);
        let tls = qlik_csp_operator::emulator::qrs::client_tls_config(
            &ca_pem,
            &client_pem,
            &client_key_pem,
        )
        .map_err(|e| format!("the QRS site's certificates are unusable: {e}"))?;
        let control = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| format!("failed to build a client for the QRS site: {e}"))?;
        Ok(QrsSite {
            child,
            _stdout: stdout,
            url,
            ca_pem,
            client_pem,
            client_key_pem,
            control,
        })
    }

    /// A client the site's control API (`/_emulator/...`) accepts: it presents the client
    /// certificate.
    pub fn http(&self) -> &reqwest::Client {
        &self.control
    }

    /// Every virtual proxy as the site stores it (its control API, not QRS).
    pub async fn virtual_proxies(&self) -> Result<Vec<Value>, String> {
        let body: Value = self
            .control
            .get(format!("{}/_emulator/qrs/virtualproxies", self.url))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("failed to read the site's virtual proxies: {e}"))?
            .json()
            .await
            .map_err(|e| format!("failed to parse the site's virtual proxies: {e}"))?;
        Ok(body["virtualProxies"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

impl Drop for QrsSite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
