//! Hostile input on a real kube-apiserver: the corpus in `tests/hostile_input/` (YAML
//! files, and the over-long values of `generated.rs`) is refused at admission with a message naming the
//! field, or, where CEL cannot decide (the Public Suffix List), refused by the csp-entry
//! controller with a condition; what is admitted adds exactly its own origin to the
//! header and nothing else. The CRD's CEL and the Rust parsers are also compared character
//! by character, so neither side can drift.
//!
//! Objects are created with strict field validation, as `kubectl` sends them. Kept fast:
//! one namespace per test, requests in parallel, dry runs where nothing needs to persist.

mod support;

#[path = "hostile_input/corpus.rs"]
mod corpus;
#[path = "hostile_input/generated.rs"]
mod generated;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, PostParams};
use qlik_csp_operator::api::CspEntry;
use qlik_csp_operator::controller::{csp_entry, tenant};
use qlik_csp_operator::csp::header::{self, Grant};
use qlik_csp_operator::csp::{Directive, Origin, policy};
use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use qlik_csp_operator::tenant::{ClientConfig, Credential, CredentialSource, TenantClient};
use serde_json::{Value, json};

use corpus::{Case, Expect, Kind, case, corpus, field_of, merge, object};

const KEY: &str = "hostile-input-admin-key-0123456789";
const DEADLINE: Duration = Duration::from_secs(90);
const PARALLEL: usize = 16;

/// Creates `object` with strict field validation, as `kubectl` does by default (unknown
/// fields refused rather than dropped): `Ok` when admitted, `Err(status)` when refused.
async fn create(
    env: &support::TestEnv,
    kind: Kind,
    object: &Value,
) -> Result<(), Box<kube::core::Status>> {
    let resource = kind.resource();
    let url = format!(
        "/apis/{}/namespaces/{}/{}?fieldValidation=Strict",
        resource.api_version, env.namespace, resource.plural
    );
    let body = serde_json::to_vec(object).unwrap_or_else(|e| panic!("{e}"));
    let request = http::Request::post(url)
        .header("Content-Type", "application/json")
        .body(body)
        .unwrap_or_else(|e| panic!("{e}"));
    match env.client.request::<Value>(request).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(status),
        Err(other) => panic!("unexpected transport error: {other}"),
    }
}

fn api(env: &support::TestEnv, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(env.client.clone(), &env.namespace, &kind.resource())
}

#[test]
fn the_corpus_holds_at_least_200_hostile_specs_of_every_kind() {
    let cases = corpus();
    let hostile = cases
        .iter()
        .filter(|(_, c)| c.expect != Expect::Accepted)
        .count();
    assert!(hostile >= 200, "only {hostile} hostile cases");
    for kind in Kind::ALL {
        assert!(
            cases.iter().any(|(k, _)| *k == kind),
            "no case for {kind:?}"
        );
    }
    let mut seen = BTreeSet::new();
    for (kind, case) in &cases {
        assert!(
            seen.insert((kind.file(), case.why.clone())),
            "{kind:?}: {:?} twice",
            case.why
        );
        let only_entries = case.expect != Expect::Rejected;
        assert!(
            !only_entries || *kind == Kind::CspEntry,
            "{kind:?} {:?}",
            case.why
        );
    }
}

