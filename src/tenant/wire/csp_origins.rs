//! Wire types of the `csp-origins` API: the entries of a tenant's CSP allow-list and the
//! header the tenant compiles from them, with conversions to and from [`crate::csp`].
//! No I/O.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::csp::{Directive, Origin, OriginError};

/// The writable content of a CSP entry (`CSPEntryContent`): what `POST` and `PUT` send.
/// `PUT` replaces the whole entry, so every flag is always sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CspOriginContent {
    /// The entry's name (≤512 characters).
    #[serde(default)]
    pub name: String,
    /// The origin, `[scheme://]host[:port]` (≤256 characters).
    pub origin: String,
    /// Why the origin is allowed (≤1,024 characters).
    #[serde(default)]
    pub description: String,
    /// `child-src`.
    #[serde(default)]
    pub child_src: bool,
    /// `connect-src`.
    #[serde(default)]
    pub connect_src: bool,
    /// `connect-src` for `wss://` (Qlik prefixes the origin with `wss://`).
    #[serde(default, rename = "connectSrcWSS")]
    pub connect_src_wss: bool,
    /// `font-src`.
    #[serde(default)]
    pub font_src: bool,
    /// `form-action`.
    #[serde(default)]
    pub form_action: bool,
    /// `frame-ancestors`.
    #[serde(default)]
    pub frame_ancestors: bool,
    /// `frame-src`.
    #[serde(default)]
    pub frame_src: bool,
    /// `img-src`.
    #[serde(default)]
    pub img_src: bool,
    /// `media-src`.
    #[serde(default)]
    pub media_src: bool,
    /// `object-src`.
    #[serde(default)]
    pub object_src: bool,
    /// `script-src`.
    #[serde(default)]
    pub script_src: bool,
    /// `style-src`.
    #[serde(default)]
    pub style_src: bool,
    /// `worker-src`.
    #[serde(default)]
    pub worker_src: bool,
}

impl CspOriginContent {
    /// The content for `origin` granted `directives`, with `connectSrcWSS` set by
    /// `allow_websocket`.
    pub fn new(
        name: impl Into<String>,
        origin: &Origin,
        directives: impl IntoIterator<Item = Directive>,
        allow_websocket: bool,
        description: impl Into<String>,
    ) -> CspOriginContent {
        let mut content = CspOriginContent {
            name: name.into(),
            origin: origin.as_str().to_owned(),
            description: description.into(),
            connect_src_wss: allow_websocket,
            ..CspOriginContent::default()
        };
        for d in directives {
            *content.flag_mut(d) = true;
        }
        content
    }

    /// Whether `directive` is granted.
    pub fn has(&self, directive: Directive) -> bool {
        match directive {
            Directive::ChildSrc => self.child_src,
            Directive::ConnectSrc => self.connect_src,
            Directive::FontSrc => self.font_src,
            Directive::FormAction => self.form_action,
            Directive::FrameAncestors => self.frame_ancestors,
            Directive::FrameSrc => self.frame_src,
            Directive::ImgSrc => self.img_src,
            Directive::MediaSrc => self.media_src,
            Directive::ObjectSrc => self.object_src,
            Directive::ScriptSrc => self.script_src,
            Directive::StyleSrc => self.style_src,
            Directive::WorkerSrc => self.worker_src,
        }
    }

    /// The flag for `directive`, to grant or revoke it.
    pub fn flag_mut(&mut self, directive: Directive) -> &mut bool {
        match directive {
            Directive::ChildSrc => &mut self.child_src,
            Directive::ConnectSrc => &mut self.connect_src,
            Directive::FontSrc => &mut self.font_src,
            Directive::FormAction => &mut self.form_action,
            Directive::FrameAncestors => &mut self.frame_ancestors,
            Directive::FrameSrc => &mut self.frame_src,
            Directive::ImgSrc => &mut self.img_src,
            Directive::MediaSrc => &mut self.media_src,
            Directive::ObjectSrc => &mut self.object_src,
            Directive::ScriptSrc => &mut self.script_src,
            Directive::StyleSrc => &mut self.style_src,
            Directive::WorkerSrc => &mut self.worker_src,
        }
    }

    /// The granted directives, in header order (`connectSrcWSS` is not a directive: see
    /// [`Self::connect_src_wss`]).
    pub fn directives(&self) -> BTreeSet<Directive> {
        Directive::ALL
            .into_iter()
            .filter(|&d| self.has(d))
            .collect()
    }

    /// The origin, validated by the operator's rules (a tenant may hold entries the
    /// operator would not accept, e.g. created in the console).
    pub fn parsed_origin(&self) -> Result<Origin, OriginError> {
        Origin::parse(&self.origin)
    }
}

/// A CSP entry as the tenant holds it (`CSPEntry`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CspOrigin {
    /// The entry's id.
    pub id: String,
    /// The writable content.
    #[serde(flatten)]
    pub content: CspOriginContent,
    /// When it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date: Option<Timestamp>,
    /// When it was last modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_date: Option<Timestamp>,
}

/// The answer of `generate-header` (`CSPHeader`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspHeader {
    /// The compiled header value.
    #[serde(rename = "Content-Security-Policy", default)]
    pub content_security_policy: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn origin(s: &str) -> Origin {
        Origin::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn every_directive_serializes_as_its_qlik_field() {
        for d in Directive::ALL {
            let content = CspOriginContent::new("n", &origin("https://a.example"), [d], false, "");
            let json = serde_json::to_value(&content).unwrap_or_default();
            let on: Vec<&str> = json
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| **v == Value::Bool(true))
                .map(|(k, _)| k.as_str())
                .collect();
            assert_eq!(on, [d.qlik_field()], "{d}");
        }
    }

    #[test]
    fn allow_websocket_is_connect_src_wss_and_not_a_directive() {
        let content = CspOriginContent::new("n", &origin("a.example"), [], true, "");
        let json = serde_json::to_value(&content).unwrap_or_default();
        assert_eq!(json["connectSrcWSS"], json!(true));
        assert!(content.directives().is_empty());
    }

    #[test]
    fn an_entry_round_trips_and_the_put_body_carries_every_flag() {
        let body = json!({
            "id": "e1", "name": "ns/web", "origin": "https://cdn.example.com",
            "description": "cdn", "scriptSrc": true, "imgSrc": true, "connectSrcWSS": false,
            "createdDate": "2025-12-03T14:59:46.331Z", "modifiedDate": "2025-12-03T14:59:46Z",
            "somethingNew": 1
        });
        let entry: CspOrigin = serde_json::from_value(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            entry.content.directives(),
            BTreeSet::from([Directive::ImgSrc, Directive::ScriptSrc])
        );
        assert_eq!(
            entry.content.parsed_origin(),
            Ok(origin("https://cdn.example.com"))
        );
        assert!(entry.created_date.is_some());
        let put = serde_json::to_value(&entry.content).unwrap_or_default();
        let obj = put.as_object().cloned().unwrap_or_default();
        for d in Directive::ALL {
            assert!(
                obj.contains_key(d.qlik_field()),
                "{d} missing from the PUT body"
            );
        }
        assert!(obj.contains_key("connectSrcWSS"));
        assert!(!obj.contains_key("id") && !obj.contains_key("createdDate"));
    }
}
