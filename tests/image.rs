//! The container image `cargo xtask image` builds, checked the way the first platform team
//! to install the chart would find it broken:
//!
//! - it runs: its layer unpacked, its entrypoint and default command started as its user
//!   (65532) with `chroot`, as PID 1 of a new PID namespace, with a ServiceAccount token
//!   where the kubelet mounts it, against the test control plane and the tenant emulator:
//!   the tenant and a CspEntry become Ready, `/healthz` answers, SIGTERM stops it cleanly;
//! - it holds the binary, its C runtime, the CA certificates and the user, and no shell,
//!   package manager or other program; it stays under 40 MB compressed;
//! - building again gives the same digest;
//! - `crane` and `skopeo` accept the archive (as a `docker save` tarball and as an OCI
//!   layout), and a registry keeps its digest;
//! - the Dockerfile builds the same file system, user, entrypoint and command.
//!
//! The image is built once per run by `cargo xtask image` (a release build the first time).
//! The run needs root (for `chroot`), `unshare`, Go (for crane, built from
//! `tests/envtest/crane` and cached under `target/envtest/`) and skopeo.

#[path = "image/archive.rs"]
mod archive;
#[path = "image/pod.rs"]
mod pod;
mod support;
#[path = "image/tools.rs"]
mod tools;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use archive::{Image, LayerEntry, elf_interpreter, image, scratch, workspace};
use kube::api::{Api, PostParams};
use pod::{create, mount_service_account, operator_pid, ready, start_container};
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use support::{TestEnv, eventually};
use tools::{Killed, crane, free_loopback_address, git, helm, helm_output, run};

const KEY: &str = "image-admin-key-0123456789abcdef";
const DEADLINE: Duration = Duration::from_secs(60);
/// The budget for the compressed image.
const MAX_COMPRESSED_BYTES: usize = 40_000_000;
const BINARY: &str = "usr/local/bin/qlik-csp-operator";

#[tokio::test]
async fn the_image_runs_as_its_user_with_a_service_account_and_syncs_a_csp_entry() {
    assert_root();
    let image = image();
    let env = TestEnv::new().await;
    let ns = env.namespace.clone();
    let emulator = Emulator::start(EmulatorConfig {
        admin_api_keys: vec![KEY.into()],
        ..Default::default()
    })
    .await
    .unwrap();

    let rootfs = tempfile::tempdir().unwrap();
    image.unpack(rootfs.path());
    mount_service_account(&env, rootfs.path(), "operator").await;
    // The emulator's CA joins the image's CA bundle (as a company CA would be added) and the
    // tenant below has no caBundle: the tenant becomes Ready only if the binary finds the
    // bundle where the image puts it.
    let bundle = rootfs.path().join("etc/ssl/certs/ca-certificates.crt");
    let mut certificates = std::fs::read_to_string(&bundle).unwrap();
    certificates.push_str(emulator.ca_pem());
    std::fs::write(&bundle, certificates).unwrap();

    create(
        &env,
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "qlik-admin" }, "stringData": { "api-key": KEY },
        }),
    )
    .await;
    let tenant: QlikTenant = serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "QlikTenant",
        "metadata": { "name": "acme" },
        "spec": {
            "url": emulator.base_url(),
            "credentials": { "apiKey": { "secretRef": { "name": "qlik-admin", "key": "api-key" } } },
        },
    }))
    .unwrap();
    Api::<QlikTenant>::namespaced(env.client.clone(), &ns)
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    let entry: CspEntry = serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "CspEntry",
        "metadata": { "name": "cdn" },
        "spec": { "tenantRef": { "name": "acme" }, "origin": "https://cdn.example.com", "directives": ["script-src"] },
    }))
    .unwrap();
    let entries: Api<CspEntry> = Api::namespaced(env.client.clone(), &ns);
    entries
        .create(&PostParams::default(), &entry)
        .await
        .unwrap();

    let metrics = free_loopback_address();
    let mut container = start_container(image, rootfs.path(), &env, &metrics);

    let tenants: Api<QlikTenant> = Api::namespaced(env.client.clone(), &ns);
    eventually("the QlikTenant to be Ready", DEADLINE, || {
        container.assert_running();
        async { ready(&tenants.get("acme").await.ok()?.status?.conditions).then_some(()) }
    })
    .await;
    eventually("the CspEntry to be Ready", DEADLINE, || {
        container.assert_running();
        async { ready(&entries.get("cdn").await.ok()?.status?.conditions).then_some(()) }
    })
    .await;

    // The process is the image's binary, as 65532:65532 with no other group, and PID 1.
    let pid = operator_pid(container.0.id());
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, rootfs.path().join(BINARY));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> Vec<String> {
        let line = status.lines().find(|l| l.starts_with(&format!("{name}:")));
        let line = line.unwrap_or_else(|| panic!("no {name} in\n{status}"));
        line.split_whitespace().skip(1).map(str::to_owned).collect()
    };
    assert_eq!(field("Uid"), ["65532"; 4], "{status}");
    assert_eq!(field("Gid"), ["65532"; 4], "{status}");
    assert!(
        field("Groups").iter().all(|g| g == "65532"),
        "supplementary groups: {status}"
    );
    assert_eq!(
        field("NSpid").last().map(String::as_str),
        Some("1"),
        "{status}"
    );

    let http = reqwest::Client::new();
    for path in ["/healthz", "/readyz"] {
        eventually(&format!("{path} to answer 200"), DEADLINE, || async {
            let response = http
                .get(format!("http://{metrics}{path}"))
                .send()
                .await
                .ok()?;
            (response.status() == reqwest::StatusCode::OK).then_some(())
        })
        .await;
    }

    // Kubernetes stops a pod with SIGTERM to PID 1, which the kernel drops unless the process
    // handles it: the operator must stop, and exit 0.
    // SAFETY: kill(2) on a process this test started has no memory effects.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let exited = eventually("the operator to exit after SIGTERM", DEADLINE, || {
        let status = container.0.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert!(exited.success(), "the container exited with {exited}");
}

