//! The CRDs on a real kube-apiserver: installed as users install them (from `crds/`),
//! structural, and rejecting bad input at admission with messages that name the field.

mod support;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Resource, ResourceExt};
use qlik_csp_operator::api::{self, CspEntry, QlikTenant, SecretPush, SecretRotation};
use qlik_csp_operator::csp::origin::{self, ADMISSION_CASES, OriginError};
use serde_json::{Value, json};
use support::TestEnv;

#[test]
fn checked_in_crds_match_the_rust_types() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["crds", "charts/qlik-csp-operator/crds"] {
        for (stem, crd) in api::crds() {
            let path = root.join(dir).join(format!("{stem}.yaml"));
            let checked_in = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
            let generated = api::crd_yaml(&crd).expect("CRDs render as YAML");
            assert!(
                checked_in == generated,
                "{} is out of date: run `cargo xtask crds` and commit the result",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn every_crd_is_structural_and_established() {
    let env = TestEnv::new().await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    for (_, generated) in api::crds() {
        let name = generated.name_any();
        let crd = crds.get(&name).await.expect("the CRD is installed");
        let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        let status_of = |kind: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == kind)
                .map(|c| c.status.clone())
        };
        assert_eq!(
            status_of("Established").as_deref(),
            Some("True"),
            "{name}: {conditions:?}"
        );
        assert_eq!(
            status_of("NamesAccepted").as_deref(),
            Some("True"),
            "{name}: {conditions:?}"
        );
        assert_ne!(
            status_of("NonStructuralSchema").as_deref(),
            Some("True"),
            "{name}: {conditions:?}"
        );
    }
}

fn tenant(name: &str, credentials: Value) -> Value {
    json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "QlikTenant",
        "metadata": { "name": name },
        "spec": { "url": "https://acme.eu.qlikcloud.com", "credentials": credentials },
    })
}

fn api_key_credentials() -> Value {
    json!({ "apiKey": { "secretRef": { "name": "qlik-admin", "key": "api-key" } } })
}

fn entry(name: &str, origin: &str, directives: Value) -> Value {
    json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "CspEntry",
        "metadata": { "name": name },
        "spec": { "tenantRef": { "name": "acme" }, "origin": origin, "directives": directives },
    })
}

fn rotation(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "SecretRotation",
        "metadata": { "name": name },
        "spec": spec,
    })
}

fn dynamic<K: Resource<DynamicType = ()>>(env: &TestEnv) -> Api<DynamicObject> {
    Api::namespaced_with(
        env.client.clone(),
        &env.namespace,
        &ApiResource::erase::<K>(&()),
    )
}

async fn create(
    api: &Api<DynamicObject>,
    object: Value,
) -> Result<DynamicObject, Box<kube::core::Status>> {
    let object: DynamicObject =
        serde_json::from_value(object).expect("test objects are well-formed JSON objects");
    match api.create(&PostParams::default(), &object).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(status)) => Err(status),
        Err(other) => panic!("unexpected transport error: {other}"),
    }
}

/// Asserts a 422 Invalid whose message names `field` and says `says`.
fn assert_invalid(result: Result<DynamicObject, Box<kube::core::Status>>, field: &str, says: &str) {
    match result {
        Ok(object) => panic!(
            "expected {field} to be rejected, but {} was created",
            object.name_any()
        ),
        Err(status) => {
            assert_eq!(status.code, 422, "expected 422 Invalid, got {status:?}");
            assert!(
                status.message.contains(field),
                "message does not name {field}: {}",
                status.message
            );
            assert!(
                status.message.contains(says),
                "message does not say {says:?}: {}",
                status.message
            );
        }
    }
}

