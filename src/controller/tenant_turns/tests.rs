use futures::StreamExt;

use super::*;

fn tenant(name: &str) -> TenantKey {
    ("ns".to_owned(), name.to_owned())
}

fn entry(name: &str) -> Entry {
    ObjectRef::new(name).within("ns")
}

/// The entries woken so far.
fn woken(wakes: &mut UnboundedReceiver<Entry>) -> Vec<String> {
    let mut names = Vec::new();
    while let Ok(e) = wakes.try_recv() {
        names.push(e.name);
    }
    names
}

#[test]
fn a_tenant_has_at_most_its_turns_and_others_are_not_held_up() {
    let turns = TenantTurns::new(2);
    let mut wakes = turns.wakes();
    let first = turns.take(&tenant("a"), &entry("e1")).expect("a free turn");
    let second = turns.take(&tenant("a"), &entry("e2")).expect("a free turn");
    assert!(
        turns.take(&tenant("a"), &entry("e3")).is_none(),
        "a third turn"
    );
    assert_eq!(turns.waiting(&tenant("a")), 1);
    let other = turns
        .take(&tenant("b"), &entry("f1"))
        .expect("tenant b waited for tenant a");
    assert!(woken(&mut wakes).is_empty());

    drop(first);
    assert_eq!(
        woken(&mut wakes),
        ["e3"],
        "the turn given back woke the next in line"
    );
    let third = turns
        .take(&tenant("a"), &entry("e3"))
        .expect("the turn kept for e3");
    drop((second, third, other));
    assert_eq!(turns.busy_tenants(), 0, "idle tenants' lines are dropped");
}

#[test]
fn a_kept_turn_is_not_taken_by_a_newcomer_and_the_line_is_served_in_order() {
    let turns = TenantTurns::new(1);
    let mut wakes = turns.wakes();
    let held = turns.take(&tenant("a"), &entry("e0")).expect("a free turn");
    for name in ["e1", "e2", "e3"] {
        assert!(turns.take(&tenant("a"), &entry(name)).is_none());
    }
    // Asking again (another watch event) keeps an entry's place; it is in line once.
    assert!(turns.take(&tenant("a"), &entry("e1")).is_none());
    assert_eq!(turns.waiting(&tenant("a")), 3);

    drop(held);
    assert!(
        turns.take(&tenant("a"), &entry("newcomer")).is_none(),
        "a newcomer took the turn kept for e1"
    );
    let mut served = Vec::new();
    for _ in 0..4 {
        let next = woken(&mut wakes);
        assert_eq!(next.len(), 1, "one wake per turn given back: {next:?}");
        let turn = turns
            .take(&tenant("a"), &entry(&next[0]))
            .expect("the kept turn");
        served.push(next[0].clone());
        drop(turn);
    }
    assert_eq!(served, ["e1", "e2", "e3", "newcomer"]);
    assert_eq!(turns.busy_tenants(), 0);
}

#[test]
fn a_lost_wake_passes_the_turn_on_and_a_forgotten_one_expires() {
    let turns = TenantTurns::new(1);
    let mut wakes = turns.wakes();
    let held = turns.take(&tenant("a"), &entry("e0")).expect("a free turn");
    for name in ["gone", "late", "e3"] {
        assert!(turns.take(&tenant("a"), &entry(name)).is_none());
    }
    drop(held);
    assert_eq!(woken(&mut wakes), ["gone"]);
    // The controller found "gone" deleted: the next in line is woken at once.
    turns.pass_on(&entry("gone"));
    assert_eq!(woken(&mut wakes), ["late"]);

    // "late" never comes for its turn: kept until the expiry, then handed on.
    let now = Instant::now();
    turns.expire(now);
    assert!(woken(&mut wakes).is_empty(), "expired before its time");
    turns.expire(now + KEPT_TURN_EXPIRY);
    assert_eq!(woken(&mut wakes), ["e3"]);
    drop(
        turns
            .take(&tenant("a"), &entry("e3"))
            .expect("the kept turn"),
    );
    assert_eq!(turns.busy_tenants(), 0);
}

#[tokio::test]
async fn wakes_go_to_the_controller_that_asked_last() {
    let turns = TenantTurns::new(1);
    let mut before = turns.wakes();
    let mut wakes = turns.wakes();
    let held = turns.take(&tenant("a"), &entry("e0")).expect("a free turn");
    assert!(turns.take(&tenant("a"), &entry("e1")).is_none());
    drop(held);
    let next = wakes.next().await.expect("a wake");
    assert_eq!(next.name, "e1");
    assert!(
        before.next().await.is_none(),
        "a controller that started again shares its wakes with the one before"
    );
}
