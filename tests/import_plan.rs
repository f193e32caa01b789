//! Bringing a hand-made tenant under Git, on the real apiserver with the emulator:
//! `qlik-csp-operator import` writes manifests that the operator adopts with no tenant
//! write, and `qlik-csp-operator plan` predicts exactly the tenant writes the operator then
//! makes. The commands run as a user runs them: the binary, the credential in the
//! environment.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use qlik_csp_operator::api::CspEntry;
use qlik_csp_operator::csp::Directive;
use qlik_csp_operator::tenant::wire::CspOriginContent;
use serde_json::{Value, json};
use support::tenant_rig::{ADMIN_KEY, Controller, DEADLINE, TENANT, TenantRig};

/// The tenant writes that change it, by their success status. A create the tenant
/// refuses is not one: an entry clicked in the console since the operator last listed the
/// tenant costs one refused create (Qlik refuses a second entry for an origin) before the
/// operator lists again and adopts it.
const WRITES: [(&str, &str); 3] = [
    ("csp-origins.create", "201"),
    ("csp-origins.update", "200"),
    ("csp-origins.delete", "204"),
];

/// A rig running the tenant and csp-entry controllers, its QlikTenant connected.
async fn rig() -> TenantRig {
    let rig = TenantRig::builder()
        .run(Controller::Tenant)
        .run(Controller::CspEntry)
        .start()
        .await;
    rig.create_admin_secret().await;
    rig.create(&rig.qlik_tenant(TENANT, json!({}))).await;
    rig.wait_tenant(TENANT, "the tenant connected", |t| {
        support::is_ready(serde_json::to_value(&t.status).ok().as_ref()).then_some(())
    })
    .await;
    rig
}

/// Creates an entry in the tenant, as someone would in the console (where origins the
/// operator refuses can be typed too).
async fn click(rig: &TenantRig, name: &str, origin: &str, directives: &[Directive]) -> String {
    let mut content = CspOriginContent {
        name: name.to_owned(),
        origin: origin.to_owned(),
        ..CspOriginContent::default()
    };
    for directive in directives {
        *content.flag_mut(*directive) = true;
    }
    let created = rig.admin().create_csp_origin(&content).await;
    created
        .unwrap_or_else(|e| panic!("failed to seed {origin}: {e}"))
        .id
}

/// Runs the operator's command line with the tenant's admin key in the environment (the
/// emulator answers from this test's runtime meanwhile) and the test cluster as its
/// kubeconfig (read by `plan --cluster` only).
async fn command(rig: &TenantRig, args: &[&str]) -> Output {
    let ca = rig_ca(rig);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_qlik-csp-operator"))
        .args(args)
        .args(["--tenant-url", &rig.emulator.base_url(), "--ca-file"])
        .arg(&ca)
        .env("QLIK_API_KEY", ADMIN_KEY)
        .env("KUBECONFIG", &rig.env.control_plane.kubeconfig)
        .output()
        .await;
    output.unwrap_or_else(|e| panic!("failed to run qlik-csp-operator: {e}"))
}

fn rig_ca(rig: &TenantRig) -> PathBuf {
    let path = std::env::temp_dir().join(format!("import-plan-ca-{}.pem", rig.ns()));
    std::fs::write(&path, rig.emulator.ca_pem()).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// The tenant writes made so far: creates, updates, deletes.
async fn writes(rig: &TenantRig) -> [u64; 3] {
    let mut counts = [0; 3];
    for (count, (operation, status)) in counts.iter_mut().zip(WRITES) {
        *count = rig.control.count_status(operation, status).await;
    }
    counts
}

/// Applies every CspEntry in `dir` (server-side apply, as GitOps does).
async fn apply_dir(rig: &TenantRig, dir: &Path) -> Vec<String> {
    let manifests = qlik_csp_operator::manifests::read_paths(&[dir.to_path_buf()]);
    let manifests = manifests.unwrap_or_else(|p| panic!("the output does not parse: {p:?}"));
    let api: Api<CspEntry> = rig.api();
    let mut names = Vec::new();
    for entry in manifests.entries {
        let name = entry.object.metadata.name.clone().unwrap_or_default();
        let params = PatchParams::apply("gitops").force();
        let applied = api
            .patch(&name, &params, &Patch::Apply(&entry.object))
            .await;
        applied.unwrap_or_else(|e| panic!("failed to apply CspEntry {name}: {e}"));
        names.push(name);
    }
    names
}

/// Waits until every CspEntry `names` is Ready for its generation, and returns its reason.
async fn wait_all_ready(rig: &TenantRig, names: &[String]) -> Vec<String> {
    let api: Api<CspEntry> = rig.api();
    let mut reasons = Vec::new();
    for name in names {
        let what = format!("CspEntry {name} Ready");
        let reason = support::eventually(&what, DEADLINE, || async {
            let entry = api.get(name).await.ok()?;
            let status = entry.status.as_ref()?;
            let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
            let current = status.observed_generation == entry.metadata.generation;
            (current && ready.status == "True").then(|| ready.reason.clone())
        })
        .await;
        reasons.push(reason);
    }
    reasons
}

fn plan_json(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        panic!("plan printed no JSON ({e}): {stdout}\n{stderr}")
    })
}

