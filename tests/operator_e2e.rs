//! End to end: the `qlik-csp-operator run` binary against a real apiserver and the tenant
//! emulator, with the manifests of `examples/` applied as a user would: the tenant becomes
//! Ready, every CspEntry Ready, the header lands in the ConfigMap exactly as
//! `qlik-csp-operator render` previews it, the Ingress serving it is annotated, and every
//! SecretRotation becomes Ready with a credential in its Secret that the tenant accepts,
//! and every SecretPush has put its Secret's values into the emulator's targets.
//!
//! The operator runs as in a cluster: with leader election, its health and metrics endpoint
//! on a loopback port, and the emulator's host allowed; its output (at debug level) goes to
//! files under the control plane's run directory. The test scrapes `/readyz` and
//! `/metrics`, then sends SIGTERM: the process exits 0 and leaves the Lease free.
//!
//! The secret scan runs the same setup, rotates every credential once, and searches every
//! log line, every version of every event and object the operator writes, and `/metrics`
//! for every secret value written during the run (see `support/secret_scan.rs`).

mod support;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use qlik_csp_operator::api::secret_rotation::{Phase, ROTATE_REQUESTED_AT};
use qlik_csp_operator::api::{CspEntry, QlikTenant, SecretPush, SecretRotation};
use qlik_csp_operator::controller::tenant::publish::{HEADER_SHA256, header_sha256};
use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use serde::Deserialize;
use serde_json::{Value, json};
use support::emulator::EmulatorControl;
use support::secret_scan::{self, Recorder, SecretValues, Source};
use support::tenant_rig::create_example_surroundings;
use support::{Operator, TestEnv, eventually, wait_ready};

const KEY: &str = "e2e-admin-key-0123456789abcdef";
/// The OAuth client of examples/secret-rotation.yaml, and the secret it is seeded with.
const CLIENT_ID: &str = "6c1e9a0f27b34d58a1f0e2d4c3b5a697";
const SEEDED_CLIENT_SECRET: &str = "e2e-seeded-client-secret-0123456789";
const DEADLINE: Duration = Duration::from_secs(60);
/// The default `--leader-election-lease-name`.
const LEASE: &str = "qlik-csp-operator";

/// One run of the product on the examples: the emulator, the objects of `examples/`, and
/// the operator binary at debug level with its stdout and stderr in files.
struct Run {
    env: TestEnv,
    emulator: Emulator,
    control: EmulatorControl,
    operator: Operator,
    metrics_address: String,
    entry_names: Vec<String>,
    push_names: Vec<String>,
    rotation_names: Vec<String>,
    /// stdout, stderr.
    logs: [PathBuf; 2],
}

fn examples() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut objects = Vec::new();
    for file in [
        "qlik-tenant.yaml",
        "csp-entries.yaml",
        "secret-rotation.yaml",
        "secret-push.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for document in serde_norway::Deserializer::from_str(&text) {
            objects.push(Value::deserialize(document).unwrap());
        }
    }
    objects
}

