//! `qlik-csp-operator render`: the header of `examples/` exactly, and problems located by
//! file, document and field with a failing exit code.

use std::path::Path;
use std::process::{Command, Output};

fn render(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qlik-csp-operator"))
        .arg("render")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("failed to run qlik-csp-operator: {e}"))
}

#[test]
fn the_examples_render_to_the_expected_header() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let file = |name: &str| examples.join(name).display().to_string();
    // The ingress-nginx setup; examples/gateway-api and examples/traefik hold alternatives.
    let output = render(&[
        "-f",
        &file("qlik-tenant.yaml"),
        "-f",
        &file("csp-entries.yaml"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "default-src 'self'; connect-src https://live.example.com wss://live.example.com; \
         font-src https://cdn.example.com; frame-ancestors 'self' https://portal.example.com; \
         img-src https://cdn.example.com; script-src https://cdn.example.com; \
         style-src https://cdn.example.com\n"
    );
    assert!(
        stderr.is_empty(),
        "the examples' tenant is in the input: {stderr}"
    );
}

#[test]
fn a_tenant_given_twice_is_a_problem() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let output = render(&["-f", &examples.display().to_string()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("QlikTenant web/acme appears more than once"),
        "{stderr}"
    );
}

#[test]
fn problems_fail_the_command_and_name_file_document_and_field() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("entries.yaml");
    let manifests = "\
apiVersion: qlikops.io/v1alpha1
kind: CspEntry
metadata: {name: good, namespace: web}
spec: {tenantRef: {name: acme}, origin: 'https://ok.example.com', directives: [img-src]}
---
apiVersion: qlikops.io/v1alpha1
kind: CspEntry
metadata: {name: sneaky, namespace: web}
spec: {tenantRef: {name: acme}, origin: \"https://a.example.com; script-src *\", directives: [img-src]}
";
    std::fs::write(&file, manifests).unwrap_or_else(|e| panic!("{e}"));
    let output = render(&["-f", &file.display().to_string()]);
    assert!(!output.status.success());
    assert!(
        output.stdout.is_empty(),
        "nothing renders while a problem remains"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "error: {}: document 2 (CspEntry sneaky): spec.origin: origin must be visible ASCII without whitespace",
        file.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
}

#[test]
fn a_wildcard_over_a_public_suffix_fails_the_render_as_it_fails_the_operator() {
    // Admission cannot see the Public Suffix List; the review before merge can.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("entries.yaml");
    let manifests = "\
apiVersion: qlikops.io/v1alpha1
kind: CspEntry
metadata: {name: everything, namespace: web}
spec: {tenantRef: {name: acme}, origin: 'https://*.co.uk', directives: [script-src]}
";
    std::fs::write(&file, manifests).unwrap_or_else(|e| panic!("{e}"));
    let output = render(&["-f", &file.display().to_string()]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("(CspEntry everything): spec.origin: origin wildcard must not cover a whole public suffix"),
        "{stderr}"
    );
}

#[test]
fn a_missing_path_is_reported() {
    let output = render(&["-f", "/nonexistent/manifests"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("/nonexistent/manifests: no such file or directory")
    );
}

#[test]
fn the_ingress_example_serves_the_config_map_of_the_example_tenant() {
    use qlik_csp_operator::api::QlikTenant;
    use qlik_csp_operator::controller::tenant::publish::ingress_serves;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let read = |file: &str| {
        std::fs::read_to_string(examples.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    let tenant: QlikTenant =
        serde_norway::from_str(&read("qlik-tenant.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let ingress: k8s_openapi::api::networking::v1::Ingress =
        serde_norway::from_str(&read("ingress-nginx/ingress.yaml"))
            .unwrap_or_else(|e| panic!("{e}"));
    let config_map = tenant
        .spec
        .header
        .and_then(|h| h.config_map_name)
        .unwrap_or_default();
    let namespace = tenant.metadata.namespace.unwrap_or_default();
    assert!(ingress_serves(&ingress.metadata, &namespace, &config_map));
}
