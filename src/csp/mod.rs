//! The pure CSP model: directives, origins and the header compiler.
//! No I/O, and nothing from the rest of the crate.

pub mod directive;
pub mod header;
pub mod origin;

pub use directive::Directive;
pub use header::{BaseDirectives, Grant, Header, HeaderError};
pub use origin::{Origin, OriginError};
