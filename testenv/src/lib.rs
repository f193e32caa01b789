//! A real etcd + kube-apiserver + kube-controller-manager on loopback, with RBAC on and the
//! project's CRDs installed: the control plane of the integration tests, `cargo xtask bench`
//! and `cargo xtask demo`.
//!
//! The controller-manager runs the garbage collector, the namespace controller and the
//! ClusterRole aggregation controller only, so owner references cascade, a deleted namespace
//! goes away and the built-in `edit`/`view` roles grant what they do on a real cluster;
//! nothing else of a cluster runs (no scheduler, no kubelet: Pods are never started).
//!
//! For the tests and chaos runs of how a client rides out control-plane faults, etcd and
//! the apiserver can be restarted in place ([`ControlPlane::restart_apiserver`],
//! [`ControlPlane::restart_etcd`]), and a [`Relay`] cuts a client's connections on demand.
//!
//! The processes are spawned by keeper threads that live as long as the process that
//! started them and ask the kernel (`PR_SET_PDEATHSIG`) to kill them when it goes. So whether
//! the tests pass, panic, or the process is killed, none of them outlives it. Run
//! directories of earlier runs whose process is gone are swept on start.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

mod certs;
mod crds;
mod processes;
mod relay;
mod restart;

pub use crds::read_crds;
use processes::{Keeper, spawn_keeper};
pub use processes::{die_with_parent, tail};
pub use relay::Relay;

/// The variable `cargo xtask test` sets to the directory holding etcd, kube-apiserver,
/// kube-controller-manager and helm.
pub const BIN_DIR_VAR: &str = "QLIKOPS_ENVTEST_BIN";
/// The variable `cargo xtask test` sets to the directory holding the edges' CRDs (Gateway
/// API's standard channel and Traefik's), copied from their Go modules by `cargo xtask
/// envtest`: for the tests that run a proxy against the control plane.
pub const EDGE_CRDS_VAR: &str = "QLIKOPS_ENVTEST_EDGE_CRDS";
const STARTUP_DEADLINE: Duration = Duration::from_secs(120);

/// A running control plane. Its files stay in `run_dir` for post-mortems.
pub struct ControlPlane {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// A kubeconfig for the static admin identity (member of `system:masters`).
    pub kubeconfig: PathBuf,
    pub run_dir: PathBuf,
    /// The CA that signed the apiserver's serving certificate (PEM).
    pub ca_file: PathBuf,
    /// The admin's bearer token, alone in a file, for a process configured by a token
    /// rather than a kubeconfig (such as traefik).
    pub admin_token_file: PathBuf,
    /// Directory holding the envtest tools (`helm` for the chart tests).
    pub bin_dir: PathBuf,
    /// Process ids of etcd, kube-apiserver and kube-controller-manager, as started (a
    /// restart gives the restarted process a new one).
    pub pids: Vec<u32>,
    /// The thread that spawned etcd and kube-apiserver, and restarts them on request.
    keeper: Keeper,
    /// Set when the apiserver exits on its own, with its exit status.
    exited: Arc<OnceLock<String>>,
    /// Set when the controller-manager exits, with its exit status.
    controller_manager_exited: Arc<OnceLock<String>>,
}

/// The tools directory named by [`BIN_DIR_VAR`].
pub fn bin_dir_from_env() -> Result<PathBuf, String> {
    std::env::var_os(BIN_DIR_VAR).map(PathBuf::from).ok_or_else(|| {
        format!("{BIN_DIR_VAR} is not set: run the tests with `cargo xtask test`, which builds etcd and kube-apiserver and sets it")
    })
}

