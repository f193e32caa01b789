//! Wire types of the `users` and `tenants` APIs, as far as the operator needs them (who
//! a credential is, which tenant it belongs to). No I/O.

use serde::Deserialize;

/// A user (`User`), as far as the operator needs it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user id.
    pub id: String,
    /// The tenant the user belongs to.
    pub tenant_id: String,
    /// The user's name.
    #[serde(default)]
    pub name: String,
    /// The identity-provider subject.
    #[serde(default)]
    pub subject: String,
    /// `active`, `invited`, `disabled`, `deleted`, …
    #[serde(default)]
    pub status: Option<String>,
}

/// A tenant (`Tenant`), as far as the operator needs it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// The tenant id.
    pub id: String,
    /// The tenant's name.
    #[serde(default)]
    pub name: String,
    /// Its hostnames.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// `active`, `disabled`, `deleted`.
    #[serde(default)]
    pub status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn users_and_tenants_decode_with_only_their_ids_and_ignore_unknown_fields() {
        let user: User = serde_json::from_value(json!({
            "id": "u1", "tenantId": "t1", "roles": ["TenantAdmin"], "somethingNew": 1
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((user.name.as_str(), user.status), ("", None));
        let tenant: Tenant = serde_json::from_value(json!({
            "id": "t1", "hostnames": ["acme.eu.qlikcloud.com"], "datacenter": "eu"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tenant.hostnames, ["acme.eu.qlikcloud.com"]);
        assert!(serde_json::from_value::<User>(json!({"id": "u1"})).is_err());
    }
}
