//! qlik-csp-operator: keeps Qlik tenants' CSP allow-list, compiled CSP header and
//! tenant-issued credentials in sync with custom resources.
//!
//! - [`api`]: the custom resources (`QlikTenant`, `CspEntry`, `SecretRotation`). No I/O.
//! - [`csp`]: the pure CSP model (directives, origins). Depends on nothing else here.
#![forbid(unsafe_code)]

pub mod api;
pub mod csp;
