//! The site's in-memory state: virtual proxies, data connections, armed administrator
//! edits, faults and the request log; and how `modifiedDate` moves. No I/O.
//!
//! `modifiedDate` has millisecond resolution (as QRS writes it) and every change makes it
//! strictly later than before, by at least 1 ms even when the clock did not move, so a
//! client holding the previous value always gets a 409.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::super::faults::Faults;
use super::super::random::Rng;
use super::super::state::Secret;
use super::super::wire::timestamp;
use super::QlikUser;
use super::record::Record;
use super::schema::{self, VIRTUAL_PROXY_CONFIG};

/// The user name the control API's administrator edits are recorded with by default.
pub const DEFAULT_EDITOR: &str = "INTERNAL\\qmc_admin";

/// A stored entity: its properties as QRS returns them, and its `modifiedDate`.
#[derive(Clone, Debug)]
pub struct Entity {
    pub fields: Map<String, Value>,
    pub modified: Timestamp,
}

impl Entity {
    /// A new entity with the common properties QRS gives every entity.
    fn new(id: &str, schema_path: &str, by: &str, at: Timestamp) -> Entity {
        let mut fields = Map::new();
        fields.insert("id".to_owned(), json!(id));
        fields.insert("createdDate".to_owned(), json!(timestamp(at)));
        fields.insert("schemaPath".to_owned(), json!(schema_path));
        fields.insert("privileges".to_owned(), Value::Null);
        fields.insert("customProperties".to_owned(), json!([]));
        fields.insert("tags".to_owned(), json!([]));
        let mut entity = Entity {
            fields,
            modified: at,
        };
        entity.touch(at, by);
        entity
    }

    /// Records a change at `at` by `by`.
    pub fn touch(&mut self, at: Timestamp, by: &str) {
        self.modified = at;
        self.fields
            .insert("modifiedDate".to_owned(), json!(timestamp(at)));
        self.fields
            .insert("modifiedByUserName".to_owned(), json!(by));
    }

    pub fn id(&self) -> &str {
        self.fields["id"].as_str().unwrap_or_default()
    }
}

/// A data connection: the entity without its password, which is kept apart.
#[derive(Debug)]
pub struct DataConnection {
    pub entity: Entity,
    pub password: Secret,
    /// Successful API `PUT`s that carried a `username` or a `password`.
    pub credential_writes: u64,
}

/// An administrator's change to a virtual proxy (the control API's `edit`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edit {
    pub additional_response_headers: Option<String>,
    pub allow_list: Option<Vec<String>>,
    /// `modifiedByUserName` after the edit; [`DEFAULT_EDITOR`] when `None`.
    pub user: Option<String>,
}

/// What the site starts with and keeps.
#[derive(Debug)]
pub struct QrsState {
    pub virtual_proxies: Vec<Entity>,
    pub data_connections: Vec<DataConnection>,
    /// Edits to apply right after the next API read of the virtual proxy (by id).
    pub armed: BTreeMap<String, Edit>,
    pub faults: Faults,
    pub record: Record,
    pub rng: Rng,
}

/// Milliseconds, as QRS stores dates.
fn to_millis(at: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(at.as_millisecond()).unwrap_or(at)
}

/// `now` at millisecond resolution, strictly later than `previous`.
pub fn later_than(previous: Timestamp, now: Timestamp) -> Timestamp {
    let now = to_millis(now);
    let bumped = previous
        .checked_add(SignedDuration::from_millis(1))
        .unwrap_or(previous);
    now.max(bumped)
}

/// The `DOMAIN\id` form QRS writes in `modifiedByUserName`.
pub fn user_name(user: &QlikUser) -> String {
    format!("{}\\{}", user.directory, user.id)
}

impl QrsState {
    pub fn new(rng: Rng) -> QrsState {
        QrsState {
            virtual_proxies: Vec::new(),
            data_connections: Vec::new(),
            armed: BTreeMap::new(),
            faults: Faults::default(),
            record: Record::default(),
            rng,
        }
    }

