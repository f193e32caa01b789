//! `site_faults`: a client-managed Qlik Sense site (`qlik-tenant-emulator qrs`) whose
//! virtual proxies get the header compiled from a burst of CspEntries, and
//! whose data connections get passwords pushed from Secrets, while the site misbehaves
//! ([`faults::qrs_mix`]: 5xx, latency, connections dropped before a request and after a
//! `PUT` took effect), the operator is SIGKILLed a few times (each pushed Secret changed
//! before every kill), and the site is down for a while.
//!
//! Invariants, as counts:
//! - `converged.entries_ready`: every entry `Ready=True` for its generation, within the
//!   bound;
//! - `converged.site_header_origins`: the fewest of the entries' origins any virtual
//!   proxy's `Content-Security-Policy` line holds;
//! - `admin_lines_kept`: virtual proxies whose other lines (an administrator's) are still
//!   byte for byte what was seeded;
//! - `pushes_current` / `pushed_values_leaked`: as in `secret_faults`
//!   ([`pushing`](super::pushing)).
//!
//! A QRS site has no tier limits: its request counts are reported, not bounded.

use std::fmt;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use serde_json::{Value, json};

use super::faults::{self, FaultRules};
use super::kills::{Restartable, Rng};
use super::pushing::{Pushing, Site};
use super::{Check, Outcome, control, converged};
use crate::bench::Bench;
use crate::bench::burst::round;
use crate::bench::cluster::{self, Tracker};
use crate::qrs_site::QrsSite;

const NAMESPACE: &str = "chaos-site-faults";
const LOG: &str = "operator-site-faults.log";
const TENANT: &str = "site";
const CERT_SECRET: &str = "qlik-site-cert";
/// What an administrator put in each virtual proxy: CRLF, odd spacing, a `;`.
const ADMIN_LINES: &str = "X-Frame-Options: SAMEORIGIN\r\nX-Custom:  spaced ;value";
const CSP: &str = "Content-Security-Policy: ";
const PREFIXES: [&str; 2] = ["", "embed"];
/// How often the virtual proxies are read back while waiting for the header (the control
/// API has no watch).
const READ_BACK_EVERY: Duration = Duration::from_millis(500);

/// The scenario's size: the full run or `--quick`.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Few: every origin goes into a field of at most 1,024 characters.
    pub entries: usize,
    pub pushes: usize,
    pub kills: usize,
    /// A kill comes this long after the previous one (or the burst's start), at random.
    pub kill_gap: (Duration, Duration),
    pub outage: Duration,
    /// From the first create until every entry is Ready and in every virtual proxy.
    pub converge_within: Duration,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        Plan {
            entries: if quick { 15 } else { 30 },
            pushes: if quick { 2 } else { 3 },
            kills: if quick { 2 } else { 5 },
            kill_gap: (Duration::from_secs(2), Duration::from_secs(10)),
            outage: Duration::from_secs(if quick { 20 } else { 60 }),
            // The outage, and the backoff ladder's next step after it.
            converge_within: Duration::from_secs(if quick { 240 } else { 400 }),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} entries into {} virtual proxies and {} pushes on a faulty client-managed site, {} SIGKILLs, a {} s outage, converged within {} s",
            self.entries,
            PREFIXES.len(),
            self.pushes,
            self.kills,
            self.outage.as_secs(),
            self.converge_within.as_secs()
        )
    }
}

