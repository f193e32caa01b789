//! The pure CSP model: directives, origins, the header grammar and the header compiler.
//! No I/O, and nothing from the rest of the crate.

pub mod directive;
pub mod header;
pub mod origin;
pub mod policy;

#[cfg(test)]
mod proptests;

pub use directive::Directive;
pub use header::{BaseDirectives, Grant, Header, HeaderError};
pub use origin::{Origin, OriginError};
