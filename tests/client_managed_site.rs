//! A client-managed Qlik Sense site (Qlik Sense Enterprise on Windows) driven by the same
//! CspEntries and SecretPushes, on a real kube-apiserver against the emulated QRS site
//! (`tests/support/qrs_site.rs`): mutual TLS with the certificate from a Secret, a fresh
//! matching Xrfkey on every request (the site refuses any other, and each test checks its
//! log), the header set in each virtual proxy's `additionalResponseHeaders` beside the
//! administrator's lines (kept byte for byte), a concurrent QMC edit (stale
//! `modifiedDate`) read again and kept, the field's 1,024-character limit, a certificate
//! the site refuses, and a QRS data connection's credentials pushed from a Secret.
//!
//! The controllers run in process; waits are on conditions with deadlines.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use qlik_csp_operator::api::csp_entry::DirectiveName;
use qlik_csp_operator::api::{CspEntry, QlikTenant, SecretPush};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::qrs_site::QrsSiteFixture;
use support::tenant_rig::{
    Controller, DEADLINE, TENANT, TenantRig, condition, csp_entry, from_json, secret,
};

const CERT_SECRET: &str = "qlik-site-cert";
/// What an administrator put in the default virtual proxy: CRLF, odd spacing, a `;`.
const ADMIN_LINES: &str = "X-Frame-Options: SAMEORIGIN\r\nX-Custom:  spaced ;value";
const CSP: &str = "Content-Security-Policy: ";

/// The rig with `controllers`, the emulated site, and the certificate Secret exported
/// from it (`client.pem`, `client_key.pem`, `root.pem`).
async fn start(controllers: &[Controller]) -> (TenantRig, QrsSiteFixture) {
    let mut builder = TenantRig::builder();
    for controller in controllers {
        builder = builder.run(*controller);
    }
    let rig = builder.start().await;
    let qrs = QrsSiteFixture::start().await;
    let (cert, key) = (qrs.site.client_cert_pem(), qrs.site.client_key_pem());
    let data = [
        ("client.pem", cert),
        ("client_key.pem", key),
        ("root.pem", qrs.site.ca_pem()),
    ];
    rig.create_secret(CERT_SECRET, &data).await;
    (rig, qrs)
}

/// QlikTenant [`TENANT`] as a client-managed site publishing into `prefixes`.
fn site_tenant(qrs: &QrsSiteFixture, prefixes: &[&str]) -> QlikTenant {
    from_json(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "QlikTenant",
        "metadata": { "name": TENANT },
        "spec": {
            "clientManaged": {
                "url": qrs.base_url(),
                "certificateSecretRef": { "name": CERT_SECRET },
                "user": { "userDirectory": "INTERNAL", "userId": "sa_api" },
                "virtualProxyPrefixes": prefixes,
            },
        },
    }))
}

/// The value of the operator's line in `field`, and the field without that line.
fn split_csp(field: &str) -> (Option<String>, String) {
    let mut value = None;
    let mut rest = Vec::new();
    for line in field.split("\r\n") {
        match line.strip_prefix(CSP) {
            Some(v) => value = Some(v.to_owned()),
            None => rest.push(line),
        }
    }
    (value, rest.join("\r\n"))
}

