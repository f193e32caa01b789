//! Data connection operations (`/qrs/dataconnection`): read a connection, find
//! connections by name, and push credentials into one. Does network I/O.
//!
//! # GET-modify-PUT, and the password
//! As for virtual proxies (see `virtual_proxies`), a credential is written by sending
//! the connection back whole, as read, with `username` and `password` replaced and
//! `modifiedDate` unchanged; a stale one gives [`Error::Conflict`]. The password is
//! declared to the request, which scrubs it (as written and JSON-escaped) from anything
//! the site answers that ends up in an error; the request body is never logged and is
//! zeroed once sent. A username not given is sent back as read; a password not given is
//! left out of the body, since the site answers it masked (`""`) and sending that back
//! would set it.

use reqwest::Method;
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::QrsClient;
use super::call::{QrsCall, eq_filter, same_name};
use super::virtual_proxies::entity;
use super::wire::QrsDataConnection;
use crate::tenant::Error;

impl QrsClient {
    /// The data connection with the id `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none.
    pub async fn data_connection(&self, id: &str) -> Result<QrsDataConnection, Error> {
        let op = "qrs.dataconnection.get";
        let call = QrsCall::new(op, Method::GET, self.url(&["dataconnection", id]));
        let fields: Map<String, Value> = self.call_json(call).await?;
        entity(op, fields)
    }

    /// The data connections named `name`, compared ignoring case as the site does (names
    /// are unique on a site, so there is at most one unless the site's rules differ).
    pub async fn data_connections_named(
        &self,
        name: &str,
    ) -> Result<Vec<QrsDataConnection>, Error> {
        let op = "qrs.dataconnection.list";
        let call = QrsCall::new(op, Method::GET, self.url(&["dataconnection", "full"]))
            .query("filter", eq_filter("name", name));
        let found: Vec<Map<String, Value>> = self.call_json(call).await?;
        let mut found = found
            .into_iter()
            .map(|fields| entity(op, fields))
            .collect::<Result<Vec<QrsDataConnection>, Error>>()?;
        found.retain(|c| same_name(c.name(), name));
        Ok(found)
    }

    /// Replaces the connection's `username` and/or `password` (`None` leaves one as read)
    /// by sending `connection` back whole with the `modifiedDate` it was read with, and
    /// returns the connection as the site stored it. Nothing is sent when neither is
    /// given.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the connection changed since it was read: read it again
    /// and push again. No error ever contains the password.
    pub async fn update_data_connection_credentials(
        &self,
        connection: &QrsDataConnection,
        username: Option<&str>,
        password: Option<&SecretString>,
    ) -> Result<QrsDataConnection, Error> {
        if username.is_none() && password.is_none() {
            return Ok(connection.clone());
        }
        let op = "qrs.dataconnection.put";
        let mut fields = connection.with_credentials(username, password.map(|p| p.expose_secret()));
        let body = serde_json::to_vec(&fields);
        if let (Some(_), Some(Value::String(sent))) = (password, fields.get_mut("password")) {
            sent.zeroize();
        }
        let body = body.map_err(|e| Error::InvalidResponse {
            operation: op,
            problem: format!("failed to encode the request body: {:?}", e.classify()),
        })?;
        let call = QrsCall::new(
            op,
            Method::PUT,
            self.url(&["dataconnection", connection.id()]),
        )
        .json_body(body)
        .redacting(password.cloned());
        let fields: Map<String, Value> = self.call_json(call).await?;
        entity(op, fields)
    }
}
