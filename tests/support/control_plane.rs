//! The control plane of a test binary: one real etcd + kube-apiserver, with a
//! kube-controller-manager collecting garbage (see [`qlikops_testenv`]), started on first use
//! with the checked-in CRDs installed, and for the suites that run an edge proxy, the edges'
//! CRDs too (Gateway API's standard channel and Traefik's, from their Go modules).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
pub use qlikops_testenv::ControlPlane;

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
static WITH_EDGE_CRDS: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

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

/// The control plane of this test binary with the edges' CRDs installed beside the
/// project's: for suites that run an edge proxy or write its routes. The other suites use
/// [`shared`], which starts without them. (A binary that asked for both would run two.)
pub fn with_edge_crds() -> &'static ControlPlane {
    let started = WITH_EDGE_CRDS.get_or_init(|| {
        let bin_dir = qlikops_testenv::bin_dir_from_env()?;
        let edge_crds = qlikops_testenv::edge_crds_dir_from_env()?;
        ControlPlane::start_with_crds(&bin_dir, &[&crds_dir(), &edge_crds])
    });
    match started {
        Ok(control_plane) => control_plane,
        Err(message) => {
            panic!("the test control plane (with the edge CRDs) did not start: {message}")
        }
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
