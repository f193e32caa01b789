//! Credentials created whose Secret write has not succeeded yet. Their values live here,
//! in memory only (never in status, logs or events), so that a failed write is retried
//! without creating another credential for the same revision. No I/O.
//!
//! A restart (or a new leader) loses them: the state machine then finds the credential
//! recorded in `status.pending.created` (or by its marker), revokes it when it is provably
//! the operator's, and creates another.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use secrecy::SecretString;

use super::observed::RemoteCredential;

/// The values held, by SecretRotation uid (one pending revision each).
#[derive(Default)]
pub struct Held {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    revision: i64,
    credential: RemoteCredential,
    value: SecretString,
}

impl Held {
    /// Keeps the value of `credential`, created for `revision` of the SecretRotation `uid`.
    pub fn keep(
        &self,
        uid: &str,
        revision: i64,
        credential: RemoteCredential,
        value: SecretString,
    ) {
        let entry = Entry {
            revision,
            credential,
            value,
        };
        self.lock().insert(uid.to_owned(), entry);
    }

    /// The credential held for `revision` of `uid`, without its value.
    pub fn facts(&self, uid: &str, revision: i64) -> Option<RemoteCredential> {
        self.lock()
            .get(uid)
            .filter(|e| e.revision == revision)
            .map(|e| e.credential.clone())
    }

    /// The credential held for `revision` of `uid`, with its value.
    pub fn value(&self, uid: &str, revision: i64) -> Option<(RemoteCredential, SecretString)> {
        self.lock()
            .get(uid)
            .filter(|e| e.revision == revision)
            .map(|e| (e.credential.clone(), e.value.clone()))
    }

    /// Drops what is held for `uid` (written, moved on, or deleted).
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