#[tokio::test]
async fn every_hostile_spec_is_rejected_at_admission_naming_its_field() {
    let env = support::TestEnv::new().await;
    let cases: Vec<(usize, Kind, Case)> = corpus()
        .into_iter()
        .enumerate()
        .filter(|(_, (_, c))| c.expect == Expect::Rejected)
        .map(|(i, (k, c))| (i, k, c))
        .collect();
    let env = &env;
    let failures: Vec<String> = stream::iter(cases)
        .map(|(i, kind, case)| async move {
            let object = object(kind, &format!("hostile-{i}"), &case);
            let field = field_of(&case);
            match create(env, kind, &object).await {
                Ok(()) => Some(format!("{kind:?} {:?} was admitted", case.why)),
                Err(status) if ![400, 422].contains(&status.code) => Some(format!(
                    "{kind:?} {:?}: expected 400 or 422, got {}: {}",
                    case.why, status.code, status.message
                )),
                Err(status) if !status.message.contains(&field) => Some(format!(
                    "{kind:?} {:?}: the message does not name {field}: {}",
                    case.why, status.message
                )),
                Err(_) => None,
            }
        })
        .buffer_unordered(PARALLEL)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn what_admission_lets_through_is_refused_or_adds_exactly_its_own_origin() {
    let env = support::TestEnv::new().await;
    let ns = env.namespace.clone();
    let emulator = Emulator::start(EmulatorConfig {
        admin_api_keys: vec![KEY.to_owned()],
        ..EmulatorConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("failed to start the emulator: {e}"));
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "qlik-admin" }, "stringData": { "api-key": KEY },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    Api::<Secret>::namespaced(env.client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("failed to create the Secret: {e}"));
    let tenant = json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "QlikTenant",
        "metadata": { "name": "acme" },
        "spec": {
            "url": emulator.base_url(), "caBundle": emulator.ca_pem(),
            "credentials": { "apiKey": { "secretRef": { "name": "qlik-admin", "key": "api-key" } } },
            "header": { "configMapName": "acme-csp" },
        },
    });
    create(&env, Kind::QlikTenant, &tenant)
        .await
        .unwrap_or_else(|s| panic!("the tenant was refused: {}", s.message));
    let shared = support::controller_shared(&env, Duration::from_millis(200));
    let controllers = [
        tokio::spawn(csp_entry::run(shared.clone())),
        tokio::spawn(tenant::run::run(shared)),
    ];

    let cases: Vec<(String, Case)> = corpus()
        .into_iter()
        .filter(|(kind, c)| *kind == Kind::CspEntry && c.expect != Expect::Rejected)
        .enumerate()
        .map(|(i, (_, c))| (format!("admitted-{i}"), c))
        .collect();
    let baseline = case("the valid spec itself", json!({}), Expect::Accepted, None);
    let cases: Vec<(String, Case)> = std::iter::once(("baseline".to_owned(), baseline))
        .chain(cases)
        .collect();
    for (name, case) in &cases {
        let object = object(Kind::CspEntry, name, case);
        if let Err(status) = create(&env, Kind::CspEntry, &object).await {
            panic!("{:?} must pass admission: {}", case.why, status.message);
        }
    }

    // Every valid entry Ready; every refused one Ready=False, InvalidSpec; for the current
    // generation. On timeout, the entries not there yet are named with their Ready.
    let typed: Api<CspEntry> = Api::namespaced(env.client.clone(), &ns);
    support::eventually_explained("every entry to settle", DEADLINE, || async {
        let listed = typed
            .list(&Default::default())
            .await
            .unwrap_or_else(|e| panic!("failed to list CspEntries: {e}"));
        let pending: Vec<String> = cases
            .iter()
            .filter_map(|(name, case)| {
                let (status, reason) = match case.expect {
                    Expect::Refused => ("False", Some("InvalidSpec")),
                    _ => ("True", None),
                };
                let entry = listed.items.iter().find(|e| e.name_any() == *name);
                let ready = entry.and_then(|e| {
                    let conditions = &e.status.as_ref()?.conditions;
                    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
                    Some((ready.clone(), e.metadata.generation))
                });
                let settled = ready.as_ref().is_some_and(|(c, generation)| {
                    c.status == status
                        && reason.is_none_or(|r| c.reason == r)
                        && c.observed_generation == *generation
                });
                let now = ready.map(|(c, _)| format!("{} {}: {}", c.status, c.reason, c.message));
                (!settled).then(|| format!("{name} ({:?}): {now:?}", case.why))
            })
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(pending.join("\n"))
        }
    })
    .await;

    // The tenant holds exactly the valid entries; the refused ones were never sent.
    let mut config = ClientConfig::new(emulator.base_url());
    config.ca_bundle = Some(emulator.ca_pem().to_owned());
    let source = CredentialSource::Described("the test".into());
    let admin = TenantClient::new(config, Credential::api_key(KEY), source)
        .unwrap_or_else(|e| panic!("{e}"));
    let valid: Vec<&Case> = cases
        .iter()
        .map(|(_, c)| c)
        .filter(|c| c.expect == Expect::Accepted)
        .collect();
    let origin_of = |c: &Case| {
        let mut spec = Kind::CspEntry.valid_spec();
        merge(&mut spec, &c.set);
        spec["origin"].as_str().unwrap_or_default().to_owned()
    };
    let expected_origins: BTreeSet<String> = valid.iter().map(|c| origin_of(c)).collect();
    let remote: BTreeSet<String> = admin
        .list_csp_origins()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|o| o.content.origin)
        .collect();
    assert_eq!(remote, expected_origins, "the tenant's entries");

    // The published header is exactly the tenant's base plus each valid origin under
    // img-src: no refused entry and no odd spelling changed anything else.
    let grants: Vec<Grant> = expected_origins
        .iter()
        .map(|o| Grant {
            origin: Origin::parse(o).unwrap_or_else(|e| panic!("{o}: {e}")),
            directives: BTreeSet::from([Directive::ImgSrc]),
            allow_web_socket: false,
        })
        .collect();
    let expected = header::compile(&header::tenant_base(), &grants)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_string();
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    support::eventually("the expected header in the ConfigMap", DEADLINE, || async {
        let cm = config_maps.get_opt("acme-csp").await.ok().flatten()?;
        let value = cm.data?.get("Content-Security-Policy").cloned()?;
        (value == expected).then_some(())
    })
    .await;
    let policy = policy::parse(&expected).unwrap_or_else(|e| panic!("{e}"));
    let img: BTreeSet<&str> = policy
        .iter()
        .find(|(name, _)| name == "img-src")
        .map(|(_, sources)| sources.iter().map(String::as_str).collect())
        .unwrap_or_default();
    for origin in &expected_origins {
        assert!(
            img.contains(origin.as_str()),
            "{origin} is not under img-src"
        );
    }
    for task in controllers {
        task.abort();
    }
}

