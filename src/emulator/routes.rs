//! The Qlik operations the emulator serves: their names (used by counters and faults),
//! paths as written in Qlik's API definitions, rate-limit tiers and request routing. Pure.

use super::wire::{ErrorShape, percent_decode};

/// One emulated Qlik operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    CspOriginsList,
    CspOriginsGet,
    CspOriginsCreate,
    CspOriginsUpdate,
    CspOriginsDelete,
    CspOriginsGenerateHeader,
    ApiKeysList,
    ApiKeysGet,
    ApiKeysCreate,
    ApiKeysDelete,
    ApiKeysGetConfig,
    OAuthClientsGet,
    OAuthClientsCreateSecret,
    OAuthClientsDeleteSecret,
    OAuthToken,
    UsersMe,
    UsersGet,
    TenantsMe,
    TenantsGet,
    DataConnectionsList,
    DataConnectionsGet,
    DataConnectionsPatch,
    DataConnectionsPut,
    AutomationConnectionsList,
    AutomationConnectionsGet,
    AutomationConnectionsPut,
    AutomationConnectionsCheck,
    EmailConfigGet,
    EmailConfigPatch,
    EmailConfigPut,
    EmailConfigVerifyConnection,
    AutomationsList,
    AutomationsCreate,
    AutomationsGet,
    AutomationsDelete,
    AutomationsCopy,
    AutomationsEnable,
    AutomationsDisable,
}

/// Qlik's rate-limit tier of an operation (`x-qlik-tier` in the definitions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Tier 1: reads, 1,000 per minute.
    Read,
    /// Tier 2: creates, updates and deletes, 100 per minute.
    Write,
}

impl Operation {
    /// Every operation. Literal paths (`/users/me`) come before the templates that would
    /// also match them (`/users/{userId}`): routing takes the first match.
    pub const ALL: [Operation; 38] = [
        Operation::CspOriginsList,
        Operation::CspOriginsGenerateHeader,
        Operation::CspOriginsGet,
        Operation::CspOriginsCreate,
        Operation::CspOriginsUpdate,
        Operation::CspOriginsDelete,
        Operation::ApiKeysList,
        Operation::ApiKeysGetConfig,
        Operation::ApiKeysGet,
        Operation::ApiKeysCreate,
        Operation::ApiKeysDelete,
        Operation::OAuthClientsGet,
        Operation::OAuthClientsCreateSecret,
        Operation::OAuthClientsDeleteSecret,
        Operation::OAuthToken,
        Operation::UsersMe,
        Operation::UsersGet,
        Operation::TenantsMe,
        Operation::TenantsGet,
        Operation::DataConnectionsList,
        Operation::DataConnectionsGet,
        Operation::DataConnectionsPatch,
        Operation::DataConnectionsPut,
        Operation::AutomationConnectionsList,
        Operation::AutomationConnectionsGet,
        Operation::AutomationConnectionsPut,
        Operation::AutomationConnectionsCheck,
        Operation::EmailConfigGet,
        Operation::EmailConfigPatch,
        Operation::EmailConfigPut,
        Operation::EmailConfigVerifyConnection,
        Operation::AutomationsList,
        Operation::AutomationsCreate,
        Operation::AutomationsGet,
        Operation::AutomationsDelete,
        Operation::AutomationsCopy,
        Operation::AutomationsEnable,
        Operation::AutomationsDisable,
    ];