#[tokio::test]
async fn a_valid_object_of_each_kind_is_created_and_read_back_with_defaults() {
    let env = TestEnv::new().await;
    create(
        &dynamic::<QlikTenant>(&env),
        tenant("acme", api_key_credentials()),
    )
    .await
    .expect("valid tenant");
    let tenant = Api::<QlikTenant>::namespaced(env.client.clone(), &env.namespace)
        .get("acme")
        .await
        .unwrap();
    assert_eq!(
        tenant.spec.url.as_deref(),
        Some("https://acme.eu.qlikcloud.com")
    );
    assert_eq!(
        std::time::Duration::from(tenant.spec.sync_interval),
        std::time::Duration::from_secs(600)
    );
    assert_eq!(tenant.spec.rate_limit.writes_per_minute, 90);

    create(
        &dynamic::<CspEntry>(&env),
        entry(
            "cdn",
            "https://cdn.example.com",
            json!(["script-src", "img-src"]),
        ),
    )
    .await
    .expect("valid entry");
    let entry = Api::<CspEntry>::namespaced(env.client.clone(), &env.namespace)
        .get("cdn")
        .await
        .unwrap();
    assert_eq!(entry.spec.origin, "https://cdn.example.com");
    assert_eq!(entry.spec.directives.len(), 2);
    assert_eq!(entry.spec.deletion_policy, api::DeletionPolicy::Delete);

    let spec = json!({
        "tenantRef": { "name": "acme" },
        "credential": { "apiKey": { "expiry": "720h" } },
        "secret": { "name": "reporting-api-key", "key": "api-key" },
    });
    create(
        &dynamic::<SecretRotation>(&env),
        rotation("reporting", spec),
    )
    .await
    .expect("valid rotation");
    let rotation = Api::<SecretRotation>::namespaced(env.client.clone(), &env.namespace)
        .get("reporting")
        .await
        .unwrap();
    assert_eq!(rotation.spec.secret.name, "reporting-api-key");
    assert_eq!(
        std::time::Duration::from(rotation.spec.grace_period),
        std::time::Duration::from_secs(600)
    );
}

#[tokio::test]
async fn origins_are_admitted_exactly_when_the_rust_parser_accepts_them() {
    let env = TestEnv::new().await;
    let entries = dynamic::<CspEntry>(&env);
    for (i, (origin, expected)) in ADMISSION_CASES.iter().enumerate() {
        let result = create(
            &entries,
            entry(&format!("case-{i}"), origin, json!(["img-src"])),
        )
        .await;
        assert_eq!(
            origin::Origin::parse(origin).map(|_| ()),
            *expected,
            "parser disagrees with the table on {origin:?}"
        );
        match expected {
            Ok(()) => assert!(
                result.is_ok(),
                "{origin:?} should be admitted: {:?}",
                result.err()
            ),
            // The public-suffix rule is the parser's alone (the controller reports it).
            Err(error) if !error.checked_at_admission() => assert!(
                result.is_ok(),
                "{origin:?} passes CEL and is refused by the controller: {:?}",
                result.err()
            ),
            Err(error) => assert_invalid(result, "spec.origin", &error.to_string()),
        }
    }
    let too_long = format!("https://{}.example.com", "a".repeat(250));
    assert_eq!(origin::Origin::parse(&too_long), Err(OriginError::TooLong));
    assert_invalid(
        create(&entries, entry("too-long", &too_long, json!(["img-src"]))).await,
        "spec.origin",
        "256",
    );
    assert_invalid(
        create(&entries, entry("empty", "", json!(["img-src"]))).await,
        "spec.origin",
        "at least 1",
    );
}

#[tokio::test]
async fn directives_must_be_known_and_unique() {
    let env = TestEnv::new().await;
    let entries = dynamic::<CspEntry>(&env);
    let duplicated = entry(
        "dup",
        "https://cdn.example.com",
        json!(["img-src", "img-src"]),
    );
    assert_invalid(
        create(&entries, duplicated).await,
        "spec.directives",
        "Duplicate value",
    );
    let unknown = entry(
        "unknown",
        "https://cdn.example.com",
        json!(["script-src", "default-src"]),
    );
    assert_invalid(
        create(&entries, unknown).await,
        "spec.directives[1]",
        "Unsupported value",
    );
    let none = entry("none", "https://cdn.example.com", json!([]));
    assert_invalid(
        create(&entries, none).await,
        "spec.directives",
        "at least 1",
    );
}

