//! The marker in the description of every API key the operator creates:
//! `[qlikops:<SecretRotation uid>:<revision>]`, and in the name of every automation copy it
//! makes: `[qlikops <first 8 characters of the uid> r<revision>]`. It finds the keys and
//! copies of one SecretRotation again after a crash or an unknown outcome; it proves
//! nothing about who made them (see [`super::proof`]). Pure.

/// The longest automation name the operator gives a copy: the only bound the automations
/// definition states for an automation's name (`AutomationUsageObject.name`, `maxLength`
/// 50); the request's own schema states none.
pub const MAX_AUTOMATION_NAME: usize = 50;

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

/// What the name of every automation copy of the SecretRotation `uid` carries. The uid is
/// shortened so that the name keeps room for the user's: 32 random bits tell one
/// SecretRotation's copies from another's, and deleting one takes the owner check too.
pub fn automation_prefix(uid: &str) -> String {
    let short: String = uid.chars().take(8).collect();
    format!("[qlikops {short} r")
}

/// The marker of the copy made for `revision`.
pub fn automation_marker(uid: &str, revision: i64) -> String {
    format!("{}{revision}]", automation_prefix(uid))
}

/// The name of the copy of the automation named `source` made for `revision`: `source`
/// without this SecretRotation's markers (a copy of a copy does not pile them up), cut to
/// fit [`MAX_AUTOMATION_NAME`], then the marker.
pub fn automation_name(source: &str, uid: &str, revision: i64) -> String {
    let prefix = automation_prefix(uid);
    let mut base = source.to_owned();
    while let Some(start) = base.find(&prefix) {
        let end = base[start..]
            .find(']')
            .map_or(base.len(), |end| start + end + 1);
        base.replace_range(start..end, "");
    }
    let marker = automation_marker(uid, revision);
    let room = MAX_AUTOMATION_NAME.saturating_sub(marker.chars().count() + 1);
    let base: String = base.split_whitespace().collect::<Vec<_>>().join(" ");
    let base: String = base.chars().take(room).collect();
    let base = base.trim_end();
    if base.is_empty() {
        marker
    } else {
        format!("{base} {marker}")
    }
}

/// The revision in an automation `name`'s marker for `uid`, if it has one.
pub fn automation_revision(name: &str, uid: &str) -> Option<i64> {
    let prefix = automation_prefix(uid);
    let start = name.find(&prefix)? + prefix.len();
    let rest = &name[start..];
    let end = rest.find(']')?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "2b1f0c4e-9a7d-4c1b-8f3e-5d6a7b8c9d0e";

    #[test]
    fn a_copy_is_named_after_its_source_with_one_marker_and_at_most_fifty_characters() {
        let first = automation_name("Nightly export", UID, 1);
        assert_eq!(first, "Nightly export [qlikops 2b1f0c4e r1]");
        assert_eq!(automation_revision(&first, UID), Some(1));
        // The copy of a copy replaces the marker instead of adding one.
        let second = automation_name(&first, UID, 2);
        assert_eq!(second, "Nightly export [qlikops 2b1f0c4e r2]");
        assert_eq!(automation_revision(&second, UID), Some(2));
        assert_eq!(automation_revision(&second, "ffffffff-other"), None);
        let long = "Send the weekly sales report to the management team every Monday";
        let named = automation_name(long, UID, 12);
        assert_eq!(named.chars().count(), MAX_AUTOMATION_NAME);
        assert!(named.starts_with("Send the weekly sales repo"), "{named}");
        assert!(named.ends_with(" [qlikops 2b1f0c4e r12]"), "{named}");
        assert_eq!(automation_revision(&named, UID), Some(12));
        // Characters, not bytes, and never a dangling space.
        let wide = automation_name(&"é".repeat(60), UID, 3);
        assert_eq!(wide.chars().count(), MAX_AUTOMATION_NAME);
        assert_eq!(automation_name("   ", UID, 4), "[qlikops 2b1f0c4e r4]");
        // A marker of another SecretRotation is the user's text and stays.
        let other = automation_name("A [qlikops ffffffff r3]", UID, 1);
        assert_eq!(other, "A [qlikops ffffffff r3] [qlikops 2b1f0c4e r1]");
    }

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