impl Run {
    /// Starts the emulator, applies the examples (pointed at it) into the namespace of
    /// `env`, and starts the operator.
    async fn start(env: TestEnv) -> Run {
        let ns = env.namespace.clone();
        let emulator = support::emulator::start(EmulatorConfig {
            admin_api_keys: vec![KEY.into()],
            oauth_clients: vec![(CLIENT_ID.into(), SEEDED_CLIENT_SECRET.into())],
            ..Default::default()
        })
        .await;
        let control = EmulatorControl::new(&emulator);
        create_example_surroundings(&env, KEY).await;

        let automation_connection = seed_push_targets(&env, &control).await;
        let mut entry_names = Vec::new();
        let mut rotation_names = Vec::new();
        let mut push_names = Vec::new();
        for mut object in examples() {
            object["metadata"]["namespace"] = json!(ns);
            let resource = match object["kind"].as_str() {
                Some("QlikTenant") => {
                    // The example points at a real tenant; point it at the emulator instead.
                    object["spec"]["url"] = json!(emulator.base_url());
                    object["spec"]["caBundle"] = json!(emulator.ca_pem());
                    ApiResource::erase::<QlikTenant>(&())
                }
                Some("CspEntry") => {
                    entry_names.push(object["metadata"]["name"].as_str().unwrap().to_owned());
                    ApiResource::erase::<CspEntry>(&())
                }
                Some("SecretRotation") => {
                    rotation_names.push(object["metadata"]["name"].as_str().unwrap().to_owned());
                    ApiResource::erase::<SecretRotation>(&())
                }
                Some("SecretPush") => {
                    push_names.push(object["metadata"]["name"].as_str().unwrap().to_owned());
                    let target = &mut object["spec"]["target"]["automationConnection"];
                    if target.is_object() {
                        // The example names a real connection; name the seeded one instead.
                        target["id"] = json!(automation_connection);
                    }
                    ApiResource::erase::<SecretPush>(&())
                }
                other => panic!("unexpected kind {other:?} in examples/"),
            };
            let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), &ns, &resource);
            let object: DynamicObject = serde_json::from_value(object).unwrap();
            api.create(&PostParams::default(), &object).await.unwrap();
        }

        let run_dir = &env.control_plane.run_dir;
        let logs = [
            run_dir.join(format!("operator-{ns}.stdout")),
            run_dir.join(format!("operator-{ns}.stderr")),
        ];
        let file = |path: &Path| std::fs::File::create(path).unwrap();
        let metrics_address = free_loopback_address();
        let operator = env
            .operator()
            .args(["--log-level", "debug"])
            .metrics_address(&metrics_address)
            .allowed_tenant_hosts("*.qlikcloud.com,127.0.0.1")
            .args(["--leader-election", "--leader-election-namespace", &ns])
            .args(["--leader-election-lease-seconds", "5"])
            .env("NO_COLOR", "1")
            // As the chart sets it: the SecretPush digest key is kept in this namespace.
            .env("POD_NAMESPACE", &ns)
            .stdout(file(&logs[0]))
            .stderr(file(&logs[1]))
            .spawn();
        eprintln!("operator output: {} and .stderr", logs[0].display());
        Run {
            env,
            emulator,
            control,
            operator,
            metrics_address,
            entry_names,
            push_names,
            rotation_names,
            logs,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.env.client.clone(), &self.env.namespace)
    }

    /// Waits until the tenant, every CspEntry and every SecretRotation is Ready.
    async fn wait_ready(&self) {
        wait_ready(&self.api::<QlikTenant>(), "acme", DEADLINE).await;
        for name in &self.entry_names {
            wait_ready(&self.api::<CspEntry>(), name, DEADLINE).await;
        }
        for name in &self.rotation_names {
            wait_ready(&self.api::<SecretRotation>(), name, DEADLINE).await;
        }
        for name in &self.push_names {
            wait_ready(&self.api::<SecretPush>(), name, DEADLINE).await;
        }
    }

    /// The value the Secret of SecretRotation `name` holds under its key now.
    async fn stored_credential(&self, name: &str) -> (SecretRotation, String) {
        let rotation = self.api::<SecretRotation>().get(name).await.unwrap();
        let target = &rotation.spec.secret;
        let stored = self.api::<Secret>().get(&target.name).await.unwrap();
        let value = stored
            .data
            .unwrap_or_default()
            .remove(&target.key)
            .unwrap_or_else(|| panic!("{name}: no {} in Secret {}", target.key, target.name));
        (rotation, String::from_utf8(value.0).unwrap())
    }

    /// Whether the tenant accepts `value` as the credential `rotation` manages: an API key
    /// as a bearer token, an OAuth client secret in a client-credentials token request.
    async fn authenticates(&self, rotation: &SecretRotation, value: &str) -> bool {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(self.emulator.client_tls_config().unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let base = self.emulator.base_url();
        let credential = serde_json::to_value(&rotation.spec.credential).unwrap();
        let response = if let Some(client_id) = credential["oauthClientSecret"]["clientId"].as_str()
        {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", value),
            ];
            let body: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            http.post(format!("{base}/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        } else {
            http.get(format!("{base}/api/v1/users/me"))
                .bearer_auth(value)
                .send()
                .await
                .unwrap()
        };
        let status = response.status();
        assert_ne!(status.as_u16(), 429, "the emulator rate-limited the check");
        status.is_success() || status.is_redirection()
    }

    async fn metrics(&self) -> String {
        let response = reqwest::get(format!("http://{}/metrics", self.metrics_address))
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        response.text().await.unwrap()
    }

    /// Sends SIGTERM and waits for the operator to exit.
    async fn stop(&mut self) -> ExitStatus {
        self.operator.terminate(DEADLINE).await
    }

    /// The operator's stdout and stderr so far.
    fn output(&self) -> Vec<Source> {
        self.logs
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).unwrap();
                Source::new(path.display().to_string(), text)
            })
            .collect()
    }
}

