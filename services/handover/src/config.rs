//! The configuration file, `DATA/handover.toml` unless `--config` names another: the API tokens,
//! as BLAKE3 hashes (the tokens themselves are shown once, when made), the JetStream stream's
//! limits and the publisher's pipelining (`[stream]`), and the query service's consumer
//! (`[consumer]`). `deploy/handover.toml.sample` shows every option with its default.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ledger::http::auth::{Scope, TokenRecord, TokenSet};
use projections::anomaly::Thresholds;
use proto_types::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub stream: StreamConfig,
    #[serde(default, skip_serializing_if = "is_default")]
    pub consumer: ConsumerConfig,
    #[serde(default, skip_serializing_if = "is_default")]
    /// Where the anomaly rules draw the line (see `projections::anomaly`).
    pub anomalies: Thresholds,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The JetStream stream `HANDOVER` (created or updated by the ledger on start) and the
/// publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// JetStream drops a resent message whose `Nats-Msg-Id` it saw within this many seconds.
    pub duplicate_window_secs: u64,
    /// Messages older than this many days are removed from the stream (0: kept forever). The
    /// log itself is never trimmed; a query service that needs older entries backfills them.
    pub max_age_days: u64,
    /// The stream's size limit in bytes (-1: none).
    pub max_bytes: i64,
    /// Stream replicas: 1, or 3 on a NATS cluster.
    pub replicas: usize,
    /// Publish acknowledgements awaited at once.
    pub max_in_flight: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            duplicate_window_secs: 600,
            max_age_days: 0,
            max_bytes: -1,
            replicas: 1,
            max_in_flight: 512,
        }
    }
}

/// The query service's durable consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// The durable consumer's name; each query replica needs its own.
    pub durable: String,
    /// Messages fetched (and applied in one transaction) at most at once.
    pub batch: usize,
    /// How long a fetch waits on a quiet stream before the ledger is asked for anything newer
    /// (which finds entries the stream lost at its tail).
    pub idle_ms: u64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            durable: "handover-query".into(),
            batch: 4096,
            idle_ms: 500,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds the token; recorded as the actor of the commands it sends.
    pub name: String,
    pub scopes: Vec<String>,
    /// `BLAKE3-derive_key("handover 2026-12-04 api token v1", token)`, hex.
    pub blake3: String,
    /// When the token stops working (RFC 3339); absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// `--config`, else `DATA/handover.toml`.
pub fn path(data: &Path, config: Option<&Path>) -> PathBuf {
    config.map_or_else(|| data.join("handover.toml"), Path::to_path_buf)
}

/// Reads the file; a missing file is an empty configuration.
///
/// # Errors
/// When the file cannot be read or is not a valid configuration (naming the file, and the
/// option that is wrong).
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let config: Config = match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("{}: not a valid configuration", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
        Err(e) => bail!("{}: {e}", path.display()),
    };
    config
        .check()
        .with_context(|| format!("{}: not a valid configuration", path.display()))?;
    Ok(config)
}