#[test]
fn the_image_holds_the_binary_its_c_runtime_certificates_and_user_and_no_other_program() {
    let image = image();
    let entries = image.layer_entries();
    let paths: BTreeMap<&str, &LayerEntry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let has = |suffix: &str| paths.keys().any(|p| p.ends_with(suffix));
    for needed in [
        BINARY,
        "/libc.so.6",
        "/libm.so.6",
        "/libgcc_s.so.1",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/passwd",
        "etc/group",
        "etc/nsswitch.conf",
        "usr/lib/os-release",
        "var/lib/dpkg/status.d/libc6",
        "usr/share/doc/libc6/copyright",
    ] {
        assert!(has(needed), "the image has no {needed}");
    }
    // The ELF interpreter the binary names, at the path it names.
    let binary = image.layer_file(BINARY);
    let interpreter = elf_interpreter(&binary).expect("the binary is dynamically linked");
    assert!(
        paths.contains_key(interpreter.trim_start_matches('/')),
        "no {interpreter} in the image"
    );

    for entry in &entries {
        let name = entry.path.rsplit('/').next().unwrap_or_default();
        // Files or links by a shell's or a package manager's name (the dpkg records live in
        // a directory called dpkg, which is fine).
        if entry.kind != tar::EntryType::Directory {
            for forbidden in [
                "sh", "bash", "dash", "ash", "busybox", "apt", "apt-get", "dpkg", "apk", "su",
                "env",
            ] {
                assert_ne!(name, forbidden, "the image contains {}", entry.path);
            }
        }
        // No program but the operator: every other executable file is a shared library.
        if entry.kind == tar::EntryType::Regular && entry.mode & 0o111 != 0 {
            assert!(
                entry.path == BINARY || name.contains(".so"),
                "the image contains the program {}",
                entry.path
            );
        }
        assert_eq!(
            (entry.uid, entry.gid),
            (0, 0),
            "{} is not root's",
            entry.path
        );
        assert_eq!(entry.mtime, image.created_epoch(), "{}", entry.path);
    }

    let passwd = String::from_utf8(image.layer_file("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("nonroot:x:65532:65532:")),
        "{passwd}"
    );
    let group = String::from_utf8(image.layer_file("etc/group")).unwrap();
    assert!(group.lines().any(|l| l == "nonroot:x:65532:"), "{group}");
    let bundle = image.layer_file("etc/ssl/certs/ca-certificates.crt");
    let certificates = CertificateDer::pem_slice_iter(&bundle)
        .collect::<Result<Vec<_>, _>>()
        .expect("the CA bundle is valid PEM");
    assert!(
        certificates.len() >= 100,
        "{} CA certificates",
        certificates.len()
    );

    let compressed = image.layer.len();
    println!(
        "image: {:.1} MB compressed, {} files; archive {:.1} MB",
        compressed as f64 / 1e6,
        entries.len(),
        image.archive_size as f64 / 1e6
    );
    assert!(
        compressed < MAX_COMPRESSED_BYTES,
        "the image is {compressed} bytes compressed, over the {MAX_COMPRESSED_BYTES} budget"
    );
}

#[test]
fn building_again_from_the_same_commit_gives_the_same_digest() {
    let first = image();
    let second = Image::build(&scratch().join("again.tar"));
    assert_eq!(second.manifest_digest, first.manifest_digest);
    assert_eq!(
        second.archive_sha256, first.archive_sha256,
        "the archives differ"
    );
    // Every timestamp is the commit's (unless SOURCE_DATE_EPOCH says otherwise).
    if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
        let commit_time = git(&["log", "-1", "--format=%ct"]);
        assert_eq!(first.created_epoch().to_string(), commit_time);
    }
    let labels = &first.config["config"]["Labels"];
    let revision = labels["org.opencontainers.image.revision"]
        .as_str()
        .unwrap();
    assert!(
        revision.starts_with(&git(&["rev-parse", "HEAD"])),
        "{revision}"
    );
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        labels["org.opencontainers.image.licenses"],
        env!("CARGO_PKG_LICENSE")
    );
}

