//! The benchmark's view of the cluster: tenants and entries it creates, and trackers that
//! watch what the operator writes.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::processes::{ADMIN_KEY, ADMIN_SECRET, ADMIN_SECRET_KEY, Emulator};

/// The ConfigMap every bench tenant publishes its header to.
pub const HEADER_CONFIG_MAP: &str = "qlik-csp-header";
pub const HEADER_KEY: &str = "Content-Security-Policy";
pub const TENANT: &str = "bench";
const DIRECTIVES: [&str; 4] = ["img-src", "script-src", "font-src", "connect-src"];

pub async fn create_namespace(client: &Client, name: &str) -> Result<(), String> {
    let namespace: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))
        .map_err(|e| e.to_string())?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .map_err(|e| format!("failed to create namespace {name}: {e}"))?;
    Ok(())
}

/// A Secret with the admin key and a QlikTenant `bench` publishing the tenant's own header.
pub async fn create_tenant(
    client: &Client,
    namespace: &str,
    emulator: &Emulator,
    sync_interval: &str,
) -> Result<(), String> {
    create_admin_secret(client, namespace).await?;
    let tenant: QlikTenant = serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "QlikTenant",
        "metadata": { "name": TENANT },
        "spec": {
            "url": emulator.url,
            "caBundle": emulator.ca_pem,
            "credentials": { "apiKey": { "secretRef": { "name": ADMIN_SECRET, "key": ADMIN_SECRET_KEY } } },
            "header": { "configMapName": HEADER_CONFIG_MAP, "source": "Tenant" },
            "syncInterval": sync_interval,
        },
    }))
    .map_err(|e| format!("bench tenant: {e}"))?;
    Api::<QlikTenant>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &tenant)
        .await
        .map_err(|e| format!("failed to create the QlikTenant: {e}"))?;
    Ok(())
}

/// The Secret a QlikTenant authenticates with, holding the emulators' admin key.
pub async fn create_admin_secret(client: &Client, namespace: &str) -> Result<(), String> {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": ADMIN_SECRET },
        "stringData": { ADMIN_SECRET_KEY: ADMIN_KEY },
    }))
    .map_err(|e| e.to_string())?;
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|e| format!("failed to create Secret {namespace}/{ADMIN_SECRET}: {e}"))?;
    Ok(())
}

/// The origin of entry `index`: short, so 250 of them fit Qlik's 6,144-character header.
pub fn origin(index: usize) -> String {
    format!("https://c{index}.bx.io")
}

pub fn entry(index: usize) -> Result<CspEntry, String> {
    serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "CspEntry",
        "metadata": { "name": format!("e{index}") },
        "spec": {
            "tenantRef": { "name": TENANT },
            "origin": origin(index),
            "directives": [DIRECTIVES[index % DIRECTIVES.len()]],
        },
    }))
    .map_err(|e| format!("bench entry: {e}"))
}

/// Creates `count` entries in `namespace`, `parallel` at a time.
pub async fn create_entries(
    client: &Client,
    namespace: &str,
    count: usize,
    parallel: usize,
) -> Result<(), String> {
    let namespaces = [namespace.to_owned()];
    create_entries_in(client, &namespaces, count, parallel).await
}

/// Creates `count` entries in each of `namespaces`, `parallel` at a time in all. A create
/// that fails in transport (a loaded apiserver on two cores) is retried; an error answer
/// is not.
pub async fn create_entries_in(
    client: &Client,
    namespaces: &[String],
    count: usize,
    parallel: usize,
) -> Result<(), String> {
    let work = namespaces
        .iter()
        .flat_map(|namespace| (0..count).map(move |index| (namespace.clone(), index)));
    futures::stream::iter(work)
        .map(|(namespace, index)| {
            let api = Api::<CspEntry>::namespaced(client.clone(), &namespace);
            async move {
                let object = entry(index)?;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match api.create(&PostParams::default(), &object).await {
                        Ok(_) => return Ok(()),
                        Err(kube::Error::Api(status)) if status.code == 409 => return Ok(()),
                        Err(e @ kube::Error::Api(_)) => {
                            return Err(format!("failed to create {namespace}/e{index}: {e}"));
                        }
                        Err(e) if attempt >= 5 => {
                            return Err(format!("failed to create {namespace}/e{index}: {e}"));
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(200 * attempt)).await,
                    }
                }
            }
        })
        .buffer_unordered(parallel)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

