//! Condition reasons that more than one kind reports, defined once so that every kind says
//! the same thing about the same situation (and kstatus tools and Argo CD judge them alike).
//! No I/O.

/// `Ready` reason when `spec.tenantRef` names a QlikTenant that does not exist. Only a
/// person can fix it (create the tenant or correct the reference), so every kind reports
/// it with kstatus `Stalled=True`; each controller still looks again when the tenant
/// appears.
pub const TENANT_NOT_FOUND: &str = "TenantNotFound";

/// `Ready` reason when the QlikTenant exists but is not `Ready` (yet): work pending that
/// resolves once the tenant does (kstatus `Reconciling=True`).
pub const TENANT_NOT_READY: &str = "TenantNotReady";

/// A CspEntry's `Ready` reason while the csp-entry controller is adding its finalizer or
/// syncing a change: the entry has not settled (see `CspEntry::has_settled`).
pub const PENDING: &str = "Pending";

/// A CspEntry's `Ready` reason while its origin is being removed from the tenant.
pub const DELETING: &str = "Deleting";

/// The message of a [`TENANT_NOT_FOUND`] condition: the tenant as `namespace/name`.
pub fn tenant_not_found_message(namespace: &str, name: &str) -> String {
    format!("QlikTenant {namespace}/{name} does not exist: create it or correct spec.tenantRef")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_tenant_message_names_it_with_its_namespace() {
        assert_eq!(
            tenant_not_found_message("web", "acme"),
            "QlikTenant web/acme does not exist: create it or correct spec.tenantRef"
        );
    }
}
