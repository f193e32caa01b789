//! The two calls the chaos scenarios make on an emulator's control API (`/_emulator/...`,
//! the cloud emulator's or a QRS site's): create something and take its id, and read
//! something back. Does network I/O.

use serde_json::Value;

/// POSTs `body` to `url` and returns the `id` of what was created; `what` names it in
/// errors.
pub async fn create(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    what: &str,
) -> Result<String, String> {
    let created: Value = http
        .post(url)
        .json(body)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("failed to create {what}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("failed to read the created {what}: {e}"))?;
    created["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("the created {what} has no id: {created}"))
}

/// GETs `url` as JSON.
pub async fn get(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    http.get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("GET {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {url}: {e}"))
}