#[tokio::test]
async fn tenants_need_an_https_url_and_exactly_one_credential() {
    let env = TestEnv::new().await;
    let tenants = dynamic::<QlikTenant>(&env);
    let mut http = tenant("plain", api_key_credentials());
    http["spec"]["url"] = json!("http://acme.eu.qlikcloud.com");
    assert_invalid(create(&tenants, http).await, "spec.url", "https://");
    let mut with_path = tenant("path", api_key_credentials());
    with_path["spec"]["url"] = json!("https://acme.eu.qlikcloud.com/api/v1");
    assert_invalid(create(&tenants, with_path).await, "spec.url", "no path");

    let both = json!({
        "apiKey": { "secretRef": { "name": "qlik-admin", "key": "api-key" } },
        "oauthClient": { "clientId": "abc", "secretRef": { "name": "qlik-oauth", "key": "secret" } },
    });
    assert_invalid(
        create(&tenants, tenant("both", both)).await,
        "spec.credentials",
        "exactly one of apiKey or oauthClient",
    );
    assert_invalid(
        create(&tenants, tenant("neither", json!({}))).await,
        "spec.credentials",
        "exactly one of",
    );
    let mut bad_source = tenant("bad-source", api_key_credentials());
    bad_source["spec"]["header"] = json!({
        "configMapName": "csp", "source": "Local",
        "baseDirectives": { "default-src": ["'self'; script-src *"] },
    });
    assert_invalid(
        create(&tenants, bad_source).await,
        "spec.header.baseDirectives[default-src][0]",
        "single source expression",
    );
    let bad_secret =
        json!({ "apiKey": { "secretRef": { "name": "Not_A_Name", "key": "api-key" } } });
    assert_invalid(
        create(&tenants, tenant("bad-secret", bad_secret)).await,
        "spec.credentials.apiKey.secretRef.name",
        "valid Secret name",
    );
}

#[tokio::test]
async fn a_client_managed_site_replaces_the_cloud_fields_and_is_checked_at_admission() {
    let env = TestEnv::new().await;
    let tenants = dynamic::<QlikTenant>(&env);
    let site = || {
        json!({
            "url": "https://qlik.example.com:4242",
            "certificateSecretRef": { "name": "qlik-site-cert" },
            "user": { "userDirectory": "INTERNAL", "userId": "sa_api" },
            "virtualProxyPrefixes": ["", "sales"],
        })
    };
    let with_spec = |name: &str, spec: Value| {
        json!({
            "apiVersion": "qlikops.io/v1alpha1",
            "kind": "QlikTenant",
            "metadata": { "name": name },
            "spec": spec,
        })
    };
    let refused = [
        (
            json!({ "clientManaged": site(), "url": "https://acme.eu.qlikcloud.com", "credentials": api_key_credentials() }),
            "spec",
            "not both",
        ),
        (
            json!({}),
            "spec",
            "set url and credentials (Qlik Cloud) or clientManaged",
        ),
        (
            json!({ "url": "https://acme.eu.qlikcloud.com" }),
            "spec",
            "needs both url and credentials",
        ),
        (
            json!({ "clientManaged": site(), "caBundle": "PEM" }),
            "spec",
            "root.pem",
        ),
        (
            json!({ "clientManaged": { "url": "http://qlik.example.com:4242", "certificateSecretRef": { "name": "c" }, "user": { "userDirectory": "INTERNAL", "userId": "sa_api" } } }),
            "spec.clientManaged.url",
            "https://",
        ),
        (
            json!({ "clientManaged": { "url": "https://qlik.example.com:4242", "certificateSecretRef": { "name": "c" }, "user": { "userDirectory": "INTERNAL", "userId": "sa_api; UserId=admin" } } }),
            "spec.clientManaged.user.userId",
            "must not contain",
        ),
        (
            json!({ "clientManaged": { "url": "https://qlik.example.com:4242", "certificateSecretRef": { "name": "c" }, "user": { "userDirectory": "INTERNAL", "userId": "sa_api" }, "virtualProxyPrefixes": ["/sales"] } }),
            "spec.clientManaged.virtualProxyPrefixes",
            "without slashes",
        ),
        (
            json!({ "clientManaged": { "url": "https://qlik.example.com:4242", "certificateSecretRef": { "name": "c" }, "user": { "userDirectory": "INTERNAL", "userId": "sa_api" }, "virtualProxyPrefixes": ["sales", "sales"] } }),
            "spec.clientManaged.virtualProxyPrefixes[1]",
            "Duplicate value",
        ),
    ];
    for (index, (spec, field, says)) in refused.into_iter().enumerate() {
        let object = with_spec(&format!("refused-{index}"), spec);
        assert_invalid(create(&tenants, object).await, field, says);
    }

    // The header of a site is always compiled locally: no destination besides its virtual
    // proxies is needed, and baseDirectives or mode: Both need no `source: Local`.
    let admitted = [
        json!({ "clientManaged": site() }),
        json!({ "clientManaged": site(), "header": { "baseDirectives": { "default-src": ["'self'"] } } }),
        json!({ "clientManaged": site(), "header": {
            "mode": "Both",
            "baseDirectives": { "default-src": ["'self'"] },
            "candidateDirectives": { "default-src": ["'none'"] },
        } }),
    ];
    for (index, spec) in admitted.into_iter().enumerate() {
        let object = with_spec(&format!("admitted-{index}"), spec);
        if let Err(status) = create(&tenants, object).await {
            panic!("site #{index} was rejected: {}", status.message);
        }
    }
}

