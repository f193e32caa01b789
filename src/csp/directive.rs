//! The CSP fetch and navigation directives a Qlik tenant lets an origin serve. Pure.

use std::fmt;
use std::str::FromStr;

/// A directive an allow-listed origin may be granted, in the order Qlik's
/// `csp-origins` API lists its boolean flags. `Ord` follows this order, which is
/// also the order of directives in a compiled header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Directive {
    ChildSrc,
    ConnectSrc,
    FontSrc,
    FormAction,
    FrameAncestors,
    FrameSrc,
    ImgSrc,
    MediaSrc,
    ObjectSrc,
    ScriptSrc,
    StyleSrc,
    WorkerSrc,
}

impl Directive {
    /// Every directive, in header order.
    pub const ALL: [Directive; 12] = [
        Directive::ChildSrc,
        Directive::ConnectSrc,
        Directive::FontSrc,
        Directive::FormAction,
        Directive::FrameAncestors,
        Directive::FrameSrc,
        Directive::ImgSrc,
        Directive::MediaSrc,
        Directive::ObjectSrc,
        Directive::ScriptSrc,
        Directive::StyleSrc,
        Directive::WorkerSrc,
    ];

    /// The directive's name as it appears in a CSP header, e.g. `script-src`.
    pub const fn name(self) -> &'static str {
        match self {
            Directive::ChildSrc => "child-src",
            Directive::ConnectSrc => "connect-src",
            Directive::FontSrc => "font-src",
            Directive::FormAction => "form-action",
            Directive::FrameAncestors => "frame-ancestors",
            Directive::FrameSrc => "frame-src",
            Directive::ImgSrc => "img-src",
            Directive::MediaSrc => "media-src",
            Directive::ObjectSrc => "object-src",
            Directive::ScriptSrc => "script-src",
            Directive::StyleSrc => "style-src",
            Directive::WorkerSrc => "worker-src",
        }
    }

    /// The name of the boolean flag for this directive on a Qlik CSP entry, e.g. `scriptSrc`.
    pub const fn qlik_field(self) -> &'static str {
        match self {
            Directive::ChildSrc => "childSrc",
            Directive::ConnectSrc => "connectSrc",
            Directive::FontSrc => "fontSrc",
            Directive::FormAction => "formAction",
            Directive::FrameAncestors => "frameAncestors",
            Directive::FrameSrc => "frameSrc",
            Directive::ImgSrc => "imgSrc",
            Directive::MediaSrc => "mediaSrc",
            Directive::ObjectSrc => "objectSrc",
            Directive::ScriptSrc => "scriptSrc",
            Directive::StyleSrc => "styleSrc",
            Directive::WorkerSrc => "workerSrc",
        }
    }
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not one of the directives in [`Directive::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown directive {0:?}: expected one of child-src, connect-src, font-src, form-action, frame-ancestors, frame-src, img-src, media-src, object-src, script-src, style-src, worker-src"
)]
pub struct UnknownDirective(pub String);

impl FromStr for Directive {
    type Err = UnknownDirective;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Directive::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| UnknownDirective(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_directive_round_trips_through_its_name() {
        for d in Directive::ALL {
            assert_eq!(d.name().parse::<Directive>(), Ok(d));
        }
    }

    #[test]
    fn header_order_is_the_declaration_order() {
        let mut sorted = Directive::ALL;
        sorted.sort();
        assert_eq!(sorted, Directive::ALL);
    }

    #[test]
    fn unknown_names_are_rejected_with_the_list_of_valid_ones() {
        let err = "default-src".parse::<Directive>().unwrap_err();
        assert!(err.to_string().contains("\"default-src\""));
        assert!(err.to_string().contains("worker-src"));
    }
}