    /// The name used by `/_emulator/counters` and the request log, e.g. `csp-origins.create`.
    pub const fn name(self) -> &'static str {
        match self {
            Operation::CspOriginsList => "csp-origins.list",
            Operation::CspOriginsGet => "csp-origins.get",
            Operation::CspOriginsCreate => "csp-origins.create",
            Operation::CspOriginsUpdate => "csp-origins.update",
            Operation::CspOriginsDelete => "csp-origins.delete",
            Operation::CspOriginsGenerateHeader => "csp-origins.generate-header",
            Operation::ApiKeysList => "api-keys.list",
            Operation::ApiKeysGet => "api-keys.get",
            Operation::ApiKeysCreate => "api-keys.create",
            Operation::ApiKeysDelete => "api-keys.delete",
            Operation::ApiKeysGetConfig => "api-keys.get-config",
            Operation::OAuthClientsGet => "oauth-clients.get",
            Operation::OAuthClientsCreateSecret => "oauth-clients.create-secret",
            Operation::OAuthClientsDeleteSecret => "oauth-clients.delete-secret",
            Operation::OAuthToken => "oauth.token",
            Operation::UsersMe => "users.me",
            Operation::UsersGet => "users.get",
            Operation::TenantsMe => "tenants.me",
            Operation::TenantsGet => "tenants.get",
            Operation::DataConnectionsList => "data-connections.list",
            Operation::DataConnectionsGet => "data-connections.get",
            Operation::DataConnectionsPatch => "data-connections.patch",
            Operation::DataConnectionsPut => "data-connections.put",
            Operation::AutomationConnectionsList => "automation-connections.list",
            Operation::AutomationConnectionsGet => "automation-connections.get",
            Operation::AutomationConnectionsPut => "automation-connections.put",
            Operation::AutomationConnectionsCheck => "automation-connections.check",
            Operation::EmailConfigGet => "email-config.get",
            Operation::EmailConfigPatch => "email-config.patch",
            Operation::EmailConfigPut => "email-config.put",
            Operation::EmailConfigVerifyConnection => "email-config.verify-connection",
            Operation::AutomationsList => "automations.list",
            Operation::AutomationsCreate => "automations.create",
            Operation::AutomationsGet => "automations.get",
            Operation::AutomationsDelete => "automations.delete",
            Operation::AutomationsCopy => "automations.copy",
            Operation::AutomationsEnable => "automations.enable",
            Operation::AutomationsDisable => "automations.disable",
        }
    }

    /// The HTTP method, upper case.
    pub const fn method(self) -> &'static str {
        match self {
            Operation::CspOriginsCreate
            | Operation::ApiKeysCreate
            | Operation::OAuthClientsCreateSecret
            | Operation::OAuthToken
            | Operation::AutomationConnectionsCheck
            | Operation::EmailConfigVerifyConnection
            | Operation::AutomationsCreate
            | Operation::AutomationsCopy
            | Operation::AutomationsEnable
            | Operation::AutomationsDisable => "POST",
            Operation::CspOriginsUpdate
            | Operation::DataConnectionsPut
            | Operation::AutomationConnectionsPut
            | Operation::EmailConfigPut => "PUT",
            Operation::DataConnectionsPatch | Operation::EmailConfigPatch => "PATCH",
            Operation::CspOriginsDelete
            | Operation::ApiKeysDelete
            | Operation::OAuthClientsDeleteSecret
            | Operation::AutomationsDelete => "DELETE",
            _ => "GET",
        }
    }

    /// The path exactly as Qlik's definition file spells it.
    pub const fn path_template(self) -> &'static str {
        match self {
            Operation::CspOriginsList | Operation::CspOriginsCreate => "/api/v1/csp-origins",
            Operation::CspOriginsGet
            | Operation::CspOriginsUpdate
            | Operation::CspOriginsDelete => "/api/v1/csp-origins/{id}",
            Operation::CspOriginsGenerateHeader => "/api/v1/csp-origins/actions/generate-header",
            Operation::ApiKeysList | Operation::ApiKeysCreate => "/api/v1/api-keys",
            Operation::ApiKeysGet | Operation::ApiKeysDelete => "/api/v1/api-keys/{id}",
            Operation::ApiKeysGetConfig => "/api/v1/api-keys/configs/{tenantId}",
            Operation::OAuthClientsGet => "/api/v1/oauth-clients/{id}",
            Operation::OAuthClientsCreateSecret => "/api/v1/oauth-clients/{id}/client-secrets",
            Operation::OAuthClientsDeleteSecret => {
                "/api/v1/oauth-clients/{id}/client-secrets/{hint}"
            }
            Operation::OAuthToken => "/oauth/token",
            Operation::UsersMe => "/api/v1/users/me",
            Operation::UsersGet => "/api/v1/users/{userId}",
            Operation::TenantsMe => "/api/v1/tenants/me",
            Operation::TenantsGet => "/api/v1/tenants/{tenantId}",
            Operation::DataConnectionsList => "/api/v1/data-connections",
            Operation::DataConnectionsGet
            | Operation::DataConnectionsPatch
            | Operation::DataConnectionsPut => "/api/v1/data-connections/{qID}",
            Operation::AutomationConnectionsList => "/api/v1/automation-connections",
            Operation::AutomationConnectionsGet | Operation::AutomationConnectionsPut => {
                "/api/v1/automation-connections/{id}"
            }
            Operation::AutomationConnectionsCheck => {
                "/api/v1/automation-connections/{id}/actions/check"
            }
            Operation::EmailConfigGet | Operation::EmailConfigPatch | Operation::EmailConfigPut => {
                "/api/v1/transports/email-config"
            }
            Operation::EmailConfigVerifyConnection => {
                "/api/v1/transports/email-config/actions/verify-connection"
            }
            Operation::AutomationsList | Operation::AutomationsCreate => "/api/v1/automations",
            Operation::AutomationsGet | Operation::AutomationsDelete => "/api/v1/automations/{id}",
            Operation::AutomationsCopy => "/api/v1/automations/{id}/actions/copy",
            Operation::AutomationsEnable => "/api/v1/automations/{id}/actions/enable",
            Operation::AutomationsDisable => "/api/v1/automations/{id}/actions/disable",
        }
    }

    /// The file under `qlik-api/cloud/` that defines this operation.
    pub const fn spec_file(self) -> &'static str {
        match self.definition() {
            Definition::CspOrigins => "csp-origins.json",
            Definition::ApiKeys => "api-keys.json",
            Definition::OAuthClients => "oauth-clients.json",
            Definition::OAuthToken => "oauth-token.json",
            Definition::Users => "users.json",
            Definition::Tenants => "tenants.json",
            Definition::DataConnections => "data-connections.json",
            Definition::AutomationConnections => "automation-connections.json",
            Definition::Transports => "transports.json",
            Definition::Automations => "automations.json",
        }
    }

    /// The rate-limit tier. For these operations Qlik's tiers follow the method (POST
    /// actions such as `check` and `verify-connection` included).
    pub const fn tier(self) -> Tier {
        match self.method().as_bytes() {
            b"GET" => Tier::Read,
            _ => Tier::Write,
        }
    }

    /// Whether the operation needs a bearer credential (the token endpoint takes client
    /// credentials in its body instead).
    pub const fn needs_bearer(self) -> bool {
        !matches!(self, Operation::OAuthToken)
    }

    pub(crate) const fn error_shape(self) -> ErrorShape {
        self.definition().error_shape()
    }

    const fn definition(self) -> Definition {
        match self {
            Operation::CspOriginsList
            | Operation::CspOriginsGet
            | Operation::CspOriginsCreate
            | Operation::CspOriginsUpdate
            | Operation::CspOriginsDelete
            | Operation::CspOriginsGenerateHeader => Definition::CspOrigins,
            Operation::ApiKeysList
            | Operation::ApiKeysGet
            | Operation::ApiKeysCreate
            | Operation::ApiKeysDelete
            | Operation::ApiKeysGetConfig => Definition::ApiKeys,
            Operation::OAuthClientsGet
            | Operation::OAuthClientsCreateSecret
            | Operation::OAuthClientsDeleteSecret => Definition::OAuthClients,
            Operation::OAuthToken => Definition::OAuthToken,
            Operation::UsersMe | Operation::UsersGet => Definition::Users,
            Operation::TenantsMe | Operation::TenantsGet => Definition::Tenants,
            Operation::DataConnectionsList
            | Operation::DataConnectionsGet
            | Operation::DataConnectionsPatch
            | Operation::DataConnectionsPut => Definition::DataConnections,
            Operation::AutomationConnectionsList
            | Operation::AutomationConnectionsGet
            | Operation::AutomationConnectionsPut
            | Operation::AutomationConnectionsCheck => Definition::AutomationConnections,
            Operation::EmailConfigGet
            | Operation::EmailConfigPatch
            | Operation::EmailConfigPut
            | Operation::EmailConfigVerifyConnection => Definition::Transports,
            Operation::AutomationsList
            | Operation::AutomationsCreate
            | Operation::AutomationsGet
            | Operation::AutomationsDelete
            | Operation::AutomationsCopy
            | Operation::AutomationsEnable
            | Operation::AutomationsDisable => Definition::Automations,
        }
    }
}