pub async fn run(bench: &Bench, plan: &Plan, seed: u64) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    cluster::create_namespace(&bench.client, NAMESPACE).await?;
    // Its own directory: the site writes its certificates under fixed names.
    let site_work = bench.work.join("site-faults");
    std::fs::create_dir_all(&site_work)
        .map_err(|e| format!("failed to create {}: {e}", site_work.display()))?;
    let site = QrsSite::start(&bench.bins, &site_work, &[])?;
    let (url, http) = (site.url.clone(), site.http().clone());
    let mut proxies = Vec::with_capacity(PREFIXES.len());
    for prefix in PREFIXES {
        proxies.push(seed_virtual_proxy(&http, &url, prefix).await?);
    }
    create_site_tenant(bench, &site).await?;
    let mut restartable = Restartable::new(
        bench,
        NAMESPACE,
        // The digest key in the namespace, as in a cluster (POD_NAMESPACE).
        &["--operator-namespace", NAMESPACE],
        LOG,
    );
    let mut operator = restartable.start()?;
    let entries = Tracker::start(
        Api::<CspEntry>::namespaced(bench.client.clone(), NAMESPACE),
        watcher::Config::default(),
    )
    .await?;
    let mut pushing = Pushing::start(
        bench,
        NAMESPACE,
        Site::qrs(TENANT, &url, http.clone()),
        "site_faults",
        plan.pushes,
    )
    .await?;

    let mut rules = FaultRules::at(&url, http.clone());
    rules.install(faults::qrs_mix()).await?;
    let start = Instant::now();
    let count = plan.entries;
    let api = Api::<CspEntry>::namespaced(bench.client.clone(), NAMESPACE);
    for index in 0..count {
        api.create(&PostParams::default(), &entry(index)?)
            .await
            .map_err(|e| format!("failed to create entry {index}: {e}"))?;
    }
    let mut kills = Vec::with_capacity(plan.kills);
    for _ in 0..plan.kills {
        // The fault schedule, not a wait for a condition.
        tokio::time::sleep(rng.between(plan.kill_gap.0, plan.kill_gap.1)).await;
        kills.push(round(start.elapsed().as_secs_f64()));
        pushing.change().await?;
        operator = restartable.kill_and_restart(operator)?;
    }
    let outage_at = round(start.elapsed().as_secs_f64());
    println!(
        "site_faults: outage of {} s at {outage_at:.0} s",
        plan.outage.as_secs()
    );
    rules
        .install([faults::qrs_mix(), faults::outage_of(&[faults::QRS])].concat())
        .await?;
    pushing.change().await?;
    // The fault's length, not a wait for a condition.
    tokio::time::sleep(plan.outage).await;
    rules.install(faults::qrs_mix()).await?;
    println!("site_faults: the site is back (faults still on); waiting for convergence");

    let deadline = start + plan.converge_within;
    let left = || deadline.saturating_duration_since(Instant::now());
    let all_ready = entries
        .wait_for("every entry Ready", left(), |e| {
            converged::ready(e) == count
        })
        .await
        .is_ok();
    let mut headers = read_headers(&http, &url, &proxies).await?;
    let converged_now = |headers: &Headers| all_ready && headers.complete(count);
    while !converged_now(&headers) && !left().is_zero() {
        // The control API has no watch: read back until the deadline.
        tokio::time::sleep(READ_BACK_EVERY).await;
        headers = read_headers(&http, &url, &proxies).await?;
    }
    let converge_seconds = converged_now(&headers).then(|| round(start.elapsed().as_secs_f64()));
    let pushes_settled = pushing
        .settles_within(left().max(Duration::from_secs(60)))
        .await?;
    rules.clear().await?;
    operator.check_alive()?;
    let pushed = pushing.finish(bench, &bench.work.join(LOG)).await?;
    let requests = counters(&http, &url).await?;
    // The end state, not the moment of convergence: nothing may undo it later.
    let headers = read_headers(&http, &url, &proxies).await?;

    let ready = entries.read(converged::ready)?;
    let not_ready =
        entries.read(|e| converged::not_ready(&e.values().cloned().collect::<Vec<_>>()))?;
    let mut checks = vec![
        Check::exactly("converged.entries_ready", ready as u64, count as u64),
        Check::exactly(
            "converged.site_header_origins",
            headers.fewest_origins(count),
            count as u64,
        ),
        Check::exactly(
            "admin_lines_kept",
            headers.admin_lines_kept(),
            proxies.len() as u64,
        ),
    ];
    checks.extend(pushed.checks());
    let did = json!({
        "seed": seed,
        "entries": count,
        "virtual_proxies": proxies.len(),
        "kills_at_seconds": kills,
        "operator_starts": restartable.starts,
        "outage_seconds": plan.outage.as_secs(),
        "outage_started_at_seconds": outage_at,
        "converge_bound_seconds": plan.converge_within.as_secs(),
        "converge_seconds": converge_seconds,
        "not_ready": not_ready,
        "pushes_settled": pushes_settled,
        "push": pushed.to_json(),
        "site_requests": requests,
        "faults_injected": rules.fired(),
    });
    println!("site_faults: {did}");
    drop(site);
    Ok(Outcome { did, checks })
}

/// QlikTenant [`TENANT`]: the site, its certificate from [`CERT_SECRET`], publishing
/// into every virtual proxy of [`PREFIXES`].
async fn create_site_tenant(bench: &Bench, site: &QrsSite) -> Result<(), String> {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": CERT_SECRET },
        "stringData": {
            "client.pem": site.client_pem,
            "client_key.pem": site.client_key_pem,
            "root.pem": site.ca_pem,
        },
    }))
    .map_err(|e| e.to_string())?;
    Api::<Secret>::namespaced(bench.client.clone(), NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|e| format!("failed to create Secret {CERT_SECRET}: {e}"))?;
    let tenant: QlikTenant = serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "QlikTenant",
        "metadata": { "name": TENANT },
        "spec": {
            "clientManaged": {
                "url": site.url,
                "certificateSecretRef": { "name": CERT_SECRET },
                "user": { "userDirectory": "INTERNAL", "userId": "sa_api" },
                "virtualProxyPrefixes": PREFIXES,
            },
        },
    }))
    .map_err(|e| format!("site tenant: {e}"))?;
    Api::<QlikTenant>::namespaced(bench.client.clone(), NAMESPACE)
        .create(&PostParams::default(), &tenant)
        .await
        .map_err(|e| format!("failed to create the QlikTenant: {e}"))?;
    Ok(())
}