/// The verdicts of CEL and of the Rust rules for one character in each string grammar.
#[tokio::test]
async fn cel_and_the_rust_grammars_judge_every_character_alike() {
    let env = support::TestEnv::new().await;
    let characters: Vec<char> = (0u8..=0x7f)
        .map(char::from)
        .chain([
            '\u{85}', '\u{a0}', '\u{e9}', '\u{200b}', '\u{2028}', '\u{2029}', '\u{feff}',
            '\u{ff0e}',
        ])
        .collect();
    let env = &env;
    let failures: Vec<String> = stream::iter(characters)
        .map(|c| async move {
            let mut failures = Vec::new();
            let origin = format!("a{c}b.example.com");
            let source = format!("a{c}b");
            let key = format!("X{c}Y");
            let checks = [
                (
                    Kind::CspEntry,
                    json!({ "origin": origin }),
                    Origin::parse(&origin).is_ok(),
                    "origin",
                ),
                (
                    Kind::QlikTenant,
                    json!({ "header": { "baseDirectives": { "img-src": [source] } } }),
                    policy::check_source("img-src", &source).is_ok(),
                    "baseDirectives source",
                ),
                (
                    Kind::QlikTenant,
                    json!({ "header": { "key": key } }),
                    policy::is_header_name(&key),
                    "header key",
                ),
            ];
            for (i, (kind, set, rust, what)) in checks.into_iter().enumerate() {
                let mut spec = kind.valid_spec();
                merge(&mut spec, &set);
                let resource = kind.resource();
                let object: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": resource.api_version, "kind": resource.kind,
                    "metadata": { "name": format!("char-{}-{i}", u32::from(c)) }, "spec": spec,
                }))
                .unwrap_or_else(|e| panic!("{e}"));
                let params = PostParams {
                    dry_run: true,
                    ..PostParams::default()
                };
                let admitted = match api(env, kind).create(&params, &object).await {
                    Ok(_) => true,
                    Err(kube::Error::Api(status)) if status.code == 422 => false,
                    Err(other) => panic!("{what} with {c:?}: {other}"),
                };
                if admitted != rust {
                    failures.push(format!(
                        "{what} with {c:?}: CEL admits {admitted}, Rust accepts {rust}"
                    ));
                }
            }
            failures
        })
        .buffer_unordered(PARALLEL)
        .flat_map(stream::iter)
        .collect()
        .await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn an_unknown_field_sent_without_strict_validation_is_pruned_not_stored() {
    let env = support::TestEnv::new().await;
    let mut object = json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "CspEntry",
        "metadata": { "name": "sneaky" },
        "spec": Kind::CspEntry.valid_spec(),
    });
    object["spec"]["scriptSrc"] = json!("'unsafe-inline'");
    object["spec"]["tenantRef"]["namespace"] = json!("kube-system");
    let object: DynamicObject = serde_json::from_value(object).unwrap_or_else(|e| panic!("{e}"));
    let created = api(&env, Kind::CspEntry)
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let spec = &created.data["spec"];
    assert!(spec.get("scriptSrc").is_none(), "{spec}");
    assert!(spec["tenantRef"].get("namespace").is_none(), "{spec}");
}
