//! The Qlik tenant boundary: a typed client for the tenant APIs the operator uses.
