//! `cargo xtask image [--out PATH]`: the operator's container image, built without a
//! container runtime, as one OCI archive that `crane push`, `skopeo copy oci-archive:` and
//! `docker load` accept.
//!
//! The image is one layer: the release binary at `/usr/local/bin/qlik-csp-operator` on the
//! root file system `image/rootfs.sh` makes from Debian's packages (glibc, libgcc, CA
//! certificates, the user 65532; no shell, no package manager). The Dockerfile runs the same
//! script, so both builds have the same base. The config runs the binary as 65532:65532 with
//! `run` as its default command, and carries the OCI labels registries show.
//!
//! Reproducible: every timestamp is the commit's time (`SOURCE_DATE_EPOCH` overrides it),
//! entries are sorted and owned by 0:0, the JSON documents have sorted keys. The same commit,
//! toolchain and Debian package versions (printed, and recorded in the image under
//! `/var/lib/dpkg/status.d/`) give the same digest; `tests/image.rs` builds twice to check.
//!
//! I/O: runs `cargo build --release`, `git`, and the script (`apt-get download`,
//! `dpkg-deb`); writes `target/image/` and the archive.

mod layer;
mod oci;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::image::Arch;
use serde::Deserialize;

pub const USAGE: &str = "image [--out PATH]
                   build the operator's container image (release binary on a Debian glibc
                   base, user 65532) as an OCI archive, without Docker; default path
                   target/image/qlik-csp-operator.tar";

/// The package, binary and image name.
const NAME: &str = "qlik-csp-operator";
/// Where the binary is in the image; the entrypoint.
pub const BINARY_PATH: &str = "/usr/local/bin/qlik-csp-operator";
/// The chart's `runAsUser`/`runAsGroup`; numeric, so that `runAsNonRoot` can verify it.
pub const USER: &str = "65532:65532";
/// The metrics and health port (`--metrics-address` default).
const METRICS_PORT: &str = "8080/tcp";
/// The root file system script, relative to the workspace root (the Dockerfile runs it too).
const ROOTFS_SCRIPT: &str = "xtask/src/image/rootfs.sh";

pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let out = match args {
        [] => crate::target_dir(root)
            .join("image")
            .join(format!("{NAME}.tar")),
        [flag, path] if flag == "--out" => PathBuf::from(path),
        _ => return Err(format!("usage: cargo xtask {USAGE}")),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("failed to create {}: {e}", parent.display()))?;
    }

    // The same build as `cargo xtask bench` and `chaos` (the operator and the emulator),
    // so that CI, which builds the image first, compiles the release binaries once.
    crate::bench::build_release(root)?;
    let binary = crate::target_dir(root).join("release").join(NAME);
    let package = package_metadata(root)?;
    let source = Source::of(root)?;

    let work = crate::target_dir(root)
        .join("image")
        .join(format!("build-{}", std::process::id()));
    let result = assemble(root, &work, &binary, &package, &source, &out);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Makes the root file system in `work`, adds the binary, and writes the archive.