#[test]
fn crane_and_skopeo_accept_the_archive_and_a_registry_keeps_its_digest() {
    let image = image();
    let crane = crane();
    let port = free_loopback_address();
    let mut serve = Command::new(&crane);
    serve
        .args(["registry", "serve", "--address", &port])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    qlikops_testenv::die_with_parent(&mut serve);
    let mut registry = Killed(serve.spawn().unwrap());
    // crane logs "serving on port N" once its listener is bound: wait for that line (the
    // reader keeps draining the log afterwards, so crane never blocks on a full pipe).
    let log = registry.0.stderr.take().unwrap();
    let (listening, listened) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(log)).map_while(Result::ok) {
            if line.contains("serving on port") {
                let _ = listening.send(());
            }
        }
    });
    assert!(
        listened.recv_timeout(DEADLINE).is_ok() && std::net::TcpStream::connect(&port).is_ok(),
        "crane registry serve did not listen on {port}"
    );
    let repository = format!("{port}/qlik-csp-operator");
    let archive = image.path.to_str().unwrap();

    // As a `docker save` tarball (what `docker load` reads): crane rewrites the manifest in
    // Docker's media types, so the digest is its own, but the image is whole.
    let pushed = run(&crane, &["push", archive, &format!("{repository}:tarball")]);
    run(&crane, &["validate", "--remote", pushed.trim()]);
    // As an OCI layout: the registry keeps the manifest, so the digest is the archive's.
    let layout = scratch().join("layout");
    image.unpack_archive(&layout);
    let pushed = run(
        &crane,
        &[
            "push",
            layout.to_str().unwrap(),
            &format!("{repository}:layout"),
        ],
    );
    assert_eq!(
        pushed.trim(),
        format!("{repository}@{}", image.manifest_digest)
    );
    run(&crane, &["validate", "--remote", pushed.trim()]);

    // skopeo (containers/image, as podman): both views of the archive, and a copy that keeps
    // the digest.
    let skopeo = |args: &[&str]| run(Path::new("skopeo"), args);
    let oci: Value =
        serde_json::from_str(&skopeo(&["inspect", &format!("oci-archive:{archive}")])).unwrap();
    assert_eq!(oci["Digest"], image.manifest_digest.as_str());
    assert_eq!(oci["Labels"], image.config["config"]["Labels"]);
    let docker: Value =
        serde_json::from_str(&skopeo(&["inspect", &format!("docker-archive:{archive}")])).unwrap();
    assert_eq!(docker["Labels"], image.config["config"]["Labels"]);
    skopeo(&[
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci-archive:{archive}"),
        &format!("docker://{repository}:skopeo"),
    ]);
    let digest = run(&crane, &["digest", &format!("{repository}:skopeo")]);
    assert_eq!(digest.trim(), image.manifest_digest);
}

