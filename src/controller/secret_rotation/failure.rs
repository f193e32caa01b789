//! The controller's errors and their mapping to condition reasons. Tenant and Kubernetes
//! errors name the operation and the object, never a credential; the Secret write's error
//! is reduced to its status code, as its request carried the value.

use super::observed::{Failure, FailureKind};
use crate::controller::tenant_clients::AccessError;
use crate::tenant;

/// A reconcile that could not decide (the apiserver failed a read or the status write);
/// retried. Tenant failures are not errors here: they are observations, recorded in the
/// conditions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read SecretRotation {name}")]
    ReadObject {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to read QlikTenant {name}")]
    ReadTenant {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to read Secret {name}")]
    ReadSecret {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to record the status")]
    Status(#[source] kube::Error),
    #[error("failed to update the finalizer")]
    Finalizer(#[source] kube::Error),
    /// A retryable tenant failure while revoking the credentials of a deleted
    /// SecretRotation.
    #[error("failed to revoke the credentials of the deleted SecretRotation: {0}")]
    Cleanup(String),
}

impl Error {
    /// The condition and event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Cleanup(_) => "CleanupFailed",
            _ => "KubernetesApiError",
        }
    }
}

/// The whole chain of causes.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A tenant error as a failure; `api_key` says which credential kind was being handled.
pub fn from_tenant(error: &tenant::Error, api_key: bool) -> Failure {
    let (reason, kind) = match error {
        tenant::Error::LimitReached { .. } if api_key => {
            ("KeyLimitReached", FailureKind::LimitReached)
        }
        tenant::Error::LimitReached { .. } => ("SecretLimitReached", FailureKind::LimitReached),
        tenant::Error::NotFound { .. } if !api_key => {
            ("OAuthClientNotFound", FailureKind::Permanent)
        }
        e if e.is_transient() => (e.reason(), FailureKind::Transient),
        e => (e.reason(), FailureKind::Permanent),
    };
    let retry_after = match error {
        tenant::Error::RateLimited { retry_after, .. } => *retry_after,
        _ => None,
    };
    Failure {
        reason,
        message: chain(error),
        kind,
        retry_after,
    }
}

/// No client for the tenant.
pub fn from_access(error: &AccessError) -> Failure {
    Failure {
        reason: error.reason(),
        message: format!("no client for the tenant: {}", chain(error)),
        kind: if error.is_transient() {
            FailureKind::Transient
        } else {
            FailureKind::Permanent
        },
        retry_after: None,
    }
}

/// A failed Kubernetes write during an action: retried, except when RBAC forbids it (a
/// person must grant it). For the Secret write, only the status code: the request carried
/// the value.
pub fn from_kube(what: &str, error: &kube::Error, show_detail: bool) -> Failure {
    let code = match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    };
    let detail = match code {
        Some(code) if !show_detail => format!("HTTP {code}"),
        _ if !show_detail => "request failed".to_owned(),
        _ => chain(error),
    };
    let (reason, kind) = match code {
        Some(401 | 403) => ("KubernetesForbidden", FailureKind::Permanent),
        _ => ("KubernetesApiError", FailureKind::Transient),
    };
    Failure {
        reason,
        message: format!("failed to {what}: {detail}"),
        kind,
        retry_after: None,
    }
}

/// The SecretRotation's QlikTenant does not exist.
pub fn tenant_not_found(name: &str) -> Failure {
    Failure {
        reason: "TenantNotFound",
        message: format!("QlikTenant {name} not found in this namespace"),
        kind: FailureKind::Permanent,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tenant::{ApiErrors, CredentialSource};

    #[test]
    fn tenant_errors_map_to_reasons_kinds_and_waits() {
        let limit = || tenant::Error::LimitReached {
            operation: "create",
            detail: ApiErrors::default(),
        };
        let key_limit = from_tenant(&limit(), true);
        assert_eq!(
            (key_limit.reason, key_limit.kind),
            ("KeyLimitReached", FailureKind::LimitReached)
        );
        let secret_limit = from_tenant(&limit(), false);
        assert_eq!(secret_limit.reason, "SecretLimitReached");
        let missing_client = from_tenant(
            &tenant::Error::NotFound {
                operation: "oauth-clients.get",
                detail: ApiErrors::default(),
            },
            false,
        );
        assert_eq!(
            (missing_client.reason, missing_client.kind),
            ("OAuthClientNotFound", FailureKind::Permanent)
        );
        let throttled = from_tenant(
            &tenant::Error::RateLimited {
                operation: "api-keys.list",
                retry_after: Some(Duration::from_secs(9)),
            },
            true,
        );
        assert_eq!(throttled.kind, FailureKind::Transient);
        assert_eq!(throttled.retry_after, Some(Duration::from_secs(9)));
        let refused = from_tenant(
            &tenant::Error::Unauthorized {
                operation: "api-keys.list",
                credential: CredentialSource::Secret {
                    namespace: "web".into(),
                    name: "qlik-admin".into(),
                    key: "api-key".into(),
                },
                detail: ApiErrors::default(),
            },
            true,
        );
        assert_eq!(
            (refused.reason, refused.kind),
            ("Unauthorized", FailureKind::Permanent)
        );
        assert!(
            refused.message.contains("web/qlik-admin"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn a_forbidden_kubernetes_write_stalls_and_the_secret_write_shows_only_the_code() {
        let api = |code: u16, message: &str| {
            let mut status = kube::core::Status::failure(message, "Forbidden");
            status.code = code;
            kube::Error::Api(status.boxed())
        };
        let forbidden = from_kube("write the Secret", &api(403, "secrets is forbidden"), false);
        assert_eq!(
            (forbidden.reason, forbidden.kind),
            ("KubernetesForbidden", FailureKind::Permanent)
        );
        assert_eq!(forbidden.message, "failed to write the Secret: HTTP 403");
        let conflict = from_kube("annotate", &api(409, "the object has been modified"), true);
        assert_eq!(conflict.kind, FailureKind::Transient);
        assert!(
            conflict.message.contains("modified"),
            "{}",
            conflict.message
        );
    }
}
