//! Wire types of the `automations` API (`automations.json`, Qlik Automate): an automation
//! with its execution token, the list item, and the copy request and answer. No I/O.
//!
//! # Guarantees
//! The execution token is a [`SecretString`]. The list items carry it too (the definition's
//! `AutomationListObject.executionToken`); [`AutomationSummary`] does not decode it.

use jiff::Timestamp;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::lenient;

/// An automation's `state`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutomationState {
    /// Enabled: it can run (the definition's default).
    #[default]
    Available,
    /// Not runnable for another reason (e.g. a missing connection).
    Unavailable,
    /// Disabled with `actions/disable`.
    Disabled,
    /// A state this client does not know.
    #[serde(other)]
    Unknown,
}

/// How an automation's runs start (`runMode`). Only `triggered` automations run through
/// their execution URL with the execution token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutomationRunMode {
    /// Started by hand.
    Manual,
    /// On a schedule.
    Scheduled,
    /// Through the execution URL with `X-Execution-Token`.
    Triggered,
    /// By a webhook connector.
    Webhook,
    /// Absent or a mode this client does not know.
    #[default]
    #[serde(other)]
    Unknown,
}

/// An automation (`AutomationDetailResponseObject`), without its workspace.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Automation {
    /// Its id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether it is enabled (see [`Self::is_enabled`]).
    #[serde(default, deserialize_with = "state")]
    pub state: AutomationState,
    /// How its runs start.
    #[serde(default, deserialize_with = "run_mode")]
    pub run_mode: AutomationRunMode,
    /// Its owner.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Its space.
    #[serde(default)]
    pub space_id: Option<String>,
    /// The token that authorizes running it through its execution URL (read-only: Qlik
    /// has no call that renews it; a copy gets a new one).
    #[serde(default)]
    pub execution_token: Option<SecretString>,
    /// The status of its last run, e.g. `finished`, `failed`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub last_run_status: Option<String>,
    /// When it was created.
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub created_at: Option<Timestamp>,
    /// When it was last updated.
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub updated_at: Option<Timestamp>,
}

impl Automation {
    /// Whether it is enabled (`state` is not `disabled`).
    pub fn is_enabled(&self) -> bool {
        self.state != AutomationState::Disabled
    }
}

/// An automation as a list shows it (`AutomationListObject`), without its token and
/// workspace.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomationSummary {
    /// Its id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its state.
    #[serde(default, deserialize_with = "state")]
    pub state: AutomationState,
    /// How its runs start.
    #[serde(default, deserialize_with = "run_mode")]
    pub run_mode: AutomationRunMode,
    /// Its owner: check it before deleting an automation found by a marker.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Its space.
    #[serde(default)]
    pub space_id: Option<String>,
    /// When it was created.
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub created_at: Option<Timestamp>,
}

fn state<'de, D: serde::Deserializer<'de>>(d: D) -> Result<AutomationState, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => AutomationState::default(),
        v @ serde_json::Value::String(_) => {
            serde_json::from_value(v).unwrap_or(AutomationState::Unknown)
        }
        _ => AutomationState::Unknown,
    })
}

fn run_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<AutomationRunMode, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        v @ serde_json::Value::String(_) => serde_json::from_value(v).unwrap_or_default(),
        _ => AutomationRunMode::Unknown,
    })
}

/// The body of `actions/copy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct CopyAutomation<'a> {
    /// "Name of the new automation." (required)
    pub(crate) name: &'a str,
}