#[tokio::test]
async fn a_header_spec_is_checked_at_admission() {
    let env = TestEnv::new().await;
    let tenants = dynamic::<QlikTenant>(&env);
    let with_header = |name: &str, header: Value| {
        let mut object = tenant(name, api_key_credentials());
        object["spec"]["header"] = header;
        object
    };
    let refused = [
        (
            json!({ "source": "Local" }),
            "spec",
            "set configMapName (ingress-nginx), targets",
        ),
        (
            json!({ "configMapName": "csp", "source": "Local", "mode": "Both" }),
            "spec",
            "mode: Both needs source: Local and candidateDirectives",
        ),
        (
            json!({ "configMapName": "csp", "mode": "Both", "candidateDirectives": { "default-src": ["'self'"] } }),
            "spec",
            "mode: Both needs source: Local",
        ),
        (
            json!({ "configMapName": "csp", "reportOnly": true, "mode": "Enforce" }),
            "spec.header",
            "older spelling",
        ),
        (
            json!({ "configMapName": "csp", "source": "Local", "candidateDirectives": { "default-src": ["'self'"] } }),
            "spec.header",
            "candidateDirectives only apply with mode: Both",
        ),
        (
            json!({ "key": "X-CSP", "targets": [{ "kind": "Middleware", "name": "csp" }] }),
            "spec.header",
            "leave key at Content-Security-Policy",
        ),
        (
            json!({ "targets": [{ "kind": "Middleware", "name": "csp", "rules": ["app"] }] }),
            "spec.header.targets[0]",
            "rules only apply to HTTPRoute targets",
        ),
        (
            json!({ "targets": [{ "kind": "HTTPRoute", "name": "web" }, { "kind": "HTTPRoute", "name": "web" }] }),
            "spec.header.targets[1]",
            "Duplicate value",
        ),
        (
            json!({ "targets": [{ "kind": "Service", "name": "web" }] }),
            "spec.header.targets[0].kind",
            "Unsupported value",
        ),
        (
            json!({ "configMapName": "csp", "source": "Local", "baseDirectives": { "report-uri": ["javascript:alert(1)"] } }),
            "spec.header.baseDirectives",
            "report-uri takes one or more URLs",
        ),
        (
            json!({ "configMapName": "csp", "source": "Local", "baseDirectives": { "report-to": ["a", "b"] } }),
            "spec.header.baseDirectives",
            "report-to takes exactly one reporting endpoint name",
        ),
    ];
    for (index, (header, field, says)) in refused.into_iter().enumerate() {
        let object = with_header(&format!("refused-{index}"), header);
        assert_invalid(create(&tenants, object).await, field, says);
    }

    let admitted = [
        json!({ "targets": [{ "kind": "HTTPRoute", "name": "web", "rules": ["app"] }, { "kind": "Middleware", "name": "csp" }] }),
        json!({
            "configMapName": "csp", "source": "Local", "mode": "Both",
            "baseDirectives": { "default-src": ["'self'", "https:"], "report-uri": ["https://csp.example.com/report", "/local"] },
            "candidateDirectives": { "default-src": ["'self'"], "report-to": ["csp-endpoint"] },
        }),
        json!({ "configMapName": "csp", "reportOnly": true }),
    ];
    for (index, header) in admitted.into_iter().enumerate() {
        let object = with_header(&format!("admitted-{index}"), header);
        if let Err(status) = create(&tenants, object).await {
            panic!("header #{index} was rejected: {}", status.message);
        }
    }
}

