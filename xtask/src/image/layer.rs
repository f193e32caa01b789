//! The image's one layer: a directory as a reproducible tar, gzip-compressed. Reads the
//! directory; writes nothing to disk.
//!
//! Compressed at the default level: in the debug build `cargo xtask` runs, the best level
//! costs twice the time for 1% less.
//!
//! Reproducible means the bytes depend only on the files' paths, contents, kinds and
//! executable bits: entries in path order, every one owned by 0:0, dated `mtime`, with mode
//! 0755 (directories, executables) or 0644; no user names, no extended attributes; gzip
//! without a name or timestamp.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

/// A compressed layer and what an image config and manifest say about it.
pub struct Layer {
    /// The `tar+gzip` blob.
    pub gzip: Vec<u8>,
    /// `sha256:<hex>` of the uncompressed tar: the config's `rootfs.diff_ids` entry.
    pub diff_id: String,
    /// Size of the uncompressed tar.
    pub unpacked_size: u64,
}

/// Archives `dir` (its contents, not itself) as the image's root file system.
pub fn build(dir: &Path, mtime: u64) -> Result<Layer, String> {
    let mut paths = Vec::new();
    walk(dir, Path::new(""), &mut paths)?;
    // Path order puts every directory before its contents.
    paths.sort();

    let mut builder = tar::Builder::new(Vec::new());
    for relative in &paths {
        let full = dir.join(relative);
        let meta = std::fs::symlink_metadata(&full)
            .map_err(|e| format!("failed to stat {}: {e}", full.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        let kind = meta.file_type();
        let result = if kind.is_symlink() {
            let target = std::fs::read_link(&full)
                .map_err(|e| format!("failed to read link {}: {e}", full.display()))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder.append_link(&mut header, relative, &target)
        } else if kind.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, relative, std::io::empty())
        } else if kind.is_file() {
            let content = std::fs::read(&full)
                .map_err(|e| format!("failed to read {}: {e}", full.display()))?;
            let executable = meta.permissions().mode() & 0o111 != 0;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if executable { 0o755 } else { 0o644 });
            header.set_size(content.len() as u64);
            builder.append_data(&mut header, relative, content.as_slice())
        } else {
            return Err(format!(
                "{} is neither a file, a directory nor a link",
                full.display()
            ));
        };
        result.map_err(|e| format!("failed to archive {}: {e}", relative.display()))?;
    }
    let tar = builder
        .into_inner()
        .map_err(|e| format!("failed to finish the layer: {e}"))?;

    // GzEncoder writes no file name and a zero timestamp.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(&tar)
        .and_then(|()| encoder.finish())
        .map(|gzip| Layer {
            gzip,
            diff_id: sha256(&tar),
            unpacked_size: tar.len() as u64,
        })
        .map_err(|e| format!("failed to compress the layer: {e}"))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Collects the paths under `dir` (relative to the walk's root), without following links.
fn walk(root: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let dir = root.join(relative);
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("failed to read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("failed to read {}: {e}", dir.display()))?;
        let path = relative.join(entry.file_name());
        let is_dir = entry
            .file_type()
            .map_err(|e| format!("failed to stat {}: {e}", entry.path().display()))?
            .is_dir();
        out.push(path.clone());
        if is_dir {
            walk(root, &path, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small root file system; `variant` changes what must not matter: timestamps,
    /// permission bits beyond "executable or not", creation order.
    fn tree(variant: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (first, second) = if variant {
            ("etc", "bin")
        } else {
            ("bin", "etc")
        };
        std::fs::create_dir_all(root.join(first)).unwrap();
        std::fs::create_dir_all(root.join(second)).unwrap();
        std::fs::write(root.join("etc/passwd"), "nonroot:x:65532:65532::/:\n").unwrap();
        std::fs::write(root.join("bin/tool"), "#!binary").unwrap();
        let (plain, executable) = if variant {
            (0o600, 0o700)
        } else {
            (0o644, 0o755)
        };
        let set = |path: &str, mode| {
            std::fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(mode))
                .unwrap()
        };
        set("etc/passwd", plain);
        set("bin/tool", executable);
        std::os::unix::fs::symlink("tool", root.join("bin/link")).unwrap();
        if variant {
            let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
            let file = std::fs::File::options()
                .write(true)
                .open(root.join("etc/passwd"));
            file.unwrap().set_modified(old).unwrap();
        }
        dir
    }

    #[test]
    fn the_same_files_give_the_same_layer_whatever_their_dates_modes_and_creation_order() {
        let one = build(tree(false).path(), 1_700_000_000).unwrap();
        let other = build(tree(true).path(), 1_700_000_000).unwrap();
        assert_eq!(one.diff_id, other.diff_id);
        assert_eq!(one.gzip, other.gzip);
        let later = build(tree(false).path(), 1_700_000_001).unwrap();
        assert_ne!(later.diff_id, one.diff_id, "the timestamp is the one given");
    }

    #[test]
    fn entries_are_sorted_root_owned_dated_and_keep_executable_bits_and_links() {
        let layer = build(tree(true).path(), 42).unwrap();
        let decoder = flate2::read::GzDecoder::new(layer.gzip.as_slice());
        let mut archive = tar::Archive::new(decoder);
        let entries: Vec<(String, u32, u64, u64, u64, Option<String>)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                let link = entry
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned());
                (
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                    header.mtime().unwrap(),
                    link,
                )
            })
            .collect();
        let expected = [
            ("bin", 0o755, None),
            ("bin/link", 0o777, Some("tool")),
            ("bin/tool", 0o755, None),
            ("etc", 0o755, None),
            ("etc/passwd", 0o644, None),
        ];
        assert_eq!(entries.len(), expected.len(), "{entries:?}");
        for (entry, (path, mode, link)) in entries.iter().zip(expected) {
            assert_eq!(entry.0.trim_end_matches('/'), path);
            assert_eq!(entry.1, mode, "{path}");
            assert_eq!((entry.2, entry.3, entry.4), (0, 0, 42), "{path}");
            assert_eq!(entry.5.as_deref(), link, "{path}");
        }
    }
}