fn sha256(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn field_of(proxy: &Value) -> String {
    proxy["additionalResponseHeaders"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until virtual proxy `id` carries a header containing `needle`; the field.
async fn wait_header_with(qrs: &QrsSiteFixture, id: &str, needle: &str) -> String {
    support::eventually(
        &format!("virtual proxy {id} to carry a header with {needle}"),
        DEADLINE,
        || async {
            let field = field_of(&qrs.virtual_proxy(id).await);
            let (value, _) = split_csp(&field);
            value.filter(|v| v.contains(needle)).map(|_| field)
        },
    )
    .await
}

/// How many requests of `operation` the site answered with `status` (any when `None`).
async fn count(qrs: &QrsSiteFixture, operation: &str, status: Option<u16>) -> u64 {
    let counters = qrs.counters().await;
    let op = &counters["operations"][operation];
    match status {
        None => op["requests"].as_u64().unwrap_or(0),
        Some(status) => op["byStatus"][status.to_string()].as_u64().unwrap_or(0),
    }
}

#[tokio::test]
async fn the_header_reaches_each_virtual_proxy_beside_the_administrators_lines_and_follows_edits() {
    let (rig, qrs) = start(&[Controller::Tenant, Controller::CspEntry]).await;
    let default_proxy = qrs.seed_virtual_proxy("", ADMIN_LINES, &[]).await;
    let embed_proxy = qrs.seed_virtual_proxy("embed", "", &[]).await;
    rig.create(&csp_entry(
        "portal",
        "https://portal.example.com",
        &[DirectiveName::FrameAncestors],
        false,
    ))
    .await;
    rig.create(&site_tenant(&qrs, &["", "embed"])).await;

    let tenant = rig
        .wait_tenant(TENANT, "the site Ready with its header published", |t| {
            let ready = condition(t, "Ready")?;
            let published = condition(t, "HeaderPublished")?;
            let status = t.status.as_ref()?;
            (ready.status == "True"
                && published.status == "True"
                && status.virtual_proxies.len() == 2
                && status.virtual_proxies.iter().all(|p| p.published))
            .then(|| t.clone())
        })
        .await;
    let status = tenant.status.as_ref().expect("a status");
    assert_eq!(status.build_version.as_deref(), Some("38.22.0"));
    assert_eq!(status.tenant_id, None);
    let published_sha = status.header.as_ref().expect("a header").sha256.clone();

    // The administrator's lines stay byte for byte; the operator's line is the header the
    // status describes; the other proxy gets the line alone.
    let field = field_of(&qrs.virtual_proxy(&default_proxy).await);
    let (value, rest) = split_csp(&field);
    let value = value.unwrap_or_else(|| panic!("no CSP line in {field:?}"));
    assert_eq!(
        rest, ADMIN_LINES,
        "the administrator's lines changed: {field:?}"
    );
    assert!(field.starts_with(ADMIN_LINES), "{field:?}");
    assert_eq!(sha256(&value), published_sha);
    assert!(
        value.contains("frame-ancestors https://portal.example.com"),
        "{value}"
    );
    let embed = field_of(&qrs.virtual_proxy(&embed_proxy).await);
    assert_eq!(embed, format!("{CSP}{value}"));
    for proxy in &status.virtual_proxies {
        assert_eq!(proxy.sha256.as_deref(), Some(published_sha.as_str()));
    }

    // Nothing is synced to a site: the entry is Ready as compiled locally.
    let entries = rig.api::<CspEntry>();
    support::eventually("the entry Ready as CompiledLocally", DEADLINE, || async {
        let entry = entries.get("portal").await.ok()?;
        let status = entry.status?;
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
        (ready.status == "True" && ready.reason == "CompiledLocally" && status.id.is_none())
            .then_some(())
    })
    .await;

    // Nothing is written while nothing changes: reconciles keep reading (drift 1 s).
    let puts = count(&qrs, "virtualproxyconfig.update", None).await;
    let reads = count(&qrs, "virtualproxyconfig.full", None).await;
    support::eventually(
        "four more reads of the virtual proxies",
        DEADLINE,
        || async {
            (count(&qrs, "virtualproxyconfig.full", None).await >= reads + 4).then_some(())
        },
    )
    .await;
    assert_eq!(count(&qrs, "virtualproxyconfig.update", None).await, puts);

    // An edited entry reaches both proxies; the administrator's lines still stay.
    entries
        .patch(
            "portal",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "origin": "https://intranet.example.com" } })),
        )
        .await
        .expect("the edit");
    let field = wait_header_with(&qrs, &default_proxy, "https://intranet.example.com").await;
    assert_eq!(split_csp(&field).1, ADMIN_LINES);
    assert!(!field.contains("portal.example.com"), "{field:?}");
    wait_header_with(&qrs, &embed_proxy, "https://intranet.example.com").await;

    let requests = qrs.assert_every_request_carried_a_matching_xrfkey().await;
    assert!(requests >= 6, "only {requests} requests reached the site");
    qrs.assert_xrfkeys_are_fresh().await;
}

#[tokio::test]
async fn an_edit_in_the_qmc_between_the_read_and_the_write_is_kept_and_the_header_set_on_it() {
    let (rig, qrs) = start(&[Controller::Tenant, Controller::CspEntry]).await;
    let proxy = qrs.seed_virtual_proxy("", "X-A: 1", &[]).await;
    rig.create(&csp_entry(
        "portal",
        "https://portal.example.com",
        &[DirectiveName::FrameAncestors],
        false,
    ))
    .await;
    rig.create(&site_tenant(&qrs, &[""])).await;
    wait_header_with(&qrs, &proxy, "https://portal.example.com").await;

    // An administrator saves the proxy in the QMC right after the operator's next read:
    // the operator's write carries a stale modifiedDate.
    let admin_edit = "X-A: 1\r\nX-Admin: added in the QMC";
    qrs.edit_after_next_read(&proxy, admin_edit).await;
    let conflicts = count(&qrs, "virtualproxyconfig.update", Some(409)).await;
    rig.create(&csp_entry(
        "cdn",
        "https://cdn.example.com",
        &[DirectiveName::ScriptSrc],
        false,
    ))
    .await;

    let field = wait_header_with(&qrs, &proxy, "https://cdn.example.com").await;
    let (value, rest) = split_csp(&field);
    assert_eq!(
        rest, admin_edit,
        "the administrator's edit was lost: {field:?}"
    );
    assert!(value.is_some_and(|v| v.contains("https://portal.example.com")));
    assert!(
        count(&qrs, "virtualproxyconfig.update", Some(409)).await > conflicts,
        "the site never refused a stale write: the edit did not land between read and write"
    );
    qrs.assert_every_request_carried_a_matching_xrfkey().await;
}