#[tokio::test]
async fn rotations_need_exactly_one_credential_and_a_schedule_for_secrets_that_never_expire() {
    let env = TestEnv::new().await;
    let rotations = dynamic::<SecretRotation>(&env);
    let both = json!({
        "tenantRef": { "name": "acme" },
        "credential": { "apiKey": {}, "oauthClientSecret": { "clientId": "abc" } },
        "secret": { "name": "s", "key": "k" },
    });
    assert_invalid(
        create(&rotations, rotation("both", both)).await,
        "spec.credential",
        "exactly one of apiKey, oauthClientSecret or automationExecutionToken",
    );
    let none = json!({
        "tenantRef": { "name": "acme" },
        "credential": {},
        "secret": { "name": "s", "key": "k" },
    });
    assert_invalid(
        create(&rotations, rotation("none", none)).await,
        "spec.credential",
        "exactly one of",
    );
    let token_and_key = json!({
        "tenantRef": { "name": "acme" },
        "credential": { "apiKey": {}, "automationExecutionToken": { "automationId": "a1" } },
        "secret": { "name": "s", "key": "k" },
        "rotateEvery": "24h",
    });
    assert_invalid(
        create(&rotations, rotation("token-and-key", token_and_key)).await,
        "spec.credential",
        "exactly one of",
    );
    let unscheduled_token = json!({
        "tenantRef": { "name": "acme" },
        "credential": { "automationExecutionToken": { "automationId": "a1" } },
        "secret": { "name": "s", "key": "k" },
    });
    assert_invalid(
        create(&rotations, rotation("token", unscheduled_token)).await,
        "spec",
        "rotateEvery is required",
    );
    let bad_id = json!({
        "tenantRef": { "name": "acme" },
        "credential": { "automationExecutionToken": { "automationId": "a/../b" } },
        "secret": { "name": "s", "key": "k" },
        "rotateEvery": "24h",
    });
    assert_invalid(
        create(&rotations, rotation("bad-id", bad_id)).await,
        "spec.credential.automationExecutionToken.automationId",
        "letters, digits, '-' and '_'",
    );
    let renewing_token = json!({
        "tenantRef": { "name": "acme" },
        "credential": { "automationExecutionToken": { "automationId": "a1" } },
        "secret": { "name": "s", "key": "k" },
        "rotateEvery": "24h",
        "renewBefore": "1h",
    });
    assert_invalid(
        create(&rotations, rotation("renewing", renewing_token)).await,
        "spec",
        "renewBefore applies only to apiKey",
    );
    let token = json!({
        "tenantRef": { "name": "acme" },
        "credential": { "automationExecutionToken": { "automationId": "e0e720d0-4947-11ec" } },
        "secret": { "name": "s", "key": "k" },
        "rotateEvery": "24h",
    });
    if let Err(status) = create(&rotations, rotation("token-ok", token)).await {
        panic!(
            "an automation token rotation was rejected: {}",
            status.message
        );
    }
    let unscheduled = json!({
        "tenantRef": { "name": "acme" },
        "credential": { "oauthClientSecret": { "clientId": "abc" } },
        "secret": { "name": "s", "key": "k" },
    });
    assert_invalid(
        create(&rotations, rotation("oauth", unscheduled)).await,
        "spec",
        "rotateEvery is required",
    );
    let short = json!({
        "tenantRef": { "name": "acme" },
        "credential": { "apiKey": { "expiry": "1m" } },
        "secret": { "name": "s", "key": "k" },
    });
    assert_invalid(
        create(&rotations, rotation("short", short)).await,
        "spec.credential.apiKey.expiry",
        "from 10m to 8760h",
    );
}

fn push(name: &str, target: Value) -> Value {
    json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "SecretPush",
        "metadata": { "name": name },
        "spec": { "tenantRef": { "name": "acme" }, "secretName": "source", "target": target },
    })
}

