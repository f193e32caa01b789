//! The processes a benchmark runs: tenant emulators and the operator, both release builds,
//! killed when their handle is dropped (and by the kernel if xtask dies first).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use qlik_csp_operator::tenant::{ClientConfig, Credential, CredentialSource, TenantClient};
use serde_json::Value;

/// The admin API key every emulator accepts; the operator reads it from a Secret.
pub const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef";
/// The Secret (and its key) holding [`ADMIN_KEY`], as `examples/qlik-tenant.yaml` names it.
pub const ADMIN_SECRET: &str = "qlik-admin";
pub const ADMIN_SECRET_KEY: &str = "api-key";

/// A running `qlik-tenant-emulator`, Qlik's tier rate limits on.
pub struct Emulator {
    child: Child,
    pub url: String,
    pub ca_pem: String,
    control: reqwest::Client,
}

impl Emulator {
    /// Starts an emulator named `name`; `extra` are more flags (e.g. `--oauth-client`).
    pub fn start(bins: &Path, work: &Path, name: &str, extra: &[&str]) -> Result<Emulator, String> {
        let ca_path = work.join(format!("{name}-ca.pem"));
        let mut command = Command::new(bins.join("qlik-tenant-emulator"));
        command
            .args(extra)
            .arg("--ca-out")
            .arg(&ca_path)
            .args(["--tenant-name", name])
            .env("QLIK_EMULATOR_ADMIN_API_KEY", ADMIN_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = spawn_tied(&mut command)?;
        let stdout = child.stdout.take().ok_or("the emulator has no stdout")?;
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .map_err(|e| format!("failed to read the emulator's address: {e}"))?;
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line from the emulator: {first:?}"))?
            .to_owned();
        let ca_pem = std::fs::read_to_string(&ca_path)
            .map_err(|e| format!("failed to read {}: {e}", ca_path.display()))?;
        let control = http_client(&ca_pem)?;
        Ok(Emulator {
            child,
            url,
            ca_pem,
            control,
        })
    }

    /// A tenant client authenticated with the admin key, as the operator would be for a
    /// QlikTenant in `namespace`.
    pub fn admin_client(&self, namespace: &str) -> Result<TenantClient, String> {
        TenantClient::new(
            ClientConfig {
                ca_bundle: Some(self.ca_pem.clone()),
                ..ClientConfig::new(self.url.clone())
            },
            Credential::api_key(ADMIN_KEY),
            CredentialSource::Secret {
                namespace: namespace.to_owned(),
                name: ADMIN_SECRET.to_owned(),
                key: ADMIN_SECRET_KEY.to_owned(),
            },
        )
        .map_err(|e| format!("failed to build an admin tenant client: {e}"))
    }

    /// An HTTPS client that trusts the emulator, without credentials.
    pub fn http(&self) -> &reqwest::Client {
        &self.control
    }

    /// Requests answered so far, by operation (`csp-origins.create`, ...).
    pub async fn counters(&self) -> Result<Counters, String> {
        let body: Value = self
            .control
            .get(format!("{}/_emulator/counters", self.url))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("failed to read the emulator's counters: {e}"))?
            .json()
            .await
            .map_err(|e| format!("failed to parse the emulator's counters: {e}"))?;
        let operations = body["operations"]
            .as_object()
            .ok_or("the emulator's counters have no operations")?;
        Ok(Counters(
            operations
                .iter()
                .map(|(name, counts)| (name.clone(), counts["requests"].as_u64().unwrap_or(0)))
                .filter(|(_, requests)| *requests > 0)
                .collect(),
        ))
    }
}

