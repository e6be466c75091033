//! The configuration file, `DATA/handover.toml` unless `--config` names another. Today it holds
//! the API tokens, as BLAKE3 hashes: the tokens themselves are shown once, when made.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ledger::http::auth::{Scope, TokenRecord, TokenSet};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds the token; recorded as the actor of the commands it sends.
    pub name: String,
    pub scopes: Vec<String>,
    /// `BLAKE3-derive_key("handover 2026-12-04 api token v1", token)`, hex.
    pub blake3: String,
}

/// `--config`, else `DATA/handover.toml`.
pub fn path(data: &Path, config: Option<&Path>) -> PathBuf {
    config.map_or_else(|| data.join("handover.toml"), Path::to_path_buf)
}

/// Reads the file; a missing file is an empty configuration.
///
/// # Errors
/// When the file cannot be read or is not a valid configuration (naming the file).
pub fn load(path: &Path) -> anyhow::Result<Config> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("{}: not a valid configuration", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}

/// Writes the file whole (beside it, then renamed), so a crash never leaves half a file.
///
/// # Errors
/// When the directory cannot be written.
pub fn save(path: &Path, config: &Config) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let text = format!(
        "# Handover configuration.\n# Tokens are stored as hashes; a token itself is shown once, by `handover token add`.\n\n{}",
        toml::to_string_pretty(config)?
    );
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), text)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.error))?;
    Ok(())
}

/// Parses a comma-separated scope list.
///
/// # Errors
/// When a scope is unknown or the list is empty.
pub fn parse_scopes(list: &str) -> anyhow::Result<Vec<Scope>> {
    let mut scopes: Vec<Scope> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<Scope>().map_err(anyhow::Error::msg))
        .collect::<Result<_, _>>()?;
    if scopes.is_empty() {
        bail!("--scopes names no scope (known: ingest, hr, audit:read, admin)");
    }
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

impl Config {
    /// The tokens, ready to check requests against.
    ///
    /// # Errors
    /// When a record is malformed (naming it).
    pub fn token_set(&self) -> anyhow::Result<TokenSet> {
        let mut records = Vec::with_capacity(self.tokens.len());
        for t in &self.tokens {
            let hash: [u8; 32] = hex::decode(&t.blake3)
                .ok()
                .and_then(|h| h.try_into().ok())
                .with_context(|| format!("token {:?}: blake3 is not 64 hex digits", t.name))?;
            let scopes =
                parse_scopes(&t.scopes.join(",")).with_context(|| format!("token {:?}", t.name))?;
            records.push(TokenRecord {
                name: t.name.clone(),
                hash,
                scopes,
            });
        }
        Ok(TokenSet::new(records))
    }
}
