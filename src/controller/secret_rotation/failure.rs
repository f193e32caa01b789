//! The controller's errors and their mapping to condition reasons. Tenant and Kubernetes
//! errors name the operation and the object, never a credential; the Secret write's error
//! is reduced to its status code, as its request carried the value.

use super::observed::{Failure, FailureKind, Kind};
use crate::api::ownership::ALLOW_ROTATION_BY;
use crate::api::reasons::{TENANT_NOT_FOUND, tenant_not_found_message};
use crate::controller::tenant_clients::AccessError;
use crate::tenant;

/// The Secret exists and is not the operator's to write (condition reason).
pub const SECRET_NOT_OWNED: &str = "SecretNotOwned";
/// The Secret is immutable, so no credential can be written into it (condition reason).
pub const SECRET_IMMUTABLE: &str = "SecretImmutable";
/// OAuth secrets appeared that the operator cannot tell apart from its own lost one
/// (condition reason).
pub const AMBIGUOUS_SECRET: &str = "AmbiguousSecret";
/// A credential named by status (or found by its marker) is not provably the operator's,
/// so it was left alone (event reason).
pub const CREDENTIAL_NOT_OWNED: &str = "CredentialNotOwned";
/// The automation to copy (the current one, or the spec's before the first rotation) does
/// not exist (condition reason).
pub const AUTOMATION_NOT_FOUND: &str = "AutomationNotFound";
/// The apiserver refused a write for good (a 4xx other than 401, 403, 409 and 429).
pub const KUBERNETES_REJECTED: &str = "KubernetesRejected";

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

use crate::error_chain::error_chain;

/// A tenant error as a failure, while handling a credential of kind `credential`.
pub fn from_tenant(error: &tenant::Error, credential: Kind) -> Failure {
    let (reason, kind) = match (error, credential) {
        (tenant::Error::LimitReached { .. }, Kind::ApiKey) => {
            ("KeyLimitReached", FailureKind::LimitReached)
        }
        (tenant::Error::LimitReached { .. }, Kind::OAuthClientSecret) => {
            ("SecretLimitReached", FailureKind::LimitReached)
        }
        (tenant::Error::LimitReached { .. }, Kind::AutomationToken) => {
            ("AutomationLimitReached", FailureKind::LimitReached)
        }
        (tenant::Error::NotFound { .. }, Kind::OAuthClientSecret) => {
            ("OAuthClientNotFound", FailureKind::Permanent)
        }
        (tenant::Error::NotFound { .. }, Kind::AutomationToken) => {
            (AUTOMATION_NOT_FOUND, FailureKind::Permanent)
        }
        (e, _) if e.is_transient() => (e.reason(), FailureKind::Transient),
        (e, _) => (e.reason(), FailureKind::Permanent),
    };
    let retry_after = match error {
        tenant::Error::RateLimited { retry_after, .. } => *retry_after,
        _ => None,
    };
    Failure {
        reason,
        message: error_chain(error),
        kind,
        retry_after,
    }
}

/// No client for the tenant.
pub fn from_access(error: &AccessError) -> Failure {
    Failure {
        reason: error.reason(),
        message: format!("no client for the tenant: {}", error_chain(error)),
        kind: if error.is_transient() {
            FailureKind::Transient
        } else {
            FailureKind::Permanent
        },
        retry_after: None,
    }
}

/// A failed Kubernetes write during an action. Retried with backoff when retrying can
/// help (transport errors, 409, 429, 5xx); a stall otherwise (a 4xx: RBAC forbids it, or
/// the apiserver refuses the object), which a person must fix. For the Secret write, only
/// the status code, its reason and the names of the fields at fault: the request carried
/// the value.
pub fn from_kube(what: &str, error: &kube::Error, show_detail: bool) -> Failure {
    let status = match error {
        kube::Error::Api(status) => Some(status),
        _ => None,
    };
    let code = status.map(|s| s.code);
    let detail = match status {
        Some(status) if !show_detail => {
            let fields: Vec<&str> = status
                .details
                .iter()
                .flat_map(|d| &d.causes)
                .map(|c| c.field.as_str())
                .filter(|f| !f.is_empty())
                .collect();
            let mut detail = format!("HTTP {}", status.code);
            if !status.reason.is_empty() {
                detail.push_str(&format!(" {}", status.reason));
            }
            if !fields.is_empty() {
                detail.push_str(&format!(" ({})", fields.join(", ")));
            }
            detail
        }
        _ if !show_detail => "request failed".to_owned(),
        _ => error_chain(error),
    };
    let (reason, kind) = match code {
        Some(401 | 403) => ("KubernetesForbidden", FailureKind::Permanent),
        Some(409 | 429) | None => ("KubernetesApiError", FailureKind::Transient),
        Some(code) if (400..500).contains(&code) => (KUBERNETES_REJECTED, FailureKind::Permanent),
        Some(_) => ("KubernetesApiError", FailureKind::Transient),
    };
    Failure {
        reason,
        message: format!("failed to {what}: {detail}"),
        kind,
        retry_after: None,
    }
}