impl Emulator {
    /// The emulator's request log as it answers it: one JSON object a request (`method`,
    /// `operation`, `path`, `status`, `atMs`, ...), in completion order.
    pub async fn request_log(&self) -> Result<Vec<Value>, String> {
        let mut body: Value = self
            .control
            .get(format!("{}/_emulator/requests", self.url))
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("failed to read the emulator's request log: {e}"))?
            .json()
            .await
            .map_err(|e| format!("failed to parse the emulator's request log: {e}"))?;
        match body["requests"].take() {
            Value::Array(requests) => Ok(requests),
            _ => Err("the emulator's request log has no requests list".to_owned()),
        }
    }

    /// The emulator's request log: (operation, path, atMs) in completion order.
    pub async fn requests(&self) -> Result<Vec<(String, String, f64)>, String> {
        Ok(self
            .request_log()
            .await?
            .iter()
            .filter_map(|r| {
                Some((
                    r["operation"].as_str()?.to_owned(),
                    r["path"].as_str()?.to_owned(),
                    r["atMs"].as_f64()?,
                ))
            })
            .collect())
    }

    /// When each request for `operation` arrived, in seconds since the emulator started.
    pub async fn arrivals(&self, operation: &str) -> Result<Vec<f64>, String> {
        Ok(self
            .requests()
            .await?
            .into_iter()
            .filter(|(op, _, _)| op == operation)
            .map(|(_, _, ms)| (ms / 10.0).round() / 100.0)
            .collect())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Request counts by operation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters(pub std::collections::BTreeMap<String, u64>);

impl Counters {
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn get(&self, operation: &str) -> u64 {
        self.0.get(operation).copied().unwrap_or(0)
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters(
            self.0
                .iter()
                .map(|(name, n)| (name.clone(), n.saturating_sub(earlier.get(name))))
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counters) {
        for (name, n) in &other.0 {
            *self.0.entry(name.clone()).or_default() += n;
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(&self.0).unwrap_or(Value::Null)
    }
}

/// A running `qlik-csp-operator run`, logging to a file.
pub struct Operator {
    child: Child,
    pub log: PathBuf,
}

impl Operator {
    /// Runs `qlik-csp-operator run <args>` against the control plane of `kubeconfig`,
    /// allowing tenants on 127.0.0.1.
    pub fn start(
        bins: &Path,
        kubeconfig: &Path,
        args: &[&str],
        log: PathBuf,
    ) -> Result<Operator, String> {
        Operator::start_with_env(bins, kubeconfig, args, &[], log)
    }

    /// [`Operator::start`] with more environment variables (a fail point, a pod name).
    /// The log is appended to, so that a restarted operator's log follows the killed one's.
    pub fn start_with_env(
        bins: &Path,
        kubeconfig: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Result<Operator, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("failed to open {}: {e}", log.display()))?;
        let mut command = Command::new(bins.join("qlik-csp-operator"));
        // The emulators listen on loopback, which the default host allow-list refuses; the
        // metrics port is picked freely so runs never collide.
        command
            .arg("run")
            .args(["--allowed-tenant-hosts", "127.0.0.1"])
            .args(["--metrics-address", "127.0.0.1:0"])
            .args(args);
        command
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file);
        let child = spawn_tied(&mut command)?;
        Ok(Operator { child, log })
    }

    /// The operator's process id (it is our direct child: no shell in between), for
    /// reading its memory from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the operator has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "the operator exited ({status}); see {}",
                self.log.display()
            )),
            Err(e) => Err(format!("failed to check the operator: {e}")),
        }
    }
}

impl Operator {
    /// SIGKILLs the operator (no shutdown, no Lease release: a crash) and reaps it.
    pub fn kill(mut self) -> Result<(), String> {
        self.child
            .kill()
            .map_err(|e| format!("failed to kill the operator: {e}"))?;
        self.child
            .wait()
            .map(|_| ())
            .map_err(|e| format!("failed to reap the operator: {e}"))
    }

    /// Waits for the operator to exit on its own (a fail point aborting it), failing after
    /// `deadline`.
    pub async fn exited(&mut self, deadline: std::time::Duration) -> Result<ExitStatus, String> {
        let until = std::time::Instant::now() + deadline;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if std::time::Instant::now() >= until => {
                    return Err(format!(
                        "the operator did not exit within {deadline:?}; see {}",
                        self.log.display()
                    ));
                }
                Ok(None) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                Err(e) => return Err(format!("failed to check the operator: {e}")),
            }
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `command` so that the kernel kills it if xtask dies first. Call from the thread
/// that lives as long as the benchmark (`PR_SET_PDEATHSIG` fires when the spawning thread
/// exits): the main thread.
pub fn spawn_tied(command: &mut Command) -> Result<Child, String> {
    qlikops_testenv::die_with_parent(command);
    command
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("failed to start {:?}: {e}", command.get_program()))
}

/// An HTTPS client that trusts only `ca_pem`, for the emulator's control API.
fn http_client(ca_pem: &str) -> Result<reqwest::Client, String> {
    let tls = qlik_csp_operator::emulator::client_tls_config_for(ca_pem)
        .map_err(|e| format!("the emulator's CA is unusable: {e}"))?;
    // Redirects are not followed: `users/me` answers 301 to an accepted credential, and
    // following it would double a consumer's reads against the budget it shares.
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("failed to build an HTTP client: {e}"))
}
