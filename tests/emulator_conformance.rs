//! Conformance of the tenant emulator with Qlik's API definitions
//! (`../shared/qlik-api/cloud/*.json`, read in place, never copied): every operation is
//! sent over real HTTPS, in its success and error cases, and every answer is checked
//! against the definition of its path, method and status (see `emulator_conformance/spec.rs`;
//! the checker's own tests are in `emulator_conformance/checker.rs`, the secret targets'
//! APIs in `emulator_conformance/secret_targets.rs`).
//!
//! Without the definitions the tests that need them fail, unless the developer opted out
//! with `cargo xtask test --without-qlik-definitions` (which says so loudly). The tests of
//! the emulator's own behaviour (the header cap, the tier rate limits) need no definitions
//! and always run.

#[path = "emulator_conformance/checker.rs"]
mod checker;
#[path = "emulator_conformance/closed.rs"]
mod closed;
#[path = "emulator_conformance/harness.rs"]
mod harness;
#[path = "emulator_conformance/secret_targets.rs"]
mod secret_targets;
#[path = "emulator_conformance/spec.rs"]
mod spec;

use harness::{ADMIN, CLIENT_ID, CLIENT_SECRET, Payload, entry, harness, harness_with, unchecked};
use qlik_csp_operator::emulator::{EmulatorConfig, Operation, Tier, codes};
use serde_json::json;
use spec::{Specs, spec_dir};

#[tokio::test]
async fn every_operation_is_in_qliks_definitions_with_the_tier_the_emulator_enforces() {
    let Some(dir) = spec_dir() else { return };
    let specs = Specs::load(&dir);
    let defaults = EmulatorConfig::default();
    for op in Operation::ALL {
        let tier = &specs.operation(op)["x-qlik-tier"];
        let (expected_tier, limit) = match op.tier() {
            Tier::Read => ("1", defaults.reads_per_minute),
            Tier::Write => ("2", defaults.writes_per_minute),
        };
        assert_eq!(tier["tier"], json!(expected_tier), "{}", op.name());
        assert_eq!(tier["limit"], json!(limit), "{}", op.name());
    }
}

