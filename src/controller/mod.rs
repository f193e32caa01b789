//! The controllers, one module per concern, and what they share.

pub mod conditions;
pub mod csp_entry;
pub mod tenant;
