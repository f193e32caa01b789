//! The values passed between the server and the handlers (a buffered request, a response)
//! and Qlik's error body. No I/O.
//!
//! Qlik's error body is `{"errors": [{"code", "title", "detail"?, "status"?}]}`; the
//! definitions disagree on `status` (absent in csp-origins, oauth-clients, automations and
//! automation-connections, an integer in api-keys, users and data-connections, a string in
//! oauth and tenants), and transports declares only `code` and `title`, so [`ErrorShape`]
//! picks per API.
//!
//! Error codes are the emulator's choice where Qlik does not publish its own: gateway-level
//! failures use `HTTP-<status>` (the code Qlik documents for 429); limits that a client
//! may want to tell apart have their own codes, listed in [`codes`].

use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

/// Error codes the emulator chose for conditions a client may want to tell apart.
pub mod codes {
    /// The tenant already has its maximum number of CSP entries (256).
    pub const CSP_ENTRY_LIMIT: &str = "CSP-ORIGINS-LIMIT";
    /// Another entry already has this origin.
    pub const CSP_DUPLICATE_ORIGIN: &str = "CSP-ORIGINS-DUPLICATE";
    /// The compiled header would exceed Qlik's 6,144 characters.
    pub const CSP_HEADER_TOO_LONG: &str = "CSP-ORIGINS-HEADER-TOO-LONG";
    /// The user already has `max_keys_per_user` active API keys.
    pub const API_KEY_LIMIT: &str = "API-KEYS-LIMIT";
    /// The requested expiry exceeds `max_api_key_expiry`.
    pub const API_KEY_EXPIRY: &str = "API-KEYS-EXPIRY";
    /// The OAuth client already has its maximum number of secrets (5).
    pub const CLIENT_SECRET_LIMIT: &str = "OAUTH-CLIENTS-SECRET-LIMIT";
    /// Credentials were sent to a data connection that authenticates by interactive OAuth.
    pub const DATA_CONNECTION_INTERACTIVE_OAUTH: &str = "DATA-CONNECTIONS-INTERACTIVE-OAUTH";
    /// Another data connection already has this name (409).
    pub const DATA_CONNECTION_DUPLICATE_NAME: &str = "DATA-CONNECTIONS-DUPLICATE-NAME";
    /// verify-connection without an email configuration: the code the definition's
    /// `VerifyConnectionConfigNotFoundError` gives as its example.
    pub const EMAIL_CONFIG_NOT_FOUND: &str = "VERIFYCONNECTION-1";
    /// An email configuration `PUT` with a field of the wrong type, missing or unknown: the
    /// code the definition's `UpdateEmailConfigError` gives as its example.
    pub const EMAIL_CONFIG_INPUT_CHECK: &str = "INPUTCHECK-1";
    /// An email configuration `PUT` whose connection check failed (Qlik's code for it is
    /// not public).
    pub const EMAIL_CONFIG_VERIFICATION_FAILED: &str = "EMAIL-CONFIG-VERIFICATION-FAILED";
}

/// A request with its body read, as the handlers see it.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub method: Method,
    /// The path without the query.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `scheme://host[:port]` as the client addressed the emulator, for links.
    pub base: String,
}

impl ApiRequest {
    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of header `name`, when it is valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The absolute URL of `path` with `query`, on the host the client used.
    pub fn url(&self, path: &str, query: &[(String, String)]) -> String {
        if query.is_empty() {
            return format!("{}{path}", self.base);
        }
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query {
            serializer.append_pair(k, v);
        }
        format!("{}{path}?{}", self.base, serializer.finish())
    }

    /// The body as a JSON value, or a Qlik-style 400.
    pub fn json_body(&self) -> Result<Value, QlikError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| QlikError::bad_request(format!("the request body is not valid JSON: {e}")))
    }

    /// The body as a JSON object, or a Qlik-style 400.
    pub fn object_body(&self) -> Result<Map<String, Value>, QlikError> {
        match self.json_body()? {
            Value::Object(object) => Ok(object),
            _ => Err(QlikError::bad_request(
                "the request body must be a JSON object",
            )),
        }
    }
}

/// An optional string member of a request object: absent or `null` is `None`, another
/// type a Qlik-style 400.
pub fn optional_str<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, QlikError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(QlikError::bad_request(format!("{name} must be a string"))),
    }
}

/// A response body.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Empty,
    Json(Value),
    Text {
        content_type: &'static str,
        text: String,
    },
}

/// A response, before it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Body,
}

impl ApiResponse {
    pub fn json(status: StatusCode, value: Value) -> ApiResponse {
        ApiResponse {
            status,
            headers: Vec::new(),
            body: Body::Json(value),
        }
    }

