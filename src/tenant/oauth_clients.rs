//! OAuth client secret operations (`/api/v1/oauth-clients/{id}`): read the client (its
//! secrets' hints: there is no list endpoint), create a secret, delete one by hint. Does
//! network I/O.

use reqwest::Method;

use super::Error;
use super::client::{Call, Deleted, TenantClient};
use super::wire::{CreatedClientSecret, OAuthClient};

impl TenantClient {
    /// An OAuth client, with the hints of its secrets.
    pub async fn get_oauth_client(&self, client_id: &str) -> Result<OAuthClient, Error> {
        self.get_json(
            "oauth-clients.get",
            self.url(&["api", "v1", "oauth-clients", client_id]),
        )
        .await
    }

    /// Creates a client secret. The secret is in the answer and nowhere else: store it
    /// before doing anything that can fail. A client holds at most 5 secrets
    /// ([`Error::LimitReached`]). On [`Error::OutcomeUnknown`], compare the hints of
    /// [`Self::get_oauth_client`] with the known ones: a new hint is the lost secret only
    /// when it is the one new hint and its `createdBy` is the caller
    /// ([`Self::current_user`]); someone else may have added a secret meanwhile.
    pub async fn create_oauth_client_secret(
        &self,
        client_id: &str,
    ) -> Result<CreatedClientSecret, Error> {
        let operation = "oauth-clients.create-secret";
        let url = self.url(&["api", "v1", "oauth-clients", client_id, "client-secrets"]);
        match self
            .call_json(Call::new(operation, Method::POST, url))
            .await
        {
            // Qlik's definition gives 409 exactly one meaning here: "the max number of
            // client secrets is 5".
            Err(Error::Conflict { detail, .. }) => Err(Error::LimitReached { operation, detail }),
            other => other,
        }
    }

    /// Deletes the client secret with `hint`; one already gone (or a client that is gone)
    /// counts as done.
    pub async fn delete_oauth_client_secret(
        &self,
        client_id: &str,
        hint: &str,
    ) -> Result<Deleted, Error> {
        let url = self.url(&[
            "api",
            "v1",
            "oauth-clients",
            client_id,
            "client-secrets",
            hint,
        ]);
        self.delete("oauth-clients.delete-secret", url).await
    }
}
