//! The `tenant` controller: checks a `QlikTenant`'s connection and publishes its compiled CSP
//! header into a ConfigMap, then nudges the Ingresses that serve it. [`publish`] and [`claim`]
//! hold the pure decisions, [`write`] the writes; [`departures`] drops what is kept for a
//! tenant once it is deleted.

pub mod claim;
pub mod credentials;
pub mod departures;
pub mod grants;
pub mod pacing;
pub mod publish;
pub mod reconcile;
pub mod run;
pub mod status;
pub mod write;
