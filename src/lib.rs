//! qlik-csp-operator: keeps Qlik tenants' CSP allow-list, compiled CSP header and
//! tenant-issued credentials in sync with custom resources.
//!
//! - [`api`]: the custom resources (`QlikTenant`, `CspEntry`, `SecretRotation`). No I/O.
//! - [`csp`]: the pure CSP model (directives, origins, header compiler). Depends on nothing
//!   else here.
//! - [`tenant`]: the Qlik tenant client (HTTPS, auth, rate limits, retries, typed errors).
//! - [`controller`]: the reconcilers and what they share (conditions).
//! - [`manifests`]: reading CspEntry and QlikTenant manifests from files.
//! - [`render`]: offline header rendering from manifests (`qlik-csp-operator render`).
//! - [`import`]: a tenant's CSP entries as CspEntry manifests (`qlik-csp-operator import`).
//! - [`preview`]: what applying manifests would do to the live tenant, decided by the
//!   csp-entry controller's own plan (`qlik-csp-operator plan`).
//! - [`telemetry`]: the log setup (metrics and health endpoints to come).
//! - [`emulator`]: an in-memory Qlik tenant for tests, benchmarks and the demo.
//! - [`error_chain`]: an error and its causes on one line.
//! - [`failpoint`]: named crash points for crash-safety tests (`QLIKOPS_FAILPOINT`).
#![forbid(unsafe_code)]

pub mod api;
pub mod controller;
pub mod csp;
pub mod emulator;
pub mod error_chain;
pub mod failpoint;
pub mod import;
pub mod manifests;
pub mod preview;
pub mod render;
pub mod telemetry;
pub mod tenant;