/// Seeds a virtual proxy with `prefix` and the administrator's [`ADMIN_LINES`]; its id.
async fn seed_virtual_proxy(
    http: &reqwest::Client,
    url: &str,
    prefix: &str,
) -> Result<String, String> {
    let seed = json!({
        "prefix": prefix,
        "description": format!("{prefix} (seeded by site_faults)"),
        "additionalResponseHeaders": ADMIN_LINES,
    });
    let url = format!("{url}/_emulator/qrs/virtualproxies");
    control::create(http, &url, &seed, &format!("virtual proxy {prefix:?}")).await
}

/// Entry `index` of the site: short origins in one directive, so that 30 fit the field.
fn entry(index: usize) -> Result<CspEntry, String> {
    serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "CspEntry",
        "metadata": { "name": format!("s{index}") },
        "spec": {
            "tenantRef": { "name": TENANT },
            "origin": origin(index),
            "directives": ["img-src"],
        },
    }))
    .map_err(|e| format!("site entry: {e}"))
}

fn origin(index: usize) -> String {
    format!("https://s{index}.io")
}

/// Every virtual proxy's `additionalResponseHeaders`, as the site stores them.
struct Headers(Vec<String>);

impl Headers {
    /// The fewest of origins `0..count` any proxy's CSP line holds.
    fn fewest_origins(&self, count: usize) -> u64 {
        self.0
            .iter()
            .map(|field| {
                let (csp, _) = split_csp(field);
                let tokens: Vec<&str> =
                    csp.split(|c: char| c.is_whitespace() || c == ';').collect();
                (0..count)
                    .filter(|i| tokens.contains(&origin(*i).as_str()))
                    .count() as u64
            })
            .min()
            .unwrap_or(0)
    }

    /// The proxies whose lines other than the operator's are what was seeded.
    fn admin_lines_kept(&self) -> u64 {
        self.0
            .iter()
            .filter(|field| split_csp(field).1 == ADMIN_LINES)
            .count() as u64
    }

    fn complete(&self, count: usize) -> bool {
        self.fewest_origins(count) == count as u64 && self.admin_lines_kept() == self.0.len() as u64
    }
}

/// The operator's line's value in `field`, and the field without that line.
fn split_csp(field: &str) -> (String, String) {
    let mut value = String::new();
    let mut rest = Vec::new();
    for line in field.split("\r\n") {
        match line.strip_prefix(CSP) {
            Some(v) => value = v.to_owned(),
            None => rest.push(line),
        }
    }
    (value, rest.join("\r\n"))
}

async fn read_headers(
    http: &reqwest::Client,
    url: &str,
    proxies: &[String],
) -> Result<Headers, String> {
    let mut fields = Vec::with_capacity(proxies.len());
    for id in proxies {
        let proxy = control::get(http, &format!("{url}/_emulator/qrs/virtualproxies/{id}")).await?;
        fields.push(
            proxy["additionalResponseHeaders"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    Ok(Headers(fields))
}

/// The site's request counts by operation and status.
async fn counters(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    control::get(http, &format!("{url}/_emulator/counters")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_counts_exact_origins_and_the_admin_lines_byte_for_byte() {
        let full = format!("{ADMIN_LINES}\r\n{CSP}img-src 'self' https://s0.io https://s1.io;");
        let partial = format!("{CSP}img-src https://s11.io;\r\n{ADMIN_LINES}");
        let edited = format!("X-Frame-Options: DENY\r\n{CSP}img-src https://s0.io https://s1.io");
        let headers = Headers(vec![full.clone(), partial]);
        // `https://s1.io` is not found inside `https://s11.io`.
        assert_eq!(headers.fewest_origins(2), 0);
        assert_eq!(headers.admin_lines_kept(), 2);
        assert!(Headers(vec![full.clone()]).complete(2));
        let headers = Headers(vec![full, edited]);
        assert_eq!(headers.fewest_origins(2), 2);
        assert_eq!(headers.admin_lines_kept(), 1);
        assert!(!headers.complete(2));
    }
}
