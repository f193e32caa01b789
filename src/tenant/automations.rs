//! Automation operations (`/api/v1/automations`, `automations.json`, Qlik Automate), as far
//! as renewing an automation's execution token needs them: read an automation (its
//! token), find automations by a name marker, copy one (the copy has a new token), enable,
//! disable and delete, and the URL that runs an automation with its token. Does network
//! I/O.
//!
//! These are the legacy `/api/v1` paths, which the definition marks `x-qlik-replaced-by`
//! `/api/workflows/automations` but not deprecated; the execution URL below exists only
//! under `/api/v1`.
//!
//! # Running an automation with its token
//! Not in the definition. Qlik documents it as the automation's trigger ("webhook") URL:
//! `POST` (or `GET`) `https://<tenant>/api/v1/automations/{id}/actions/execute` with the
//! token in the header [`EXECUTION_TOKEN_HEADER`] (`X-Execution-Token`), no bearer token,
//! and the automation's run mode set to `triggered`. Sources: Qlik Help, "Working with
//! webhooks" (Qlik Automate: "Getting the automation URL"); Qlik Support, "Qlik Automate
//! execution token changes" and "Execution tokens will become header parameters on
//! February 1st, 2026" (community.qlik.com): since January 13th, 2025 only automations
//! with run mode `triggered` run through that endpoint, and from February 1st, 2026 the
//! token is accepted only as the header, no longer as a query parameter.
//!
//! # Retries
//! - `actions/copy` creates an automation: not idempotent. It is sent at most once per
//!   call; a dropped connection, a timeout or a 5xx after sending is
//!   [`Error::OutcomeUnknown`], as is a 201 whose answer cannot be read. Only a 429 or a
//!   401 (nothing processed) is sent again.
//! - `actions/enable` and `actions/disable` set a state: safe to send twice, retried.
//! - `DELETE`: retried; 404 counts as done ([`Deleted::AlreadyGone`]).

use reqwest::Method;
use url::Url;

use super::Error;
use super::client::{Call, Deleted, TenantClient, decode};
use super::wire::{Automation, AutomationSummary, CopiedAutomation, CopyAutomation};

/// The header that carries an automation's execution token to its execution URL
/// ([`TenantClient::automation_execution_url`]).
pub const EXECUTION_TOKEN_HEADER: &str = "X-Execution-Token";

/// The page size of automation lists. Qlik allows up to 200, but every item carries the
/// automation's whole `workspace` (its blocks as JSON); 20 keeps a page well under the
/// client's response cap ([`super::client::MAX_RESPONSE_BYTES`]) even for large
/// automations.
pub const LIST_PAGE_SIZE: u32 = 20;

impl TenantClient {
    /// One automation, with its execution token.
    pub async fn get_automation(&self, id: &str) -> Result<Automation, Error> {
        self.get_json(
            "automations.get",
            self.url(&["api", "v1", "automations", id]),
        )
        .await
    }

    /// The automations whose name contains `marker`, following every page. The list's
    /// `filter` supports `name`, but the definition shows only `eq` (no "contains"), so
    /// the tenant lists them all and the names are compared here. A marker says nothing
    /// about who made an automation: check [`AutomationSummary::owner_id`] before deleting
    /// one.
    pub async fn find_automations_by_name_marker(
        &self,
        marker: &str,
    ) -> Result<Vec<AutomationSummary>, Error> {
        let mut url = self.url(&["api", "v1", "automations"]);
        url.query_pairs_mut()
            .append_pair("limit", &LIST_PAGE_SIZE.to_string());
        let mut found: Vec<AutomationSummary> = self.list_all("automations.list", url).await?;
        found.retain(|a| a.name.contains(marker));
        Ok(found)
    }

    /// Copies the automation as a new one named `name` (put a marker in it) and returns
    /// the new automation's id; the copy has its own execution token
    /// ([`Self::get_automation`]). On [`Error::OutcomeUnknown`], look for the copy with
    /// [`Self::find_automations_by_name_marker`] before copying again, and delete only a
    /// copy owned by the caller ([`Self::current_user`]).
    pub async fn copy_automation(&self, id: &str, name: &str) -> Result<String, Error> {
        let operation = "automations.copy";
        let url = self.url(&["api", "v1", "automations", id, "actions", "copy"]);
        let call = Call::new(operation, Method::POST, url).json(&CopyAutomation { name })?;
        let answer = self.execute(&call).await?;
        // The copy exists once the tenant answered 201: an answer without its id leaves
        // it somewhere, unnamed.
        match decode::<CopiedAutomation>(operation, &answer.body) {
            Ok(copied) if !copied.id.is_empty() => Ok(copied.id),
            Ok(_) => Err(Error::OutcomeUnknown {
                operation,
                source: Box::new(Error::InvalidResponse {
                    operation,
                    problem: "the copy's id is empty".to_owned(),
                }),
            }),
            Err(e) => Err(Error::OutcomeUnknown {
                operation,
                source: Box::new(e),
            }),
        }
    }

    /// Enables the automation so that it can run (204).
    pub async fn enable_automation(&self, id: &str) -> Result<(), Error> {
        self.automation_action("automations.enable", id, "enable")
            .await
    }

    /// Disables the automation so that it cannot run (204).
    pub async fn disable_automation(&self, id: &str) -> Result<(), Error> {
        self.automation_action("automations.disable", id, "disable")
            .await
    }

    /// Deletes the automation; one already gone counts as done.
    pub async fn delete_automation(&self, id: &str) -> Result<Deleted, Error> {
        self.delete(
            "automations.delete",
            self.url(&["api", "v1", "automations", id]),
        )
        .await
    }

    /// The URL a caller `POST`s to run the automation, with its execution token in the
    /// [`EXECUTION_TOKEN_HEADER`] header (see the module doc). Only automations whose run
    /// mode is `triggered` run this way.
    pub fn automation_execution_url(&self, id: &str) -> Url {
        self.url(&["api", "v1", "automations", id, "actions", "execute"])
    }

    async fn automation_action(
        &self,
        operation: &'static str,
        id: &str,
        action: &str,
    ) -> Result<(), Error> {
        let url = self.url(&["api", "v1", "automations", id, "actions", action]);
        self.execute(&Call::new(operation, Method::POST, url).retry_safe())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{ClientConfig, Credential, CredentialSource};

    #[test]
    fn the_execution_url_is_the_automations_execute_action_on_the_tenant() {
        let client = TenantClient::new(
            ClientConfig::new("https://acme.eu.qlikcloud.com"),
            Credential::api_key("k"),
            CredentialSource::Described("test".into()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            client
                .automation_execution_url("e0e720d0-4947-11ec")
                .as_str(),
            "https://acme.eu.qlikcloud.com/api/v1/automations/e0e720d0-4947-11ec/actions/execute"
        );
        assert_eq!(
            client.automation_execution_url("a/b?c").as_str(),
            "https://acme.eu.qlikcloud.com/api/v1/automations/a%2Fb%3Fc/actions/execute"
        );
        assert_eq!(EXECUTION_TOKEN_HEADER, "X-Execution-Token");
    }
}
