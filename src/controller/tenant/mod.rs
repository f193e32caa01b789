//! The `tenant` controller: checks a `QlikTenant`'s connection and publishes its compiled CSP
//! header where the edge reads it: a ConfigMap (then it nudges the Ingresses that serve
//! it), Gateway API HTTPRoutes and Traefik Middlewares ([`edge`]).
//!
//! [`reconcile`] runs [`observe`] → [`plan`] (pure, takes `now`) → [`apply`] → [`record`],
//! as the other controllers do. The pure decisions behind them: [`pacing`] (when to
//! publish and check), [`grants`] (what a `Local` header is compiled from), [`publish`]
//! (what a ConfigMap write sets), [`publication`] (the header names and values), [`claim`] (whose ConfigMap it is), [`status`] (what the status
//! says). [`error`] is the one error type; [`context`] what reconciles share; [`run`] the
//! watches; [`departures`] drops what is kept for a tenant once it is deleted.

pub mod apply;
pub mod claim;
pub mod context;
pub mod credentials;
pub mod departures;
pub mod edge;
pub mod error;
pub mod grants;
pub mod observe;
pub mod pacing;
pub mod plan;
pub mod publication;
pub mod publish;
pub mod reconcile;
pub mod record;
pub mod run;
pub mod status;
pub mod virtual_proxies;
