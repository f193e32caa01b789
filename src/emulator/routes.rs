//! The Qlik operations the emulator serves: their names (used by counters and faults),
//! paths as written in Qlik's API definitions, rate-limit tiers and request routing. Pure.

use super::wire::StatusField;

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
    pub const ALL: [Operation; 19] = [
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
        }
    }

    /// The HTTP method, upper case.
    pub const fn method(self) -> &'static str {
        match self {
            Operation::CspOriginsCreate
            | Operation::ApiKeysCreate
            | Operation::OAuthClientsCreateSecret
            | Operation::OAuthToken => "POST",
            Operation::CspOriginsUpdate => "PUT",
            Operation::CspOriginsDelete
            | Operation::ApiKeysDelete
            | Operation::OAuthClientsDeleteSecret => "DELETE",
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
        }
    }

    /// The rate-limit tier. For these operations Qlik's tiers follow the method.
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

    pub(crate) const fn status_field(self) -> StatusField {
        self.definition().status_field()
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
}

impl Definition {
    /// Each definition types the error's `status` differently (absent, integer, string);
    /// the emulator answers each API in its own shape.
    const fn status_field(self) -> StatusField {
        match self {
            Definition::CspOrigins | Definition::OAuthClients => StatusField::Absent,
            Definition::ApiKeys | Definition::Users => StatusField::Integer,
            Definition::OAuthToken | Definition::Tenants => StatusField::String,
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
                params.push(p.to_owned());
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
                .replace("{userId}", "u1");
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
    fn tiers_follow_the_method() {
        assert_eq!(Operation::CspOriginsGenerateHeader.tier(), Tier::Read);
        assert_eq!(Operation::OAuthToken.tier(), Tier::Write);
        assert_eq!(Operation::ApiKeysDelete.tier(), Tier::Write);
    }
}