    /// Adds a virtual proxy with QRS's defaults and these values; its id.
    pub fn seed_virtual_proxy(
        &mut self,
        prefix: &str,
        description: &str,
        headers: &str,
        allow_list: &[String],
        by: &str,
    ) -> String {
        let id = self.rng.uuid();
        let now = to_millis(Timestamp::now());
        let mut entity = Entity::new(&id, "VirtualProxyConfig", by, now);
        let cookie = if prefix.is_empty() {
            "X-Qlik-Session".to_owned()
        } else {
            format!("X-Qlik-Session-{prefix}")
        };
        let defaults = json!({
            "prefix": prefix,
            "description": description,
            "authenticationModuleRedirectUri": "",
            "sessionModuleBaseUri": "",
            "loadBalancingModuleBaseUri": "",
            "useStickyLoadBalancing": false,
            "loadBalancingServerNodes": [],
            "authenticationMethod": 0,
            "headerAuthenticationMode": 0,
            "headerAuthenticationHeaderName": "",
            "headerAuthenticationStaticUserDirectory": "",
            "headerAuthenticationDynamicUserDirectory": "",
            "anonymousAccessMode": 0,
            "windowsAuthenticationEnabledDevicePattern": "Windows",
            "sessionCookieHeaderName": cookie,
            "sessionCookieDomain": "",
            "hasSecureAttributeHttps": true,
            "sameSiteAttributeHttps": 2,
            "hasSecureAttributeHttp": false,
            "sameSiteAttributeHttp": 0,
            "additionalResponseHeaders": headers,
            "sessionInactivityTimeout": 30,
            "extendedSecurityEnvironment": false,
            "websocketCrossOriginWhiteList": allow_list,
            "defaultVirtualProxy": prefix.is_empty(),
            "samlMetadataIdP": "",
            "samlHostUri": "",
            "samlEntityId": "",
            "samlAttributeUserId": "",
            "samlAttributeUserDirectory": "",
            "samlAttributeSigningAlgorithm": 0,
            "samlAttributeMap": [],
            "jwtAttributeUserId": "",
            "jwtAttributeUserDirectory": "",
            "jwtAudience": "",
            "jwtPublicKeyCertificate": "",
            "jwtAttributeMap": [],
            "magicLinkHostUri": "",
            "magicLinkFriendlyName": "",
            "samlSlo": false,
        });
        if let Value::Object(defaults) = defaults {
            entity.fields.extend(defaults);
        }
        self.virtual_proxies.push(entity);
        id
    }

    /// Adds a data connection owned by `owner`; its id.
    pub fn seed_data_connection(
        &mut self,
        seed: DataConnectionSeed,
        owner: &QlikUser,
        by: &str,
    ) -> String {
        let id = self.rng.uuid();
        let owner_id = self.rng.uuid();
        let now = to_millis(Timestamp::now());
        let mut entity = Entity::new(&id, "DataConnection", by, now);
        let fields = json!({
            "owner": {
                "id": owner_id,
                "userId": owner.id,
                "userDirectory": owner.directory,
                "name": owner.id,
                "privileges": null,
            },
            "name": seed.name,
            "connectionstring": seed.connection_string,
            "type": seed.kind,
            "engineObjectId": self.rng.uuid(),
            "username": seed.username,
            "logOn": 0,
            "architecture": 0,
        });
        if let Value::Object(fields) = fields {
            entity.fields.extend(fields);
        }
        self.data_connections.push(DataConnection {
            entity,
            password: Secret::new(seed.password),
            credential_writes: 0,
        });
        id
    }

    pub fn virtual_proxy_mut(&mut self, id: &str) -> Option<&mut Entity> {
        self.virtual_proxies
            .iter_mut()
            .find(|e| e.id().eq_ignore_ascii_case(id))
    }

