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
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use qlik_csp_operator::controller::{csp_entry, tenant};
use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

const KEY: &str = "pacing-admin-key-0123456789abcdef";
const CONFIG_MAP: &str = "csp";
const ENTRIES: usize = 30;
const DEADLINE: Duration = Duration::from_secs(90);
const DRIFT: Duration = Duration::from_secs(60);
const GENERATE_HEADER: &str = "csp-origins.generate-header";
const CHECK: &str = "tenants.me";

struct Harness {
    env: support::TestEnv,
    emulator: Emulator,
    control: reqwest::Client,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Header values in the order the ConfigMap was written.
    writes: Arc<Mutex<Vec<String>>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Harness {
    async fn start() -> Harness {
        let env = support::TestEnv::new().await;
        let emulator = Emulator::start(EmulatorConfig {
            admin_api_keys: vec![KEY.to_owned()],
            ..EmulatorConfig::default()
        })
        .await
        .unwrap_or_else(|e| panic!("failed to start the emulator: {e}"));
        let tls = emulator.client_tls_config().unwrap();
        let control = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap();
        let mut shared = Arc::into_inner(support::controller_shared(&env, Duration::ZERO))
            .unwrap_or_else(|| panic!("the shared state is not shared yet"));
        shared.settings.drift_interval_override = Some(DRIFT);
        let shared = Arc::new(shared);

        let writes = Arc::new(Mutex::new(Vec::new()));
        let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
        let seen = writes.clone();
        let watch = tokio::spawn(async move {
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
        let tasks = vec![
            watch,
            tokio::spawn(tenant::run::run(shared.clone())),
            tokio::spawn(csp_entry::run(shared)),
        ];
        Harness {
            env,
            emulator,
            control,
            tasks,
            writes,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        Api::namespaced(self.env.client.clone(), &self.env.namespace)
    }

    /// The operations the emulator served, in completion order.
    async fn log(&self) -> Vec<String> {
        let url = format!("{}/_emulator/requests", self.emulator.base_url());
        let log: Value = self
            .control
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log["requests"]
            .as_array()
            .unwrap_or_else(|| panic!("no request log: {log}"))
            .iter()
            .map(|r| r["operation"].as_str().unwrap_or_default().to_owned())
            .collect()
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
        let secret: Secret = serde_json::from_value(
            json!({ "metadata": { "name": "qlik" }, "stringData": { "key": KEY } }),
        )
        .unwrap();
        self.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let tenant: QlikTenant = serde_json::from_value(json!({
            "apiVersion": "qlikops.io/v1alpha1",
            "kind": "QlikTenant",
            "metadata": { "name": "acme" },
            "spec": {
                "url": self.emulator.base_url(),
                "caBundle": self.emulator.ca_pem(),
                "credentials": { "apiKey": { "secretRef": { "name": "qlik", "key": "key" } } },
                "header": { "configMapName": CONFIG_MAP },
            },
        }))
        .unwrap();
        self.api::<QlikTenant>()
            .create(&PostParams::default(), &tenant)
            .await
            .unwrap();
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