#[test]
fn the_dockerfile_builds_the_same_file_system_user_entrypoint_and_command() {
    let image = image();
    let text = std::fs::read_to_string(workspace().join("Dockerfile")).unwrap();
    // Instructions, with continuation lines joined and comments dropped.
    let joined = text.replace("\\\n", " ");
    let instructions: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let last_from = instructions
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .unwrap();
    let (build, last) = instructions.split_at(last_from);
    assert_eq!(last[0], "FROM scratch", "the final stage starts empty");

    // The base comes from the script `cargo xtask image` runs, on the Debian release the
    // image's os-release names (the binary's glibc must be that release's).
    let script = build
        .iter()
        .find_map(|l| l.strip_prefix("COPY xtask/src/image/rootfs.sh "))
        .unwrap_or_else(|| panic!("no build stage copies xtask/src/image/rootfs.sh:\n{text}"));
    assert!(
        build
            .iter()
            .any(|l| l.starts_with("RUN ") && l.contains(&format!("sh {script} /rootfs "))),
        "no build stage runs {script} into /rootfs:\n{text}"
    );
    let os_release = String::from_utf8(image.layer_file("usr/lib/os-release")).unwrap();
    let codename = os_release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .unwrap();
    for from in build.iter().filter(|l| l.starts_with("FROM ")) {
        assert!(from.contains(codename), "{from} is not Debian {codename}");
    }
    assert!(
        last.iter()
            .any(|l| l.starts_with("COPY --from=") && l.ends_with(" /rootfs/ /"))
    );
    assert!(
        last.iter()
            .any(|l| l.starts_with("COPY --from=") && l.ends_with(&format!(" /{BINARY}")))
    );

    let instruction = |keyword: &str| -> String {
        let found = last
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{keyword} ")));
        let found: Vec<&str> = found.collect();
        assert_eq!(found.len(), 1, "{keyword} in the final stage: {found:?}");
        found[0].to_owned()
    };
    assert_eq!(instruction("USER"), image.config_str("User"));
    let exec_form =
        |keyword: &str| -> Value { serde_json::from_str(&instruction(keyword)).unwrap() };
    assert_eq!(
        exec_form("ENTRYPOINT"),
        image.config["config"]["Entrypoint"]
    );
    assert_eq!(exec_form("CMD"), image.config["config"]["Cmd"]);
    let env: Vec<String> = image.config_strings("Env");
    assert_eq!(vec![instruction("ENV")], env);
    let ports = image.config["config"]["ExposedPorts"].as_object().unwrap();
    let ports: Vec<&str> = ports.keys().map(String::as_str).collect();
    assert_eq!(ports, [format!("{}/tcp", instruction("EXPOSE"))]);
}

#[test]
fn the_chart_and_the_manifests_name_the_image_the_archive_carries() {
    let image = image();
    // The name `docker load` gives the image is the chart's default, and the plain manifests'.
    assert_eq!(
        image.repo_tags,
        [format!("qlik-csp-operator:{}", env!("CARGO_PKG_VERSION"))]
    );
    let deployment = |yaml: &str| -> String {
        let objects = serde_norway::Deserializer::from_str(yaml)
            .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap());
        let mut objects = objects.filter(|o| o["kind"] == "Deployment");
        let deployment = objects.next().expect("a Deployment");
        let image = &deployment["spec"]["template"]["spec"]["containers"][0]["image"];
        image.as_str().unwrap().to_owned()
    };
    let deploy = std::fs::read_to_string(workspace().join("deploy/qlik-csp-operator.yaml"));
    assert_eq!(deployment(&deploy.unwrap()), image.repo_tags[0]);
    assert_eq!(deployment(&helm(&[])), image.repo_tags[0]);

    // Installed from a registry, as the README says: by tag, or pinned by the digest.
    let repository = "registry.example.com/platform/qlik-csp-operator";
    let by_tag = helm(&["--set", &format!("image.repository={repository}")]);
    assert_eq!(
        deployment(&by_tag),
        image.repo_tags[0].replace("qlik-csp-operator:", &format!("{repository}:"))
    );
    let by_digest = helm(&[
        "--set",
        &format!("image.repository={repository}"),
        "--set",
        &format!("image.digest={}", image.manifest_digest),
    ]);
    assert_eq!(
        deployment(&by_digest),
        format!("{repository}@{}", image.manifest_digest)
    );
    // A tag in the repository would render `name:tag:appVersion`: the schema refuses it.
    let tagged = helm_output(&["--set", &format!("image.repository={repository}:0.1.0")]);
    assert!(
        !tagged.status.success(),
        "image.repository with a tag was accepted"
    );
}

fn assert_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test runs the image with chroot, which needs root"
    );
}