#[tokio::test]
async fn a_push_names_exactly_one_target_and_only_fields_that_target_has() {
    let env = TestEnv::new().await;
    let pushes = dynamic::<SecretPush>(&env);
    let email = json!({ "fields": { "emailPassword": "smtp-password" } });
    let created = create(
        &pushes,
        push("email", json!({ "tenantEmail": email.clone() })),
    )
    .await;
    let created = created.unwrap_or_else(|status| panic!("a valid SecretPush: {status:?}"));
    assert_eq!(created.data["spec"]["pollEvery"], "60s");
    assert_eq!(created.data["spec"]["resyncEvery"], "86400s");
    let two = json!({ "tenantEmail": email, "automationConnection": { "id": "c1", "fields": { "token": "t" } } });
    assert_invalid(
        create(&pushes, push("two", two)).await,
        "spec.target",
        "exactly one of dataConnection, automationConnection or tenantEmail",
    );
    assert_invalid(
        create(&pushes, push("none", json!({}))).await,
        "spec.target",
        "exactly one of",
    );
    let both_ids =
        json!({ "dataConnection": { "id": "a", "name": "b", "fields": { "qPassword": "p" } } });
    assert_invalid(
        create(&pushes, push("both", both_ids)).await,
        "spec.target.dataConnection",
        "exactly one of id or name",
    );
    let unknown_field = json!({ "dataConnection": { "name": "dwh", "fields": { "qName": "p" } } });
    assert_invalid(
        create(&pushes, push("field", unknown_field)).await,
        "spec.target.dataConnection.fields",
        "fields may be qUsername, qPassword and qConnectionSecret",
    );
    let no_password = json!({ "tenantEmail": { "fields": { "username": "user" } } });
    assert_invalid(
        create(&pushes, push("nopw", no_password)).await,
        "spec.target.tenantEmail.fields",
        "must map emailPassword",
    );
    let bad_key = json!({ "tenantEmail": { "fields": { "emailPassword": "a/b" } } });
    assert_invalid(
        create(&pushes, push("key", bad_key)).await,
        "spec.target.tenantEmail.fields",
        "maps to a Secret key",
    );
    let mut fast = push(
        "fast",
        json!({ "tenantEmail": { "fields": { "emailPassword": "p" } } }),
    );
    fast["spec"]["resyncEvery"] = json!("1m");
    assert_invalid(
        create(&pushes, fast).await,
        "spec.resyncEvery",
        "from 5m to 720h",
    );
}

