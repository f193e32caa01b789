//! The tenant emulator: an in-memory Qlik Cloud tenant served over HTTPS, for tests,
//! benchmarks, the demo and users' own CI. Used by `src/bin/qlik-tenant-emulator.rs`.