fn assemble(
    root: &Path,
    work: &Path,
    binary: &Path,
    package: &Package,
    source: &Source,
    out: &Path,
) -> Result<(), String> {
    eprintln!("image: making the root file system from Debian's packages ({ROOTFS_SCRIPT})");
    let rootfs = work.join("rootfs");
    let status = Command::new("sh")
        .current_dir(root)
        .arg(ROOTFS_SCRIPT)
        .arg(&rootfs)
        .arg(work.join("packages"))
        .status()
        .map_err(|e| format!("failed to run sh {ROOTFS_SCRIPT}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{ROOTFS_SCRIPT} failed ({status}); it needs apt-get and dpkg-deb (Debian or \
             Ubuntu) and current package lists: run `apt-get update` as root and retry, or \
             build with the Dockerfile"
        ));
    }
    let installed = rootfs.join(BINARY_PATH.trim_start_matches('/'));
    std::fs::copy(binary, &installed)
        .and_then(|_| std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| format!("failed to copy {}: {e}", binary.display()))?;

    eprintln!("image: writing the layer and the archive");
    let layer = layer::build(&rootfs, source.epoch)?;
    let created = jiff::Timestamp::from_second(source.epoch as i64)
        .map_err(|e| format!("SOURCE_DATE_EPOCH {} is out of range: {e}", source.epoch))?
        .to_string();
    let mut labels = BTreeMap::from([
        ("org.opencontainers.image.title", NAME.to_owned()),
        ("org.opencontainers.image.version", package.version.clone()),
        ("org.opencontainers.image.revision", source.revision.clone()),
        ("org.opencontainers.image.created", created.clone()),
    ]);
    for (label, value) in [
        ("org.opencontainers.image.description", &package.description),
        ("org.opencontainers.image.licenses", &package.license),
        ("org.opencontainers.image.source", &package.repository),
    ] {
        match value {
            Some(value) => {
                labels.insert(label, value.clone());
            }
            None => eprintln!("image: Cargo.toml has no value for the label {label}"),
        }
    }
    let settings = oci::Settings {
        reference: format!("{NAME}:{}", package.version),
        tag: package.version.clone(),
        user: USER.to_owned(),
        entrypoint: vec![BINARY_PATH.to_owned()],
        cmd: vec!["run".to_owned()],
        env: vec!["PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin".to_owned()],
        exposed_ports: vec![METRICS_PORT.to_owned()],
        labels: labels.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        created,
        architecture: architecture()?,
    };
    let written = oci::write(out, &layer, &settings)?;
    println!("{}", out.display());
    eprintln!(
        "image: {reference}, digest {digest}\n\
         image: {compressed:.1} MB compressed (the layer), {unpacked:.1} MB unpacked, \
         revision {revision}, created {created}",
        reference = settings.reference,
        digest = written.manifest_digest,
        compressed = layer.gzip.len() as f64 / 1e6,
        unpacked = layer.unpacked_size as f64 / 1e6,
        revision = source.revision,
        created = settings.created,
    );
    eprintln!(
        "image: push it with `crane push {} <registry>/{NAME}:{}` or \
         `skopeo copy oci-archive:{} docker://<registry>/{NAME}:{}` (archive {:.1} MB)",
        out.display(),
        package.version,
        out.display(),
        package.version,
        written.archive_size as f64 / 1e6,
    );
    Ok(())
}

/// The operator package's fields the labels need, from `cargo metadata`.
#[derive(Deserialize)]
struct Package {
    name: String,
    version: String,
    description: Option<String>,
    license: Option<String>,
    repository: Option<String>,
}

fn package_metadata(root: &Path) -> Result<Package, String> {
    #[derive(Deserialize)]
    struct Metadata {
        packages: Vec<Package>,
    }
    let output = Command::new(crate::cargo())
        .current_dir(root)
        .args(["metadata", "--no-deps", "--format-version", "1", "--locked"])
        .output()
        .map_err(|e| format!("failed to run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed ({})", output.status));
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("failed to read cargo metadata: {e}"))?;
    metadata
        .packages
        .into_iter()
        .find(|p| p.name == NAME)
        .ok_or_else(|| format!("cargo metadata lists no package {NAME}"))
}

/// Which source the image is built from, and the time every timestamp in it takes.
struct Source {
    /// The commit, with `-dirty` when tracked files differ from it; `unknown` outside Git.
    revision: String,
    /// `SOURCE_DATE_EPOCH` if set, else the commit's time, else 0.
    epoch: u64,
}

impl Source {
    fn of(root: &Path) -> Result<Source, String> {
        let git = |args: &[&str]| -> Option<String> {
            let output = Command::new("git")
                .current_dir(root)
                .args(args)
                .output()
                .ok()?;
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        };
        let commit = git(&["rev-parse", "HEAD"]);
        let revision = match (
            &commit,
            git(&["status", "--porcelain", "--untracked-files=no"]),
        ) {
            (Some(commit), Some(changes)) if changes.is_empty() => commit.clone(),
            (Some(commit), _) => format!("{commit}-dirty"),
            (None, _) => "unknown".to_owned(),
        };
        let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(value) => value
                .parse()
                .map_err(|e| format!("SOURCE_DATE_EPOCH={value:?} is not a number: {e}"))?,
            Err(_) => git(&["log", "-1", "--format=%ct"])
                .and_then(|time| time.parse().ok())
                .unwrap_or(0),
        };
        Ok(Source { revision, epoch })
    }
}

/// The image's architecture: the build host's, which the release binary is built for.
fn architecture() -> Result<Arch, String> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(Arch::Amd64),
        "aarch64" => Ok(Arch::ARM64),
        other => Err(format!("no OCI architecture known for {other}")),
    }
}