#[tokio::test]
async fn csp_origins_answers_conform_including_paging_limits_and_errors() {
    use Operation::*;
    let Some(h) = harness().await else { return };
    let path = "/api/v1/csp-origins";

    h.anon(CspOriginsList, path).await;
    let wrong = h
        .send(CspOriginsList, path, Some("not-a-token"), Payload::None)
        .await;
    assert_eq!(wrong.status, 401);

    let mut ids = Vec::new();
    for i in 0..5 {
        let mut body = entry(&format!("https://cdn{i}.example.com"));
        body["connectSrcWSS"] = json!(i == 0);
        let created = h.admin_json(CspOriginsCreate, path, body).await;
        assert_eq!(created.status, 201, "{}", created.text);
        ids.push(created.body()["id"].as_str().unwrap().to_owned());
    }
    let bad_origin = h
        .admin_json(CspOriginsCreate, path, entry("https://a.example.com/path"))
        .await;
    assert_eq!(bad_origin.status, 400);
    let malformed = h
        .send(
            CspOriginsCreate,
            path,
            Some(ADMIN),
            Payload::Raw("application/json", "{\"origin\":".to_owned()),
        )
        .await;
    assert_eq!(malformed.status, 400);
    let duplicate = h
        .admin_json(CspOriginsCreate, path, entry("https://CDN1.example.com"))
        .await;
    assert_eq!(
        (duplicate.status, duplicate.error_code()),
        (400, codes::CSP_DUPLICATE_ORIGIN)
    );

    let one = format!("{path}/{}", ids[1]);
    let got = h.admin(CspOriginsGet, &one).await;
    assert_eq!(got.body()["origin"], "https://cdn1.example.com");
    let missing = h.admin(CspOriginsGet, &format!("{path}/nope")).await;
    assert_eq!(missing.status, 404);

    let mut replacement = entry("https://cdn1.example.com");
    replacement["frameAncestors"] = json!(true);
    replacement["scriptSrc"] = json!(false);
    let updated = h
        .admin_json(CspOriginsUpdate, &one, replacement.clone())
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body()["frameAncestors"], true);
    assert_eq!(updated.body()["scriptSrc"], false);
    assert_eq!(updated.body()["createdDate"], got.body()["createdDate"]);
    let update_missing = h
        .admin_json(CspOriginsUpdate, &format!("{path}/nope"), replacement)
        .await;
    assert_eq!(update_missing.status, 404);
    let update_invalid = h
        .admin_json(CspOriginsUpdate, &one, json!({"origin": "a b"}))
        .await;
    assert_eq!(update_invalid.status, 400);

    // Paging: follow next to the end, then prev back, by the links' full URLs.
    let mut seen = Vec::new();
    let mut page = h.admin(CspOriginsList, &format!("{path}?limit=2")).await;
    loop {
        assert_eq!(page.status, 200);
        let data = page.body()["data"].as_array().unwrap().clone();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        let Some(next) = page.body()["links"]["next"]["href"]
            .as_str()
            .map(str::to_owned)
        else {
            break;
        };
        assert!(next.starts_with(&h.emulator.base_url()), "{next}");
        page = h.admin(CspOriginsList, &next).await;
    }
    assert_eq!(seen, ids, "creation order, every entry once");
    let prev = page.body()["links"]["prev"]["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = h.admin(CspOriginsList, &prev).await;
    assert_eq!(back.body()["data"].as_array().unwrap().len(), 2);

    for limit in ["101", "0", "2.5", "x"] {
        let refused = h
            .admin(CspOriginsList, &format!("{path}?limit={limit}"))
            .await;
        assert_eq!(refused.status, 400, "limit={limit}");
    }
    let bad_cursor = h.admin(CspOriginsList, &format!("{path}?next=zz")).await;
    assert_eq!(bad_cursor.status, 400);
    let filtered = h
        .admin(
            CspOriginsList,
            &format!("{path}?origin=*CDN3*&scriptSrc=true"),
        )
        .await;
    let data = filtered.body()["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["origin"], "https://cdn3.example.com");

    let header_path = "/api/v1/csp-origins/actions/generate-header";
    let header = h.admin(CspOriginsGenerateHeader, header_path).await;
    let value = header.body()["Content-Security-Policy"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        value.contains("frame-ancestors 'self' https://cdn1.example.com"),
        "{value}"
    );
    assert!(value.contains("wss://cdn0.example.com"), "{value}");
    let text = h
        .send_with(
            CspOriginsGenerateHeader,
            header_path,
            Some(ADMIN),
            Payload::None,
            &[("accept", "text/plain")],
        )
        .await;
    assert_eq!((text.status, text.text.as_str()), (200, value.as_str()));
    let not_acceptable = h
        .send_with(
            CspOriginsGenerateHeader,
            header_path,
            Some(ADMIN),
            Payload::None,
            &[("accept", "application/xml")],
        )
        .await;
    assert_eq!(not_acceptable.status, 406);
    h.anon(CspOriginsGenerateHeader, header_path).await;

    let deleted = h.admin(CspOriginsDelete, &one).await;
    assert_eq!(deleted.status, 204);
    let again = h.admin(CspOriginsDelete, &one).await;
    assert_eq!(again.status, 404);

    // Qlik's limit: 256 entries per tenant (short origins keep the header under 6,144).
    for i in 4..256 {
        let body = json!({"origin": format!("e{i}.io"), "imgSrc": true});
        let created = h.admin_json(CspOriginsCreate, path, body).await;
        assert_eq!(created.status, 201, "entry {i}: {}", created.text);
    }
    let over = h.admin_json(CspOriginsCreate, path, entry("e256.io")).await;
    assert_eq!(
        (over.status, over.error_code()),
        (400, codes::CSP_ENTRY_LIMIT)
    );

    for op in [
        CspOriginsGet,
        CspOriginsCreate,
        CspOriginsUpdate,
        CspOriginsDelete,
    ] {
        let target = if op == CspOriginsCreate {
            path.to_owned()
        } else {
            format!("{path}/{}", ids[0])
        };
        let payload = if matches!(op, CspOriginsCreate | CspOriginsUpdate) {
            Payload::Json(entry("https://x.example.com"))
        } else {
            Payload::None
        };
        let unauthorized = h.send(op, &target, None, payload).await;
        assert_eq!(unauthorized.status, 401);
    }
    h.assert_covered(&[
        (CspOriginsList, 200),
        (CspOriginsList, 400),
        (CspOriginsList, 401),
        (CspOriginsGet, 200),
        (CspOriginsGet, 401),
        (CspOriginsGet, 404),
        (CspOriginsCreate, 201),
        (CspOriginsCreate, 400),
        (CspOriginsCreate, 401),
        (CspOriginsUpdate, 200),
        (CspOriginsUpdate, 400),
        (CspOriginsUpdate, 401),
        (CspOriginsUpdate, 404),
        (CspOriginsDelete, 204),
        (CspOriginsDelete, 401),
        (CspOriginsDelete, 404),
        (CspOriginsGenerateHeader, 200),
        (CspOriginsGenerateHeader, 401),
        (CspOriginsGenerateHeader, 406),
    ]);
}

#[tokio::test]
async fn a_change_that_would_make_the_header_longer_than_qliks_cap_is_refused() {
    let h = unchecked(EmulatorConfig::default()).await;
    let label = "a".repeat(60);
    let mut refused = None;
    for i in 0..40 {
        let origin = format!("https://{label}.{label}.{label}.n{i:02}.example.com");
        let body = json!({"origin": origin, "imgSrc": true, "scriptSrc": true});
        let reply = h
            .admin_json(Operation::CspOriginsCreate, "/api/v1/csp-origins", body)
            .await;
        if reply.status != 201 {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("the header cap is reached before 40 long origins");
    assert_eq!(
        (refused.status, refused.error_code()),
        (400, codes::CSP_HEADER_TOO_LONG)
    );
    let header = h
        .admin(
            Operation::CspOriginsGenerateHeader,
            "/api/v1/csp-origins/actions/generate-header",
        )
        .await;
    let value = header.body()["Content-Security-Policy"].as_str().unwrap();
    assert!(value.len() <= 6144, "{}", value.len());
}

#[tokio::test]
async fn api_keys_answers_conform_including_expiry_limits_and_errors() {
    use Operation::*;
    let Some(h) = harness().await else { return };
    let path = "/api/v1/api-keys";
    let tenant = h.emulator.tenant_id().to_owned();

    let short = h
        .admin_json(
            ApiKeysCreate,
            path,
            json!({"description": "short", "expiry": "PT1H"}),
        )
        .await;
    assert_eq!(short.status, 201, "{}", short.text);
    let short_token = short.body()["token"].as_str().unwrap().to_owned();
    let short_id = short.body()["id"].as_str().unwrap().to_owned();

    let too_long = h
        .admin_json(
            ApiKeysCreate,
            path,
            json!({"description": "x", "expiry": "P2D"}),
        )
        .await;
    assert_eq!(
        (too_long.status, too_long.error_code()),
        (400, codes::API_KEY_EXPIRY)
    );
    for body in [
        json!({"expiry": "PT1H"}),
        json!({"description": "x", "expiry": "one day"}),
    ] {
        let refused = h.admin_json(ApiKeysCreate, path, body).await;
        assert_eq!(refused.status, 400);
    }
    let mut ids = vec![short_id.clone()];
    for i in 0..4 {
        let created = h
            .admin_json(
                ApiKeysCreate,
                path,
                json!({"description": format!("key {i}")}),
            )
            .await;
        assert_eq!(created.status, 201);
        ids.push(created.body()["id"].as_str().unwrap().to_owned());
    }
    let sixth = h
        .admin_json(ApiKeysCreate, path, json!({"description": "one too many"}))
        .await;
    assert_eq!(
        (sixth.status, sixth.error_code()),
        (400, codes::API_KEY_LIMIT)
    );

    // An issued key authenticates, and sees itself.
    let me = h
        .send(
            UsersMe,
            "/api/v1/users/me",
            Some(&short_token),
            Payload::None,
        )
        .await;
    assert_eq!(me.status, 301);
    let got = h
        .send(
            ApiKeysGet,
            &format!("{path}/{short_id}"),
            Some(&short_token),
            Payload::None,
        )
        .await;
    assert_eq!(
        (got.status, got.body()["status"].as_str()),
        (200, Some("active"))
    );
    assert!(
        got.body().get("token").is_none(),
        "the token is only in the create response"
    );
    let missing = h.admin(ApiKeysGet, &format!("{path}/nope")).await;
    assert_eq!(missing.status, 404);

    // Paging, newest first, by startingAfter links.
    let mut seen = Vec::new();
    let mut page = h.admin(ApiKeysList, &format!("{path}?limit=2")).await;
    loop {
        assert_eq!(page.status, 200);
        seen.extend(
            page.body()["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["id"].as_str().unwrap().to_owned()),
        );
        let Some(next) = page.body()["links"]["next"]["href"]
            .as_str()
            .map(str::to_owned)
        else {
            break;
        };
        page = h.admin(ApiKeysList, &next).await;
    }
    ids.reverse();
    assert_eq!(seen, ids);
    let over = h.admin(ApiKeysList, &format!("{path}?limit=101")).await;
    assert_eq!(over.status, 400);

    // The emulator clock expires the one-hour key.
    h.advance_clock(2 * 3600).await;
    let expired = h
        .send(ApiKeysList, path, Some(&short_token), Payload::None)
        .await;
    assert_eq!(expired.status, 401);
    let status = h.admin(ApiKeysGet, &format!("{path}/{short_id}")).await;
    assert_eq!(status.body()["status"], "expired");
    let active = h.admin(ApiKeysList, &format!("{path}?status=active")).await;
    assert_eq!(active.body()["data"].as_array().unwrap().len(), 4);

    // Deleting a key revokes its token at once.
    let doomed = h
        .admin_json(ApiKeysCreate, path, json!({"description": "doomed"}))
        .await;
    let doomed_id = doomed.body()["id"].as_str().unwrap().to_owned();
    let doomed_token = doomed.body()["token"].as_str().unwrap().to_owned();
    let deleted = h.admin(ApiKeysDelete, &format!("{path}/{doomed_id}")).await;
    assert_eq!(deleted.status, 204);
    let revoked = h
        .send(
            ApiKeysGet,
            &format!("{path}/{doomed_id}"),
            Some(&doomed_token),
            Payload::None,
        )
        .await;
    assert_eq!(revoked.status, 401);
    let again = h.admin(ApiKeysDelete, &format!("{path}/{doomed_id}")).await;
    assert_eq!(again.status, 404);

    let config = h
        .admin(ApiKeysGetConfig, &format!("{path}/configs/{tenant}"))
        .await;
    assert_eq!(config.body()["max_api_key_expiry"], "PT24H");
    assert_eq!(config.body()["max_keys_per_user"], 5);
    let other = h
        .admin(ApiKeysGetConfig, &format!("{path}/configs/other"))
        .await;
    assert_eq!(other.status, 404);

    for (op, target) in [
        (ApiKeysList, path.to_owned()),
        (ApiKeysGet, format!("{path}/{short_id}")),
        (ApiKeysCreate, path.to_owned()),
        (ApiKeysDelete, format!("{path}/{short_id}")),
        (ApiKeysGetConfig, format!("{path}/configs/{tenant}")),
    ] {
        let payload = if op == ApiKeysCreate {
            Payload::Json(json!({"description": "x"}))
        } else {
            Payload::None
        };
        assert_eq!(h.send(op, &target, None, payload).await.status, 401);
    }
    h.assert_covered(&[
        (ApiKeysList, 200),
        (ApiKeysList, 400),
        (ApiKeysList, 401),
        (ApiKeysGet, 200),
        (ApiKeysGet, 401),
        (ApiKeysGet, 404),
        (ApiKeysCreate, 201),
        (ApiKeysCreate, 400),
        (ApiKeysCreate, 401),
        (ApiKeysDelete, 204),
        (ApiKeysDelete, 401),
        (ApiKeysDelete, 404),
        (ApiKeysGetConfig, 200),
        (ApiKeysGetConfig, 401),
        (ApiKeysGetConfig, 404),
    ]);
}

#[tokio::test]
async fn oauth_client_secrets_and_tokens_conform_including_the_secret_limit() {
    use Operation::*;
    let Some(h) = harness().await else { return };
    let client_path = format!("/api/v1/oauth-clients/{CLIENT_ID}");
    let secrets_path = format!("{client_path}/client-secrets");
    let form = |secret: &str| {
        Payload::Raw(
            "application/x-www-form-urlencoded",
            format!("grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={secret}"),
        )
    };

    let token = h
        .send(OAuthToken, "/oauth/token", None, form(CLIENT_SECRET))
        .await;
    assert_eq!(token.status, 200, "{}", token.text);
    assert_eq!(token.body()["expires_in"], 21600);
    let access = token.body()["access_token"].as_str().unwrap().to_owned();
    let json_token = h.send(
            OAuthToken,
            "/oauth/token",
            None,
            Payload::Json(json!({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})),
        )
        .await;
    assert_eq!(json_token.status, 200);
    for (payload, status) in [
        (form("wrong"), 401),
        (
            Payload::Raw(
                "application/x-www-form-urlencoded",
                "grant_type=client_credentials&client_id=nobody&client_secret=x".to_owned(),
            ),
            401,
        ),
        (
            Payload::Raw(
                "application/x-www-form-urlencoded",
                format!("client_id={CLIENT_ID}"),
            ),
            400,
        ),
        (
            Payload::Json(json!({"grant_type": "password", "client_id": CLIENT_ID})),
            400,
        ),
        (Payload::Raw("application/json", "not json".to_owned()), 400),
    ] {
        assert_eq!(
            h.send(OAuthToken, "/oauth/token", None, payload)
                .await
                .status,
            status
        );
    }

    let client = h
        .send(OAuthClientsGet, &client_path, Some(&access), Payload::None)
        .await;
    assert_eq!(client.status, 200);
    let seeded_hint = client.body()["clientSecrets"][0]["hint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(CLIENT_SECRET.ends_with(&seeded_hint));

    let mut created = Vec::new();
    for _ in 0..4 {
        let secret = h.admin(OAuthClientsCreateSecret, &secrets_path).await;
        assert_eq!(secret.status, 201);
        created.push((
            secret.body()["clientSecret"].as_str().unwrap().to_owned(),
            secret.body()["hint"].as_str().unwrap().to_owned(),
        ));
    }
    let sixth = h.admin(OAuthClientsCreateSecret, &secrets_path).await;
    assert_eq!(
        (sixth.status, sixth.error_code()),
        (409, codes::CLIENT_SECRET_LIMIT)
    );
    let listed = h.admin(OAuthClientsGet, &client_path).await;
    assert_eq!(listed.body()["clientSecrets"].as_array().unwrap().len(), 5);

    // A new secret works; deleting the seeded one stops it, not the tokens it issued.
    let fresh = h
        .send(OAuthToken, "/oauth/token", None, form(&created[0].0))
        .await;
    assert_eq!(fresh.status, 200);
    let deleted = h
        .admin(
            OAuthClientsDeleteSecret,
            &format!("{secrets_path}/{seeded_hint}"),
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        h.send(OAuthToken, "/oauth/token", None, form(CLIENT_SECRET))
            .await
            .status,
        401
    );
    let still = h
        .send(OAuthClientsGet, &client_path, Some(&access), Payload::None)
        .await;
    assert_eq!(still.status, 200);
    let again = h
        .admin(
            OAuthClientsDeleteSecret,
            &format!("{secrets_path}/{seeded_hint}"),
        )
        .await;
    assert_eq!(again.status, 404);

    // Tokens expire by the emulator clock (about 6 hours).
    h.advance_clock(6 * 3600 + 1).await;
    assert_eq!(
        h.send(OAuthClientsGet, &client_path, Some(&access), Payload::None)
            .await
            .status,
        401
    );

    let unknown = "/api/v1/oauth-clients/nobody";
    assert_eq!(h.admin(OAuthClientsGet, unknown).await.status, 404);
    assert_eq!(
        h.admin(
            OAuthClientsCreateSecret,
            &format!("{unknown}/client-secrets")
        )
        .await
        .status,
        404
    );
    for (op, target) in [
        (OAuthClientsGet, client_path.clone()),
        (OAuthClientsCreateSecret, secrets_path.clone()),
        (
            OAuthClientsDeleteSecret,
            format!("{secrets_path}/{}", created[1].1),
        ),
    ] {
        assert_eq!(h.anon(op, &target).await.status, 401);
    }
    h.assert_covered(&[
        (OAuthToken, 200),
        (OAuthToken, 400),
        (OAuthToken, 401),
        (OAuthClientsGet, 200),
        (OAuthClientsGet, 401),
        (OAuthClientsGet, 404),
        (OAuthClientsCreateSecret, 201),
        (OAuthClientsCreateSecret, 401),
        (OAuthClientsCreateSecret, 404),
        (OAuthClientsCreateSecret, 409),
        (OAuthClientsDeleteSecret, 204),
        (OAuthClientsDeleteSecret, 401),
        (OAuthClientsDeleteSecret, 404),
    ]);
}

#[tokio::test]
async fn users_and_tenants_me_redirect_to_resources_that_conform() {
    use Operation::*;
    let Some(h) = harness().await else { return };
    let me = h.admin(UsersMe, "/api/v1/users/me").await;
    assert_eq!(me.status, 301);
    let location = me.header("location").unwrap().to_owned();
    let user = h.admin(UsersGet, &location).await;
    assert_eq!(user.status, 200);
    assert_eq!(user.body()["tenantId"], h.emulator.tenant_id());
    assert_eq!(h.admin(UsersGet, "/api/v1/users/nobody").await.status, 404);

    let tenant_me = h.admin(TenantsMe, "/api/v1/tenants/me").await;
    assert_eq!(tenant_me.status, 302);
    let location = tenant_me.header("location").unwrap().to_owned();
    assert!(location.ends_with(h.emulator.tenant_id()), "{location}");
    let tenant = h.admin(TenantsGet, &location).await;
    assert_eq!(tenant.body()["id"], h.emulator.tenant_id());
    assert_eq!(
        h.admin(TenantsGet, "/api/v1/tenants/other").await.status,
        404
    );

    for (op, target) in [
        (UsersMe, "/api/v1/users/me".to_owned()),
        (UsersGet, location.replace("tenants", "users")),
        (TenantsMe, "/api/v1/tenants/me".to_owned()),
        (TenantsGet, location.clone()),
    ] {
        assert_eq!(h.anon(op, &target).await.status, 401);
    }
    h.assert_covered(&[
        (UsersMe, 301),
        (UsersMe, 401),
        (UsersGet, 200),
        (UsersGet, 401),
        (UsersGet, 404),
        (TenantsMe, 302),
        (TenantsMe, 401),
        (TenantsGet, 200),
        (TenantsGet, 401),
        (TenantsGet, 404),
    ]);
}

/// One write per minute over a one-minute window, so the second write is refused.
fn one_write_per_minute() -> EmulatorConfig {
    EmulatorConfig {
        writes_per_minute: 1,
        rate_limit_window: std::time::Duration::from_secs(60),
        ..EmulatorConfig::default()
    }
}

fn token_form() -> Payload {
    Payload::Raw(
        "application/x-www-form-urlencoded",
        format!(
            "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
        ),
    )
}

#[tokio::test]
async fn the_emulator_enforces_tier_rate_limits_with_retry_after() {
    use Operation::*;
    let h = unchecked(one_write_per_minute()).await;
    let path = "/api/v1/csp-origins";
    let first = h
        .admin_json(CspOriginsCreate, path, entry("a.example.com"))
        .await;
    assert_eq!(first.status, 201);
    let limited = h
        .admin_json(CspOriginsCreate, path, entry("b.example.com"))
        .await;
    assert_eq!((limited.status, limited.error_code()), (429, "HTTP-429"));
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Reads have their own tier; the emulator clock moves the window on.
    assert_eq!(h.admin(CspOriginsList, path).await.status, 200);
    h.advance_clock(retry_after).await;
    let after = h
        .admin_json(CspOriginsCreate, path, entry("b.example.com"))
        .await;
    assert_eq!(after.status, 201);

    // Token requests count against the client's bot user.
    let token = h.send(OAuthToken, "/oauth/token", None, token_form()).await;
    assert_eq!(token.status, 200);
    let token = h.send(OAuthToken, "/oauth/token", None, token_form()).await;
    assert_eq!(token.status, 429);
    assert!(token.header("retry-after").is_some());
}

#[tokio::test]
async fn rate_limited_and_injected_error_answers_conform() {
    use Operation::*;
    let Some(h) = harness_with(one_write_per_minute()).await else {
        return;
    };
    let path = "/api/v1/csp-origins";
    for origin in ["a.example.com", "b.example.com"] {
        h.admin_json(CspOriginsCreate, path, entry(origin)).await;
    }
    for _ in 0..2 {
        h.send(OAuthToken, "/oauth/token", None, token_form()).await;
    }

    // Injected faults answer in each API's error shape.
    let faults = [
        (ApiKeysList, "/api/v1/api-keys", 429),
        (UsersMe, "/api/v1/users/me", 429),
        (CspOriginsGet, "/api/v1/csp-origins/x", 503),
        (OAuthClientsGet, "/api/v1/oauth-clients/x", 500),
        (TenantsGet, "/api/v1/tenants/x", 503),
        (ApiKeysGetConfig, "/api/v1/api-keys/configs/x", 500),
    ];
    for (op, target, status) in faults {
        h.add_fault(json!({"path": target, "fault": "status", "status": status, "retryAfter": 3, "times": 1}))
            .await;
        let reply = h.admin(op, target).await;
        assert_eq!(reply.status, status, "{}", op.name());
        assert_eq!(reply.header("retry-after"), Some("3"));
    }
    h.assert_covered(&[
        (CspOriginsCreate, 201),
        (CspOriginsCreate, 429),
        (OAuthToken, 200),
        (OAuthToken, 429),
        (ApiKeysList, 429),
        (UsersMe, 429),
        (CspOriginsGet, 503),
        (OAuthClientsGet, 500),
        (TenantsGet, 503),
        (ApiKeysGetConfig, 500),
    ]);
}
