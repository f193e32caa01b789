//! The `csp-entry` controller: keeps one `CspEntry` in sync with its tenant's `csp-origins`.
//! observe (cluster + tenant, through the shared [`remote_cache`]) → [`plan`] (pure) →
//! apply (one tenant write) → record (status).

pub mod plan;
pub mod remote_cache;
