//! One retry policy for every controller's `error_policy`: capped, jittered exponential
//! backoff per object, never shorter than a known tenant pause (`429 Retry-After`).
//! [`Policy`] is pure (jitter and `now` are passed in); [`Backoff`] keeps each object's
//! count of consecutive failures in memory. No I/O.
//!
//! # Why the tenant pause matters here
//! The tenant client records every `Retry-After` for the whole tenant and, while that
//! pause lasts, fails every request at once with [`Error::RateLimited`] carrying the
//! remaining wait, without a network call. No reconcile sleeps through the pause; instead
//! the error policy requeues the object for no earlier than the pause's end, so a paused
//! tenant costs neither requests nor busy reconcile loops.
//!
//! # Wiring a controller
//! ```text
//! // Context: one `Backoff` per controller.
//! backoff: Backoff::new(backoff::DEFAULT),
//! // reconcile, once it succeeded: the next failure starts from `initial` again.
//! context.backoff.succeeded(object.as_ref());
//! // error_policy, for transient errors (and any error carrying a tenant pause):
//! Action::requeue(context.backoff.failed(object.as_ref(), error.tenant_pause()))
//! ```
//!
//! # Guarantees
//! - The n-th consecutive failure of one object waits between half and all of
//!   `initial × 2^(n-1)`, capped at `max` ("equal jitter": a crowd of objects that failed
//!   together spreads out, and none retries at once).
//! - With a tenant pause, the wait is the pause plus up to a tenth of it (at most
//!   [`PAUSE_SPREAD_CAP`]) so that the objects of a paused tenant do not all return in
//!   the same instant; never less than the first failure's backoff. The pause is not
//!   capped by `max`: the tenant decides. Failing during a pause does not lengthen the
//!   object's streak: the tenant asked for the wait, the object did not fail.
//! - While the object's tenant answers requests (it answered one, anyone's, since the
//!   object last failed), the wait is capped at `answering_max` (1 minute) instead of
//!   `max`. A failure that the tenant's other requests do not share is bad luck (one `5xx`
//!   among many answers) or the object's own, not an outage: backing off for 5 minutes
//!   would only delay convergence, and a retry a minute is small next to the tenant's
//!   write budget, which the client's rate limiter keeps anyway. Before this cap, an
//!   entry that had climbed the ladder during a 20 s outage and then lost four retries to
//!   a flaky tenant's random `5xx` took 10 minutes to converge (`cargo xtask chaos`,
//!   tenant_faults). A tenant that answers nobody gets the full backoff.
//! - Only a failure at or after the object's scheduled retry lengthens its streak. One
//!   that comes sooner (a watch event reconciled it early: a burst rewrites its tenant's
//!   status many times a minute) keeps the scheduled retry: otherwise a few seconds of
//!   such events against a flaky tenant would push the object to the 5-minute cap.
//! - A controller can [`hold`](Backoff::hold) a failed object for the requeue it asked
//!   for, at most until its retry is due: [`Backoff::holding`] then says how long is
//!   left, and the reconcile returns without calling the tenant. Without it, the object's
//!   own status write (each failure records its message, and a flaky tenant's messages
//!   differ: a 500, a 503, a dropped connection) came back through the watch and
//!   reconciled it at once, so an object failing with varied errors retried as fast as
//!   the client's pacing allowed, its backoff bypassed. A change of the object's spec (a
//!   new generation) or its deletion ends the hold.
//! - Memory is bounded by the objects failing now: a success forgets the object, and an
//!   object that has not failed again within its last wait plus `max` (deleted, or
//!   fixed without a reconcile) is forgotten at the next failure of any object.
//!
//! [`Error::RateLimited`]: crate::tenant::Error::RateLimited

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use tokio::time::Instant;

use crate::tenant::retry::jitter;

/// The most a tenant pause's requeue is spread by, whatever the pause.
pub const PAUSE_SPREAD_CAP: Duration = Duration::from_secs(30);

