//! The rotations of `control_plane`: an API key rotated on request while a consumer uses
//! whatever its Secret holds, with kube-apiserver restarted in the middle of every
//! rotation. Odd rotations restart it as soon as the rotation is seen in flight (its intent
//! persisted, the new key being created or published) and cut the operator's connections
//! while the old key drains; even ones restart it while the old key drains, before it is
//! revoked. Does I/O against the apiserver.

use kube::api::Api;
use qlik_csp_operator::api::SecretRotation;
use qlik_csp_operator::api::secret_rotation::Phase;

use super::injector::Injector;
use crate::bench::api_key_rotation::{self as rotation, settled_at};
use crate::bench::cluster::Tracker;
use crate::chaos::rotating::{draining, phase_of};

/// Runs `count` rotations after the one at revision `first`; returns how many completed
/// (stops at the first that does not, within the rotation deadline).
pub async fn run(
    rotations: &Api<SecretRotation>,
    tracker: &Tracker<SecretRotation>,
    injector: &mut Injector<'_>,
    first: i64,
    count: i64,
) -> Result<i64, String> {
    for done in 1..=count {
        let revision = first + done;
        rotation::request(rotations, tracker).await?;
        let early = done % 2 == 1;
        let moment = if early { "in flight" } else { "draining" };
        let seen = tracker
            .wait_for(
                &format!("rotation {done} {moment}"),
                rotation::ROTATION_DEADLINE,
                |r| {
                    r.values().any(|r| {
                        let started = if early { in_flight(r) } else { draining(r) };
                        started || settled_at(r).is_some_and(|rev| rev >= revision)
                    })
                },
            )
            .await;
        if let Err(message) = seen {
            println!("control_plane: {message}");
            return Ok(done - 1);
        }
        let phase = tracker
            .read(|r| r.values().find_map(phase_of))?
            .unwrap_or_default();
        injector
            .restart_apiserver(&format!("rotation {done}, phase {phase}"))
            .await?;
        if early {
            let drained = tracker
                .wait_for(
                    &format!("rotation {done} draining"),
                    rotation::ROTATION_DEADLINE,
                    |r| {
                        r.values().any(|r| {
                            draining(r) || settled_at(r).is_some_and(|rev| rev >= revision)
                        })
                    },
                )
                .await;
            if drained.is_ok() {
                let phase = tracker
                    .read(|r| r.values().find_map(phase_of))?
                    .unwrap_or_default();
                injector
                    .cut(&format!("rotation {done}, phase {phase}"))
                    .await;
            }
        }
        if let Err(message) =
            rotation::wait_settled(tracker, revision, rotation::ROTATION_DEADLINE).await
        {
            println!("control_plane: {message}");
            return Ok(done - 1);
        }
    }
    Ok(count)
}

/// A rotation under way: its intent recorded, or past the first step.
fn in_flight(rotation: &SecretRotation) -> bool {
    rotation
        .status
        .as_ref()
        .is_some_and(|s| s.pending.is_some() || s.phase != Phase::Idle)
}
