//! The `csp-entry` controller: keeps one `CspEntry` in sync with its tenant's `csp-origins`.
//! observe (cluster + tenant) → [`plan`] (pure) → apply (one tenant write) → record (status).

pub mod plan;
