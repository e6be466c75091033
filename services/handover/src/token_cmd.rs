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
    },
    /// List the tokens' names and scopes.
    List,
    /// Remove a token; requests bearing it are refused from the next start.
    Revoke { name: String },
}

/// # Errors
/// Bad names or scopes, or an unwritable configuration (exit 2).
pub fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let path = config::path(&args.data, args.config.as_deref());
    let mut cfg = config::load(&path)?;
    match args.action {
        TokenAction::Add { name, scopes } => {
            SystemId::parse(name.clone())
                .map_err(|e| anyhow::anyhow!("token name {name:?}: {e}"))?;
            let scopes = config::parse_scopes(&scopes)?;
            if cfg.tokens.iter().any(|t| t.name == name) {
                bail!(
                    "{}: a token named {name:?} exists already (revoke it first)",
                    path.display()
                );
            }
            let token = new_token();
            cfg.tokens.push(TokenConfig {
                name: name.clone(),
                scopes: scopes.iter().map(ToString::to_string).collect(),
                blake3: hex::encode(token_hash(&token)),
            });
            config::save(&path, &cfg)?;
            eprintln!(
                "token {name:?} ({}) stored (hashed) in {}; it is shown only now:",
                scopes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                path.display()
            );
            println!("{token}");
        }
        TokenAction::List => {
            for t in &cfg.tokens {
                println!("{}\t{}", t.name, t.scopes.join(","));
            }
        }
        TokenAction::Revoke { name } => {
            let before = cfg.tokens.len();
            cfg.tokens.retain(|t| t.name != name);
            if cfg.tokens.len() == before {
                bail!("{}: no token named {name:?}", path.display());
            }
            config::save(&path, &cfg)?;
            eprintln!("token {name:?} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
