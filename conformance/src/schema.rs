//! Validation against the runtime-spec JSON schemas installed by Debian's
//! golang-github-opencontainers-specs-dev, resolving their relative `$ref`s from the
//! local directory only (no network).

use crate::error::{io, Error, Result};
use jsonschema::{Retrieve, Uri};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where Debian installs the runtime-spec schemas.
pub const DEFAULT_SCHEMA_DIR: &str =
    "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema";

/// Serves `file://` URIs from the local filesystem; refuses everything else.
struct LocalFiles;

impl Retrieve for LocalFiles {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> std::result::Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if uri.scheme().as_str() != "file" {
            return Err(format!("refusing to fetch non-local schema {uri}").into());
        }
        let path = uri.path().as_str().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// Validate `instance` against `dir/name`; Ok(errors) lists every violation.
pub fn validate(dir: &Path, name: &str, instance: &Value) -> Result<Vec<String>> {
    let path: PathBuf = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let schema: Value = serde_json::from_str(&text).map_err(|source| Error::Json {
        what: path.display().to_string(),
        source,
    })?;
    let validator = jsonschema::options()
        .with_base_uri(format!("file://{}", path.display()))
        .with_retriever(LocalFiles)
        .build(&schema)
        .map_err(|e| Error::Schema {
            path: path.clone(),
            msg: e.to_string(),
        })?;
    let errors = validator
        .iter_errors(instance)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect();
    Ok(errors)
}

/// Is the schema directory installed?
pub fn available(dir: &Path) -> bool {
    dir.join("config-schema.json").exists() && dir.join("state-schema.json").exists()
}
