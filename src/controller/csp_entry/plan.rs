//! The pure plan of the csp-entry controller (being written).
