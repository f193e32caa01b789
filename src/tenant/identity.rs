//! Who the credential is: the tenant id (`/api/v1/tenants/me`), the user
//! (`/api/v1/users/me`) and the tenant (`/api/v1/tenants/{id}`). Both `me` endpoints
//! answer with a redirect, which the client follows itself and only on the configured
//! tenant URL. Does network I/O.

use reqwest::Method;

use super::Error;
use super::client::{Call, TenantClient};
use super::wire::{Tenant, User};

impl TenantClient {
    /// The tenant's id, read from the redirect of `tenants/me` (one request, and no
    /// permission on the tenant object needed). Also proves the credential works.
    pub async fn tenant_id(&self) -> Result<String, Error> {
        let operation = "tenants.me";
        let mut call = Call::new(
            operation,
            Method::GET,
            self.url(&["api", "v1", "tenants", "me"]),
        );
        call.redirect = true;
        let answer = self.execute(&call).await?;
        if answer.status.is_success() {
            // A tenant (or proxy) that answers directly instead of redirecting.
            let tenant: Tenant = super::client::decode(operation, &answer.body)?;
            return Ok(tenant.id);
        }
        let location = self.location(operation, &answer)?;
        id_after(&location, &["api", "v1", "tenants"]).ok_or_else(|| Error::InvalidResponse {
            operation,
            problem: format!(
                "the redirect does not point at a tenant: {}",
                location.path()
            ),
        })
    }

    /// The user the credential acts as (`users/me`, followed).
    pub async fn current_user(&self) -> Result<User, Error> {
        let operation = "users.me";
        let mut call = Call::new(
            operation,
            Method::GET,
            self.url(&["api", "v1", "users", "me"]),
        );
        call.redirect = true;
        let answer = self.execute(&call).await?;
        if answer.status.is_success() {
            return super::client::decode(operation, &answer.body);
        }
        let location = self.location(operation, &answer)?;
        self.get_json("users.get", location).await
    }

    /// A tenant by id.
    pub async fn get_tenant(&self, tenant_id: &str) -> Result<Tenant, Error> {
        self.get_json(
            "tenants.get",
            self.url(&["api", "v1", "tenants", tenant_id]),
        )
        .await
    }
}

/// The single path segment after `prefix`, e.g. the id in `/api/v1/tenants/{id}`.
fn id_after(url: &url::Url, prefix: &[&str]) -> Option<String> {
    let segments: Vec<&str> = url.path_segments()?.collect();
    match segments.split_at_checked(prefix.len())? {
        (head, [id]) if head == prefix && !id.is_empty() => Some(percent_decode(id)),
        _ => None,
    }
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(|| segment.to_owned(), |(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_id_is_the_segment_after_the_tenants_path() {
        let url = |s: &str| url::Url::parse(s).unwrap_or_else(|e| panic!("{e}"));
        let prefix = ["api", "v1", "tenants"];
        assert_eq!(
            id_after(&url("https://t/api/v1/tenants/abc123"), &prefix).as_deref(),
            Some("abc123")
        );
        assert_eq!(
            id_after(&url("https://t/api/v1/tenants/a%20b"), &prefix).as_deref(),
            Some("a b")
        );
        assert_eq!(id_after(&url("https://t/api/v1/tenants/"), &prefix), None);
        assert_eq!(id_after(&url("https://t/api/v1/users/abc"), &prefix), None);
        assert_eq!(
            id_after(&url("https://t/api/v1/tenants/a/b"), &prefix),
            None
        );
    }
}