/// `(change, entry)` of every change a JSON plan lists, in its order.
fn actions(plan: &Value) -> Vec<(String, String)> {
    let changes = plan["changes"].as_array().cloned().unwrap_or_default();
    changes
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (field("change"), field("entry"))
        })
        .collect()
}

#[tokio::test]
async fn an_imported_tenant_is_adopted_with_no_tenant_write() {
    use Directive::{ConnectSrc, FontSrc, FrameAncestors, ImgSrc, ScriptSrc};
    let rig = rig().await;
    click(
        &rig,
        "Maps",
        "https://maps.example.com",
        &[ImgSrc, ScriptSrc],
    )
    .await;
    click(&rig, "Fonts (by hand)", "fonts.example.com", &[FontSrc]).await;
    click(
        &rig,
        "Portal",
        "https://*.portal.example.com",
        &[FrameAncestors],
    )
    .await;
    click(&rig, "Live", "wss://live.example.com:8443", &[ConnectSrc]).await;
    let refused = click(&rig, "Nothing yet", "https://later.example.com", &[]).await;

    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = out.path().display().to_string();
    let ns = rig.ns().to_owned();
    let import = [
        "import",
        "--namespace",
        &ns,
        "--tenant-ref",
        TENANT,
        "--out",
        &dir,
    ];
    let output = command(&rig, &import).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("skipped: entry {refused} (\"Nothing yet\"")),
        "the refused entry is listed with its reason: {stderr}"
    );
    assert!(stderr.contains("imported 4 entries"), "{stderr}");
    let mut files: Vec<String> = std::fs::read_dir(out.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|f| f.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "fonts-example-com.yaml",
            "maps-example-com.yaml",
            "qlik-tenant.yaml",
            "wildcard-portal-example-com.yaml",
            "wss-live-example-com-8443.yaml",
        ]
    );

    let before = writes(&rig).await;
    let names = apply_dir(&rig, out.path()).await;
    let reasons = wait_all_ready(&rig, &names).await;
    assert_eq!(reasons, ["Adopted"; 4], "{names:?}");
    assert_eq!(writes(&rig).await, before, "adopting wrote to the tenant");

    // A later plan of the same manifests has nothing to write.
    let output = command(&rig, &["plan", "-o", "json", "-f", &dir]).await;
    assert_eq!(output.status.code(), Some(0), "{}", plan_json(&output));
    let plan = plan_json(&output);
    assert_eq!(plan["summary"]["tenantWrites"], 0);
    assert_eq!(
        plan["summary"]["unmanaged"], 1,
        "the refused entry is left alone"
    );

    // A pull request drops an adopted entry. Its tenant entry still has its console name,
    // so only the cluster's status.id shows the operator will delete it.
    std::fs::remove_file(out.path().join("maps-example-com.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let guess = plan_json(&command(&rig, &["plan", "-o", "json", "-f", &dir]).await);
    assert_eq!(
        actions(&guess).iter().filter(|a| a.0 == "delete").count(),
        0
    );
    let output = command(&rig, &["plan", "--cluster", "-o", "json", "-f", &dir]).await;
    assert_eq!(output.status.code(), Some(2), "{}", plan_json(&output));
    let exact = plan_json(&output);
    let deletes: Vec<(String, String)> = actions(&exact)
        .into_iter()
        .filter(|a| a.0 == "delete")
        .collect();
    assert_eq!(
        deletes,
        [("delete".to_owned(), "maps-example-com".to_owned())]
    );
}

#[tokio::test]
async fn plan_predicts_exactly_the_writes_the_operator_makes() {
    use Directive::{FontSrc, ImgSrc, ScriptSrc};
    let rig = rig().await;
    // What Git held so far, synced by the operator.
    let before_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_entries(
        before_dir.path(),
        rig.ns(),
        &[
            ("cdn", "https://cdn.example.com", &["img-src"]),
            ("fonts", "https://fonts.example.com", &["font-src"]),
            ("old", "https://old.example.com", &["img-src"]),
        ],
    );
    let names = apply_dir(&rig, before_dir.path()).await;
    wait_all_ready(&rig, &names).await;
    // What people clicked in the console.
    click(&rig, "Maps", "https://maps.example.com", &[ImgSrc]).await;
    click(&rig, "Scripts", "https://scripts.example.com", &[ScriptSrc]).await;
    click(&rig, "Hand made", "https://hand.example.com", &[FontSrc]).await;

    // The pull request.
    let after_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_entries(
        after_dir.path(),
        rig.ns(),
        &[
            ("cdn", "https://cdn.example.com", &["img-src"]), // unchanged
            (
                "fonts",
                "https://fonts.example.com",
                &["font-src", "style-src"],
            ), // update
            ("maps", "https://maps.example.com", &["img-src"]), // adopt, no write
            ("scripts", "https://scripts.example.com", &["img-src"]), // adopt with an update
            ("new", "https://new.example.com", &["img-src"]), // create
            ("zz-dup", "https://CDN.example.com", &["img-src"]), // duplicate of cdn
        ],
    );
    let dir = after_dir.path().display().to_string();
    let output = command(&rig, &["plan", "-o", "json", "-f", &dir]).await;
    let plan = plan_json(&output);
    assert_eq!(output.status.code(), Some(2), "changes: exit code 2");
    let expected = [
        ("unchanged", "cdn"),
        ("update", "fonts"),
        ("adopt", "maps"),
        ("create", "new"),
        ("update", "scripts"),
        ("delete", "old"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(c, e)| ((*c).to_owned(), (*e).to_owned()))
        .collect();
    assert_eq!(actions(&plan), expected);
    assert_eq!(plan["unmanaged"][0]["name"], "Hand made");
    assert_eq!(plan["problems"][0]["entry"], "zz-dup");
    assert_eq!(plan["problems"][0]["reason"], "DuplicateOrigin");
    let text = command(&rig, &["plan", "-f", &dir]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("directives: \"font-src\" → \"font-src style-src\""),
        "{text}"
    );

    // Merged: GitOps applies the new manifests and prunes the CspEntry Git no longer has.
    let before = writes(&rig).await;
    let mut applied = apply_dir(&rig, after_dir.path()).await;
    let api: Api<CspEntry> = rig.api();
    let pruned = api.delete("old", &DeleteParams::default()).await;
    pruned.unwrap_or_else(|e| panic!("failed to delete CspEntry old: {e}"));
    applied.retain(|n| n != "zz-dup");
    wait_all_ready(&rig, &applied).await;
    support::eventually("CspEntry old gone", DEADLINE, || async {
        api.get_opt("old")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
    // Every write is done: each entry turns Ready only after its write, and `old` is
    // gone only after its tenant entry was deleted.
    let after = writes(&rig).await;
    let made: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    let summary = &plan["summary"];
    let predicted: Vec<u64> = ["create", "update", "delete"]
        .iter()
        .map(|k| summary[k].as_u64().unwrap_or(u64::MAX))
        .collect();
    assert_eq!(
        made, predicted,
        "tenant writes made vs predicted (create, update, delete)"
    );

    // And planning again shows nothing left to write.
    let output = command(&rig, &["plan", "-o", "json", "-f", &dir]).await;
    assert_eq!(output.status.code(), Some(0), "{}", plan_json(&output));
}

fn write_entries(dir: &Path, namespace: &str, entries: &[(&str, &str, &[&str])]) {
    for (name, origin, directives) in entries {
        let entry = json!({
            "apiVersion": "qlikops.io/v1alpha1", "kind": "CspEntry",
            "metadata": { "name": name, "namespace": namespace },
            "spec": { "tenantRef": { "name": TENANT }, "origin": origin, "directives": directives },
        });
        let text = serde_norway::to_string(&entry).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join(format!("{name}.yaml")), text).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_plan_that_cannot_read_the_tenant_exits_1_and_says_why() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/csp-entries.yaml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_qlik-csp-operator"))
        .args([
            "plan",
            "--tenant-url",
            "https://acme.eu.qlikcloud.com",
            "-f",
        ])
        .arg(&examples)
        .env_remove("QLIK_API_KEY")
        .env_remove("QLIK_CLIENT_ID")
        .env_remove("QLIK_CLIENT_SECRET")
        .output()
        .unwrap_or_else(|e| panic!("failed to run qlik-csp-operator: {e}"));
    assert_eq!(output.status.code(), Some(1), "1 is an error, never a plan");
    assert!(output.stdout.is_empty(), "no plan is printed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("no credential: set QLIK_API_KEY, or QLIK_CLIENT_ID and QLIK_CLIENT_SECRET"),
        "{stderr}"
    );
}
