//! A real etcd + kube-apiserver on loopback, with RBAC on and the project's CRDs installed:
//! the control plane of the integration tests, `cargo xtask bench` and `cargo xtask demo`.
//!
//! The processes are spawned by a keeper thread that lives as long as the process that
//! started them and ask the kernel (`PR_SET_PDEATHSIG`) to kill them when it goes. So whether
//! the tests pass, panic, or the process is killed, no etcd or apiserver outlives it. Run
//! directories of earlier runs whose process is gone are swept on start.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

mod certs;

/// The variable `cargo xtask test` sets to the directory holding etcd, kube-apiserver, helm.
pub const BIN_DIR_VAR: &str = "QLIKOPS_ENVTEST_BIN";
const STARTUP_DEADLINE: Duration = Duration::from_secs(120);

/// A running control plane. Its files stay in `run_dir` for post-mortems.
pub struct ControlPlane {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// A kubeconfig for the static admin identity (member of `system:masters`).
    pub kubeconfig: PathBuf,
    pub run_dir: PathBuf,
    /// Directory holding the envtest tools (`helm` for the chart tests).
    pub bin_dir: PathBuf,
    /// Process ids of etcd and kube-apiserver.
    pub pids: Vec<u32>,
    /// Set when the apiserver exits, with its exit status.
    exited: Arc<OnceLock<String>>,
}

/// The tools directory named by [`BIN_DIR_VAR`].
pub fn bin_dir_from_env() -> Result<PathBuf, String> {
    std::env::var_os(BIN_DIR_VAR).map(PathBuf::from).ok_or_else(|| {
        format!("{BIN_DIR_VAR} is not set: run the tests with `cargo xtask test`, which builds etcd and kube-apiserver and sets it")
    })
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver from `bin_dir` and installs the CRDs in `crds_dir`.
    /// Blocks until the apiserver is ready; call it from a plain thread or outside a runtime.
    pub fn start(bin_dir: &Path, crds_dir: &Path) -> Result<ControlPlane, String> {
        start(bin_dir.to_path_buf(), crds_dir)
    }

    /// Whether the apiserver has exited, and how.
    pub fn exit_status(&self) -> Option<&str> {
        self.exited.get().map(String::as_str)
    }

    /// An admin client (identity in `system:masters`).
    pub async fn admin_client(&self) -> Result<Client, String> {
        client_from_kubeconfig(&self.kubeconfig, None).await
    }
}

/// Someone to impersonate, e.g. a ServiceAccount in an RBAC test.
pub struct Impersonation {
    pub user: String,
    pub groups: Vec<String>,
}

/// A client from `path`, optionally impersonating someone.
pub async fn client_from_kubeconfig(
    path: &Path,
    impersonate: Option<Impersonation>,
) -> Result<Client, String> {
    let kubeconfig = Kubeconfig::read_from(path)
        .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("failed to load {}: {e}", path.display()))?;
    if let Some(identity) = impersonate {
        config.auth_info.impersonate = Some(identity.user);
        config.auth_info.impersonate_groups = Some(identity.groups);
    }
    Client::try_from(config).map_err(|e| format!("failed to build a client: {e}"))
}

