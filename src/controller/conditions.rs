//! kstatus-style conditions: set one without churning the others. Pure.
//!
//! `lastTransitionTime` moves only when a condition's status flips, so a reconcile that
//! finds nothing new produces a status equal to the stored one and nothing is written
//! (compare with [`same_ignoring_time`]).
//!
//! Every message is cut to [`MAX_MESSAGE_CHARS`] here, the one place conditions are set:
//! a message can quote what a tenant or a user wrote (an error body, a rejected header),
//! and a status must stay small and readable whatever they wrote.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The longest condition message, in characters (an ellipsis included when cut).
pub const MAX_MESSAGE_CHARS: usize = 1024;

/// `message` cut to [`MAX_MESSAGE_CHARS`] characters, ending with `…` when it was cut.
pub fn truncate_message(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS - 1) {
        Some((end, _)) if message.chars().count() > MAX_MESSAGE_CHARS => {
            format!("{}…", &message[..end])
        }
        _ => message.to_owned(),
    }
}

/// The condition every kind reports; `kubectl wait --for=condition=Ready` waits on it.
pub const READY: &str = "Ready";
/// kstatus: `True` while the controller is still working towards the spec (a retry is
/// scheduled, a dependency is not ready yet). Absent when there is nothing left to do.
pub const RECONCILING: &str = "Reconciling";
/// kstatus: `True` when the controller cannot make progress without a user (a rejected
/// spec, a wrong credential, a host not allowed). Absent otherwise.
pub const STALLED: &str = "Stalled";

/// Where an object stands for kstatus (Flux, `kstatus`-based tools): at most one of
/// `Reconciling` and `Stalled` is present, and neither when the object is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Nothing pending: both conditions removed.
    Done,
    /// Work pending; the reason (CamelCase) and message say what it waits for.
    Reconciling(&'a str),
    /// Needs a user; the reason (CamelCase) says why.
    Stalled(&'a str),
}

/// Sets `Reconciling` or `Stalled` (status `True`, with `reason` and `message`) and removes
/// the other, or removes both for [`Progress::Done`].
pub fn set_progress(
    conditions: &mut Vec<Condition>,
    progress: Progress<'_>,
    message: &str,
    generation: Option<i64>,
    now: Time,
) {
    let (keep, reason) = match progress {
        Progress::Done => {
            conditions.retain(|c| c.type_ != RECONCILING && c.type_ != STALLED);
            return;
        }
        Progress::Reconciling(reason) => (RECONCILING, reason),
        Progress::Stalled(reason) => (STALLED, reason),
    };
    conditions.retain(|c| c.type_ != RECONCILING && c.type_ != STALLED || c.type_ == keep);
    let desired = Desired {
        type_: keep,
        status: true,
        reason,
        message: message.to_owned(),
    };
    set(conditions, desired, generation, now);
}

/// What a controller wants a condition to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired<'a> {
    pub type_: &'a str,
    pub status: bool,
    /// CamelCase, bounded (an error's `reason()`), never free text.
    pub reason: &'a str,
    pub message: String,
}

/// Sets `desired` in `conditions`, keeping `lastTransitionTime` unless the status flips.
/// The message is cut to [`MAX_MESSAGE_CHARS`].
pub fn set(
    conditions: &mut Vec<Condition>,
    mut desired: Desired<'_>,
    generation: Option<i64>,
    now: Time,
) {
    desired.message = truncate_message(&desired.message);
    let status = if desired.status { "True" } else { "False" }.to_owned();
    match conditions.iter_mut().find(|c| c.type_ == desired.type_) {
        Some(existing) => {
            if existing.status != status {
                existing.last_transition_time = now;
            }
            existing.status = status;
            existing.reason = desired.reason.to_owned();
            existing.message = desired.message;
            existing.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: desired.type_.to_owned(),
            status,
            reason: desired.reason.to_owned(),
            message: desired.message,
            observed_generation: generation,
            last_transition_time: now,
        }),
    }
}

