//! The `tenant` controller: checks a `QlikTenant`'s connection and publishes its compiled CSP
//! header into a ConfigMap, then nudges the Ingresses that serve it. [`publish`] holds the
//! pure decisions.

pub mod credentials;
pub mod grants;
pub mod pacing;
pub mod publish;
pub mod reconcile;
pub mod run;
pub mod status;