#[tokio::test]
async fn the_examples_become_ready_and_their_header_reaches_the_config_map_and_ingress() {
    let mut run = Run::start(TestEnv::new().await).await;
    let ns = run.env.namespace.clone();
    run.wait_ready().await;

    for name in &run.rotation_names {
        let (rotation, value) = run.stored_credential(name).await;
        assert!(
            run.authenticates(&rotation, &value).await,
            "{name}: the tenant refuses the credential in its Secret"
        );
        // The check can fail: the tenant refuses a value that is not the one it issued.
        assert!(
            !run.authenticates(&rotation, &format!("{value}x")).await,
            "{name}: the tenant accepts any value"
        );
    }

    // Every SecretPush put its Secret's values where the tenant keeps them.
    let email = run.control.email_config().await;
    assert_eq!(email["password"], PUSHED[3].2);
    let status = run
        .api::<SecretPush>()
        .get("warehouse-connection")
        .await
        .unwrap()
        .status;
    let connection = status.and_then(|s| s.target_id).unwrap();
    let held = run.control.data_connection(&connection).await;
    assert_eq!(
        (&held["username"], &held["password"]),
        (&json!(PUSHED[0].2), &json!(PUSHED[1].2))
    );

    // The files applied above (the ingress-nginx setup; the other edges' folders repeat the
    // tenant).
    let examples_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let files = ["qlik-tenant.yaml", "csp-entries.yaml"].map(|f| examples_dir.join(f));
    let preview = qlik_csp_operator::render::render_paths(&files).unwrap();
    let expected = preview[0].header.clone();
    let config_maps: Api<ConfigMap> = run.api();
    eventually("the header in the ConfigMap", DEADLINE, || async {
        let map = config_maps.get_opt("qlik-csp-header").await.ok()??;
        let value = map.data?.get("Content-Security-Policy")?.clone();
        (value == expected).then_some(())
    })
    .await;

    let ingresses: Api<Ingress> = run.api();
    let sha = header_sha256(&expected);
    eventually(
        "the Ingress annotated with the header's sha",
        DEADLINE,
        || async {
            let ingress = ingresses.get("reports").await.ok()?;
            let annotations = ingress.metadata.annotations?;
            (annotations.get(HEADER_SHA256) == Some(&sha)).then_some(())
        },
    )
    .await;

    let leases: Api<Lease> = run.api();
    let holder = || async {
        let lease = leases.get_opt(LEASE).await.ok()??;
        lease.spec?.holder_identity.filter(|h| !h.is_empty())
    };
    assert!(holder().await.is_some(), "the leader holds the Lease");

    let http = reqwest::Client::new();
    let base = format!("http://{}", run.metrics_address);
    let readyz = eventually("/readyz to answer 200", DEADLINE, || async {
        let response = http.get(format!("{base}/readyz")).send().await.ok()?;
        let ok = response.status() == reqwest::StatusCode::OK;
        ok.then_some(response.text().await.ok()?)
    })
    .await;
    assert_eq!(
        readyz,
        "tenant: synced\ncsp-entry: synced\nsecret-rotation: synced\nsecret-push: synced\n"
    );
    let healthz = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), reqwest::StatusCode::OK);

    let metrics = run.metrics().await;
    for series in [
        r#"qlikops_reconcile_total{controller="tenant",result="success"}"#,
        r#"qlikops_reconcile_total{controller="csp-entry",result="success"}"#,
        r#"qlikops_reconcile_duration_seconds_count{controller="csp-entry"}"#,
        r#"qlikops_tenant_requests_total{operation="tenants.me",status="302"}"#,
        r#"qlikops_tenant_requests_total{operation="csp-origins.create",status="201"}"#,
        &format!(r#"qlikops_header_bytes{{namespace="{ns}",tenant="acme"}}"#),
        r#"qlikops_reconcile_total{controller="secret-rotation",result="success"}"#,
        &format!(r#"qlikops_credential_expiry_seconds{{namespace="{ns}",name="reports-api-key"}}"#),
    ] {
        let value = sample(&metrics, series).unwrap_or_else(|| panic!("{series} in\n{metrics}"));
        assert!(value > 0.0, "{series} is {value}");
    }
    assert_eq!(
        sample(
            &metrics,
            &format!(r#"qlikops_header_bytes{{namespace="{ns}",tenant="acme"}}"#)
        ),
        Some(expected.len() as f64)
    );
    // The example's key asks for 24h, the tenant's cap.
    let expiry = sample(
        &metrics,
        &format!(r#"qlikops_credential_expiry_seconds{{namespace="{ns}",name="reports-api-key"}}"#),
    );
    assert!(expiry.is_some_and(|s| s <= 86_400.0), "{expiry:?}");
    for leak in [KEY, "127.0.0.1", "https://"] {
        assert!(!metrics.contains(leak), "/metrics contains {leak:?}");
    }

    // SIGTERM: the operator finishes, exits 0 and releases the Lease.
    let status = run.stop().await;
    assert!(status.success(), "the operator exited with {status}");
    assert_eq!(holder().await, None, "the Lease was released");
}

#[tokio::test]
async fn no_secret_written_during_a_run_appears_in_its_logs_events_objects_or_metrics() {
    let env = TestEnv::new().await;
    // Watching from before the operator starts: every value and version is seen.
    let secrets = SecretValues::start(&env.client, &env.namespace).await;
    let kinds = [
        ApiResource::erase::<QlikTenant>(&()),
        ApiResource::erase::<CspEntry>(&()),
        ApiResource::erase::<SecretRotation>(&()),
        ApiResource::erase::<SecretPush>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Ingress>(&()),
        ApiResource::erase::<Lease>(&()),
        ApiResource::erase::<Event>(&()),
    ];
    let recorder = Recorder::start(&env.client, &env.namespace, &kinds).await;
    let mut run = Run::start(env).await;
    run.wait_ready().await;

    // Rotate every credential once, so that a second value and `.previous` are written.
    let rotations: Api<SecretRotation> = run.api();
    for name in &run.rotation_names {
        let last = rotations
            .get(name)
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        let last_time = last.last_rotation_time.map(|t| t.0).unwrap();
        let requested = eventually("a whole second after the last rotation", DEADLINE, || {
            let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).ok();
            async move { now.filter(|now| *now > last_time) }
        })
        .await;
        let patch = json!({ "metadata": { "annotations": {
            ROTATE_REQUESTED_AT: requested.to_string(),
        } } });
        rotations
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        eventually(
            &format!("{name} to publish revision {}", last.revision + 1),
            DEADLINE,
            || async {
                let status = rotations.get(name).await.ok()?.status?;
                (status.revision == last.revision + 1 && status.phase == Phase::Draining)
                    .then_some(())
            },
        )
        .await;
    }
    let metrics = run.metrics().await;
    assert!(run.stop().await.success());

    // Every credential the tenant issued during the run was seen in a Secret, so the scan
    // looks for all of them.
    let mut secrets = secrets.secrets();
    let counters = run.control.counters().await;
    for (operation, secret) in [
        ("api-keys.create", "reports-qlik"),
        ("oauth-clients.create-secret", "embed-oauth"),
    ] {
        let created = counters["operations"][operation]["byStatus"]["201"]
            .as_u64()
            .unwrap_or(0);
        let seen = secrets
            .iter()
            .filter(|s| s.label.starts_with(&format!("Secret {secret} ")))
            .count();
        assert_eq!(
            seen as u64, created,
            "{operation}: the tenant issued {created} credentials, the Secret {secret} held {seen}"
        );
        assert!(created >= 2, "{operation}: {created} credentials issued");
    }
    secrets.push(secret_scan::Secret::new(
        "the seeded OAuth client secret",
        SEEDED_CLIENT_SECRET,
    ));
    assert!(
        secrets.iter().any(|s| s.value == KEY),
        "the admin key is scanned for"
    );

    let mut sources = recorder.sources();
    // The scan is only as good as what it reads: every kind recorded something.
    for kind in &kinds {
        assert!(
            sources
                .iter()
                .any(|s| s.label.starts_with(&format!("{} ", kind.kind))),
            "no {} was recorded",
            kind.kind
        );
    }
    sources.extend(run.output());
    sources.push(Source::new("/metrics", metrics));
    let lines: usize = sources.iter().map(|s| s.text.lines().count()).sum();
    assert!(
        run.output()[1].text.contains("DEBUG"),
        "the operator logged at debug level"
    );
    eprintln!(
        "scanned {lines} lines from {} sources for {} secret values",
        sources.len(),
        secrets.len()
    );
    secret_scan::assert_no_leak(&secrets, &sources);
}

#[test]
fn the_secret_scan_finds_a_value_in_each_form_it_can_leak_in_and_nothing_else() {
    use secret_scan::{Secret, scan};
    let secrets = [Secret::new("token", "tok/en+0123456789")];
    let sources = [
        Source::new("log", "ok\nsent tok/en+0123456789 to the tenant\nok"),
        Source::new("secret", "data: dG9rL2VuKzAxMjM0NTY3ODk="),
        Source::new("form", "client_secret=tok%2Fen%2B0123456789"),
        Source::new("clean", "tok/en+012345678 (one character short)"),
    ];
    let hits = scan(&secrets, &sources);
    let found: Vec<_> = hits
        .iter()
        .map(|h| (h.source.as_str(), h.line, h.form))
        .collect();
    assert_eq!(
        found,
        [
            ("log", 2, "as is"),
            ("secret", 1, "base64"),
            ("form", 1, "url-encoded")
        ]
    );
    assert_eq!(hits[0].excerpt, "sent <token> to the tenant");
}

/// A loopback address with a port free right now (the operator binds it a moment later).
fn free_loopback_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// The values the SecretPushes of examples/secret-push.yaml push (each long enough for the
/// secret scan).
const PUSHED: [(&str, &str, &str); 4] = [
    ("warehouse-db", "username", "warehouse-app-user"),
    (
        "warehouse-db",
        "password",
        "e2e-warehouse-password-0123456789",
    ),
    ("crm-api", "token", "e2e-crm-api-token-0123456789"),
    ("smtp", "password", "e2e-smtp-password-0123456789"),
];

/// What examples/secret-push.yaml needs around it: the Secrets it names, and the targets in
/// the tenant (a data connection with the example's name, an automation connection with an
/// `api_key` parameter, an email configuration). The automation connection's id.
async fn seed_push_targets(env: &TestEnv, control: &EmulatorControl) -> String {
    control
        .add_data_connection(json!({ "name": "Warehouse (PostgreSQL)", "type": "postgres" }))
        .await;
    let crm = control
        .add_automation_connection(json!({
            "name": "crm", "params": [{ "name": "api_key", "secret": true }],
        }))
        .await;
    control
        .put_email_config(json!({ "username": "mailer@example.com" }))
        .await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    for name in ["warehouse-db", "crm-api", "smtp"] {
        let mut data: std::collections::BTreeMap<String, String> = PUSHED
            .iter()
            .filter(|(secret, _, _)| *secret == name)
            .map(|(_, key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        if name == "smtp" {
            data.insert("username".into(), "mailer@example.com".into());
        }
        let secret: Secret = serde_json::from_value(json!({
            "metadata": { "name": name }, "stringData": data,
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    crm["id"].as_str().unwrap().to_owned()
}
