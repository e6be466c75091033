//! `handover query`: the read side alone. It consumes stream `HANDOVER` with a durable pull
//! consumer, verifies and files every entry in `DATA/query.redb`, backfills what the stream lacks
//! from the ledger (`--ledger URL`), and serves the forensic API, recording every read on the
//! ledger. The token it calls the ledger with (scopes `audit:read` and `ingest`) comes from the
//! environment (`HANDOVER_LEDGER_TOKEN`), never from the command line, where `ps` would show it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use query::http::AuditSink;
use query::ledger_client::LedgerClient;
use query::source::{Backfill, follow_nats};

use crate::config;

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub data: crate::cli::DataArg,
    /// Where to listen (port 0 picks a free port; the address is printed).
    #[arg(
        long,
        env = "HANDOVER_QUERY_LISTEN",
        default_value = "127.0.0.1:8081",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    /// The configuration file (default: DATA/handover.toml): the tokens of this API.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The NATS server with the HANDOVER stream.
    #[arg(long, env = "HANDOVER_NATS_URL", value_name = "URL")]
    pub nats: Option<String>,
    /// The ledger's HTTP address (http://HOST:PORT): backfill, and where reads are recorded.
    #[arg(long, env = "HANDOVER_LEDGER_URL", value_name = "URL")]
    pub ledger: Option<String>,
    /// The durable consumer's name (default: `consumer.durable` of the configuration, else
    /// `handover-query`); give each query replica its own.
    #[arg(long, value_name = "NAME")]
    pub durable: Option<String>,
}

/// # Errors
/// Bad usage, an unusable data directory or configuration, an address in use (exit 2).
pub fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let Some(nats) = args.nats.clone() else {
        bail!("handover query consumes the stream: give --nats URL (or HANDOVER_NATS_URL)");
    };
    let Some(ledger_url) = args.ledger.clone() else {
        bail!(
            "handover query records every read on the ledger and backfills from it: give --ledger http://HOST:PORT (or HANDOVER_LEDGER_URL)"
        );
    };
    let token = std::env::var("HANDOVER_LEDGER_TOKEN").map_err(|_| {
        anyhow::anyhow!(
            "set HANDOVER_LEDGER_TOKEN to a ledger token with the audit:read and ingest scopes"
        )
    })?;
    let client = LedgerClient::new(&ledger_url, token)?;
    let data = &args.data.data;
    std::fs::create_dir_all(data)
        .with_context(|| format!("{}: cannot create the data directory", data.display()))?;
    let cfg_path = config::path(data, args.config.as_deref());
    let tokens = Arc::new(crate::serve_cmd::tokens_or_first_admin(&cfg_path)?);
    let cfg = config::load(&cfg_path)?;
    let mut nats_config = cfg.consumer(&nats);
    if let Some(d) = &args.durable {
        nats_config.durable = d.clone();
    }
    let read =
        query::ReadSide::open_with(&data.join(query::store::STORE_FILE), cfg.anomalies.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shutdown = crate::serve_cmd::shutdown_signal();
        crate::serve_cmd::reload_tokens_on_hangup(cfg_path.clone(), tokens.clone());
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let feed = tokio::spawn(follow_nats(
            read.applier.clone(),
            nats_config,
            Backfill::Remote(client.clone()),
            stop_rx,
        ));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| anyhow::anyhow!("{}: cannot listen: {e}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}");
        tracing::info!(%addr, ledger = %ledger_url, "query service serving");
        let app = query::http::router(read.http_state(tokens, AuditSink::Remote(client)));
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        let _ = stop.send(true);
        let _ = feed.await;
        anyhow::Ok(())
    })?;
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}