    pub fn no_content() -> ApiResponse {
        ApiResponse {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn text(status: StatusCode, content_type: &'static str, text: String) -> ApiResponse {
        ApiResponse {
            status,
            headers: Vec::new(),
            body: Body::Text { content_type, text },
        }
    }

    /// Adds a header; a value that is not a valid header value is left out.
    pub fn with_header(mut self, name: HeaderName, value: &str) -> ApiResponse {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }
}

/// Which members an API's errors have, and how it types `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorShape {
    /// `code`, `title`, `detail`.
    NoStatus,
    /// `code`, `title`, `detail`, `status` as an integer.
    IntegerStatus,
    /// `code`, `title`, `detail`, `status` as a string.
    StringStatus,
    /// `code` and `title` only: the detail, when there is one, is the title (transports'
    /// titles are the specific message, e.g. "serverAddress is not a string").
    CodeAndTitle,
}

/// A Qlik-style error response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QlikError {
    pub status: StatusCode,
    pub code: String,
    pub title: String,
    pub detail: Option<String>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
}

impl QlikError {
    /// An error with the code `HTTP-<status>` and the status's canonical reason as title.
    pub fn status(status: StatusCode) -> QlikError {
        QlikError {
            status,
            code: format!("HTTP-{}", status.as_u16()),
            title: status
                .canonical_reason()
                .unwrap_or("Unexpected status")
                .to_owned(),
            detail: None,
            retry_after: None,
        }
    }

    pub fn with_code(mut self, code: &str) -> QlikError {
        self.code = code.to_owned();
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> QlikError {
        self.detail = Some(detail.into());
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> QlikError {
        QlikError::status(StatusCode::BAD_REQUEST).with_detail(detail)
    }

    pub fn not_found(detail: impl Into<String>) -> QlikError {
        QlikError::status(StatusCode::NOT_FOUND).with_detail(detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> QlikError {
        QlikError::status(StatusCode::UNAUTHORIZED).with_detail(detail)
    }

    /// Qlik's documented rate-limit error.
    pub fn rate_limited(retry_after: u64) -> QlikError {
        QlikError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "HTTP-429".to_owned(),
            title: "API rate limit reached.".to_owned(),
            detail: Some(format!(
                "You need to wait {retry_after} seconds until limit is lifted."
            )),
            retry_after: Some(retry_after),
        }
    }

    pub fn internal(detail: impl Into<String>) -> QlikError {
        QlikError::status(StatusCode::INTERNAL_SERVER_ERROR).with_detail(detail)
    }

    /// The response in the shape of the API that answers.
    pub fn into_response(self, error_shape: ErrorShape) -> ApiResponse {
        let mut error = json!({ "code": self.code, "title": self.title });
        match (self.detail, error_shape) {
            (Some(detail), ErrorShape::CodeAndTitle) => error["title"] = Value::String(detail),
            (Some(detail), _) => error["detail"] = Value::String(detail),
            (None, _) => {}
        }
        match error_shape {
            ErrorShape::NoStatus | ErrorShape::CodeAndTitle => {}
            ErrorShape::IntegerStatus => error["status"] = json!(self.status.as_u16()),
            ErrorShape::StringStatus => error["status"] = json!(self.status.as_u16().to_string()),
        }
        let response = ApiResponse::json(self.status, json!({ "errors": [error] }));
        match self.retry_after {
            Some(secs) => response.with_header(hyper::header::RETRY_AFTER, &secs.to_string()),
            None => response,
        }
    }
}

/// A path segment with its `%XX` escapes decoded (a data connection found by a name with
/// spaces); the segment as sent when the escapes are malformed or not UTF-8.
pub fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| segment.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None if bytes[i] == b'%' => return segment.to_owned(),
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_owned())
}

/// An RFC 3339 timestamp with milliseconds, as Qlik writes them.
pub fn timestamp(at: jiff::Timestamp) -> String {
    format!("{at:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_take_the_status_type_of_the_answering_api() {
        let err = || QlikError::not_found("x");
        let body = |field| match err().into_response(field).body {
            Body::Json(v) => v["errors"][0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(body(ErrorShape::NoStatus).get("status"), None);
        assert_eq!(body(ErrorShape::IntegerStatus)["status"], json!(404));
        assert_eq!(body(ErrorShape::StringStatus)["status"], json!("404"));
        assert_eq!(body(ErrorShape::NoStatus)["code"], json!("HTTP-404"));
        let bare = body(ErrorShape::CodeAndTitle);
        assert_eq!(bare, json!({"code": "HTTP-404", "title": "x"}));
    }

    #[test]
    fn rate_limited_errors_carry_retry_after() {
        let response = QlikError::rate_limited(13).into_response(ErrorShape::NoStatus);
        assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers[0].1, "13");
    }

    #[test]
    fn percent_escapes_are_decoded_and_malformed_ones_kept() {
        assert_eq!(percent_decode("my%20conn%2Fx"), "my conn/x");
        assert_eq!(percent_decode("a%zz"), "a%zz");
        assert_eq!(percent_decode("a%"), "a%");
        assert_eq!(percent_decode("%ff"), "%ff");
        assert_eq!(percent_decode("plain+id"), "plain+id");
    }

    #[test]
    fn timestamps_have_millisecond_precision() {
        let at: jiff::Timestamp = "2024-05-01T10:00:00.123456Z".parse().unwrap();
        assert_eq!(timestamp(at), "2024-05-01T10:00:00.123Z");
        let whole: jiff::Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
        assert_eq!(timestamp(whole), "2024-05-01T10:00:00.000Z");
    }
}