impl Config {
    fn check(&self) -> anyhow::Result<()> {
        // Every token record reads (hash, scopes, expiry), before anything starts.
        self.token_records()?;
        let s = &self.stream;
        if !(1..=5).contains(&s.replicas) {
            bail!("stream.replicas must be 1 to 5, not {}", s.replicas);
        }
        if s.duplicate_window_secs == 0 {
            bail!("stream.duplicate_window_secs must be at least 1");
        }
        if !(1..=65_536).contains(&s.max_in_flight) {
            bail!(
                "stream.max_in_flight must be 1 to 65536, not {}",
                s.max_in_flight
            );
        }
        if s.max_bytes == 0 || s.max_bytes < -1 {
            bail!("stream.max_bytes must be -1 (no limit) or positive");
        }
        let a = &self.anomalies;
        if !(a.spike_factor > 1.0 && a.spike_factor.is_finite()) {
            bail!(
                "anomalies.spike_factor must be above 1, not {}",
                a.spike_factor
            );
        }
        if a.spike_window_days == 0
            || a.spike_min_days == 0
            || a.spike_min_days > a.spike_window_days
        {
            bail!("anomalies.spike_min_days must be 1 to anomalies.spike_window_days");
        }
        if a.off_hours_margin_hours > 11 {
            bail!("anomalies.off_hours_margin_hours must be 0 to 11");
        }
        let c = &self.consumer;
        if !(1..=10_000).contains(&c.batch) {
            bail!("consumer.batch must be 1 to 10000, not {}", c.batch);
        }
        if c.idle_ms == 0 {
            bail!("consumer.idle_ms must be at least 1");
        }
        if c.durable.is_empty()
            || !c
                .durable
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            bail!(
                "consumer.durable must be letters, digits, '-' or '_', not {:?}",
                c.durable
            );
        }
        Ok(())
    }

    /// The publisher's settings for NATS at `url`.
    pub fn outbox(&self, url: &str) -> ledger::outbox::OutboxConfig {
        let s = &self.stream;
        let mut o = ledger::outbox::OutboxConfig::new(url);
        o.duplicate_window = std::time::Duration::from_secs(s.duplicate_window_secs);
        o.max_age = std::time::Duration::from_secs(s.max_age_days * 86_400);
        o.max_bytes = s.max_bytes;
        o.replicas = s.replicas;
        o.max_in_flight = s.max_in_flight;
        o
    }

    /// The consumer's settings for NATS at `url`.
    pub fn consumer(&self, url: &str) -> query::source::NatsConfig {
        let mut n = query::source::NatsConfig::new(url);
        n.durable = self.consumer.durable.clone();
        n.batch = self.consumer.batch;
        n.idle = std::time::Duration::from_millis(self.consumer.idle_ms);
        n
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
        Ok(TokenSet::new(self.token_records()?))
    }

    /// The token records, as [`Config::token_set`] holds them.
    ///
    /// # Errors
    /// When a record is malformed (naming it).
    pub fn token_records(&self) -> anyhow::Result<Vec<TokenRecord>> {
        let mut records = Vec::with_capacity(self.tokens.len());
        for t in &self.tokens {
            let hash: [u8; 32] = hex::decode(&t.blake3)
                .ok()
                .and_then(|h| h.try_into().ok())
                .with_context(|| format!("token {:?}: blake3 is not 64 hex digits", t.name))?;
            let scopes =
                parse_scopes(&t.scopes.join(",")).with_context(|| format!("token {:?}", t.name))?;
            let expires_at = t
                .expires
                .as_deref()
                .map(|e| {
                    chrono::DateTime::parse_from_rfc3339(e)
                        .map(|d| Timestamp::from_chrono(d.to_utc()))
                        .with_context(|| {
                            format!("token {:?}: expires {e:?} is not an RFC 3339 time", t.name)
                        })
                })
                .transpose()?;
            records.push(TokenRecord {
                name: t.name.clone(),
                hash,
                scopes,
                expires_at,
            });
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_in_deploy_is_valid_and_shows_the_defaults() {
        let sample =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/handover.toml.sample");
        let c = load(&sample).unwrap();
        assert_eq!(c.stream, StreamConfig::default());
        assert_eq!(c.consumer, ConsumerConfig::default());
        assert!(c.tokens.is_empty());
        // Every option of the two sections is in the sample.
        let text = std::fs::read_to_string(&sample).unwrap();
        assert_eq!(c.anomalies, Thresholds::default());
        for key in toml::to_string(&StreamConfig::default())
            .unwrap()
            .lines()
            .chain(toml::to_string(&ConsumerConfig::default()).unwrap().lines())
            .chain(toml::to_string(&Thresholds::default()).unwrap().lines())
        {
            let name = key.split(" = ").next().unwrap();
            assert!(
                text.contains(&format!("\n{name} = ")),
                "the sample shows {name}"
            );
        }
    }
}