#[tokio::test]
async fn a_header_too_long_for_the_field_is_reported_and_the_last_good_one_stays() {
    let (rig, qrs) = start(&[Controller::Tenant, Controller::CspEntry]).await;
    // 900 characters of the administrator's leave about 120 for the header.
    let admin = format!("X-Long: {}", "a".repeat(892));
    let proxy = qrs.seed_virtual_proxy("", &admin, &[]).await;
    rig.create(&csp_entry(
        "a",
        "https://a.example.com",
        &[DirectiveName::FrameAncestors],
        false,
    ))
    .await;
    rig.create(&site_tenant(&qrs, &[""])).await;
    let good = wait_header_with(&qrs, &proxy, "https://a.example.com").await;
    let good_sha = sha256(&split_csp(&good).0.expect("a header"));

    for name in ["b", "c", "d", "e"] {
        let origin = format!("https://{name}-with-a-rather-long-host-name.example.com");
        rig.create(&csp_entry(
            name,
            &origin,
            &[DirectiveName::FrameAncestors],
            false,
        ))
        .await;
    }
    let tenant = rig
        .wait_tenant(TENANT, "HeaderTooLongForTarget", |t| {
            let published = condition(t, "HeaderPublished")?;
            (published.reason == "HeaderTooLongForTarget").then(|| t.clone())
        })
        .await;
    let status = tenant.status.as_ref().expect("a status");
    let proxy_status = &status.virtual_proxies[0];
    assert!(!proxy_status.published);
    assert_eq!(proxy_status.sha256.as_deref(), Some(good_sha.as_str()));
    let message = &condition(&tenant, "HeaderPublished")
        .expect("the condition")
        .message;
    assert!(message.contains("1024"), "{message}");
    assert_eq!(field_of(&qrs.virtual_proxy(&proxy).await), good);
}

#[tokio::test]
async fn a_certificate_the_site_does_not_trust_is_unauthorized_until_the_secret_holds_one_it_does()
{
    let rig = TenantRig::builder().run(Controller::Tenant).start().await;
    let qrs = QrsSiteFixture::start().await;
    let (cert, key) = qlik_csp_operator::emulator::qrs::untrusted_client_identity()
        .expect("an untrusted identity");
    let data = [
        ("client.pem", cert.as_str()),
        ("client_key.pem", key.as_str()),
        ("root.pem", qrs.site.ca_pem()),
    ];
    rig.create_secret(CERT_SECRET, &data).await;
    rig.create(&site_tenant(&qrs, &[])).await;
    let refused = rig
        .wait_tenant(TENANT, "Ready=False Unauthorized", |t| {
            let ready = condition(t, "Ready")?;
            (ready.status == "False" && ready.reason == "Unauthorized").then(|| ready.clone())
        })
        .await;
    assert!(
        refused.message.contains("certificate"),
        "{}",
        refused.message
    );
    assert!(
        !refused.message.contains("PRIVATE KEY"),
        "{}",
        refused.message
    );

    // The certificate exported from the site: picked up without touching the QlikTenant.
    let good = secret(
        CERT_SECRET,
        &[
            ("client.pem", qrs.site.client_cert_pem()),
            ("client_key.pem", qrs.site.client_key_pem()),
            ("root.pem", qrs.site.ca_pem()),
        ],
    );
    rig.api::<Secret>()
        .patch(
            CERT_SECRET,
            &PatchParams::default(),
            &Patch::Merge(json!({ "stringData": good.string_data })),
        )
        .await
        .expect("the new certificate");
    rig.wait_tenant(TENANT, "Ready=True with the new certificate", |t| {
        let ready = condition(t, "Ready")?;
        (ready.status == "True").then_some(())
    })
    .await;
    qrs.assert_every_request_carried_a_matching_xrfkey().await;
}

