//! Both controllers together against a real kube-apiserver and the tenant emulator: a burst
//! of CspEntries publishes the header a handful of times, not once per entry, and asks the
//! tenant for its header only once the entries have settled; a single edit afterwards
//! publishes exactly once, without waiting for a drift interval.
//!
//! The drift interval is a minute here, so any publish the tests see comes from an entry
//! event, not from the timer. Counts are taken at a settle point, not at the first write
//! that shows the change: the next drift check in the emulator's request log (a
//! `tenants.me`, a minute after the last reconcile). Whatever the change caused, extra
//! writes or header fetches included, happens within milliseconds of it, so before that
//! point.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use qlik_csp_operator::api::CspEntry;
use serde_json::json;
use support::tenant_rig::{Controller, TenantRig};

const CONFIG_MAP: &str = "csp";
const ENTRIES: usize = 30;
const DEADLINE: Duration = Duration::from_secs(90);
const DRIFT: Duration = Duration::from_secs(60);
const GENERATE_HEADER: &str = "csp-origins.generate-header";
const CHECK: &str = "tenants.me";

/// Both controllers (drift checks every [`DRIFT`]), and every value written to the
/// ConfigMap, in order.
struct Harness {
    rig: TenantRig,
    /// Header values in the order the ConfigMap was written.
    writes: Arc<Mutex<Vec<String>>>,
}

impl std::ops::Deref for Harness {
    type Target = TenantRig;

    fn deref(&self) -> &TenantRig {
        &self.rig
    }
}

impl Harness {
    async fn start() -> Harness {
        let mut rig = TenantRig::builder()
            .debounce(Duration::ZERO)
            .drift(DRIFT)
            .run(Controller::Tenant)
            .run(Controller::CspEntry)
            .start()
            .await;
        let writes = Arc::new(Mutex::new(Vec::new()));
        let config_maps = rig.api::<ConfigMap>();
        let seen = writes.clone();
        rig.spawn(async move {
            let config = watcher::Config::default().fields(&format!("metadata.name={CONFIG_MAP}"));
            let mut events = watcher(config_maps, config).boxed();
            while let Some(event) = events.next().await {
                if let Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) = event {
                    let value = cm
                        .data
                        .and_then(|d| d.get("Content-Security-Policy").cloned());
                    seen.lock().unwrap().push(value.unwrap_or_default());
                }
            }
        });
        Harness { rig, writes }
    }

    /// The operations the emulator served, in completion order.
    async fn log(&self) -> Vec<String> {
        self.control.operations().await
    }

    /// The settle point after log position `from`: the next drift check (`tenants.me`),
    /// once the drift's own header fetch has followed it. Returns the log and the position
    /// of that check; what happened before it is what the change caused.
    async fn drift_check(&self, from: usize) -> (Vec<String>, usize) {
        support::eventually("the next drift check", DRIFT + DEADLINE, || async move {
            let log = self.log().await;
            let check = from + log.get(from..)?.iter().position(|op| op == CHECK)?;
            let fetched = log[check..].iter().any(|op| op == GENERATE_HEADER);
            fetched.then_some((log, check))
        })
        .await
    }

    fn writes(&self) -> Vec<String> {
        self.writes.lock().unwrap().clone()
    }

    /// Waits until the ConfigMap's latest value satisfies `done`; returns how many writes
    /// it took.
    async fn wait_header(&self, what: &str, done: impl Fn(&str) -> bool) -> usize {
        let done = &done;
        support::eventually(what, DEADLINE, || {
            let writes = self.writes();
            async move {
                let last = writes.last()?;
                done(last).then_some(writes.len())
            }
        })
        .await
    }

    async fn create_tenant(&self) {
        self.create_admin_secret().await;
        let header = json!({ "header": { "configMapName": CONFIG_MAP } });
        self.create(&self.qlik_tenant("acme", header)).await;
    }
}

fn origin(index: usize) -> String {
    format!("https://burst{index}.example.com")
}

fn entry(index: usize) -> CspEntry {
    serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "CspEntry",
        "metadata": { "name": format!("e{index}") },
        "spec": { "tenantRef": { "name": "acme" }, "origin": origin(index), "directives": ["img-src"] },
    }))
    .unwrap()
}

fn holds(header: &str, origin: &str) -> bool {
    header.split([' ', ';']).any(|source| source == origin)
}

fn count(log: &[String], operation: &str) -> usize {
    log.iter().filter(|op| *op == operation).count()
}

#[tokio::test]
async fn a_burst_publishes_a_handful_of_times_and_a_single_edit_exactly_once() {
    let h = Harness::start().await;
    h.create_tenant().await;
    h.wait_header("the first header", |header| !header.is_empty())
        .await;
    let writes_before = h.writes().len();
    let mark = h.log().await.len();

    let entries = h.api::<CspEntry>();
    let creates = (0..ENTRIES).map(|i| {
        let entries = entries.clone();
        async move {
            entries
                .create(&PostParams::default(), &entry(i))
                .await
                .unwrap()
        }
    });
    futures::future::join_all(creates).await;
    h.wait_header("every origin in the header", |header| {
        (0..ENTRIES).all(|i| holds(header, &origin(i)))
    })
    .await;

    let (log, settled) = h.drift_check(mark).await;
    let burst = &log[mark..settled];
    let burst_writes = h.writes().len() - writes_before;
    assert!(
        burst_writes <= 3,
        "{ENTRIES} entries wrote the ConfigMap {burst_writes} times"
    );
    let burst_headers = count(burst, GENERATE_HEADER);
    assert!(
        burst_headers <= 3,
        "{ENTRIES} entries fetched the tenant's header {burst_headers} times"
    );
    assert_eq!(
        count(burst, CHECK),
        0,
        "entry events must not re-check the connection within the drift interval"
    );

    let writes_before = h.writes().len();
    let mark = h.log().await.len();
    entries
        .patch(
            "e0",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "origin": "https://edited.example.com" } })),
        )
        .await
        .unwrap();
    h.wait_header("the edit in the header", |header| {
        holds(header, "https://edited.example.com") && !holds(header, &origin(0))
    })
    .await;
    let (log, settled) = h.drift_check(mark).await;
    assert_eq!(
        h.writes().len() - writes_before,
        1,
        "one edit, one ConfigMap write"
    );
    assert_eq!(
        count(&log[mark..settled], GENERATE_HEADER),
        1,
        "one edit, one header fetched from the tenant"
    );
}