/// The Secret exists but was neither created by the operator for this SecretRotation nor
/// opened to it by its owner.
pub fn secret_not_owned(secret: &str, rotation: &str) -> Failure {
    Failure {
        reason: SECRET_NOT_OWNED,
        message: format!(
            "Secret {secret} exists and was not created by the operator for this SecretRotation: \
             nothing is created or written; to rotate into it, annotate it \
             {ALLOW_ROTATION_BY}={rotation}, or name a Secret that does not exist yet"
        ),
        kind: FailureKind::Permanent,
        retry_after: None,
    }
}

/// The Secret is immutable.
pub fn secret_immutable(secret: &str) -> Failure {
    Failure {
        reason: SECRET_IMMUTABLE,
        message: format!(
            "Secret {secret} is immutable, so no credential can be written into it: \
             nothing is created; recreate it without immutable: true"
        ),
        kind: FailureKind::Permanent,
        retry_after: None,
    }
}

/// OAuth secrets the operator cannot attribute.
pub fn ambiguous_secrets(client_id: &str, hints: &[String]) -> Failure {
    Failure {
        reason: AMBIGUOUS_SECRET,
        message: format!(
            "the answer to creating a secret of OAuth client {client_id} was lost and secrets \
             {} appeared that the operator cannot tell apart from the one it created: none is \
             revoked; delete the one nobody uses in the console, then resume with a newer \
             qlikops.io/rotate-requested-at annotation",
            hints.join(", ")
        ),
        kind: FailureKind::Permanent,
        retry_after: None,
    }
}

/// The automation `id` to copy is gone from the tenant (deleted outside the operator):
/// nothing can be copied, and the Secret's token no longer runs anything.
pub fn automation_gone(id: &str, current: bool) -> Failure {
    let which = if current {
        "the current automation"
    } else {
        "the automation named in spec.credential.automationExecutionToken"
    };
    Failure {
        reason: AUTOMATION_NOT_FOUND,
        message: format!(
            "{which} ({id}) does not exist on the tenant: there is nothing to copy and its \
             token runs nothing; create a new SecretRotation naming an automation that exists"
        ),
        kind: FailureKind::Permanent,
        retry_after: None,
    }
}

/// The SecretRotation's QlikTenant `namespace/name` does not exist (worded as every kind
/// words it).
pub fn tenant_not_found(namespace: &str, name: &str) -> Failure {
    Failure {
        reason: TENANT_NOT_FOUND,
        message: tenant_not_found_message(namespace, name),
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
        let key_limit = from_tenant(&limit(), Kind::ApiKey);
        assert_eq!(
            (key_limit.reason, key_limit.kind),
            ("KeyLimitReached", FailureKind::LimitReached)
        );
        let secret_limit = from_tenant(&limit(), Kind::OAuthClientSecret);
        assert_eq!(secret_limit.reason, "SecretLimitReached");
        let automation_limit = from_tenant(&limit(), Kind::AutomationToken);
        assert_eq!(
            (automation_limit.reason, automation_limit.kind),
            ("AutomationLimitReached", FailureKind::LimitReached)
        );
        let missing_automation = from_tenant(
            &tenant::Error::NotFound {
                operation: "automations.copy",
                detail: ApiErrors::default(),
            },
            Kind::AutomationToken,
        );
        assert_eq!(
            (missing_automation.reason, missing_automation.kind),
            (AUTOMATION_NOT_FOUND, FailureKind::Permanent)
        );
        let missing_client = from_tenant(
            &tenant::Error::NotFound {
                operation: "oauth-clients.get",
                detail: ApiErrors::default(),
            },
            Kind::OAuthClientSecret,
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
            Kind::ApiKey,
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
            Kind::ApiKey,
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
        assert_eq!(
            forbidden.message,
            "failed to write the Secret: HTTP 403 Forbidden"
        );
        let conflict = from_kube("annotate", &api(409, "the object has been modified"), true);
        assert_eq!(conflict.kind, FailureKind::Transient);
        assert!(
            conflict.message.contains("modified"),
            "{}",
            conflict.message
        );
    }

    #[test]
    fn only_conflicts_throttling_server_errors_and_transport_errors_are_retried() {
        let api = |code: u16| {
            let mut status = kube::core::Status::failure("refused", "Invalid");
            status.code = code;
            kube::Error::Api(status.boxed())
        };
        for code in [409, 429, 500, 503, 504] {
            let failure = from_kube("write the Secret", &api(code), false);
            assert_eq!(failure.kind, FailureKind::Transient, "{code}");
            assert_eq!(failure.reason, "KubernetesApiError", "{code}");
        }
        for code in [400, 404, 410, 413, 422] {
            let failure = from_kube("write the Secret", &api(code), false);
            assert_eq!(
                (failure.reason, failure.kind),
                (KUBERNETES_REJECTED, FailureKind::Permanent),
                "{code}"
            );
        }
        let invalid = from_kube("write the Secret", &api(422), false);
        assert_eq!(
            invalid.message,
            "failed to write the Secret: HTTP 422 Invalid"
        );
    }
}
