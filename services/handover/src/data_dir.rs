//! A data directory: `DIR/ledger.redb` (the log). `--data` may also name the store file itself.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The store of an existing data directory (or the store file named directly).
///
/// # Errors
/// When `data` does not exist or holds no store; nothing is created.
pub fn existing_store(data: &Path) -> anyhow::Result<PathBuf> {
    if data.is_file() {
        return Ok(data.to_path_buf());
    }
    if !data.exists() {
        bail!("{}: no such directory", data.display());
    }
    let store = data.join(ledger::STORE_FILE);
    if !store.exists() {
        bail!(
            "{}: not a Handover data directory (it has no {})",
            data.display(),
            ledger::STORE_FILE
        );
    }
    Ok(store)
}

/// The store of a data directory that may be new; creates the directory.
///
/// # Errors
/// When `data` cannot be created or is a file that is not a store.
pub fn store_for_writing(data: &Path) -> anyhow::Result<PathBuf> {
    if data.is_file() {
        return Ok(data.to_path_buf());
    }
    std::fs::create_dir_all(data).map_err(|e| {
        anyhow::anyhow!("{}: cannot create the data directory: {e}", data.display())
    })?;
    Ok(data.join(ledger::STORE_FILE))
}