/// The answer of `actions/copy` (201).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub(crate) struct CopiedAutomation {
    /// The new automation's id.
    pub(crate) id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    /// `AutomationDetailResponseObject` from the definition's `example` fields.
    fn example() -> serde_json::Value {
        json!({
            "id": "e0e720d0-4947-11ec-a1d2-9559fa35801d",
            "name": "My Automation",
            "state": "available",
            "ownerId": "sWYAHxZxhtcmBT7Ptc5xJ5I6N7HxwnEy",
            "runMode": "triggered",
            "spaceId": "5f0f78b239ff4f0001234567",
            "createdAt": "2021-12-23T12:28:21.000000Z",
            "lastRunAt": "2021-12-23T12:28:21.000000Z",
            "updatedAt": "2021-12-23T12:28:21.000000Z",
            "workspace": {},
            "snippetIds": ["e0e720d0-4947-11ec-a1d2-9559fa35801d"],
            "description": "d",
            "endpointIds": ["9d94bef0-b28c-11eb-8dba-01593c457362"],
            "connectorIds": ["0d87808f-27c0-11ea-921c-022e6b5ea1e2"],
            "lastRunStatus": "finished",
            "executionToken": "aZXuEogT9X3le0k0WXMBnzuYKq4xRlkDnurjs8NVhEAAW1BYx8C1PpIl3ielgRb1",
            "maxConcurrentRuns": 10
        })
    }

    const TOKEN: &str = "aZXuEogT9X3le0k0WXMBnzuYKq4xRlkDnurjs8NVhEAAW1BYx8C1PpIl3ielgRb1";

    #[test]
    fn the_definitions_example_automation_decodes_with_its_token_redacted() {
        let a: Automation = serde_json::from_value(example()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.state, AutomationState::Available);
        assert!(a.is_enabled());
        assert_eq!(a.run_mode, AutomationRunMode::Triggered);
        assert_eq!(
            a.execution_token.as_ref().map(|t| t.expose_secret()),
            Some(TOKEN)
        );
        let shown = format!("{a:?} {a:#?}");
        assert!(!shown.contains(TOKEN), "{shown}");
    }

    #[test]
    fn a_list_item_decodes_without_its_token() {
        let s: AutomationSummary =
            serde_json::from_value(example()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, "My Automation");
        assert!(!format!("{s:?}").contains(TOKEN));
    }

    #[test]
    fn unknown_or_missing_states_and_modes_do_not_fail_decoding() {
        let a: Automation = serde_json::from_value(json!({
            "id": "a", "state": "paused", "runMode": 3
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.state, AutomationState::Unknown);
        assert!(a.is_enabled());
        assert_eq!(a.run_mode, AutomationRunMode::Unknown);
        let a: Automation = serde_json::from_value(json!({"id": "a", "state": "disabled"}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!a.is_enabled());
        assert!(a.execution_token.is_none());
    }

    #[test]
    fn the_copy_body_and_answer_are_as_defined() {
        assert_eq!(
            serde_json::to_value(CopyAutomation {
                name: "n [qlikops]"
            })
            .unwrap_or_default(),
            json!({"name": "n [qlikops]"})
        );
        let copied: CopiedAutomation =
            serde_json::from_value(json!({"id": "00000000-0000-0000-0000-000000000000"}))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(copied.id, "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn the_wire_names_are_the_definitions() {
        let Some(def) = lenient::definition("automations.json") else {
            return;
        };
        let detail = lenient::schema_properties(&def, "AutomationDetailResponseObject");
        let list = lenient::schema_properties(&def, "AutomationListObject");
        for name in lenient::field_names(&example()) {
            assert!(
                detail.contains(&name),
                "AutomationDetailResponseObject has no {name}"
            );
            assert!(list.contains(&name), "AutomationListObject has no {name}");
        }
        let states = &def["components"]["schemas"]["AutomationDetailResponseObject"]["properties"]
            ["state"]["enum"];
        assert_eq!(states, &json!(["available", "unavailable", "disabled"]));
        let copy = &def["paths"]["/api/v1/automations/{id}/actions/copy"]["post"];
        assert_eq!(
            copy["requestBody"]["content"]["application/json"]["schema"]["required"],
            json!(["name"])
        );
        assert!(
            copy["responses"]["201"]["content"]["application/json"]["schema"]["properties"]["id"]
                .is_object()
        );
        for action in ["enable", "disable"] {
            let path = format!("/api/v1/automations/{{id}}/actions/{action}");
            assert!(
                def["paths"][&path]["post"]["responses"]["204"].is_object(),
                "{action}"
            );
        }
        assert!(def["paths"]["/api/v1/automations/{id}"]["delete"]["responses"]["204"].is_object());
        // The execution URL is not in the definition (see `tenant::automations`).
        assert!(def["paths"]["/api/v1/automations/{id}/actions/execute"].is_null());
    }
}
