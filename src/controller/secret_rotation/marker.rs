//! The marker in the description of every API key the operator creates:
//! `[qlikops:<SecretRotation uid>:<revision>]`. It finds the keys of one SecretRotation
//! again after a crash or an unknown outcome. Pure.

/// What every key of the SecretRotation `uid` carries.
pub fn prefix(uid: &str) -> String {
    format!("[qlikops:{uid}:")
}

/// The marker of revision `revision`.
pub fn marker(uid: &str, revision: i64) -> String {
    format!("{}{revision}]", prefix(uid))
}

/// The description of a new key: the user's (or one naming the SecretRotation), then the
/// marker.
pub fn description(
    user: Option<&str>,
    namespace: &str,
    name: &str,
    uid: &str,
    revision: i64,
) -> String {
    let text = match user.map(str::trim).filter(|d| !d.is_empty()) {
        Some(user) => user.to_owned(),
        None => format!("qlik-csp-operator SecretRotation {namespace}/{name}"),
    };
    format!("{text} {}", marker(uid, revision))
}

/// The revision in `description`'s marker for `uid`, if it has one.
pub fn revision(description: &str, uid: &str) -> Option<i64> {
    let prefix = prefix(uid);
    let start = description.find(&prefix)? + prefix.len();
    let rest = &description[start..];
    let end = rest.find(']')?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_carries_a_marker_that_parses_back() {
        let text = description(None, "web", "reports", "u-1", 7);
        assert_eq!(
            text,
            "qlik-csp-operator SecretRotation web/reports [qlikops:u-1:7]"
        );
        assert_eq!(revision(&text, "u-1"), Some(7));
        assert_eq!(revision(&text, "u-2"), None);
        let text = description(Some("reports key"), "web", "reports", "u-1", 12);
        assert_eq!(revision(&text, "u-1"), Some(12));
        assert!(text.starts_with("reports key "));
    }

    #[test]
    fn a_damaged_marker_gives_no_revision() {
        assert_eq!(revision("[qlikops:u-1:x]", "u-1"), None);
        assert_eq!(revision("[qlikops:u-1:3", "u-1"), None);
    }
}
