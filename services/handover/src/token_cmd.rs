//! `handover token add|list|revoke`: API tokens, stored hashed in the configuration file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use ledger::http::auth::{new_token, token_hash};
use proto_types::ids::SystemId;

use crate::config::{self, TokenConfig};

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
    /// The data directory.
    #[arg(
        long,
        global = true,
        env = "HANDOVER_DATA",
        default_value = "./data",
        value_name = "DIR"
    )]
    pub data: PathBuf,
    /// The configuration file (default: DATA/handover.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a token; it is printed once, and only its hash is stored.
    Add {
        /// Who holds it (e.g. `crm`, `hr-system`, `okta`); recorded as the actor of its commands.
        name: String,
        /// Comma-separated: ingest, hr, audit:read, admin.
        #[arg(long, value_name = "SCOPES")]
        scopes: String,
        /// Refuse the token after this long: a whole number of days, hours or minutes
        /// (`90d`, `12h`, `30m`). Without it the token works until revoked.
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
    /// List the tokens' names and scopes.
    List,
    /// Remove a token; requests bearing it are refused once the server re-reads its tokens
    /// (SIGHUP, `systemctl reload`) or restarts.
    Revoke { name: String },
}

/// `90d`, `12h`, `30m`: a token's lifetime.
fn parse_lifetime(s: &str) -> Result<chrono::Duration, String> {
    let bad = || format!("{s:?} is not a lifetime like 90d, 12h or 30m");
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
    let d = match unit {
        "d" => chrono::Duration::try_days(n),
        "h" => chrono::Duration::try_hours(n),
        "m" => chrono::Duration::try_minutes(n),
        _ => return Err(bad()),
    };
    d.filter(|d| *d <= chrono::Duration::days(3650))
        .ok_or_else(|| format!("{s:?} is longer than ten years"))
}

/// # Errors
/// Bad names or scopes, or an unwritable configuration (exit 2).
pub fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let path = config::path(&args.data, args.config.as_deref());
    let mut cfg = config::load(&path)?;
    match args.action {
        TokenAction::Add {
            name,
            scopes,
            expires_in,
        } => {
            SystemId::parse(name.clone())
                .map_err(|e| anyhow::anyhow!("token name {name:?}: {e}"))?;
            let scopes = config::parse_scopes(&scopes)?;
            if cfg.tokens.iter().any(|t| t.name == name) {
                bail!(
                    "{}: a token named {name:?} exists already (revoke it first)",
                    path.display()
                );
            }
            let lifetime = expires_in
                .as_deref()
                .map(parse_lifetime)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?;
            let token = new_token();
            let expires = lifetime.map(|d| {
                (chrono::Utc::now() + d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            });
            cfg.tokens.push(TokenConfig {
                name: name.clone(),
                scopes: scopes.iter().map(ToString::to_string).collect(),
                blake3: hex::encode(token_hash(&token)),
                expires: expires.clone(),
            });
            config::save(&path, &cfg)?;
            eprintln!(
                "token {name:?} ({}{}) stored (hashed) in {}; it is shown only now:",
                scopes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                expires.map_or(String::new(), |e| format!("; expires {e}")),
                path.display()
            );
            println!("{token}");
        }
        TokenAction::List => {
            for t in &cfg.tokens {
                let expires = t.expires.as_deref().unwrap_or("never");
                println!("{}\t{}\texpires {expires}", t.name, t.scopes.join(","));
            }
        }
        TokenAction::Revoke { name } => {
            let before = cfg.tokens.len();
            cfg.tokens.retain(|t| t.name != name);
            if cfg.tokens.len() == before {
                bail!("{}: no token named {name:?}", path.display());
            }
            config::save(&path, &cfg)?;
            eprintln!(
                "token {name:?} revoked in {}; a running server refuses it once it re-reads its tokens (kill -HUP, systemctl reload)",
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_lifetime;

    #[test]
    fn lifetimes_are_days_hours_or_minutes() {
        assert_eq!(parse_lifetime("90d"), Ok(chrono::Duration::days(90)));
        assert_eq!(parse_lifetime("12h"), Ok(chrono::Duration::hours(12)));
        assert_eq!(parse_lifetime("30m"), Ok(chrono::Duration::minutes(30)));
        for bad in ["", "d", "0d", "-1d", "1.5d", "2w", "90", "99999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
    }
}
