//! The real `qlik-csp-operator run` binary as a child process of a test: one builder for
//! the arguments every suite passes, and an [`Operator`] that kills the process when the
//! test ends (passes or panics). Spawns a process; no other I/O.
//!
//! ```ignore
//! let _operator = Operator::builder(&env.namespace, &env.control_plane.kubeconfig)
//!     .args(["--leader-election"])
//!     .spawn();
//! ```

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// A running operator; killed and reaped on drop.
pub struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Operator {
    /// `run --namespace <namespace> --log-format text --allowed-tenant-hosts 127.0.0.1
    /// --metrics-address 127.0.0.1:0` with `KUBECONFIG=<kubeconfig>`: the emulator's loopback
    /// host allowed (the default allows only Qlik Cloud), metrics on a free port. The
    /// runner's `RUST_LOG`, `KUBERNETES_SERVICE_HOST` and fail point are not passed on, so
    /// the process is configured by its arguments alone. stdout is discarded, stderr
    /// inherited, unless redirected.
    pub fn builder(namespace: &str, kubeconfig: &Path) -> OperatorBuilder {
        OperatorBuilder {
            namespace: namespace.to_owned(),
            kubeconfig: kubeconfig.as_os_str().to_owned(),
            allowed_tenant_hosts: "127.0.0.1".to_owned(),
            metrics_address: "127.0.0.1:0".to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            stdout: None,
            stderr: None,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Waits until the process has exited (within `deadline`), and returns how.
    pub async fn exited(&mut self, what: &str, deadline: Duration) -> ExitStatus {
        let child = Mutex::new(&mut self.0);
        super::eventually(what, deadline, || {
            let status = child
                .lock()
                .unwrap_or_else(|e| panic!("{e}"))
                .try_wait()
                .unwrap_or_else(|e| panic!("failed to poll the operator: {e}"));
            async move { status }
        })
        .await
    }

    /// Sends SIGTERM (what the kubelet sends) and waits until the process has exited.
    pub async fn terminate(&mut self, deadline: Duration) -> ExitStatus {
        let pid = i32::try_from(self.id()).unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        self.exited("the operator to exit after SIGTERM", deadline)
            .await
    }
}

/// The command line of one operator process; see [`Operator::builder`].
pub struct OperatorBuilder {
    namespace: String,
    kubeconfig: OsString,
    allowed_tenant_hosts: String,
    metrics_address: String,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
}

impl OperatorBuilder {
    /// `--allowed-tenant-hosts` (default `127.0.0.1`).
    pub fn allowed_tenant_hosts(mut self, hosts: &str) -> Self {
        hosts.clone_into(&mut self.allowed_tenant_hosts);
        self
    }

    /// `--metrics-address` (default `127.0.0.1:0`).
    pub fn metrics_address(mut self, address: &str) -> Self {
        address.clone_into(&mut self.metrics_address);
        self
    }

    /// More arguments after the common ones.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// An environment variable for the process.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Where the process's stdout goes (default: discarded).
    pub fn stdout(mut self, to: impl Into<Stdio>) -> Self {
        self.stdout = Some(to.into());
        self
    }

    /// Where the process's stderr (its logs) goes (default: the test's stderr).
    pub fn stderr(mut self, to: impl Into<Stdio>) -> Self {
        self.stderr = Some(to.into());
        self
    }

    /// Starts the process.
    pub fn spawn(self) -> Operator {
        let mut command = Command::new(env!("CARGO_BIN_EXE_qlik-csp-operator"));
        command
            .args([
                "run",
                "--namespace",
                &self.namespace,
                "--log-format",
                "text",
            ])
            .args(["--allowed-tenant-hosts", &self.allowed_tenant_hosts])
            .args(["--metrics-address", &self.metrics_address])
            .args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("RUST_LOG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove(qlik_csp_operator::failpoint::ENV)
            .stdout(self.stdout.unwrap_or_else(Stdio::null))
            .stderr(self.stderr.unwrap_or_else(Stdio::inherit))
            .envs(self.env);
        Operator(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("failed to start the operator: {e}")),
        )
    }
}
