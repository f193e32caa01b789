//! API key operations (`/api/v1/api-keys`): create (the only answer with the token), get,
//! list (all pages), delete, the tenant's key settings, and lookup by a description
//! marker. Does network I/O.

use reqwest::Method;

use super::Error;
use super::client::{Call, Deleted, TenantClient};
use super::wire::{ApiKey, ApiKeysConfig, CreatedApiKey, NewApiKey};

impl TenantClient {
    /// Creates an API key for the calling user. The token is in the answer and nowhere
    /// else, ever: store it before doing anything that can fail. On
    /// [`Error::OutcomeUnknown`], look for the key with
    /// [`Self::find_api_keys_by_description_marker`] and delete it (its token is lost), but
    /// only one whose `sub` and `createdByUser` are the caller ([`Self::current_user`]) and
    /// whose status is active: any user can write a marker into a description.
    pub async fn create_api_key(&self, key: &NewApiKey) -> Result<CreatedApiKey, Error> {
        let url = self.url(&["api", "v1", "api-keys"]);
        self.call_json(Call::new("api-keys.create", Method::POST, url).json(key)?)
            .await
    }

    /// One API key (without its token).
    pub async fn get_api_key(&self, id: &str) -> Result<ApiKey, Error> {
        self.get_json("api-keys.get", self.url(&["api", "v1", "api-keys", id]))
            .await
    }

    /// Every API key the credential can see, following the pages.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, Error> {
        let mut url = self.url(&["api", "v1", "api-keys"]);
        url.query_pairs_mut().append_pair("limit", "100");
        self.list_all("api-keys.list", url).await
    }

    /// The API keys whose description contains `marker` (the tenant cannot filter by
    /// description, so this lists them all). The marker says nothing about who made a key:
    /// check its `sub` and `createdByUser` before deleting it.
    pub async fn find_api_keys_by_description_marker(
        &self,
        marker: &str,
    ) -> Result<Vec<ApiKey>, Error> {
        let mut keys = self.list_api_keys().await?;
        keys.retain(|k| k.description.contains(marker));
        Ok(keys)
    }

    /// Deletes (revokes) an API key; a key already gone counts as done.
    pub async fn delete_api_key(&self, id: &str) -> Result<Deleted, Error> {
        self.delete("api-keys.delete", self.url(&["api", "v1", "api-keys", id]))
            .await
    }

    /// The tenant's API key settings (most keys per user, longest expiry).
    pub async fn api_keys_config(&self, tenant_id: &str) -> Result<ApiKeysConfig, Error> {
        let url = self.url(&["api", "v1", "api-keys", "configs", tenant_id]);
        self.get_json("api-keys.get-config", url).await
    }
}
