//! The `import` command's I/O: list the tenant's entries, write the manifests. The
//! decisions are in the parent module.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Imported, entry_yaml, import, tenant_skeleton};
use crate::tenant::Credential;
use crate::tenant::environment::{self, EnvironmentError};

/// What `import` was asked.
#[derive(Clone, Debug)]
pub struct ImportArgs {
    pub tenant_url: String,
    pub namespace: String,
    pub tenant_ref: String,
    /// A directory for one file per manifest; standard output when absent.
    pub out: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust, e.g. a TLS-inspecting proxy's.
    pub ca_file: Option<PathBuf>,
}

/// Why `import` failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Environment(#[from] EnvironmentError),
    #[error("failed to list the tenant's CSP entries")]
    List(#[source] crate::tenant::Error),
    #[error("failed to write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads the tenant and writes the manifests (to `args.out`, or to `stdout`); returns what
/// was imported and refused, for the caller to report.
pub async fn run(args: &ImportArgs, stdout: &mut dyn Write) -> Result<Imported, ImportError> {
    let credential = environment::process_credential()?;
    // The skeleton names the kind of credential the import itself used.
    let client_id = match &credential.0 {
        Credential::OAuthClient { client_id, .. } => Some(client_id.clone()),
        Credential::ApiKey(_) => None,
    };
    let client = environment::client(&args.tenant_url, args.ca_file.as_deref(), credential)?;
    let remote = client.list_csp_origins().await.map_err(ImportError::List)?;
    let imported = import(&remote, &args.namespace, &args.tenant_ref);
    let tenant = tenant_skeleton(
        &args.namespace,
        &args.tenant_ref,
        client.base_url().as_str().trim_end_matches('/'),
        client_id.as_deref(),
    );
    match &args.out {
        Some(dir) => {
            create_dir(dir)?;
            write_file(&dir.join("qlik-tenant.yaml"), &tenant)?;
            for entry in &imported.entries {
                write_file(
                    &dir.join(format!("{}.yaml", entry.name)),
                    &entry_yaml(entry),
                )?;
            }
        }
        None => {
            let mut text = tenant;
            for entry in &imported.entries {
                text.push_str("---\n");
                text.push_str(&entry_yaml(entry));
            }
            let written = stdout.write_all(text.as_bytes());
            written.map_err(|source| ImportError::Write {
                path: "standard output".to_owned(),
                source,
            })?;
        }
    }
    Ok(imported)
}

fn create_dir(dir: &Path) -> Result<(), ImportError> {
    std::fs::create_dir_all(dir).map_err(|source| ImportError::Write {
        path: dir.display().to_string(),
        source,
    })
}

fn write_file(path: &Path, text: &str) -> Result<(), ImportError> {
    std::fs::write(path, text).map_err(|source| ImportError::Write {
        path: path.display().to_string(),
        source,
    })
}
