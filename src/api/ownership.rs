//! Who may have the operator write into an object it did not create: the opt-in
//! annotations, defined once for every controller and documented in the README's security
//! model. No I/O.
//!
//! The rule: the operator writes into a ConfigMap (later an HTTPRoute or a Middleware) or a
//! Secret only when it created it for the resource that asks (its managed-by label and a
//! controller owner reference to that resource), or when the object's owner opted in with
//! the annotation below naming that resource. It never adds an owner reference to an object
//! it did not create, so deleting the resource never garbage-collects a user's object.

/// On a ConfigMap (or another header target): the name of the one `QlikTenant` in the same
/// namespace whose compiled header may be written into it.
pub const ALLOW_HEADER_FROM: &str = "qlikops.io/allow-header-from";

/// On a Secret: the name of the one `SecretRotation` in the same namespace that may write
/// its credential into it (and keep the previous one under `<key>.previous`). Needed too
/// when the Secret is the one a `QlikTenant` authenticates with (self-rotation).
pub const ALLOW_ROTATION_BY: &str = "qlikops.io/allow-rotation-by";

/// The label on every object the operator created (with the value [`MANAGED_BY`]).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "qlik-csp-operator";