    pub fn data_connection_mut(&mut self, id: &str) -> Option<&mut DataConnection> {
        self.data_connections
            .iter_mut()
            .find(|c| c.entity.id().eq_ignore_ascii_case(id))
    }

    /// Applies an administrator's edit to virtual proxy `id` now; `Ok(false)` when there is
    /// no such proxy, `Err` when the edit breaks the definition.
    pub fn edit_virtual_proxy(&mut self, id: &str, edit: &Edit) -> Result<bool, String> {
        let Some(entity) = self.virtual_proxy_mut(id) else {
            return Ok(false);
        };
        let mut body = Map::new();
        if let Some(headers) = &edit.additional_response_headers {
            body.insert("additionalResponseHeaders".to_owned(), json!(headers));
        }
        if let Some(list) = &edit.allow_list {
            body.insert("websocketCrossOriginWhiteList".to_owned(), json!(list));
        }
        entity.fields = schema::merge(VIRTUAL_PROXY_CONFIG, &entity.fields, &body)?;
        let at = later_than(entity.modified, Timestamp::now());
        let by = edit.user.as_deref().unwrap_or(DEFAULT_EDITOR).to_owned();
        entity.touch(at, &by);
        Ok(true)
    }

    /// Applies the armed edits of the virtual proxies in `read` (ids an API read returned).
    pub fn fire_armed(&mut self, read: &[String]) {
        for id in read {
            let key = id.to_ascii_lowercase();
            if let Some(edit) = self.armed.remove(&key) {
                // The edit was checked when it was armed.
                let _ = self.edit_virtual_proxy(&key, &edit);
            }
        }
    }

    /// Clears every entity, armed edit, fault and the log.
    pub fn reset(&mut self) {
        self.virtual_proxies.clear();
        self.data_connections.clear();
        self.armed.clear();
        self.faults.clear();
        self.record.clear();
    }
}

/// What the control API seeds a data connection with.
#[derive(Clone, Debug, Default)]
pub struct DataConnectionSeed {
    pub name: String,
    pub connection_string: String,
    pub kind: String,
    pub username: String,
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_dates_always_move_forward_by_at_least_a_millisecond() {
        let t: Timestamp = "2026-12-02T10:00:00.123Z".parse().unwrap();
        assert_eq!(timestamp(later_than(t, t)), "2026-12-02T10:00:00.124Z");
        let earlier: Timestamp = "2026-12-02T09:00:00Z".parse().unwrap();
        assert_eq!(
            timestamp(later_than(t, earlier)),
            "2026-12-02T10:00:00.124Z"
        );
        let later: Timestamp = "2026-12-02T11:00:00.5006Z".parse().unwrap();
        assert_eq!(timestamp(later_than(t, later)), "2026-12-02T11:00:00.500Z");
    }

    #[test]
    fn an_armed_edit_fires_once_on_the_read_of_its_proxy() {
        let mut state = QrsState::new(Rng::from_seed([1; 32]));
        let id = state.seed_virtual_proxy("embed", "", "X-A: 1", &[], "INTERNAL\\sa_api");
        let other = state.seed_virtual_proxy("other", "", "", &[], "INTERNAL\\sa_api");
        let before = state.virtual_proxies[0].modified;
        let edit = Edit {
            additional_response_headers: Some("X-B: 2".to_owned()),
            ..Edit::default()
        };
        state.armed.insert(id.clone(), edit);
        state.fire_armed(std::slice::from_ref(&other));
        assert_eq!(
            state.virtual_proxies[0].fields["additionalResponseHeaders"],
            "X-A: 1"
        );
        state.fire_armed(std::slice::from_ref(&id));
        let edited = &state.virtual_proxies[0];
        assert_eq!(edited.fields["additionalResponseHeaders"], "X-B: 2");
        assert_eq!(edited.fields["modifiedByUserName"], DEFAULT_EDITOR);
        assert!(edited.modified > before);
        assert!(state.armed.is_empty());
    }
}