/// The definition file (API) an operation belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Definition {
    CspOrigins,
    ApiKeys,
    OAuthClients,
    OAuthToken,
    Users,
    Tenants,
    DataConnections,
    AutomationConnections,
    Transports,
    Automations,
}

impl Definition {
    /// Each definition shapes its errors differently (`status` absent, an integer or a
    /// string; transports without `detail`); the emulator answers each API in its own.
    const fn error_shape(self) -> ErrorShape {
        match self {
            Definition::CspOrigins
            | Definition::OAuthClients
            | Definition::AutomationConnections
            | Definition::Automations => ErrorShape::NoStatus,
            Definition::ApiKeys | Definition::Users | Definition::DataConnections => {
                ErrorShape::IntegerStatus
            }
            Definition::OAuthToken | Definition::Tenants => ErrorShape::StringStatus,
            Definition::Transports => ErrorShape::CodeAndTitle,
        }
    }
}

/// A request matched to an operation, with the values of its path parameters in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub operation: Operation,
    pub params: Vec<String>,
}

/// Why a request matched no operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No operation has this path.
    NotFound,
    /// The path exists, not with this method; carries an operation on that path so the
    /// error body takes that API's shape.
    MethodNotAllowed(Operation),
}

/// Finds the operation for `method` and `path` (without query; one trailing `/` is ignored).
pub fn route(method: &str, path: &str) -> Result<Route, RouteError> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let mut path_matched = None;
    for operation in Operation::ALL {
        let Some(params) = match_template(operation.path_template(), path) else {
            continue;
        };
        if operation.method() == method {
            return Ok(Route { operation, params });
        }
        path_matched.get_or_insert(operation);
    }
    Err(path_matched.map_or(RouteError::NotFound, RouteError::MethodNotAllowed))
}

