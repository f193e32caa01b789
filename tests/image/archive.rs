//! The archive `cargo xtask image` writes, built once per test binary and read back: its
//! index, manifest, config and layer.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// An archive written by `cargo xtask image`, read back.
pub struct Image {
    pub path: PathBuf,
    /// `RepoTags` of `docker save`'s manifest.json: the name `docker load` gives the image.
    pub repo_tags: Vec<String>,
    pub archive_size: u64,
    pub archive_sha256: String,
    pub manifest_digest: String,
    pub config: Value,
    /// The one layer, gzip-compressed.
    pub layer: Vec<u8>,
}

pub struct LayerEntry {
    pub path: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

impl Image {
    pub fn build(out: &Path) -> Image {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace())
            .args([
                "run",
                "--quiet",
                "--locked",
                "--package",
                "xtask",
                "--",
                "image",
                "--out",
            ])
            .arg(out)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "cargo xtask image failed ({status})");
        Image::read(out)
    }

    pub fn read(path: &Path) -> Image {
        let bytes = std::fs::read(path).unwrap();
        let mut files = BTreeMap::new();
        let mut archive = tar::Archive::new(bytes.as_slice());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            files.insert(name, content);
        }
        let blob = |digest: &str| -> &Vec<u8> {
            let name = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
            files
                .get(&name)
                .unwrap_or_else(|| panic!("no {name} in the archive"))
        };
        let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
        let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
        let manifest: Value = serde_json::from_slice(blob(&manifest_digest)).unwrap();
        let config = serde_json::from_slice(blob(manifest["config"]["digest"].as_str().unwrap()));
        let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap()).clone();
        let docker: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        Image {
            path: path.to_owned(),
            repo_tags: strings(&docker[0]["RepoTags"]),
            archive_size: bytes.len() as u64,
            archive_sha256: hex::encode(Sha256::digest(&bytes)),
            manifest_digest,
            config: config.unwrap(),
            layer,
        }
    }

    pub fn config_str(&self, key: &str) -> String {
        self.config["config"][key].as_str().unwrap().to_owned()
    }

    pub fn config_strings(&self, key: &str) -> Vec<String> {
        strings(&self.config["config"][key])
    }

    pub fn created_epoch(&self) -> u64 {
        let created = self.config["created"].as_str().unwrap();
        created.parse::<jiff::Timestamp>().unwrap().as_second() as u64
    }

    pub fn layer_archive(&self) -> tar::Archive<flate2::read::GzDecoder<&[u8]>> {
        tar::Archive::new(flate2::read::GzDecoder::new(self.layer.as_slice()))
    }

    pub fn layer_entries(&self) -> Vec<LayerEntry> {
        let mut archive = self.layer_archive();
        let entries = archive.entries().unwrap().map(|entry| {
            let entry = entry.unwrap();
            let header = entry.header();
            LayerEntry {
                path: entry
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_owned(),
                kind: header.entry_type(),
                mode: header.mode().unwrap(),
                uid: header.uid().unwrap(),
                gid: header.gid().unwrap(),
                mtime: header.mtime().unwrap(),
            }
        });
        entries.collect()
    }

    pub fn layer_file(&self, path: &str) -> Vec<u8> {
        let mut archive = self.layer_archive();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap() == Path::new(path) {
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                return content;
            }
        }
        panic!("no {path} in the image")
    }

    /// Unpacks the layer into `dir`, as a container runtime does.
    pub fn unpack(&self, dir: &Path) {
        let mut archive = self.layer_archive();
        archive.set_preserve_permissions(true);
        archive.unpack(dir).unwrap();
    }

    /// Unpacks the archive itself (an OCI image layout) into `dir`.
    pub fn unpack_archive(&self, dir: &Path) {
        let bytes = std::fs::read(&self.path).unwrap();
        tar::Archive::new(bytes.as_slice()).unpack(dir).unwrap();
    }
}

/// The image of this test run, built on first use.
pub fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| Image::build(&scratch().join("qlik-csp-operator.tar")))
}

/// A directory of this test process under target/tmp. The first call removes those of
/// earlier runs (their processes are gone), so archives do not pile up.
pub fn scratch() -> PathBuf {
    static SWEPT: OnceLock<()> = OnceLock::new();
    let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
    SWEPT.get_or_init(|| {
        for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("image-")
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    let dir = parent.join(format!("image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn strings(value: &Value) -> Vec<String> {
    let items = value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"));
    items
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The path in an ELF executable's PT_INTERP program header.
pub fn elf_interpreter(elf: &[u8]) -> Option<String> {
    let read = |at: usize, len: usize| -> Option<u64> {
        let bytes = elf.get(at..at + len)?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0, |acc, b| (acc << 8) | u64::from(*b)),
        )
    };
    // 64-bit little-endian only, which is what this builds.
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (phoff, phentsize, phnum) = (read(0x20, 8)?, read(0x36, 2)?, read(0x38, 2)?);
    (0..phnum).find_map(|i| {
        let header = usize::try_from(phoff + i * phentsize).ok()?;
        (read(header, 4)? == 3).then_some(())?; // PT_INTERP
        let offset = usize::try_from(read(header + 8, 8)?).ok()?;
        let size = usize::try_from(read(header + 32, 8)?).ok()?;
        let path = elf.get(offset..offset + size)?;
        Some(
            String::from_utf8_lossy(path)
                .trim_end_matches('\0')
                .to_owned(),
        )
    })
}