fn start(bin_dir: PathBuf, crds_dir: &Path) -> Result<ControlPlane, String> {
    let runs = std::env::temp_dir().join("qlikops-envtest");
    sweep_stale_runs(&runs);
    let run_dir = runs.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(run_dir.join("etcd"))
        .map_err(|e| format!("failed to create {}: {e}", run_dir.display()))?;

    let pki = certs::generate().map_err(|e| format!("failed to generate certificates: {e}"))?;
    let admin_token = random_token();
    let write = |name: &str, content: &str| -> Result<PathBuf, String> {
        let path = run_dir.join(name);
        std::fs::write(&path, content)
            .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
        Ok(path)
    };
    let ca = write("ca.crt", &pki.ca_pem)?;
    let serving_cert = write("apiserver.crt", &pki.serving_cert_pem)?;
    let serving_key = write("apiserver.key", &pki.serving_key_pem)?;
    let sa_key = write("service-account.key", &pki.service_account_key_pem)?;
    let sa_public_key = write("service-account.pub", &pki.service_account_public_key_pem)?;
    let tokens = write(
        "tokens.csv",
        &format!("{admin_token},admin,admin,\"system:masters\"\n"),
    )?;

    let etcd_port = free_port()?;
    let etcd_peer_port = free_port()?;
    let apiserver_port = free_port()?;
    let url = format!("https://127.0.0.1:{apiserver_port}");
    let kubeconfig = write(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: {url}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  user:\n    token: {admin_token}\ncontexts:\n- name: envtest\n  context:\n    cluster: envtest\n    user: admin\ncurrent-context: envtest\n",
            ca = ca.display()
        ),
    )?;

    let etcd_client = format!("http://127.0.0.1:{etcd_port}");
    let etcd_peer = format!("http://127.0.0.1:{etcd_peer_port}");
    let mut etcd = Command::new(bin_dir.join("etcd"));
    etcd.arg("--name=default")
        .arg(format!("--data-dir={}", run_dir.join("etcd").display()))
        .arg(format!("--listen-client-urls={etcd_client}"))
        .arg(format!("--advertise-client-urls={etcd_client}"))
        .arg(format!("--listen-peer-urls={etcd_peer}"))
        .arg(format!("--initial-advertise-peer-urls={etcd_peer}"))
        .arg(format!("--initial-cluster=default={etcd_peer}"))
        // The data is thrown away with the run; fsync only costs time.
        .arg("--unsafe-no-fsync")
        .arg("--log-level=warn");

    let mut apiserver = Command::new(bin_dir.join("kube-apiserver"));
    apiserver
        .arg(format!("--etcd-servers={etcd_client}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .arg(format!("--secure-port={apiserver_port}"))
        .arg(format!("--cert-dir={}", run_dir.join("certs").display()))
        .arg(format!("--tls-cert-file={}", serving_cert.display()))
        .arg(format!("--tls-private-key-file={}", serving_key.display()))
        .arg("--service-cluster-ip-range=10.0.0.0/24")
        .arg(format!("--service-account-issuer={url}"))
        .arg(format!(
            "--service-account-key-file={}",
            sa_public_key.display()
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            sa_key.display()
        ))
        .arg("--authorization-mode=RBAC")
        .arg(format!("--token-auth-file={}", tokens.display()))
        .arg("--allow-privileged=true")
        // The default reconciler publishes the advertise address as the `kubernetes` Service's
        // endpoint and refuses loopback; nothing in the tests reaches the apiserver that way.
        .arg("--endpoint-reconciler-type=none")
        // No controller-manager runs, so nothing would create the token a Pod's ServiceAccount
        // admission waits for; controller-runtime's envtest disables it for the same reason.
        .arg("--disable-admission-plugins=ServiceAccount");

    let etcd_log = run_dir.join("etcd.log");
    let apiserver_log = run_dir.join("kube-apiserver.log");
    let exited = Arc::new(OnceLock::new());
    let pids = spawn_keeper(
        vec![(etcd, etcd_log.clone()), (apiserver, apiserver_log.clone())],
        exited.clone(),
    )?;

    let control_plane = ControlPlane {
        url,
        kubeconfig,
        run_dir: run_dir.clone(),
        bin_dir,
        pids,
        exited: exited.clone(),
    };
    // The caller may be inside a test's runtime, where blocking on another runtime is not
    // allowed; a plain thread with its own runtime is.
    let kubeconfig = control_plane.kubeconfig.clone();
    let crds = read_crds(crds_dir)?;
    let ready = std::thread::spawn(move || -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("failed to build a runtime: {e}"))?;
        runtime.block_on(wait_ready_and_install_crds(&kubeconfig, crds, &exited))
    })
    .join()
    .map_err(|_| "the readiness check panicked".to_string())?;
    ready.map_err(|message| {
        format!(
            "{message}\n--- etcd.log (tail) ---\n{}\n--- kube-apiserver.log (tail) ---\n{}",
            tail(&etcd_log),
            tail(&apiserver_log)
        )
    })?;
    Ok(control_plane)
}

