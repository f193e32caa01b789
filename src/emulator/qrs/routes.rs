//! The QRS endpoints the site serves, and which one a request is for. Pure.
//!
//! Paths are matched as QRS (ASP.NET) matches them: case-insensitively, with or without a
//! trailing `/`. Path templates are relative to the definition's `basePath` (`/qrs`), as
//! `Repository.json` writes them.

/// One emulated QRS operation (a path template and a method of `Repository.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QrsOperation {
    AboutGet,
    VirtualProxyList,
    VirtualProxyFull,
    VirtualProxyCount,
    VirtualProxyGet,
    VirtualProxyUpdate,
    DataConnectionFull,
    DataConnectionGet,
    DataConnectionUpdate,
}

impl QrsOperation {
    /// Every operation, in the order the control API lists them.
    pub const ALL: [QrsOperation; 9] = [
        QrsOperation::AboutGet,
        QrsOperation::VirtualProxyList,
        QrsOperation::VirtualProxyFull,
        QrsOperation::VirtualProxyCount,
        QrsOperation::VirtualProxyGet,
        QrsOperation::VirtualProxyUpdate,
        QrsOperation::DataConnectionFull,
        QrsOperation::DataConnectionGet,
        QrsOperation::DataConnectionUpdate,
    ];

    /// The name in the request log and the counters, e.g. `virtualproxyconfig.update`.
    pub fn name(self) -> &'static str {
        match self {
            QrsOperation::AboutGet => "about.get",
            QrsOperation::VirtualProxyList => "virtualproxyconfig.list",
            QrsOperation::VirtualProxyFull => "virtualproxyconfig.full",
            QrsOperation::VirtualProxyCount => "virtualproxyconfig.count",
            QrsOperation::VirtualProxyGet => "virtualproxyconfig.get",
            QrsOperation::VirtualProxyUpdate => "virtualproxyconfig.update",
            QrsOperation::DataConnectionFull => "dataconnection.full",
            QrsOperation::DataConnectionGet => "dataconnection.get",
            QrsOperation::DataConnectionUpdate => "dataconnection.update",
        }
    }

    /// The HTTP method, uppercase.
    pub fn method(self) -> &'static str {
        match self {
            QrsOperation::VirtualProxyUpdate | QrsOperation::DataConnectionUpdate => "PUT",
            _ => "GET",
        }
    }

    /// The path template relative to `/qrs`, as `Repository.json` writes it.
    pub fn path_template(self) -> &'static str {
        match self {
            QrsOperation::AboutGet => "/about",
            QrsOperation::VirtualProxyList => "/virtualproxyconfig",
            QrsOperation::VirtualProxyFull => "/virtualproxyconfig/full",
            QrsOperation::VirtualProxyCount => "/virtualproxyconfig/count",
            QrsOperation::VirtualProxyGet | QrsOperation::VirtualProxyUpdate => {
                "/virtualproxyconfig/{id}"
            }
            QrsOperation::DataConnectionFull => "/dataconnection/full",
            QrsOperation::DataConnectionGet | QrsOperation::DataConnectionUpdate => {
                "/dataconnection/{id}"
            }
        }
    }
}

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub operation: QrsOperation,
    /// The `{id}` segment, when the template has one.
    pub id: Option<String>,
}

/// Why a request has no route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No endpoint at this path.
    NotFound,
    /// The path exists, but not with this method.
    MethodNotAllowed,
}

/// The route of `method` and `path` (without the query).
pub fn route(method: &str, path: &str) -> Result<Route, RouteError> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let candidates: Vec<(QrsOperation, Option<String>)> = match lower.as_slice() {
        ["qrs", "about"] => vec![(QrsOperation::AboutGet, None)],
        ["qrs", "virtualproxyconfig"] => vec![(QrsOperation::VirtualProxyList, None)],
        ["qrs", "virtualproxyconfig", "full"] => vec![(QrsOperation::VirtualProxyFull, None)],
        ["qrs", "virtualproxyconfig", "count"] => vec![(QrsOperation::VirtualProxyCount, None)],
        ["qrs", "virtualproxyconfig", _] => {
            let id = Some(segments[2].to_owned());
            vec![
                (QrsOperation::VirtualProxyGet, id.clone()),
                (QrsOperation::VirtualProxyUpdate, id),
            ]
        }
        ["qrs", "dataconnection", "full"] => vec![(QrsOperation::DataConnectionFull, None)],
        ["qrs", "dataconnection", _] => {
            let id = Some(segments[2].to_owned());
            vec![
                (QrsOperation::DataConnectionGet, id.clone()),
                (QrsOperation::DataConnectionUpdate, id),
            ]
        }
        _ => return Err(RouteError::NotFound),
    };
    candidates
        .into_iter()
        .find(|(op, _)| op.method().eq_ignore_ascii_case(method))
        .map(|(operation, id)| Route { operation, id })
        .ok_or(RouteError::MethodNotAllowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_case_insensitively_with_or_without_a_trailing_slash() {
        let get = |path| route("GET", path).map(|r| r.operation);
        assert_eq!(get("/qrs/about"), Ok(QrsOperation::AboutGet));
        assert_eq!(get("/qrs/About/"), Ok(QrsOperation::AboutGet));
        assert_eq!(
            get("/qrs/VirtualProxyConfig/full"),
            Ok(QrsOperation::VirtualProxyFull)
        );
        assert_eq!(
            get("/qrs/virtualproxyconfig/count"),
            Ok(QrsOperation::VirtualProxyCount)
        );
        let by_id = route("PUT", "/qrs/virtualproxyconfig/AbC").unwrap();
        assert_eq!(by_id.operation, QrsOperation::VirtualProxyUpdate);
        assert_eq!(by_id.id.as_deref(), Some("AbC"));
        assert_eq!(
            get("/qrs/dataconnection/full"),
            Ok(QrsOperation::DataConnectionFull)
        );
        assert_eq!(get("/qrs/nothing"), Err(RouteError::NotFound));
        assert_eq!(get("/api/v1/csp-origins"), Err(RouteError::NotFound));
        assert_eq!(
            get("/qrs/virtualproxyconfig/a/b"),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            route("DELETE", "/qrs/about"),
            Err(RouteError::MethodNotAllowed)
        );
        assert_eq!(
            route("POST", "/qrs/dataconnection/x"),
            Err(RouteError::MethodNotAllowed)
        );
    }

    #[test]
    fn every_operation_routes_from_its_own_template() {
        for op in QrsOperation::ALL {
            let path = format!("/qrs{}", op.path_template().replace("{id}", "x"));
            assert_eq!(route(op.method(), &path).map(|r| r.operation), Ok(op));
        }
    }
}
