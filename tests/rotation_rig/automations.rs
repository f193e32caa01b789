//! The automation side of the SecretRotation suites: an automation seeded on the emulator,
//! a SecretRotation of its execution token, and probes that read the truth from the
//! tenant (which automations exist, which carry a SecretRotation's marker, which token
//! each holds).

use std::collections::BTreeSet;
use std::time::Duration;

use qlik_csp_operator::api::SecretRotation;
use qlik_csp_operator::api::secret_rotation::{AutomationTokenRotation, RotatedCredential};
use qlik_csp_operator::controller::secret_rotation::marker;
use qlik_csp_operator::tenant::wire::AutomationSummary;
use serde_json::{Value, json};

use super::{Rig, api_key_rotation};

/// A SecretRotation of automation `automation`'s execution token into Secret
/// `secret`/`token` (the URL under `token.url`), every 24 h.
pub fn automation_rotation(
    name: &str,
    secret: &str,
    automation: &str,
    grace: Duration,
) -> SecretRotation {
    let mut rotation = api_key_rotation(name, secret, grace);
    rotation.spec.credential = RotatedCredential {
        automation_execution_token: Some(AutomationTokenRotation {
            automation_id: automation.to_owned(),
        }),
        ..RotatedCredential::default()
    };
    rotation.spec.rotate_every = Some(Duration::from_secs(24 * 3600).into());
    rotation
}

impl Rig {
    /// Seeds an automation `name` in `state` (`available` or `disabled`), owned by the
    /// admin user (the operator's identity); its id and execution token.
    pub async fn seed_automation(&self, name: &str, state: &str) -> (String, String) {
        self.control
            .add_automation(json!({
                "name": name,
                "state": state,
                "description": "seeded by the test",
                "schedules": [{ "startAt": "2026-01-01T00:00:00Z", "interval": 60, "timezone": "UTC" }],
            }))
            .await
    }

    /// Automation `id` as the tenant holds it (`{"id", "name", "state", "executionToken",
    /// "ownerId"}`), or `None` once it is gone.
    pub async fn automation(&self, id: &str) -> Option<Value> {
        let exists = self.admin().get_automation(id).await.is_ok();
        match exists {
            true => Some(self.control.automation(id).await),
            false => None,
        }
    }

    /// The automations whose name carries `rotation`'s marker, whoever made them.
    pub async fn automations_of(&self, rotation: &SecretRotation) -> Vec<AutomationSummary> {
        let uid = rotation.metadata.uid.clone().unwrap();
        self.admin()
            .find_automations_by_name_marker(&marker::automation_prefix(&uid))
            .await
            .unwrap()
    }

    /// Every automation on the tenant, by id.
    pub async fn all_automation_ids(&self) -> BTreeSet<String> {
        self.admin()
            .find_automations_by_name_marker("")
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect()
    }

    /// Whether `token` is the execution token of an automation on the tenant (the
    /// emulator does not run automations, so this is what "the token works" can mean).
    pub async fn automation_token_works(&self, token: &str) -> bool {
        for id in self.all_automation_ids().await {
            if self.control.automation(&id).await["executionToken"] == token {
                return true;
            }
        }
        false
    }
}
