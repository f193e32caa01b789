//! What the go command knows about a module a wrapper module requires: its version and
//! time (`go list -m`) and where its files are (`go mod download`, which fetches them from
//! the Go module proxy when they are not in the module cache yet). Runs `go`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A module a wrapper module requires, as `go list -m` reports it.
pub struct Module {
    /// `vX.Y.Z`.
    pub version: String,
    /// The version's commit time (RFC 3339, UTC).
    pub time: String,
}

/// The version of `path` that the wrapper module in `dir` builds with.
pub fn required_module(dir: &Path, path: &str) -> Result<Module, String> {
    let info = go_json(dir, &["list", "-m", "-json", path])?;
    Ok(Module {
        version: field(&info, "Version", path)?,
        time: field(&info, "Time", path)?,
    })
}

/// The directory (in the module cache, read-only) holding the files of the version of
/// `path` that the wrapper module in `dir` builds with; downloads it if needed.
pub fn module_dir(dir: &Path, path: &str) -> Result<PathBuf, String> {
    let info = go_json(dir, &["mod", "download", "-json", path])?;
    if let Some(error) = info["Error"].as_str() {
        return Err(format!("go mod download {path} failed: {error}"));
    }
    field(&info, "Dir", path).map(PathBuf::from)
}

/// Runs `go <args>` in `dir` and parses its JSON answer.
fn go_json(dir: &Path, args: &[&str]) -> Result<serde_json::Value, String> {
    let what = format!("go {}", args.join(" "));
    let output = Command::new("go")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| format!("failed to run go (is Go installed and on PATH?): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what} failed in {}: {}{}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr),
            // `go mod download -json` reports a failed download in its JSON, on stdout.
            String::from_utf8_lossy(&output.stdout)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("failed to parse {what}: {e}"))
}

fn field(info: &serde_json::Value, name: &str, path: &str) -> Result<String, String> {
    info[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("go gave no {name} for {path}"))
}