/// How long an object waits after consecutive failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The full wait after the first failure; doubled for each further one.
    pub initial: Duration,
    /// The cap on the wait (not on a tenant pause).
    pub max: Duration,
    /// The cap on the wait while the tenant answers other requests.
    pub answering_max: Duration,
}

/// The operator's policy: 5 s after the first failure (the fixed retry it replaces),
/// doubling up to 5 minutes, which keeps a tenant that fails for an hour at about a dozen
/// attempts per object; 1 minute at most while the tenant answers.
pub const DEFAULT: Policy = Policy {
    initial: Duration::from_secs(5),
    max: Duration::from_secs(300),
    answering_max: Duration::from_secs(60),
};

/// What is known of an object's tenant when the object failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantState {
    /// The remaining tenant-wide pause (`429 Retry-After`), if one is in force.
    pub pause: Option<Duration>,
    /// When the tenant last answered a request
    /// ([`TenantClient::answered_at`](crate::tenant::TenantClient::answered_at)).
    pub answered_at: Option<Instant>,
}

impl Policy {
    /// The wait after a failure, given a `jitter` in `[0, 1)`. Pure.
    ///
    /// Without a tenant pause: the backoff for `failures` consecutive failures (1 for the
    /// first). With the remaining `pause` of the object's tenant: the pause plus its
    /// spread, and at least the first failure's backoff (a tenant answering
    /// `Retry-After: 0` does not make a tight loop).
    pub fn delay(&self, failures: u32, jitter: f64, pause: Option<Duration>) -> Duration {
        self.delay_capped(failures, jitter, pause, self.max)
    }

    /// [`Policy::delay`] while the tenant answers other requests: capped at
    /// `answering_max`. Pure.
    pub fn delay_answering(&self, failures: u32, jitter: f64) -> Duration {
        self.delay_capped(failures, jitter, None, self.answering_max.min(self.max))
    }

    fn delay_capped(
        &self,
        failures: u32,
        jitter: f64,
        pause: Option<Duration>,
        cap: Duration,
    ) -> Duration {
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        match pause {
            Some(pause) => {
                let spread = (pause / 10).min(PAUSE_SPREAD_CAP).mul_f64(jitter);
                pause
                    .saturating_add(spread)
                    .max(self.backoff(1, jitter, cap))
            }
            None => self.backoff(failures, jitter, cap),
        }
    }

    /// Equal jitter over the capped exponential wait.
    fn backoff(&self, failures: u32, jitter: f64, cap: Duration) -> Duration {
        let exp = 2u32.saturating_pow(failures.max(1) - 1);
        let full = self.initial.saturating_mul(exp).min(cap);
        full / 2 + (full / 2).mul_f64(jitter)
    }
}

/// One object's failure streak.
#[derive(Clone, Copy, Debug)]
struct Streak {
    failures: u32,
    /// When the object last failed.
    last_failure: Instant,
    /// The object's generation when it was held ([`Backoff::hold`]), and until when.
    held: Option<(i64, Instant)>,
    /// When the retry the last failure asked for is due.
    retry_at: Instant,
    /// When the streak is considered over if the object has not failed again.
    forget_at: Instant,
}

/// The consecutive failures of one controller's objects, and their requeues.
pub struct Backoff<K: Resource>
where
    K::DynamicType: Eq + Hash,
{
    policy: Policy,
    streaks: Mutex<HashMap<ObjectRef<K>, Streak>>,
}

