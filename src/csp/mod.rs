//! The pure CSP model: directives, origins and (later) header compilation.
//! No I/O, and nothing from the rest of the crate.

pub mod directive;
pub mod origin;

pub use directive::Directive;
pub use origin::{Origin, OriginError};