#[tokio::test]
async fn the_tenant_of_an_entry_cannot_be_changed() {
    let env = TestEnv::new().await;
    let entries = dynamic::<CspEntry>(&env);
    create(
        &entries,
        entry("cdn", "https://cdn.example.com", json!(["img-src"])),
    )
    .await
    .unwrap();
    let patch = json!({ "spec": { "tenantRef": { "name": "other" } } });
    let error = entries
        .patch("cdn", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = error else {
        panic!("unexpected error {error}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("spec.tenantRef") && status.message.contains("immutable"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn status_is_written_only_through_the_status_subresource() {
    let env = TestEnv::new().await;
    let entries = dynamic::<CspEntry>(&env);
    let mut object = entry("cdn", "https://cdn.example.com", json!(["img-src"]));
    object["status"] = json!({ "id": "forged-on-create" });
    let created = create(&entries, object).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status was accepted on create: {:?}",
        created.data
    );

    let forged = json!({ "status": { "id": "forged-on-update" } });
    let updated = entries
        .patch("cdn", &PatchParams::default(), &Patch::Merge(&forged))
        .await
        .unwrap();
    assert!(
        updated.data.get("status").is_none(),
        "status was accepted on update: {:?}",
        updated.data
    );

    let recorded = json!({ "status": { "id": "abc123", "observedGeneration": 1 } });
    entries
        .patch_status("cdn", &PatchParams::default(), &Patch::Merge(&recorded))
        .await
        .unwrap();
    let typed = Api::<CspEntry>::namespaced(env.client.clone(), &env.namespace)
        .get("cdn")
        .await
        .unwrap();
    assert_eq!(typed.status.and_then(|s| s.id).as_deref(), Some("abc123"));
}

/// `kubectl get`'s view of a list: the apiserver's server-side Table (kubectl prints its
/// cells as they come).
async fn table_get(env: &TestEnv, plural: &str) -> Value {
    let url = format!(
        "/apis/{}/{}/namespaces/{}/{plural}",
        api::GROUP,
        api::VERSION,
        env.namespace
    );
    let request = http::Request::get(url)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap();
    env.client.request(request).await.expect("table GET")
}

fn column_names(table: &Value) -> Vec<&str> {
    table["columnDefinitions"]
        .as_array()
        .expect("a Table")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect()
}

#[tokio::test]
async fn printer_columns_show_in_a_table_get() {
    let env = TestEnv::new().await;
    create(
        &dynamic::<CspEntry>(&env),
        entry("cdn", "https://cdn.example.com", json!(["img-src"])),
    )
    .await
    .unwrap();
    let table = table_get(&env, "cspentries").await;
    assert_eq!(
        column_names(&table),
        ["Name", "Origin", "Directives", "Ready", "Reason", "Age"]
    );
    let cells = &table["rows"][0]["cells"];
    assert_eq!(cells[0], "cdn");
    assert_eq!(cells[1], "https://cdn.example.com");
    assert_eq!(cells[2], r#"["img-src"]"#);
}

#[tokio::test]
async fn the_next_rotation_column_shows_a_future_time() {
    let env = TestEnv::new().await;
    let spec = json!({
        "tenantRef": { "name": "acme" },
        "credential": { "apiKey": { "expiry": "720h" } },
        "secret": { "name": "reporting-api-key", "key": "api-key" },
    });
    let rotations = dynamic::<SecretRotation>(&env);
    create(&rotations, rotation("reporting", spec))
        .await
        .unwrap();
    // A rotation is always due in the future while it waits: the value users look at.
    let next = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 20 * 86_400)
        .unwrap()
        .to_string();
    let status = json!({ "status": { "phase": "Idle", "nextRotationAt": next } });
    rotations
        .patch_status("reporting", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    let table = table_get(&env, "secretrotations").await;
    let columns = column_names(&table);
    let at = columns
        .iter()
        .position(|c| *c == "Next Rotation")
        .unwrap_or_else(|| panic!("no Next Rotation column: {columns:?}"));
    let cell = &table["rows"][0]["cells"][at];
    // A `date` column renders a future time as `<invalid>` (it is printed as an age).
    assert_eq!(
        cell.as_str(),
        Some(next.as_str()),
        "kubectl get shows {cell} for a rotation due at {next}"
    );
}

#[tokio::test]
async fn a_service_account_reads_custom_resources_only_once_rbac_allows_it() {
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
    let env = TestEnv::new().await;
    let reader = env
        .client_as_service_account(&env.namespace, "reader")
        .await;
    let entries: Api<CspEntry> = Api::namespaced(reader, &env.namespace);
    match entries.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 Forbidden before any RBAC, got {other:?}"),
    }

    let role = Role {
        metadata: kube::api::ObjectMeta {
            name: Some("csp-reader".into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![api::GROUP.into()]),
            resources: Some(vec!["cspentries".into()]),
            verbs: vec!["list".into()],
            ..Default::default()
        }]),
    };
    let binding = RoleBinding {
        metadata: kube::api::ObjectMeta {
            name: Some("csp-reader".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "csp-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "reader".into(),
            namespace: Some(env.namespace.clone()),
            ..Default::default()
        }]),
    };
    let pp = PostParams::default();
    Api::<Role>::namespaced(env.client.clone(), &env.namespace)
        .create(&pp, &role)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(env.client.clone(), &env.namespace)
        .create(&pp, &binding)
        .await
        .unwrap();

    // The authorizer reads RBAC from an informer, so the grant takes effect shortly after.
    support::eventually(
        "the RoleBinding to take effect",
        std::time::Duration::from_secs(10),
        || async { entries.list(&Default::default()).await.ok() },
    )
    .await;
    let other_namespace: Api<CspEntry> = Api::namespaced(
        env.client_as_service_account(&env.namespace, "reader")
            .await,
        "default",
    );
    match other_namespace.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(
            status.code, 403,
            "the Role must not reach other namespaces: {status:?}"
        ),
        other => panic!("expected 403 Forbidden in another namespace, got {other:?}"),
    }
}

#[tokio::test]
async fn the_examples_are_accepted_by_the_apiserver() {
    use serde::Deserialize;
    let env = TestEnv::new().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut created = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(path).unwrap();
        for document in serde_norway::Deserializer::from_str(&text) {
            let mut object = Value::deserialize(document).unwrap();
            let kind = object["kind"].as_str().unwrap_or_default().to_owned();
            // Each test has its own namespace; the examples name theirs.
            object["metadata"]["namespace"] = json!(env.namespace);
            let api = match kind.as_str() {
                "CspEntry" => dynamic::<CspEntry>(&env),
                "QlikTenant" => dynamic::<QlikTenant>(&env),
                "SecretRotation" => dynamic::<SecretRotation>(&env),
                "SecretPush" => dynamic::<SecretPush>(&env),
                _ => continue,
            };
            if let Err(status) = create(&api, object).await {
                panic!("{} was rejected: {}", path.display(), status.message);
            }
            created += 1;
        }
    }
    assert!(
        created >= 4,
        "expected the examples' tenant and entries, created {created}"
    );
}
