//! The OCI image around the layer, written as one archive: an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`, what `skopeo copy oci-archive:` and `podman load` read)
//! plus the `manifest.json` of `docker save` (what `docker load` and `crane push FILE` read),
//! both naming the same blobs, as `docker save` itself writes since Docker 25.
//!
//! The documents are the `oci-spec` types, serialized with sorted keys and no whitespace so
//! that the same inputs give the same bytes, and so the same digest. Writes the archive
//! only.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, PlatformBuilder,
    RootFsBuilder,
};
use serde::Serialize;

use super::layer::{Layer, sha256};

/// What the image config says besides its layer.
pub struct Settings {
    /// `repository:tag` that `docker load` gives the image.
    pub reference: String,
    /// The tag alone (the layout's `org.opencontainers.image.ref.name`).
    pub tag: String,
    pub user: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, the config's and the history's `created`.
    pub created: String,
    pub architecture: Arch,
}

/// The written image: its manifest's digest (what a registry reports after a push that
/// keeps the manifest) and sizes.
pub struct Written {
    pub manifest_digest: String,
    pub archive_size: u64,
}

/// Writes the image with `layer` as its file system to `out` (atomically).
pub fn write(out: &Path, layer: &Layer, settings: &Settings) -> Result<Written, String> {
    let config = ImageConfigurationBuilder::default()
        .created(settings.created.clone())
        .architecture(settings.architecture.clone())
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .user(settings.user.clone())
                .entrypoint(settings.entrypoint.clone())
                .cmd(settings.cmd.clone())
                .env(settings.env.clone())
                .exposed_ports(settings.exposed_ports.clone())
                .working_dir("/")
                .labels(
                    settings
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<HashMap<_, _>>(),
                )
                .build()
                .map_err(spec_error)?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![layer.diff_id.clone()])
                .build()
                .map_err(spec_error)?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(settings.created.clone())
                .created_by("cargo xtask image")
                .build()
                .map_err(spec_error)?,
        ])
        .build()
        .map_err(spec_error)?;
    let config = canonical_json(&config)?;
    let layer_descriptor = descriptor(MediaType::ImageLayerGzip, &layer.gzip)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config)?)
        .layers(vec![layer_descriptor])
        .build()
        .map_err(spec_error)?;
    let manifest = canonical_json(&manifest)?;
    let manifest_digest = sha256(&manifest);

    let mut manifest_entry = descriptor(MediaType::ImageManifest, &manifest)?;
    manifest_entry.set_platform(Some(
        PlatformBuilder::default()
            .architecture(settings.architecture.clone())
            .os(Os::Linux)
            .build()
            .map_err(spec_error)?,
    ));
    manifest_entry.set_annotations(Some(HashMap::from([
        (
            "org.opencontainers.image.ref.name".to_owned(),
            settings.tag.clone(),
        ),
        // The name containerd (and Docker with the containerd image store) gives the image.
        (
            "io.containerd.image.name".to_owned(),
            format!("docker.io/library/{}", settings.reference),
        ),
    ])));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_entry])
        .build()
        .map_err(spec_error)?;
    let index = canonical_json(&index)?;
    let layout = canonical_json(
        &OciLayoutBuilder::default()
            .image_layout_version("1.0.0")
            .build()
            .map_err(spec_error)?,
    )?;
    let docker_manifest = canonical_json(&[DockerSaveEntry {
        config: blob_path(&config),
        repo_tags: vec![settings.reference.clone()],
        layers: vec![blob_path(&layer.gzip)],
    }])?;

    let mut files: Vec<(String, &[u8])> = vec![
        ("oci-layout".to_owned(), &layout),
        ("index.json".to_owned(), &index),
        ("manifest.json".to_owned(), &docker_manifest),
        (blob_path(&config), &config),
        (blob_path(&manifest), &manifest),
        (blob_path(&layer.gzip), &layer.gzip),
    ];
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let archive = archive(&files)?;
    let partial = out.with_extension("tar.partial");
    std::fs::write(&partial, &archive)
        .and_then(|()| std::fs::rename(&partial, out))
        .map_err(|e| format!("failed to write {}: {e}", out.display()))?;
    Ok(Written {
        manifest_digest,
        archive_size: archive.len() as u64,
    })
}

/// One image in `docker save`'s `manifest.json`.
#[derive(Serialize)]
struct DockerSaveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn descriptor(media_type: MediaType, blob: &[u8]) -> Result<Descriptor, String> {
    DescriptorBuilder::default()
        .media_type(media_type)
        .size(blob.len() as u64)
        .digest(
            sha256(blob)
                .parse::<oci_spec::image::Digest>()
                .map_err(spec_error)?,
        )
        .build()
        .map_err(spec_error)
}

fn blob_path(blob: &[u8]) -> String {
    format!("blobs/sha256/{}", &sha256(blob)["sha256:".len()..])
}