#[tokio::test]
async fn a_secret_push_writes_a_qrs_data_connections_username_and_password() {
    const PASSWORD: &str = "site-db-password-0123456789";
    let (rig, qrs) = start(&[Controller::Tenant, Controller::SecretPush]).await;
    let connection = qrs
        .seed_data_connection("warehouse", "old_user", "old-password-0123")
        .await;
    rig.create(&site_tenant(&qrs, &[])).await;
    rig.create_secret(
        "warehouse-creds",
        &[("user", "svc_reader"), ("password", PASSWORD)],
    )
    .await;
    let push = |name: &str, fields: Value| -> SecretPush {
        from_json(json!({
            "apiVersion": "qlikops.io/v1alpha1", "kind": "SecretPush",
            "metadata": { "name": name },
            "spec": {
                "tenantRef": { "name": TENANT },
                "secretName": "warehouse-creds",
                "target": { "dataConnection": { "name": "warehouse", "fields": fields } },
            },
        }))
    };
    rig.create(&push(
        "warehouse",
        json!({ "username": "user", "password": "password" }),
    ))
    .await;
    let stored = support::eventually("the credentials in the site", DEADLINE, || async {
        let stored = qrs.data_connection(&connection).await;
        (stored["password"] == PASSWORD).then_some(stored)
    })
    .await;
    assert_eq!(stored["username"], "svc_reader");
    assert_eq!(
        stored["name"], "warehouse",
        "other fields of the connection changed"
    );

    let pushes = rig.api::<SecretPush>();
    let pushed = support::eventually("the SecretPush Ready", DEADLINE, || async {
        let p = pushes.get("warehouse").await.ok()?;
        let ready = p
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == "True").then_some(p)
    })
    .await;
    let text = serde_json::to_string(&pushed.status).expect("the status");
    assert!(
        !text.contains(PASSWORD),
        "the password is in the status: {text}"
    );
    assert_eq!(
        pushed.status.as_ref().and_then(|s| s.target_id.as_deref()),
        Some(connection.as_str())
    );

    // The cloud's fields do not exist on a QRS data connection: refused, nothing written.
    let writes = count(&qrs, "dataconnection.update", None).await;
    rig.create(&push("cloud-fields", json!({ "qPassword": "password" })))
        .await;
    let refused = support::eventually("the cloud fields refused", DEADLINE, || async {
        let p = pushes.get("cloud-fields").await.ok()?;
        let ready = p
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == "False").then(|| ready.clone())
    })
    .await;
    assert_eq!(refused.reason, "Unsupported", "{}", refused.message);
    assert_eq!(count(&qrs, "dataconnection.update", None).await, writes);
    qrs.assert_every_request_carried_a_matching_xrfkey().await;
}

#[tokio::test]
async fn an_unreachable_site_is_recorded_once_not_rewritten_on_every_failed_attempt() {
    let (rig, qrs) = start(&[Controller::Tenant]).await;
    let mut tenant = site_tenant(&qrs, &[""]);
    // Nothing listens on port 1.
    if let Some(site) = tenant.spec.client_managed.as_mut() {
        site.url = "https://127.0.0.1:1".to_owned();
    }
    rig.create(&tenant).await;
    let unreachable = rig
        .wait_tenant(TENANT, "Ready=False Unreachable", |t| {
            let ready = condition(t, "Ready")?;
            (ready.reason == "Unreachable").then(|| t.clone())
        })
        .await;
    let message = &condition(&unreachable, "Ready").expect("Ready").message;
    // Each request carries a fresh Xrfkey; a message quoting it would differ every time.
    assert!(!message.contains("xrfkey"), "{message}");

    // Two more failed reconciles leave the status as it was: nothing to wake a third.
    let version = unreachable.metadata.resource_version.clone();
    let failed = rig.tenant_failures("Unreachable");
    support::eventually("two more failed reconciles", DEADLINE, || async {
        (rig.tenant_failures("Unreachable") >= failed + 2).then_some(())
    })
    .await;
    let now = rig
        .api::<QlikTenant>()
        .get(TENANT)
        .await
        .expect("the tenant");
    assert_eq!(
        now.metadata.resource_version, version,
        "the status was rewritten"
    );
}

#[tokio::test]
async fn a_site_on_a_host_not_allowed_is_refused_before_its_certificate_is_read() {
    // The operator's default allow-list: Qlik Cloud only, not the site's 127.0.0.1.
    let rig = TenantRig::builder()
        .allowed_hosts(qlik_csp_operator::controller::allowed_hosts::AllowedHosts::default())
        .run(Controller::Tenant)
        .start()
        .await;
    let qrs = QrsSiteFixture::start().await;
    // No certificate Secret at all: a SecretNotFound would mean it was looked up first.
    rig.create(&site_tenant(&qrs, &[""])).await;
    let refused = rig
        .wait_tenant(TENANT, "Ready=False HostNotAllowed", |t| {
            let ready = condition(t, "Ready")?;
            (ready.status == "False" && ready.reason == "HostNotAllowed").then(|| ready.clone())
        })
        .await;
    assert!(
        refused.message.contains("\"127.0.0.1\""),
        "{}",
        refused.message
    );
    assert!(qrs.requests().await.is_empty(), "the site was called");
}