fn match_template(template: &str, path: &str) -> Option<Vec<String>> {
    let mut template_segments = template.split('/');
    let mut path_segments = path.split('/');
    let mut params = Vec::new();
    loop {
        match (template_segments.next(), path_segments.next()) {
            (None, None) => return Some(params),
            (Some(t), Some(p)) if t.starts_with('{') => {
                if p.is_empty() {
                    return None;
                }
                params.push(percent_decode(p));
            }
            (Some(t), Some(p)) if t == p => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_routes_to_itself_from_its_own_template() {
        for operation in Operation::ALL {
            let path = operation
                .path_template()
                .replace("{id}", "abc")
                .replace("{hint}", "h1")
                .replace("{tenantId}", "t1")
                .replace("{userId}", "u1")
                .replace("{qID}", "q1");
            let route = route(operation.method(), &path).unwrap();
            assert_eq!(route.operation, operation, "{path}");
        }
    }

    #[test]
    fn literal_paths_win_over_templates() {
        assert_eq!(
            route("GET", "/api/v1/users/me").unwrap().operation,
            Operation::UsersMe
        );
        assert_eq!(
            route("GET", "/api/v1/csp-origins/actions/generate-header")
                .unwrap()
                .operation,
            Operation::CspOriginsGenerateHeader
        );
        let r = route("DELETE", "/api/v1/oauth-clients/c1/client-secrets/ab12").unwrap();
        assert_eq!(r.params, vec!["c1".to_owned(), "ab12".to_owned()]);
    }

    #[test]
    fn a_known_path_with_another_method_is_not_allowed_and_unknown_paths_are_not_found() {
        assert_eq!(
            route("PATCH", "/api/v1/csp-origins/x"),
            Err(RouteError::MethodNotAllowed(Operation::CspOriginsGet))
        );
        assert_eq!(route("GET", "/api/v1/nothing"), Err(RouteError::NotFound));
        assert_eq!(
            route("GET", "/api/v1/csp-origins//"),
            Err(RouteError::NotFound)
        );
    }

    #[test]
    fn path_parameters_are_percent_decoded() {
        let r = route("GET", "/api/v1/data-connections/my%20conn%2Fx").unwrap();
        assert_eq!(r.params, vec!["my conn/x".to_owned()]);
    }

    #[test]
    fn tiers_follow_the_method() {
        assert_eq!(Operation::CspOriginsGenerateHeader.tier(), Tier::Read);
        assert_eq!(Operation::OAuthToken.tier(), Tier::Write);
        assert_eq!(Operation::ApiKeysDelete.tier(), Tier::Write);
        assert_eq!(Operation::DataConnectionsPatch.tier(), Tier::Write);
        assert_eq!(Operation::AutomationConnectionsCheck.tier(), Tier::Write);
        assert_eq!(Operation::EmailConfigVerifyConnection.tier(), Tier::Write);
        assert_eq!(Operation::EmailConfigPut.tier(), Tier::Write);
    }

    #[test]
    fn names_are_unique_and_actions_route_past_their_resource() {
        let names: std::collections::BTreeSet<_> =
            Operation::ALL.iter().map(|op| op.name()).collect();
        assert_eq!(names.len(), Operation::ALL.len());
        let copy = route("POST", "/api/v1/automations/a1/actions/copy").unwrap();
        assert_eq!(
            (copy.operation, copy.params),
            (Operation::AutomationsCopy, vec!["a1".to_owned()])
        );
        assert_eq!(
            route("PATCH", "/api/v1/transports/email-config").map(|r| r.operation),
            Ok(Operation::EmailConfigPatch)
        );
        assert_eq!(
            route("PUT", "/api/v1/transports/email-config").map(|r| r.operation),
            Ok(Operation::EmailConfigPut)
        );
        assert_eq!(
            route("DELETE", "/api/v1/data-connections/x"),
            Err(RouteError::MethodNotAllowed(Operation::DataConnectionsGet))
        );
    }
}