/// Whether two condition lists say the same, ignoring `lastTransitionTime`.
pub fn same_ignoring_time(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter().any(|y| {
                x.type_ == y.type_
                    && x.status == y.status
                    && x.reason == y.reason
                    && x.message == y.message
                    && x.observed_generation == y.observed_generation
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn ready(status: bool, reason: &str) -> Desired<'_> {
        Desired {
            type_: READY,
            status,
            reason,
            message: format!("{reason} message"),
        }
    }

    fn types(conditions: &[Condition]) -> Vec<(&str, &str)> {
        conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.reason.as_str()))
            .collect()
    }

    #[test]
    fn progress_keeps_at_most_one_of_reconciling_and_stalled() {
        let mut conditions = Vec::new();
        set(&mut conditions, ready(false, "Unreachable"), Some(1), at(1));
        let reconciling = Progress::Reconciling("Unreachable");
        set_progress(&mut conditions, reconciling, "retrying", Some(1), at(1));
        assert_eq!(
            types(&conditions),
            [("Ready", "Unreachable"), ("Reconciling", "Unreachable")]
        );
        let stalled = Progress::Stalled("Unauthorized");
        set_progress(&mut conditions, stalled, "fix the key", Some(1), at(2));
        assert_eq!(
            types(&conditions),
            [("Ready", "Unreachable"), ("Stalled", "Unauthorized")]
        );
        assert_eq!(conditions[1].status, "True");
        set_progress(&mut conditions, Progress::Done, "", Some(1), at(3));
        assert_eq!(types(&conditions), [("Ready", "Unreachable")]);
    }

    #[test]
    fn long_messages_are_cut_to_the_limit_with_an_ellipsis_on_a_character_boundary() {
        let mut conditions = Vec::new();
        let mut desired = ready(false, "InvalidHeader");
        desired.message = "é".repeat(MAX_MESSAGE_CHARS * 3);
        set(&mut conditions, desired, Some(1), at(1));
        let message = &conditions[0].message;
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS);
        assert!(message.ends_with("é…"), "{message}");

        let exact = "a".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(truncate_message(&exact), exact);
        set_progress(
            &mut conditions,
            Progress::Stalled("X"),
            &"b".repeat(5000),
            None,
            at(2),
        );
        assert!(
            conditions
                .iter()
                .all(|c| c.message.chars().count() <= MAX_MESSAGE_CHARS)
        );
    }

    #[test]
    fn a_cut_message_compares_equal_to_the_same_message_cut_again() {
        let long = "x".repeat(MAX_MESSAGE_CHARS + 10);
        let mut stored = Vec::new();
        let mut desired = ready(false, "Rejected");
        desired.message = long.clone();
        set(&mut stored, desired.clone(), Some(1), at(1));
        let mut fresh = Vec::new();
        set(&mut fresh, desired, Some(1), at(2));
        assert!(same_ignoring_time(&stored, &fresh));
    }

    #[test]
    fn a_new_condition_is_added_with_the_current_time() {
        let mut conditions = Vec::new();
        set(&mut conditions, ready(true, "Created"), Some(3), at(100));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[0].observed_generation, Some(3));
        assert_eq!(conditions[0].last_transition_time, at(100));
    }

    #[test]
    fn the_transition_time_moves_only_when_the_status_flips() {
        let mut conditions = Vec::new();
        set(&mut conditions, ready(true, "Created"), Some(1), at(100));
        set(&mut conditions, ready(true, "Updated"), Some(2), at(200));
        assert_eq!(conditions[0].last_transition_time, at(100));
        assert_eq!(conditions[0].reason, "Updated");
        set(&mut conditions, ready(false, "Rejected"), Some(2), at(300));
        assert_eq!(conditions[0].last_transition_time, at(300));
    }

    #[test]
    fn an_unchanged_condition_compares_equal_whatever_the_time() {
        let mut stored = Vec::new();
        set(&mut stored, ready(true, "Created"), Some(1), at(100));
        let mut fresh = Vec::new();
        set(&mut fresh, ready(true, "Created"), Some(1), at(999));
        assert!(same_ignoring_time(&stored, &fresh));
        set(&mut fresh, ready(true, "Created"), Some(2), at(999));
        assert!(!same_ignoring_time(&stored, &fresh));
    }
}
