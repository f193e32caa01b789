//! Data connection operations (`/api/v1/data-connections`, `data-connections.json`): read a
//! connection, find connections by exact name, and push credentials into one. Does network
//! I/O.
//!
//! # PATCH, not PUT
//! Credentials are written with `PATCH /api/v1/data-connections/{qID}`, a JSON Patch
//! (`PatchRequest`) of `replace` operations on `/qUsername`, `/qPassword` and
//! `/qConnectionSecret`, for the fields given. The alternative, `PUT` with a
//! `ConnectionUpdate`, requires `qID`, `qName`, `qConnectStatement`, `qType` and
//! `qEngineObjectID`: the operator would have to read the connection and send back fields
//! it does not own, and a `PUT` built from a read overwrites whatever someone changed in
//! between (there is no precondition to detect it). A `PATCH` names only the credential
//! fields, so it cannot clobber anything else. Neither needs a query parameter when the
//! connection is addressed by id: `type=connectionname` only switches the path to a name,
//! and `spaceId` is a `PUT`/`DELETE` parameter, not a `PATCH` one. The optional
//! `qlik-auth-code` header is for interactive-OAuth data sources, which the operator does
//! not update (see [`DataConnection::uses_interactive_oauth`]).
//!
//! # Retries
//! The `PATCH` is idempotent (replacing a field with the same value twice leaves it as
//! once), so 5xx and timeouts are retried like a `GET`. The secrets in the patch are
//! declared to the client (`Call::redacting`), which scrubs them from anything the tenant
//! answers that ends up in an error; the body itself is never logged.

use reqwest::Method;

use super::Error;
use super::client::{Call, TenantClient};
use super::wire::{DataConnection, DataConnectionCredentials};

/// Qlik's largest page size for this list.
pub const MAX_PAGE_SIZE: u32 = 100;

impl TenantClient {
    /// One data connection, with its parsed connection properties (`parseConnection=true`,
    /// which [`DataConnection::uses_interactive_oauth`] reads; only their names are kept).
    pub async fn get_data_connection(&self, id: &str) -> Result<DataConnection, Error> {
        let mut url = self.url(&["api", "v1", "data-connections", id]);
        url.query_pairs_mut().append_pair("parseConnection", "true");
        self.get_json("data-connections.get", url).await
    }

    /// The data connections named exactly `name` (names are unique per space, not per
    /// tenant, so there may be several), following every page. The tenant narrows the
    /// list with its SCIM filter `qName eq "<name>"`; the names are compared again here,
    /// exactly, since the filter's case rules are not defined. Data file connections are
    /// left out (`noDatafiles=true`): the filter does not apply to them, and they hold no
    /// credentials.
    ///
    /// List items carry neither the parsed properties nor the connection secret: read a
    /// match with [`Self::get_data_connection`] before deciding with
    /// [`DataConnection::uses_interactive_oauth`].
    ///
    /// # Errors
    /// [`Error::IncompleteList`] when the tenant says it left connections out (its
    /// `errors` array): a missing match would not mean there is none.
    pub async fn find_data_connections_by_name(
        &self,
        name: &str,
    ) -> Result<Vec<DataConnection>, Error> {
        let mut url = self.url(&["api", "v1", "data-connections"]);
        url.query_pairs_mut()
            .append_pair("filter", &name_filter(name))
            .append_pair("noDatafiles", "true")
            .append_pair("limit", &MAX_PAGE_SIZE.to_string());
        let mut found: Vec<DataConnection> = self.list_all("data-connections.list", url).await?;
        found.retain(|c| c.name == name);
        Ok(found)
    }

    /// Replaces the credential fields that are set in `credentials` (`PATCH`, see the
    /// module doc); the others are left as they are. Nothing is sent when none is set.
    /// The tenant answers 204; 404 is [`Error::NotFound`], 409 (a name conflict, which a
    /// credentials-only patch cannot cause) [`Error::Conflict`].
    pub async fn update_data_connection_credentials(
        &self,
        id: &str,
        credentials: &DataConnectionCredentials,
    ) -> Result<(), Error> {
        let patch = credentials.patch();
        if patch.is_empty() {
            return Ok(());
        }
        let url = self.url(&["api", "v1", "data-connections", id]);
        let call = Call::new("data-connections.patch", Method::PATCH, url)
            .json(&patch)?
            .redacting(patch.secrets());
        self.execute(&call).await?;
        Ok(())
    }
}

/// The SCIM filter for an exact name: RFC 7644 compares against a JSON string, so the
/// name is written as one (quotes and backslashes escaped).
fn name_filter(name: &str) -> String {
    let quoted = serde_json::to_string(name).unwrap_or_else(|_| "\"\"".to_owned());
    format!("qName eq {quoted}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_filter_quotes_the_name_as_a_json_string() {
        assert_eq!(name_filter("MyConnection"), r#"qName eq "MyConnection""#);
        assert_eq!(
            name_filter(r#"a "quoted" \ name"#),
            r#"qName eq "a \"quoted\" \\ name""#
        );
    }
}