/// Spawns the processes from a thread that never ends, so that `PR_SET_PDEATHSIG` (which
/// fires when the spawning *thread* exits) fires only when the test binary exits.
fn spawn_keeper(
    commands: Vec<(Command, PathBuf)>,
    exited: Arc<OnceLock<String>>,
) -> Result<Vec<u32>, String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("envtest-keeper".into())
        .spawn(move || {
            let mut children: Vec<Child> = Vec::new();
            for (mut command, log) in commands {
                match spawn_logged(&mut command, &log) {
                    Ok(child) => children.push(child),
                    Err(message) => {
                        for child in &mut children {
                            let _ = child.kill();
                        }
                        let _ = sender.send(Err(message));
                        return;
                    }
                }
            }
            let _ = sender.send(Ok(children.iter().map(Child::id).collect()));
            // Block on the last process (the apiserver) so an early exit is reported at once
            // instead of after the readiness deadline; then stay alive for the others.
            if let Some(last) = children.last_mut() {
                let status = last.wait();
                let _ = exited.set(format!("{status:?}"));
            }
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("failed to start the keeper thread: {e}"))?;
    receiver
        .recv()
        .map_err(|_| "the keeper thread died".to_string())?
}

fn spawn_logged(command: &mut Command, log: &Path) -> Result<Child, String> {
    let file = std::fs::File::create(log)
        .map_err(|e| format!("failed to create {}: {e}", log.display()))?;
    let stderr = file
        .try_clone()
        .map_err(|e| format!("failed to open {}: {e}", log.display()))?;
    command.stdin(Stdio::null()).stdout(file).stderr(stderr);
    die_with_parent(command);
    command
        .spawn()
        .map_err(|e| format!("failed to start {:?}: {e}", command.get_program()))
}

/// Asks the kernel to SIGKILL the process `command` starts when the spawning *thread*
/// exits (`PR_SET_PDEATHSIG`), so that no helper process outlives its test or tool.
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("parent exited before exec"));
            }
            Ok(())
        });
    }
}

async fn wait_ready_and_install_crds(
    kubeconfig: &Path,
    crds: Vec<CustomResourceDefinition>,
    exited: &OnceLock<String>,
) -> Result<(), String> {
    let client = client_from_kubeconfig(kubeconfig, None).await?;
    let deadline = Instant::now() + STARTUP_DEADLINE;
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        poll.tick().await;
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        if let Some(status) = exited.get() {
            return Err(format!("kube-apiserver exited during startup ({status})"));
        }
        let last_error = match client.request_text(request).await {
            Ok(body) if body.trim() == "ok" => break,
            Ok(body) => body,
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(format!(
                "kube-apiserver was not ready within {STARTUP_DEADLINE:?}: {last_error}"
            ));
        }
    }

    let api: Api<CustomResourceDefinition> = Api::all(client);
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("qlikops-envtest").force(),
            &Patch::Apply(&crd),
        )
        .await
        .map_err(|e| format!("failed to install CRD {name}: {e}"))?;
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .map_err(|_| format!("CRD {name} was not established within 30s"))?
            .map_err(|e| format!("failed to watch CRD {name}: {e}"))?;
    }
    Ok(())
}

/// The CRDs in `dir` (every `.yaml` file, one CRD each).
pub fn read_crds(dir: &Path) -> Result<Vec<CustomResourceDefinition>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("failed to read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
            serde_norway::from_str(&text)
                .map_err(|e| format!("failed to parse {}: {e}", path.display()))
        })
        .collect()
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("failed to find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn sweep_stale_runs(runs: &Path) {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return;
    };
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !Path::new("/proc").join(&pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn random_token() -> String {
    use std::hash::{BuildHasher, RandomState};
    (0..4)
        .map(|i| format!("{:016x}", RandomState::new().hash_one(i)))
        .collect()
}

fn tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(log) {
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
