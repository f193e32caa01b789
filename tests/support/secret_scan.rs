//! The secret scan: searches everything an operator run exposed (log lines, events, every
//! version of the objects it writes, `/metrics`) for every secret value written during the
//! run. A leak is a credential in a place that many more people can read than the Secret.
//!
//! ```ignore
//! let secrets = SecretValues::start(&client, &ns).await;     // before the operator starts
//! let recorder = Recorder::start(&client, &ns, &kinds).await; // likewise
//! // ... run the operator, then stop it ...
//! let mut sources = recorder.sources();
//! sources.push(Source::new("operator stderr", stderr_text));
//! assert_no_leak(&secrets.secrets(), &sources);
//! ```
//!
//! [`SecretValues`] and [`Recorder`] watch the apiserver (I/O) from before the run, so a
//! value that was written and later overwritten, or a status that held a secret for one
//! version only, is still seen. [`scan`] is pure.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

/// Values shorter than this would be found by chance; a test that writes one must use a
/// longer value rather than have it skipped.
pub const MIN_SECRET_LEN: usize = 12;

/// A secret value and what it is (the label is what a failure shows, never the value).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Secret {
    pub label: String,
    pub value: String,
}

impl Secret {
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Secret {
        Secret {
            label: label.into(),
            value: value.into(),
        }
    }
}

/// Text the run exposed, and where it came from.
#[derive(Clone, Debug)]
pub struct Source {
    pub label: String,
    pub text: String,
}

impl Source {
    pub fn new(label: impl Into<String>, text: impl Into<String>) -> Source {
        Source {
            label: label.into(),
            text: text.into(),
        }
    }
}

/// One secret found in one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub secret: String,
    /// How it was written: `as is`, `base64` (a Secret's `data`), `url-encoded` (a form).
    pub form: &'static str,
    pub source: String,
    /// 1-based.
    pub line: usize,
    /// The line, with every secret replaced by its label, about 300 characters around the
    /// first one.
    pub excerpt: String,
}

/// The forms a value can leak in: as is, base64 (a Secret's `data` printed whole) and
/// URL-encoded (a token request's form body).
fn forms(value: &str) -> Vec<(&'static str, String)> {
    let base64 = serde_json::to_value(ByteString(value.as_bytes().to_vec()))
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let url: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let mut forms = vec![("as is", value.to_owned()), ("base64", base64)];
    if url != value {
        forms.push(("url-encoded", url));
    }
    forms
}

