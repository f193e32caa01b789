//! CSP origin operations (`/api/v1/csp-origins`): list (all pages), get, create, update,
//! delete, generate-header, and lookup by origin. Does network I/O.

use reqwest::Method;

use super::Error;
use super::client::{Call, Deleted, TenantClient};
use super::wire::{CspHeader, CspOrigin, CspOriginContent};

/// Qlik's largest page size for this list.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Filters and page size for listing CSP origins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CspOriginQuery {
    /// Entries per page (1–100; 100 when absent).
    pub limit: Option<u32>,
    /// Qlik's origin filter (wildcard, case-insensitive): matches more than the exact
    /// origin, so results must still be compared.
    pub origin: Option<String>,
    /// Qlik's name filter (wildcard, case-insensitive).
    pub name: Option<String>,
}

impl TenantClient {
    /// Every CSP entry of the tenant, following the pages.
    pub async fn list_csp_origins(&self) -> Result<Vec<CspOrigin>, Error> {
        self.list_csp_origins_with(&CspOriginQuery::default()).await
    }

    /// Every CSP entry matching `query`, following the pages.
    pub async fn list_csp_origins_with(
        &self,
        query: &CspOriginQuery,
    ) -> Result<Vec<CspOrigin>, Error> {
        let mut url = self.url(&["api", "v1", "csp-origins"]);
        {
            let limit = query.limit.unwrap_or(MAX_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("limit", &limit.to_string());
            if let Some(origin) = &query.origin {
                pairs.append_pair("origin", origin);
            }
            if let Some(name) = &query.name {
                pairs.append_pair("name", name);
            }
        }
        self.list_all("csp-origins.list", url).await
    }

    /// The entries whose origin is exactly `origin` (ignoring ASCII case, as hosts and
    /// schemes do): how a caller finds out whether a create with an unknown outcome
    /// happened, or adopts an entry made by hand. More than one means duplicates.
    pub async fn find_csp_origins_by_origin(&self, origin: &str) -> Result<Vec<CspOrigin>, Error> {
        // The tenant's filter treats `*` as a wildcard, so it can only narrow the list.
        let query = CspOriginQuery {
            origin: Some(origin.to_owned()),
            ..CspOriginQuery::default()
        };
        let mut entries = self.list_csp_origins_with(&query).await?;
        entries.retain(|e| e.content.origin.eq_ignore_ascii_case(origin));
        Ok(entries)
    }

    /// One CSP entry.
    pub async fn get_csp_origin(&self, id: &str) -> Result<CspOrigin, Error> {
        self.get_json(
            "csp-origins.get",
            self.url(&["api", "v1", "csp-origins", id]),
        )
        .await
    }

    /// Creates a CSP entry. On [`Error::OutcomeUnknown`], look it up with
    /// [`Self::find_csp_origins_by_origin`] before creating it again.
    pub async fn create_csp_origin(&self, content: &CspOriginContent) -> Result<CspOrigin, Error> {
        let url = self.url(&["api", "v1", "csp-origins"]);
        self.call_json(Call::new("csp-origins.create", Method::POST, url).json(content)?)
            .await
    }

    /// Replaces a CSP entry with `content` (there is no PATCH: every field is sent).
    pub async fn update_csp_origin(
        &self,
        id: &str,
        content: &CspOriginContent,
    ) -> Result<CspOrigin, Error> {
        let url = self.url(&["api", "v1", "csp-origins", id]);
        self.call_json(Call::new("csp-origins.update", Method::PUT, url).json(content)?)
            .await
    }

    /// Deletes a CSP entry; an entry already gone counts as done.
    pub async fn delete_csp_origin(&self, id: &str) -> Result<Deleted, Error> {
        self.delete(
            "csp-origins.delete",
            self.url(&["api", "v1", "csp-origins", id]),
        )
        .await
    }

    /// The CSP header the tenant compiles from its entries.
    pub async fn generate_csp_header(&self) -> Result<String, Error> {
        let url = self.url(&["api", "v1", "csp-origins", "actions", "generate-header"]);
        let header: CspHeader = self.get_json("csp-origins.generate-header", url).await?;
        Ok(header.content_security_policy)
    }
}
