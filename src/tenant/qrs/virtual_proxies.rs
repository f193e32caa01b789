//! Virtual proxy operations (`/qrs/virtualproxyconfig`), and the connection check
//! (`/qrs/about`). Does network I/O.
//!
//! # GET-modify-PUT
//! A virtual proxy is changed by sending the whole entity back (`PUT`), as read, with the
//! fields the operator owns changed and `modifiedDate` unchanged. The site refuses a `PUT`
//! whose `modifiedDate` is not the entity's current one with 409
//! ([`Error::Conflict`]): someone changed the proxy in between. The caller reads it again
//! and redoes its change on what it finds, so an administrator's edit is never
//! overwritten.

use reqwest::Method;
use serde_json::{Map, Value};

use super::QrsClient;
use super::call::{QrsCall, eq_filter, same_name};
use super::wire::{About, VirtualProxy};
use crate::tenant::Error;

impl QrsClient {
    /// `GET /qrs/about`: the connection check. Proves the certificate, the user and the
    /// Xrfkey are accepted; the status shows [`About::build_version`].
    pub async fn about(&self) -> Result<About, Error> {
        let call = QrsCall::new("qrs.about", Method::GET, self.url(&["about"]));
        self.call_json(call).await
    }

    /// The virtual proxy with the prefix `prefix` (`""` is the default virtual proxy), or
    /// `None` when there is none. The site compares the prefix ignoring case, and so does
    /// this (the answer is checked again, so a site that ignored the filter gives the same
    /// result).
    ///
    /// # Errors
    /// [`Error::Ambiguous`] when more than one proxy has the prefix (virtual proxies
    /// linked to different proxy services may share one): the operator will not guess.
    /// [`Error::InvalidResponse`] when a proxy lacks `id` or `modifiedDate`.
    pub async fn virtual_proxy_by_prefix(
        &self,
        prefix: &str,
    ) -> Result<Option<VirtualProxy>, Error> {
        let op = "qrs.virtualproxyconfig.list";
        let call = QrsCall::new(op, Method::GET, self.url(&["virtualproxyconfig", "full"]))
            .query("filter", eq_filter("prefix", prefix));
        let found: Vec<Map<String, Value>> = self.call_json(call).await?;
        let mut found = found
            .into_iter()
            .map(|fields| entity(op, fields))
            .collect::<Result<Vec<VirtualProxy>, Error>>()?;
        found.retain(|p| same_name(p.prefix(), prefix));
        match found.len() {
            0 | 1 => Ok(found.pop()),
            n => Err(Error::Ambiguous {
                operation: op,
                problem: format!("{n} virtual proxies have the prefix {prefix:?}"),
            }),
        }
    }

    /// The virtual proxy with the id `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none.
    pub async fn virtual_proxy(&self, id: &str) -> Result<VirtualProxy, Error> {
        let op = "qrs.virtualproxyconfig.get";
        let call = QrsCall::new(op, Method::GET, self.url(&["virtualproxyconfig", id]));
        let fields: Map<String, Value> = self.call_json(call).await?;
        entity(op, fields)
    }

    /// Writes `proxy` back whole (`PUT`), with the `modifiedDate` it was read with, and
    /// returns the proxy as the site stored it (with its new `modifiedDate`).
    ///
    /// # Errors
    /// [`Error::Conflict`] when the proxy changed since it was read: read it again and
    /// redo the change. [`Error::BadRequest`] when the site refuses a value (e.g.
    /// `additionalResponseHeaders` beyond [`super::ADDITIONAL_RESPONSE_HEADERS_MAX`]).
    pub async fn update_virtual_proxy(&self, proxy: &VirtualProxy) -> Result<VirtualProxy, Error> {
        let op = "qrs.virtualproxyconfig.put";
        let body = serde_json::to_vec(proxy).map_err(|e| Error::InvalidResponse {
            operation: op,
            problem: format!("failed to encode the request body: {:?}", e.classify()),
        })?;
        let call = QrsCall::new(
            op,
            Method::PUT,
            self.url(&["virtualproxyconfig", proxy.id()]),
        )
        .json_body(body);
        let fields: Map<String, Value> = self.call_json(call).await?;
        entity(op, fields)
    }
}

/// `fields` as an entity, or [`Error::InvalidResponse`] naming the missing field.
pub(super) fn entity<T>(operation: &'static str, fields: Map<String, Value>) -> Result<T, Error>
where
    T: TryFrom<Map<String, Value>, Error = super::InvalidEntity>,
{
    T::try_from(fields).map_err(|e| Error::InvalidResponse {
        operation,
        problem: e.to_string(),
    })
}
