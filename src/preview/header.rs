//! The header a preview would lead to, against Qlik's cap and each edge target's limit.

use crate::api::header::HeaderSource;
use crate::csp::Origin;
use crate::csp::header::{self, BaseDirectives, Grant};

use super::{Input, Unmanaged};

/// The compiled header against each limit it must fit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HeaderCheck {
    /// `Local` (compiled by the operator) or `Tenant` (the tenant's own; estimated here
    /// from the entries it will hold, by the operator's compiler).
    pub source: &'static str,
    /// Characters; `None` when it does not compile.
    pub length: Option<usize>,
    pub limits: Vec<Limit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One limit on the header's length.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Limit {
    /// `Qlik` (the tenant's cap) or `<kind>/<name>` of an edge target.
    pub target: String,
    pub max: usize,
    pub fits: bool,
}

/// The header the tenant would serve, against Qlik's cap and each edge target's limit.
pub(super) fn check(input: &Input, unmanaged: &[Unmanaged]) -> HeaderCheck {
    let spec = input
        .tenant_manifest
        .as_ref()
        .and_then(|t| t.spec.effective_header().map(|h| h.into_owned()));
    let local = spec
        .as_ref()
        .is_some_and(|h| h.source == HeaderSource::Local);
    let base: BaseDirectives = spec
        .as_ref()
        .filter(|_| local)
        .and_then(|h| h.base_directives.clone())
        .unwrap_or_default();
    let mut grants: Vec<Grant> = input
        .entries
        .iter()
        .filter_map(|e| e.grant().ok())
        .collect();
    if !local {
        // The tenant's own header also lists the entries the operator leaves alone.
        let others = input
            .remote
            .iter()
            .filter(|r| unmanaged.iter().any(|u| u.id == r.id));
        grants.extend(others.filter_map(|r| {
            Some(Grant {
                origin: Origin::parse(&r.content.origin).ok()?,
                directives: r.content.directives(),
                allow_web_socket: r.content.connect_src_wss,
            })
        }));
    }
    let mut limits = vec![("Qlik".to_owned(), header::MAX_LEN)];
    for target in spec.iter().flat_map(|h| h.targets.iter()) {
        let label = format!("{}/{}", target.kind, target.name);
        limits.push((label, target.kind.max_value_len()));
    }
    let compiled = header::compile(&base, &grants);
    let length = compiled.as_ref().ok().map(|h| h.as_str().chars().count());
    HeaderCheck {
        source: if local { "Local" } else { "Tenant" },
        length,
        limits: limits
            .into_iter()
            .map(|(target, max)| Limit {
                fits: length.is_some_and(|l| l <= max),
                target,
                max,
            })
            .collect(),
        error: compiled.err().map(|e| e.to_string()),
    }
}