/// The edges' CRD directory named by [`EDGE_CRDS_VAR`].
pub fn edge_crds_dir_from_env() -> Result<PathBuf, String> {
    std::env::var_os(EDGE_CRDS_VAR).map(PathBuf::from).ok_or_else(|| {
        format!("{EDGE_CRDS_VAR} is not set: run the tests with `cargo xtask test`, which copies the Gateway API and Traefik CRDs from their Go modules and sets it")
    })
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver from `bin_dir` and installs the CRDs in `crds_dir`.
    /// Blocks until the apiserver is ready; call it from a plain thread or outside a runtime.
    pub fn start(bin_dir: &Path, crds_dir: &Path) -> Result<ControlPlane, String> {
        start(bin_dir.to_path_buf(), &[crds_dir])
    }

    /// [`ControlPlane::start`] with the CRDs of several directories (see [`read_crds`]),
    /// e.g. the project's and the edges' ([`edge_crds_dir_from_env`]).
    pub fn start_with_crds(bin_dir: &Path, crd_dirs: &[&Path]) -> Result<ControlPlane, String> {
        start(bin_dir.to_path_buf(), crd_dirs)
    }

    /// Whether the apiserver has exited, and how.
    pub fn exit_status(&self) -> Option<&str> {
        self.exited.get().map(String::as_str)
    }

    /// How the controller-manager is doing, for the message of a test that waited in vain
    /// for garbage collection: running or how it exited, and the tail of its log.
    pub fn controller_manager_report(&self) -> String {
        let state = match self.controller_manager_exited.get() {
            Some(status) => format!("kube-controller-manager exited ({status})"),
            None => "kube-controller-manager is running".to_owned(),
        };
        let log = self.run_dir.join(CONTROLLER_MANAGER_LOG);
        format!("{state}; {} (tail):\n{}", log.display(), tail(&log))
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

fn start(bin_dir: PathBuf, crd_dirs: &[&Path]) -> Result<ControlPlane, String> {
    let runs = std::env::temp_dir().join("qlikops-envtest");
    sweep_stale_runs(&runs);
    let run_dir = runs.join(run_name(std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(run_dir.join("etcd"))
        .map_err(|e| format!("failed to create {}: {e}", run_dir.display()))?;

    let pki = certs::generate().map_err(|e| format!("failed to generate certificates: {e}"))?;
    let admin_token = random_token();
    let controller_manager_token = random_token();
    let write = |name: &str, content: &str| -> Result<PathBuf, String> {
        let path = run_dir.join(name);
        std::fs::write(&path, content)
            .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
        Ok(path)
    };
    let ca = write("ca.crt", &pki.ca_pem)?;
    let admin_token_file = write("admin.token", &admin_token)?;
    let serving_cert = write("apiserver.crt", &pki.serving_cert_pem)?;
    let serving_key = write("apiserver.key", &pki.serving_key_pem)?;
    let sa_key = write("service-account.key", &pki.service_account_key_pem)?;
    let sa_public_key = write("service-account.pub", &pki.service_account_public_key_pem)?;
    // The controller-manager gets an identity of its own (so the audit trail and managed
    // fields tell its writes from the tests'), with every permission: with
    // `--use-service-account-credentials=false` all its controllers act as it.
    let tokens = write(
        "tokens.csv",
        &format!(
            "{admin_token},admin,admin,\"system:masters\"\n\
             {controller_manager_token},system:kube-controller-manager,kube-controller-manager,\"system:masters\"\n"
        ),
    )?;

    let etcd_port = free_port()?;
    let etcd_peer_port = free_port()?;
    let apiserver_port = free_port()?;
    let url = format!("https://127.0.0.1:{apiserver_port}");
    let kubeconfig = write(
        "kubeconfig",
        &kubeconfig_for(&url, &ca, "admin", &admin_token),
    )?;
    let controller_manager_kubeconfig = write(
        "kube-controller-manager.kubeconfig",
        &kubeconfig_for(
            &url,
            &ca,
            "system:kube-controller-manager",
            &controller_manager_token,
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
        // As on clusters that enforce it (OpenShift does): changing an object's owner
        // references needs `delete` on it, and `blockOwnerDeletion` needs `update` on the
        // owner's `finalizers`. The RBAC tests then prove the chart grants what that takes.
        .arg("--enable-admission-plugins=OwnerReferencesPermissionEnforcement")
        // The controller-manager runs no ServiceAccount controllers, so nothing would create
        // the `default` ServiceAccount a Pod's ServiceAccount admission requires;
        // controller-runtime's envtest disables it for the same reason.
        .arg("--disable-admission-plugins=ServiceAccount");

    let etcd_log = run_dir.join("etcd.log");
    let apiserver_log = run_dir.join("kube-apiserver.log");
    let exited = Arc::new(OnceLock::new());
    let keeper = spawn_keeper(
        "apiserver",
        // In the order of `restart::ETCD` and `restart::APISERVER`.
        vec![(etcd, etcd_log.clone()), (apiserver, apiserver_log.clone())],
        exited.clone(),
    )?;

    // The caller may be inside a test's runtime, where blocking on another runtime is not
    // allowed; a plain thread with its own runtime is.
    let mut crds = Vec::new();
    for dir in crd_dirs {
        crds.extend(read_crds(dir)?);
    }
    let ready = {
        let kubeconfig = kubeconfig.clone();
        let exited = exited.clone();
        std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("failed to build a runtime: {e}"))?;
            runtime.block_on(wait_ready_and_install_crds(&kubeconfig, crds, &exited))
        })
        .join()
        .map_err(|_| "the readiness check panicked".to_string())?
    };
    ready.map_err(|message| {
        format!(
            "{message}\n--- etcd.log (tail) ---\n{}\n--- kube-apiserver.log (tail) ---\n{}",
            tail(&etcd_log),
            tail(&apiserver_log)
        )
    })?;

    // Started once the apiserver is ready (it gives up on an apiserver that is not healthy
    // within 10 s) and the CRDs are established (so its first discovery already sees them).
    // Not waited for: only the tests of garbage collection need it, and they wait for what
    // it does with a deadline, while every other test starts at once.
    let controller_manager_exited = Arc::new(OnceLock::new());
    let mut pids = keeper.pids.clone();
    pids.extend(
        spawn_keeper(
            "controller-manager",
            vec![(
                controller_manager(&bin_dir, &controller_manager_kubeconfig),
                run_dir.join(CONTROLLER_MANAGER_LOG),
            )],
            controller_manager_exited.clone(),
        )?
        .pids,
    );

    Ok(ControlPlane {
        url,
        kubeconfig,
        run_dir,
        ca_file: ca,
        admin_token_file,
        bin_dir,
        pids,
        keeper,
        exited,
        controller_manager_exited,
    })
}

const CONTROLLER_MANAGER_LOG: &str = "kube-controller-manager.log";

/// kube-controller-manager with the two controllers a user of a cluster takes for granted
/// when deleting things.
fn controller_manager(bin_dir: &Path, kubeconfig: &Path) -> Command {
    let mut command = Command::new(bin_dir.join("kube-controller-manager"));
    command
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        // The garbage collector deletes what owner references tie to a deleted owner; the
        // namespace controller empties a deleted namespace and removes it; the aggregation
        // controller fills the built-in `admin`, `edit` and `view` ClusterRoles (empty
        // without it, so a binding to them would grant nothing here and go unnoticed). The
        // others act on Pods, nodes and volumes, which never exist here. None needs the
        // service-account signing key: only the token controller (not run) signs tokens.
        .arg("--controllers=garbagecollector,namespace,clusterrole-aggregation")
        // Each controller acts with the kubeconfig's identity; with `true` each would use a
        // kube-system ServiceAccount's token, which the token controller would have to mint.
        .arg("--use-service-account-credentials=false")
        // One controller-manager per control plane: no Lease to acquire and renew.
        .arg("--leader-elect=false")
        // No metrics or health endpoint: nothing reads them, and the default port (10257)
        // would collide between test binaries running at once.
        .arg("--secure-port=0");
    command
}

/// A kubeconfig for `user`, authenticating with a static token.
fn kubeconfig_for(url: &str, ca: &Path, user: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: {url}\n    certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: envtest\n  context:\n    cluster: envtest\n    user: {user}\ncurrent-context: envtest\n",
        ca = ca.display()
    )
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

    crds::install(client, crds).await
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("failed to find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// The run directory's name of this process's next control plane: `<pid>-<n>`. A process
/// may run several at once (`cargo xtask chaos` runs the soak on its own), and each must
/// have its own etcd data, certificates and kubeconfig: with the pid alone, the second
/// start deleted the first one's live etcd data directory and replaced its kubeconfig.
fn run_name(pid: u32) -> String {
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{pid}-{n}")
}

/// The pid a run directory's name starts with.
fn run_pid(name: &str) -> &str {
    name.split('-').next().unwrap_or(name)
}

fn sweep_stale_runs(runs: &Path) {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = run_pid(&name);
        if pid.is_empty() || !Path::new("/proc").join(pid).exists() {
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