/// JSON with object keys sorted at every level (the `oci-spec` types keep labels and
/// annotations in `HashMap`s, whose order changes from run to run) and no whitespace.
fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>, String> {
    fn sorted(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let ordered: BTreeMap<String, serde_json::Value> =
                    map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::Value::Object(ordered.into_iter().collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sorted).collect())
            }
            other => other,
        }
    }
    let value = serde_json::to_value(value).map_err(|e| format!("failed to serialize: {e}"))?;
    serde_json::to_vec(&sorted(value)).map_err(|e| format!("failed to serialize: {e}"))
}

/// A tar of `files` (sorted by path) and the directories they are in, all owned by 0:0 and
/// dated 0: the archive is a container for the digested blobs, not part of any of them.
fn archive(files: &[(String, &[u8])]) -> Result<Vec<u8>, String> {
    let mut builder = tar::Builder::new(Vec::new());
    for dir in ["blobs", "blobs/sha256"] {
        let mut header = plain_header(tar::EntryType::Directory, 0o755, 0);
        builder
            .append_data(&mut header, dir, std::io::empty())
            .map_err(|e| format!("failed to archive {dir}: {e}"))?;
    }
    for (path, content) in files {
        let mut header = plain_header(tar::EntryType::Regular, 0o644, content.len() as u64);
        builder
            .append_data(&mut header, path, *content)
            .map_err(|e| format!("failed to archive {path}: {e}"))?;
    }
    builder
        .into_inner()
        .map_err(|e| format!("failed to finish the archive: {e}"))
}

fn plain_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn spec_error(e: impl std::fmt::Display) -> String {
    format!("failed to build an OCI document: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            reference: "qlik-csp-operator:1.2.3".to_owned(),
            tag: "1.2.3".to_owned(),
            user: "65532:65532".to_owned(),
            entrypoint: vec!["/usr/local/bin/qlik-csp-operator".to_owned()],
            cmd: vec!["run".to_owned()],
            env: vec!["PATH=/usr/bin".to_owned()],
            exposed_ports: vec!["8080/tcp".to_owned()],
            // Enough labels that a HashMap's order would differ between two runs.
            labels: (0..16)
                .map(|i| (format!("org.example.label-{i}"), i.to_string()))
                .collect(),
            created: "2026-01-02T03:04:05Z".to_owned(),
            architecture: Arch::Amd64,
        }
    }

    fn layer() -> Layer {
        Layer {
            gzip: b"not really gzip".to_vec(),
            diff_id: sha256(b"not really tar"),
            unpacked_size: 14,
        }
    }

    fn files(archive: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for entry in tar::Archive::new(archive).entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
            files.insert(
                entry.path().unwrap().to_string_lossy().into_owned(),
                content,
            );
        }
        files
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_has_no_whitespace() {
        let value = serde_json::json!({ "b": { "z": 1, "a": [ { "y": 2, "x": 3 } ] }, "a": 0 });
        let text = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
        assert_eq!(text, r#"{"a":0,"b":{"a":[{"x":3,"y":2}],"z":1}}"#);
    }

    #[test]
    fn the_same_image_is_written_byte_for_byte_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one.tar"), dir.path().join("two.tar"));
        let first = write(&one, &layer(), &settings()).unwrap();
        let second = write(&two, &layer(), &settings()).unwrap();
        assert_eq!(first.manifest_digest, second.manifest_digest);
        assert_eq!(std::fs::read(one).unwrap(), std::fs::read(two).unwrap());
    }

    #[test]
    fn the_layout_and_the_docker_manifest_name_the_same_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("image.tar");
        let written = write(&out, &layer(), &settings()).unwrap();
        let files = files(&std::fs::read(&out).unwrap());
        let json = |name: &str| -> serde_json::Value {
            serde_json::from_slice(&files[name]).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let blob = |digest: &serde_json::Value| -> serde_json::Value {
            let digest = digest.as_str().unwrap();
            let name = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
            assert_eq!(
                sha256(&files[&name]),
                digest,
                "{name} has the digest it is named by"
            );
            serde_json::from_slice(&files[&name]).unwrap_or(serde_json::Value::Null)
        };
        assert_eq!(json("oci-layout")["imageLayoutVersion"], "1.0.0");
        let index = json("index.json");
        let entry = &index["manifests"][0];
        assert_eq!(entry["digest"], written.manifest_digest.as_str());
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.ref.name"],
            "1.2.3"
        );
        assert_eq!(entry["platform"]["architecture"], "amd64");
        let manifest = blob(&entry["digest"]);
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        blob(&manifest["layers"][0]["digest"]);
        let config = blob(&manifest["config"]["digest"]);
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["Labels"]["org.example.label-7"], "7");
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            sha256(b"not really tar").as_str()
        );
        assert_eq!(config["created"], "2026-01-02T03:04:05Z");

        let docker = json("manifest.json");
        assert_eq!(docker[0]["RepoTags"][0], "qlik-csp-operator:1.2.3");
        assert_eq!(
            docker[0]["Config"].as_str().unwrap(),
            format!(
                "blobs/sha256/{}",
                manifest["config"]["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:")
            )
        );
        assert_eq!(
            docker[0]["Layers"][0].as_str().unwrap(),
            format!(
                "blobs/sha256/{}",
                manifest["layers"][0]["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:")
            )
        );
    }
}