/// Whether `Ready=True` describes the object's current generation.
pub fn is_ready<K: Resource>(
    object: &K,
    conditions: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
    observed: Option<i64>,
) -> bool {
    observed.is_some()
        && observed == object.meta().generation
        && conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

pub fn entry_ready(entry: &CspEntry) -> bool {
    let status = entry.status.as_ref();
    is_ready(
        entry,
        status.map(|s| s.conditions.as_slice()),
        status.and_then(|s| s.observed_generation),
    )
}

pub fn tenant_ready(tenant: &QlikTenant) -> bool {
    let status = tenant.status.as_ref();
    is_ready(
        tenant,
        status.map(|s| s.conditions.as_slice()),
        status.and_then(|s| s.observed_generation),
    )
}

/// The objects of one kind as a watch sees them, and how many writes it has seen since
/// the initial list.
pub struct Tracker<K> {
    state: Arc<Mutex<TrackerState<K>>>,
    changed: tokio::sync::watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

struct TrackerState<K> {
    objects: HashMap<String, K>,
    writes: u64,
    synced: bool,
}

impl<K> Tracker<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default,
{
    /// Starts watching `api` and waits for the initial list.
    pub async fn start(api: Api<K>, config: watcher::Config) -> Result<Tracker<K>, String> {
        let state = Arc::new(Mutex::new(TrackerState {
            objects: HashMap::new(),
            writes: 0,
            synced: false,
        }));
        let (notify, changed) = tokio::sync::watch::channel(0u64);
        let shared = state.clone();
        let task = tokio::spawn(async move {
            // With backoff: a restarted apiserver (the chaos runs) must not spin the tracker.
            let mut events = watcher(api, config).default_backoff().boxed();
            let mut version = 0u64;
            while let Some(event) = events.next().await {
                let Ok(event) = event else { continue };
                if let Ok(mut state) = shared.lock() {
                    match event {
                        watcher::Event::Init => {}
                        watcher::Event::InitApply(object) => {
                            state.objects.insert(key(&object), object);
                        }
                        watcher::Event::InitDone => state.synced = true,
                        watcher::Event::Apply(object) => {
                            state.writes += 1;
                            state.objects.insert(key(&object), object);
                        }
                        watcher::Event::Delete(object) => {
                            state.writes += 1;
                            state.objects.remove(&key(&object));
                        }
                    }
                }
                version += 1;
                let _ = notify.send(version);
            }
        });
        let tracker = Tracker {
            state,
            changed,
            task,
        };
        tracker
            .wait_for("the initial list", Duration::from_secs(120), |_| true)
            .await?;
        Ok(tracker)
    }

    /// Writes seen since the initial list.
    pub fn writes(&self) -> u64 {
        self.state.lock().map(|s| s.writes).unwrap_or(0)
    }

    /// Applies `read` to the current objects.
    pub fn read<T>(&self, read: impl FnOnce(&HashMap<String, K>) -> T) -> Result<T, String> {
        self.state
            .lock()
            .map(|s| read(&s.objects))
            .map_err(|_| "a tracker's lock is poisoned".to_owned())
    }

    /// Waits until `done` holds for the objects (after the initial list), failing after
    /// `deadline`.
    pub async fn wait_for(
        &self,
        what: &str,
        deadline: Duration,
        mut done: impl FnMut(&HashMap<String, K>) -> bool,
    ) -> Result<Instant, String> {
        let until = Instant::now() + deadline;
        let mut changed = self.changed.clone();
        loop {
            let holds = self
                .state
                .lock()
                .map(|s| s.synced && done(&s.objects))
                .map_err(|_| "a tracker's lock is poisoned".to_owned())?;
            if holds {
                return Ok(Instant::now());
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("timed out after {deadline:?} waiting for {what}"));
            }
            // A missed notification only costs the rest of the second.
            let _ = tokio::time::timeout(left.min(Duration::from_secs(1)), changed.changed()).await;
        }
    }
}

impl<K> Drop for Tracker<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

/// The header value in a ConfigMap, if any.
pub fn header_of(config_map: &k8s_openapi::api::core::v1::ConfigMap) -> Option<&str> {
    config_map
        .data
        .as_ref()?
        .get(HEADER_KEY)
        .map(String::as_str)
}

/// Whether `header` allows every origin of entries `0..count`.
pub fn header_has_all(header: &str, count: usize) -> bool {
    header_origin_count(header, count) == count
}

/// How many of the origins of entries `0..count` `header` allows.
pub fn header_origin_count(header: &str, count: usize) -> usize {
    let sources: std::collections::HashSet<&str> = header
        .split(';')
        .flat_map(|directive| directive.split_whitespace().skip(1))
        .collect();
    (0..count)
        .filter(|index| sources.contains(origin(*index).as_str()))
        .count()
}

/// The namespace of a tracker key.
pub fn namespace_of(key: &str) -> &str {
    key.split_once('/').map_or("", |(namespace, _)| namespace)
}
