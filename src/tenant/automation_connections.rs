//! Automation connection operations (`/api/v1/automation-connections`,
//! `automation-connections.json`): read a connection, set parameter values (its
//! credentials), and check that it connects. Does network I/O.
//!
//! These are the legacy `/api/v1` paths, which the definition marks
//! `x-qlik-replaced-by` `/api/workflows/automation-connections` (same shapes) but not
//! deprecated.
//!
//! # Retries
//! - `PUT` with `params`: idempotent (it sets values), retried on 5xx and timeouts. The
//!   body carries the values, so they are declared to the client for scrubbing from
//!   error answers.
//! - `POST actions/check`: only checks, so it is marked safe to retry although a `POST`.

use reqwest::Method;

use super::Error;
use super::client::{Call, TenantClient};
use super::wire::{
    AutomationConnection, AutomationConnectionCheck, AutomationConnectionParamValue,
    AutomationConnectionPut,
};

impl TenantClient {
    /// One automation connection, with its parameters (their values are secrets).
    pub async fn get_automation_connection(&self, id: &str) -> Result<AutomationConnection, Error> {
        let url = self.url(&["api", "v1", "automation-connections", id]);
        self.get_json("automation-connections.get", url).await
    }

    /// Sets the values of the parameters named by id (`PUT` with
    /// `AutomationConnectionPutRequestObject`). The definition requires neither field of
    /// that body ("updates the specified properties"), so `name` is not sent and the
    /// connection keeps its name; parameters not listed are not sent either. The answer
    /// (the connection, values included) is not read. Nothing is sent for no parameters.
    pub async fn update_automation_connection_params(
        &self,
        id: &str,
        params: &[AutomationConnectionParamValue],
    ) -> Result<(), Error> {
        if params.is_empty() {
            return Ok(());
        }
        let url = self.url(&["api", "v1", "automation-connections", id]);
        let call = Call::new("automation-connections.update", Method::PUT, url)
            .json(&AutomationConnectionPut { params })?
            .redacting(params.iter().map(|p| &p.value));
        self.execute(&call).await?;
        Ok(())
    }

    /// Asks the tenant to validate the connection (`actions/check`): whether it connects
    /// with the credentials it holds now.
    pub async fn check_automation_connection(
        &self,
        id: &str,
    ) -> Result<AutomationConnectionCheck, Error> {
        let url = self.url(&[
            "api",
            "v1",
            "automation-connections",
            id,
            "actions",
            "check",
        ]);
        self.call_json(Call::new("automation-connections.check", Method::POST, url).retry_safe())
            .await
    }
}
