//! The control plane of a test binary: one real etcd + kube-apiserver, with a
//! kube-controller-manager collecting garbage (see [`qlikops_testenv`]), started on first use
//! with the checked-in CRDs installed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
pub use qlikops_testenv::ControlPlane;

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane of this test binary, started on first call with the CRDs installed.
pub fn shared() -> &'static ControlPlane {
    let started = SHARED.get_or_init(|| {
        let bin_dir = qlikops_testenv::bin_dir_from_env()?;
        ControlPlane::start(&bin_dir, &crds_dir())
    });
    match started {
        Ok(control_plane) => control_plane,
        Err(message) => panic!("the test control plane did not start: {message}"),
    }
}

/// The CRDs as checked in under `crds/`: what users install, not what the types generate
/// (a separate test keeps the two equal).
pub fn checked_in_crds() -> Result<Vec<CustomResourceDefinition>, String> {
    qlikops_testenv::read_crds(&crds_dir())
}

fn crds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")
}