/// Every line of `sources` that contains a form of a value of `secrets`. Panics on a value
/// shorter than [`MIN_SECRET_LEN`].
pub fn scan(secrets: &[Secret], sources: &[Source]) -> Vec<Hit> {
    let needles: Vec<(&Secret, &'static str, String)> = secrets
        .iter()
        .inspect(|s| {
            assert!(
                s.value.len() >= MIN_SECRET_LEN,
                "{} is {} bytes, too short to scan for",
                s.label,
                s.value.len()
            );
        })
        .flat_map(|s| forms(&s.value).into_iter().map(move |(f, v)| (s, f, v)))
        .collect();
    let mut hits = Vec::new();
    for source in sources {
        for (index, line) in source.text.lines().enumerate() {
            for (secret, form, needle) in &needles {
                if line.contains(needle.as_str()) {
                    hits.push(Hit {
                        secret: secret.label.clone(),
                        form,
                        source: source.label.clone(),
                        line: index + 1,
                        excerpt: redact(line, &needles),
                    });
                }
            }
        }
    }
    hits
}

/// The line with every secret replaced by its label, cut to about 300 characters around
/// the first replacement, without terminal colour codes.
fn redact(line: &str, needles: &[(&Secret, &'static str, String)]) -> String {
    let mut line = strip_ansi(line);
    for (secret, _, needle) in needles {
        line = line.replace(needle.as_str(), &format!("<{}>", secret.label));
    }
    let chars: Vec<char> = line.chars().collect();
    let first = needles
        .iter()
        .filter_map(|(secret, _, _)| line.find(&format!("<{}>", secret.label)))
        .min()
        .map(|byte| line[..byte].chars().count())
        .unwrap_or(0);
    let start = first.saturating_sub(200);
    let end = (first + 100).min(chars.len());
    let cut: String = chars[start..end].iter().collect();
    match (start > 0, end < chars.len()) {
        (false, false) => cut,
        (true, false) => format!("...{cut}"),
        (false, true) => format!("{cut}..."),
        (true, true) => format!("...{cut}..."),
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Panics, listing every hit (labels and redacted lines only), unless there is none.
pub fn assert_no_leak(secrets: &[Secret], sources: &[Source]) {
    let hits = scan(secrets, sources);
    let listed: Vec<String> = hits
        .iter()
        .map(|h| {
            format!(
                "{} ({}) in {} line {}: {}",
                h.secret, h.form, h.source, h.line, h.excerpt
            )
        })
        .collect();
    assert!(
        hits.is_empty(),
        "{} secret value(s) leaked:\n{}",
        hits.len(),
        listed.join("\n")
    );
}

/// Watches `api` and hands every version of every object to `seen`; returns once the
/// initial list is in, so nothing written afterwards is missed.
async fn watch_all<K>(api: Api<K>, mut seen: impl FnMut(K) + Send + 'static) -> JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let (ready, listed) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready = Some(ready);
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o))
                | Ok(watcher::Event::InitApply(o)) => seen(o),
                Ok(watcher::Event::InitDone) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                // Restarts and errors: the backoff retries, and the re-list is seen.
                Ok(watcher::Event::Init) | Err(_) => {}
            }
        }
    });
    tokio::time::timeout(std::time::Duration::from_secs(30), listed)
        .await
        .expect("a watch lists its objects within 30 s")
        .expect("the watch task runs");
    task
}

/// Every value of every Secret of a namespace, in every version seen since [`start`].
pub struct SecretValues {
    values: Arc<Mutex<BTreeMap<String, Secret>>>,
    task: JoinHandle<()>,
}

impl SecretValues {
    pub async fn start(client: &Client, namespace: &str) -> SecretValues {
        let values = Arc::new(Mutex::new(BTreeMap::new()));
        let sink = values.clone();
        let api: Api<KubeSecret> = Api::namespaced(client.clone(), namespace);
        let task = watch_all(api, move |secret: KubeSecret| {
            let name = secret.metadata.name.unwrap_or_default();
            let mut sink = sink.lock().unwrap();
            for (key, bytes) in secret.data.unwrap_or_default() {
                let value = String::from_utf8_lossy(&bytes.0).into_owned();
                sink.entry(value.clone())
                    .or_insert_with(|| Secret::new(format!("Secret {name} key {key}"), value));
            }
        })
        .await;
        SecretValues { values, task }
    }

    /// The distinct values seen so far, each labelled with where it was first seen.
    pub fn secrets(&self) -> Vec<Secret> {
        self.values.lock().unwrap().values().cloned().collect()
    }
}

impl Drop for SecretValues {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every version of every object of some kinds in a namespace, as JSON, since [`start`].
pub struct Recorder {
    versions: Arc<Mutex<Vec<Source>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Recorder {
    pub async fn start(client: &Client, namespace: &str, kinds: &[ApiResource]) -> Recorder {
        let versions = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for kind in kinds {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, kind);
            let sink = versions.clone();
            let kind_name = kind.kind.clone();
            tasks.push(
                watch_all(api, move |object: DynamicObject| {
                    let label = format!(
                        "{kind_name} {} resourceVersion {}",
                        object.metadata.name.as_deref().unwrap_or_default(),
                        object
                            .metadata
                            .resource_version
                            .as_deref()
                            .unwrap_or_default()
                    );
                    let text = serde_json::to_string_pretty(&object).unwrap_or_default();
                    sink.lock().unwrap().push(Source::new(label, text));
                })
                .await,
            );
        }
        Recorder { versions, tasks }
    }

    /// Every version recorded so far.
    pub fn sources(&self) -> Vec<Source> {
        self.versions.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}