impl<K> Backoff<K>
where
    K: Resource,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    /// No object has failed yet.
    pub fn new(policy: Policy) -> Backoff<K> {
        Backoff {
            policy,
            streaks: Mutex::default(),
        }
    }

    /// The policy in use.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Records one more failure of `object` and returns how long to wait before the next
    /// reconcile; `tenant_pause` is the remaining `Retry-After` pause of its tenant (from
    /// [`Error::retry_after`](crate::tenant::Error::retry_after)).
    pub fn failed(&self, object: &K, tenant_pause: Option<Duration>) -> Duration {
        let tenant = TenantState {
            pause: tenant_pause,
            answered_at: None,
        };
        self.failed_on(object, tenant)
    }

    /// [`Backoff::failed`], knowing also when the tenant last answered: the wait is capped
    /// at `answering_max` if it answered since the object's previous failure.
    pub fn failed_on(&self, object: &K, tenant: TenantState) -> Duration {
        self.failed_on_at(object, tenant, Instant::now(), jitter())
    }

    /// [`Backoff::failed`] at `now` with `jitter`.
    pub fn failed_at(
        &self,
        object: &K,
        tenant_pause: Option<Duration>,
        now: Instant,
        jitter: f64,
    ) -> Duration {
        let tenant = TenantState {
            pause: tenant_pause,
            answered_at: None,
        };
        self.failed_on_at(object, tenant, now, jitter)
    }

    /// [`Backoff::failed_on`] at `now` with `jitter`.
    pub fn failed_on_at(
        &self,
        object: &K,
        tenant: TenantState,
        now: Instant,
        jitter: f64,
    ) -> Duration {
        let tenant_pause = tenant.pause;
        let key = ObjectRef::from_obj(object);
        let mut streaks = self.lock();
        streaks.retain(|_, streak| streak.forget_at > now);
        let known = streaks.get(&key).copied();
        if let Some(streak) = known.filter(|s| now < s.retry_at && tenant_pause.is_none()) {
            return streak.retry_at - now;
        }
        // Answered since this object's previous failure (or ever, for a first failure):
        // other requests get through, so this is no outage.
        let answering = tenant
            .answered_at
            .is_some_and(|answered| known.is_none_or(|s| answered > s.last_failure));
        let known = known.map_or(0, |s| s.failures);
        // A tenant pause is not the object failing: while it lasts, every reconcile (and
        // watch events bring many) fails at once, and counting those would leave the
        // object at the cap once the pause is over.
        let failures = match tenant_pause {
            Some(_) => known,
            None => known.saturating_add(1),
        };
        let wait = match tenant_pause {
            None if answering => self.policy.delay_answering(failures, jitter),
            _ => self.policy.delay(failures, jitter, tenant_pause),
        };
        // A wait too long for the clock (a pathological pause) ends the streak early.
        let forget_at = now
            .checked_add(wait.saturating_add(self.policy.max))
            .unwrap_or(now + self.policy.max);
        let retry_at = now.checked_add(wait).unwrap_or(forget_at);
        streaks.insert(
            key,
            Streak {
                failures,
                last_failure: now,
                held: None,
                retry_at,
                forget_at,
            },
        );
        wait
    }

    /// Holds `object`, which just failed, for `wait`: the requeue its controller asked
    /// for, at most until its retry is due. See [`Backoff::holding`].
    pub fn hold(&self, object: &K, wait: Duration) {
        self.hold_at(object, wait, Instant::now());
    }

    /// [`Backoff::hold`] at `now`.
    pub fn hold_at(&self, object: &K, wait: Duration, now: Instant) {
        let key = ObjectRef::from_obj(object);
        if let Some(streak) = self.lock().get_mut(&key) {
            let until = now.checked_add(wait).unwrap_or(streak.retry_at);
            let generation = object.meta().generation.unwrap_or_default();
            streak.held = Some((generation, until.min(streak.retry_at)));
        }
    }

    /// How long `object` is still held: its retry is not due, and neither its spec nor
    /// its deletion changed since it was held. `None` when it may be reconciled.
    pub fn holding(&self, object: &K) -> Option<Duration> {
        self.holding_at(object, Instant::now())
    }

    /// [`Backoff::holding`] at `now`.
    pub fn holding_at(&self, object: &K, now: Instant) -> Option<Duration> {
        let meta = object.meta();
        if meta.deletion_timestamp.is_some() {
            return None;
        }
        let streaks = self.lock();
        let streak = streaks.get(&ObjectRef::from_obj(object))?;
        let generation = meta.generation.unwrap_or_default();
        let (held, until) = streak.held?;
        (held == generation && now < until).then(|| until - now)
    }

    /// `object` reconciled without error: its next failure starts a new streak.
    pub fn succeeded(&self, object: &K) {
        self.lock().remove(&ObjectRef::from_obj(object));
    }

    /// Forgets `object`'s streak (it was deleted).
    pub fn forget(&self, object: &ObjectRef<K>) {
        self.lock().remove(object);
    }

    /// Keeps only the streaks of objects for which `keep` holds (those still in the store).
    pub fn retain(&self, mut keep: impl FnMut(&ObjectRef<K>) -> bool) {
        self.lock().retain(|object, _| keep(object));
    }

    /// How many objects are failing now (for tests and metrics).
    pub fn failing(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<K>, Streak>> {
        // Every update is one insert, remove or retain: the map is sound after a panic.
        self.streaks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    const SECOND: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    fn object(name: &str) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.name = Some(name.to_owned());
        object.metadata.namespace = Some("web".to_owned());
        object
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn waits_double_per_failure_up_to_the_cap_within_half_to_full() {
        let policy = DEFAULT;
        let full = [5, 10, 20, 40, 80, 160, 300, 300, 300];
        for (i, full) in full.into_iter().enumerate() {
            let failures = i as u32 + 1;
            let full = Duration::from_secs(full);
            assert_eq!(policy.delay(failures, 0.0, None), full / 2, "{failures}");
            let high = policy.delay(failures, 0.999_999, None);
            assert!(
                high <= full && high > full.mul_f64(0.99),
                "{failures}: {high:?}"
            );
        }
    }

    #[test]
    fn extreme_inputs_neither_overflow_nor_escape_the_cap() {
        let policy = DEFAULT;
        for failures in [0, 1, 31, 32, 1_000, u32::MAX] {
            for jitter in [0.0, 0.5, 1.0, 7.0, -3.0, f64::NAN, f64::INFINITY] {
                let wait = policy.delay(failures, jitter, None);
                assert!(wait <= policy.max, "{failures} {jitter}: {wait:?}");
                assert!(wait >= policy.initial / 2, "{failures} {jitter}: {wait:?}");
            }
        }
        let huge = policy.delay(u32::MAX, 1.0, Some(Duration::MAX));
        assert_eq!(huge, Duration::MAX);
    }

    #[test]
    fn a_tenant_pause_is_never_cut_short_and_is_spread_by_at_most_a_tenth() {
        let policy = DEFAULT;
        // (pause, jitter, expected seconds): the pause wins over a shorter backoff, the
        // spread is jitter × min(pause / 10, 30 s), and a longer backoff wins over a
        // short pause.
        let cases = [
            (600, 0.0, 600.0),
            (600, 0.5, 615.0),
            (600, 0.999_999, 629.99997),
            (100, 0.5, 105.0),
            (20, 0.0, 20.0),
            (1, 0.0, 2.5),
            (1, 0.999_999, 4.999_997_5),
        ];
        for (pause, jitter, expected) in cases {
            let wait = policy.delay(1, jitter, Some(Duration::from_secs(pause)));
            assert!(
                (secs(wait) - expected).abs() < 1e-3,
                "pause {pause} s, jitter {jitter}: {wait:?}"
            );
        }
        for failures in 1..12 {
            let pause = Duration::from_secs(600);
            assert!(policy.delay(failures, 0.0, Some(pause)) >= pause);
        }
        let long = Duration::from_secs(3600);
        assert!(
            policy.delay(9, 0.0, Some(long)) >= long,
            "not capped by max"
        );
    }

    #[test]
    fn consecutive_failures_of_one_object_back_off_and_a_success_starts_over() {
        let backoff = Backoff::new(DEFAULT);
        let now = Instant::now();
        let a = object("a");
        // Each failure comes when the retry the previous one asked for is due.
        let mut at = now;
        let waits: Vec<_> = (0..4)
            .map(|_| {
                let wait = backoff.failed_at(&a, None, at, 0.0);
                at += wait;
                wait
            })
            .collect();
        assert_eq!(waits, [2.5, 5.0, 10.0, 20.0].map(Duration::from_secs_f64));
        let b = object("b");
        assert_eq!(
            backoff.failed_at(&b, None, now, 0.0),
            Duration::from_secs_f64(2.5),
            "each object has its own streak"
        );
        backoff.succeeded(&a);
        assert_eq!(
            backoff.failed_at(&a, None, now, 0.0),
            Duration::from_secs_f64(2.5)
        );
    }

    #[test]
    fn failures_during_a_pause_requeue_at_its_end_without_lengthening_the_streak() {
        let backoff = Backoff::new(DEFAULT);
        let now = Instant::now();
        let a = object("a");
        assert_eq!(
            backoff.failed_at(&a, None, now, 0.0),
            Duration::from_secs_f64(2.5)
        );
        // Watch events reconcile the object again and again while the tenant is paused.
        for _ in 0..20 {
            assert_eq!(
                backoff.failed_at(&a, Some(Duration::from_secs(595)), now, 0.0),
                Duration::from_secs(595)
            );
        }
        let after_the_pause = now + Duration::from_secs(595);
        assert_eq!(
            backoff.failed_at(&a, None, after_the_pause, 0.0),
            Duration::from_secs(5),
            "the streak's second failure, not its twenty-second"
        );
        let b = object("b");
        assert_eq!(
            backoff.failed_at(&b, Some(Duration::from_secs(30)), now, 0.0),
            Duration::from_secs(30),
            "a first failure during a pause"
        );
        assert_eq!(
            backoff.failed_at(&b, None, now + Duration::from_secs(30), 0.0),
            Duration::from_secs_f64(2.5)
        );
    }

    #[test]
    fn failures_before_the_scheduled_retry_keep_it_and_do_not_lengthen_the_streak() {
        let backoff = Backoff::new(DEFAULT);
        let now = Instant::now();
        let a = object("a");
        assert_eq!(backoff.failed_at(&a, None, now, 0.0), 2500 * MS);
        // Watch events (its tenant's status rewritten by a burst) reconcile it early, and
        // the flaky tenant fails those too: the retry stays where it was.
        for early in [100u32, 900, 2000] {
            let wait = backoff.failed_at(&a, None, now + early * MS, 0.0);
            assert_eq!(wait, (2500 - early) * MS);
        }
        let due = now + 2500 * MS;
        assert_eq!(
            backoff.failed_at(&a, None, due, 0.0),
            5 * SECOND,
            "the streak's second failure, not its fifth"
        );
    }

    /// The chaos matrix's tenant_faults scenario in small: an entry climbs the ladder
    /// during an outage, then keeps losing its retries to random `5xx` of a tenant that
    /// answers everyone else.
    #[test]
    fn an_object_failing_alone_while_its_tenant_answers_waits_at_most_a_minute() {
        let backoff = Backoff::new(DEFAULT);
        let t0 = Instant::now();
        let a = object("a");
        let answered_before = Some(t0 - SECOND);
        let mut at = t0;
        // Five failures during the outage: nobody is answered, the full ladder.
        for expected in [5, 10, 20, 40, 80] {
            let outage = TenantState {
                pause: None,
                answered_at: answered_before,
            };
            let wait = backoff.failed_on_at(&a, outage, at, 0.999_999);
            assert!(wait > Duration::from_secs(expected) - MS, "{wait:?}");
            at += wait;
        }
        // The tenant is back and answers others; this object loses four more retries.
        let mut waited_after_the_outage = Duration::ZERO;
        let mut last_answer = None;
        for _ in 0..4 {
            last_answer = Some(at - MS);
            let answering = TenantState {
                pause: None,
                answered_at: last_answer,
            };
            let wait = backoff.failed_on_at(&a, answering, at, 0.999_999);
            assert!(wait <= DEFAULT.answering_max, "{wait:?}");
            waited_after_the_outage += wait;
            at += wait;
        }
        assert!(
            waited_after_the_outage <= 4 * DEFAULT.answering_max,
            "{waited_after_the_outage:?}: the 5-minute cap would make it 20 minutes"
        );
        // It is still the streak's tenth failure: the tenant failing everyone again gets
        // the full cap back.
        let outage_again = TenantState {
            pause: None,
            answered_at: last_answer,
        };
        assert_eq!(
            backoff.failed_on_at(&a, outage_again, at, 0.0),
            DEFAULT.max / 2
        );
    }

    #[test]
    fn a_tenant_pause_outlasts_the_answering_cap() {
        let backoff = Backoff::new(DEFAULT);
        let now = Instant::now();
        let paused = TenantState {
            pause: Some(Duration::from_secs(600)),
            answered_at: Some(now),
        };
        assert_eq!(
            backoff.failed_on_at(&object("a"), paused, now, 0.0),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn a_held_object_waits_for_its_retry_unless_its_spec_changes_or_it_is_deleted() {
        let backoff = Backoff::new(DEFAULT);
        let now = Instant::now();
        let mut a = object("a");
        a.metadata.generation = Some(3);
        assert_eq!(backoff.holding_at(&a, now), None, "never failed");
        let wait = backoff.failed_at(&a, None, now, 0.0);
        assert_eq!(backoff.holding_at(&a, now), None, "failed, not held");
        backoff.hold_at(&a, Duration::MAX, now);
        assert_eq!(backoff.holding_at(&a, now + SECOND), Some(wait - SECOND));
        assert_eq!(backoff.holding_at(&a, now + wait), None, "its retry is due");
        // A controller that requeues sooner (a health check) holds it only that long.
        backoff.hold_at(&a, SECOND, now);
        assert_eq!(backoff.holding_at(&a, now + 500 * MS), Some(500 * MS));
        assert_eq!(backoff.holding_at(&a, now + SECOND), None);
        backoff.hold_at(&a, Duration::MAX, now);

        let mut edited = a.clone();
        edited.metadata.generation = Some(4);
        assert_eq!(backoff.holding_at(&edited, now + SECOND), None);
        let mut deleted = a.clone();
        deleted.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        assert_eq!(backoff.holding_at(&deleted, now + SECOND), None);

        // The next failure releases the hold until the controller holds it again.
        backoff.failed_at(&a, None, now + wait, 0.0);
        assert_eq!(backoff.holding_at(&a, now + wait + SECOND), None);
        backoff.succeeded(&a);
        backoff.hold_at(&a, Duration::MAX, now);
        assert_eq!(
            backoff.holding_at(&a, now),
            None,
            "nothing to hold after a success"
        );
    }

    #[test]
    fn objects_that_stopped_failing_are_forgotten() {
        let backoff = Backoff::new(DEFAULT);
        let t0 = Instant::now();
        let gone = object("deleted-while-failing");
        backoff.failed_at(&gone, None, t0, 0.0);
        assert_eq!(backoff.failing(), 1);
        // Its wait (2.5 s) plus `max` later, another object's failure sweeps it.
        let later = t0 + DEFAULT.max + 3 * SECOND;
        backoff.failed_at(&object("other"), None, later, 0.0);
        assert_eq!(backoff.failing(), 1);
        assert_eq!(
            backoff.failed_at(&gone, None, later, 0.0),
            Duration::from_secs_f64(2.5),
            "a new streak"
        );
    }
}
