//! Fail points: `QLIKOPS_FAILPOINT=<name>` aborts the process when it reaches the step
//! called `<name>`, so tests can prove that a crash between any two steps is recovered.
//! Reads the environment once; a disabled fail point costs one atomic load.

use std::sync::OnceLock;

/// The environment variable naming the step to abort at.
pub const ENV: &str = "QLIKOPS_FAILPOINT";

/// The steps of a rotation, in order.
pub mod rotation {
    /// The intent (phase `Creating`, revision, marker) is persisted; nothing created yet.
    pub const AFTER_INTENT: &str = "rotation.after-intent";
    /// Automation tokens: the copy exists on the tenant; nothing records it yet (neither
    /// status nor memory: only its name marker finds it again).
    pub const AFTER_COPY: &str = "rotation.after-copy";
    /// The credential exists on the tenant; its value is only in memory.
    pub const AFTER_CREATE: &str = "rotation.after-create";
    /// The Secret write after a create failed: the credential's id is recorded in status
    /// (`pending.created`), its value held only in memory for the retry.
    pub const HELD_UNWRITTEN: &str = "rotation.held-unwritten";
    /// The new value is in the Secret; the status still says `Creating`.
    pub const AFTER_SECRET_WRITE: &str = "rotation.after-secret-write";
    /// Rollout targets are annotated; the status still says `Publishing`.
    pub const AFTER_ROLLOUT: &str = "rotation.after-rollout";
    /// `Revoking` is persisted; the previous credential still exists.
    pub const BEFORE_REVOKE: &str = "rotation.before-revoke";
    /// The previous credential is revoked; the status still says `Revoking`.
    pub const AFTER_REVOKE: &str = "rotation.after-revoke";

    /// Every rotation fail point (`AFTER_COPY` is reached by automation tokens only).
    pub const ALL: [&str; 8] = [
        AFTER_INTENT,
        AFTER_COPY,
        AFTER_CREATE,
        HELD_UNWRITTEN,
        AFTER_SECRET_WRITE,
        AFTER_ROLLOUT,
        BEFORE_REVOKE,
        AFTER_REVOKE,
    ];
}

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()))
        .as_deref()
}

/// Aborts the process if `name` is the armed fail point.
pub fn hit(name: &str) {
    if armed() == Some(name) {
        // Written straight to stderr: the logger may buffer, and the process dies next.
        eprintln!("fail point {name} reached: aborting");
        std::process::abort();
    }
}
