//! `handover serve`: the ledger, its write API and the forensic read side in one process (the
//! embedded default); `handover ledger`: the write side alone.
//!
//! Startup: open (or create) the store, rebuild the projections from the log, load the tokens;
//! with `--demo`, fill an empty store with the demo history first; with no token configured, make
//! an `admin` token with every scope and print it once; with `--nats URL`, publish every committed
//! entry to JetStream (see `ledger::outbox`). `serve` also opens the query store
//! (`DATA/query.redb`) and feeds it from the ledger in-process, or, with `--nats`, from the
//! stream (backfilling from the local log). Shutdown (SIGTERM or Ctrl-C): stop accepting
//! connections, finish the requests in flight, let the writer commit and answer everything it
//! accepted, close the stores.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use ledger::http::auth::{Scope, TokenSet, new_token, token_hash};
use ledger::http::{AppState, Beside, router_with};
use ledger::{Ledger, LogStore, NewEntry, WriterConfig};
use query::http::AuditSink;
use query::source::{Backfill, LogReaderHandle, follow_ledger, follow_nats};

use crate::config::{self, TokenConfig};
use crate::demo::{DemoConfig, DemoGenerator};

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: crate::cli::DataArg,
    /// Where to listen (port 0 picks a free port; the address is printed).
    #[arg(
        long,
        env = "HANDOVER_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    /// The configuration file (default: DATA/handover.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Fill an empty store with the demo history before serving.
    #[arg(long)]
    pub demo: bool,
    /// Publish every committed entry to NATS JetStream (stream HANDOVER) at this URL.
    #[arg(long, env = "HANDOVER_NATS_URL", value_name = "URL")]
    pub nats: Option<String>,
}

/// # Errors
/// Unusable data directory, configuration or address (exit 2).
/// Loads the tokens of `cfg_path`; with none configured, makes an `admin` token with every scope
/// and prints it once.
///
/// # Errors
/// An unreadable or invalid configuration, or one that cannot be written.
pub fn tokens_or_first_admin(cfg_path: &std::path::Path) -> anyhow::Result<TokenSet> {
    let mut cfg = config::load(cfg_path)?;
    if cfg.tokens.is_empty() {
        let token = new_token();
        cfg.tokens.push(TokenConfig {
            name: "admin".into(),
            scopes: Scope::ALL.iter().map(ToString::to_string).collect(),
            blake3: hex::encode(token_hash(&token)),
            expires: None,
        });
        config::save(cfg_path, &cfg)?;
        println!(
            "no API token was configured: made token \"admin\" with every scope (shown only now):"
        );
        println!("  {token}");
    }
    cfg.token_set()
}

/// `handover serve` (`read_side`: the query side in the same process) or `handover ledger`.
///
/// # Errors
/// Unusable data directory, configuration or address (exit 2).
pub fn run(args: ServeArgs, read_side: bool) -> anyhow::Result<ExitCode> {
    // The configuration first: a bad option stops the start before anything is created.
    let cfg_path = config::path(&args.data.data, args.config.as_deref());
    let cfg = config::load(&cfg_path)?;
    let store_path = crate::data_dir::store_for_writing(&args.data.data)?;
    let store = LogStore::open_or_create(&store_path)?;
    let empty = store.head().next_seq == 0;
    let tokens = Arc::new(tokens_or_first_admin(&cfg_path)?);
    let read = if read_side {
        let path = store_path.with_file_name(query::store::STORE_FILE);
        Some(query::ReadSide::open_with(&path, cfg.anomalies.clone())?)
    } else {
        None
    };
    let (ledger, writer) = Ledger::start(store, WriterConfig::default())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let shutdown = crate::serve_cmd::shutdown_signal();
        reload_tokens_on_hangup(cfg_path.clone(), tokens.clone());
        let publisher = args
            .nats
            .as_ref()
            .map(|url| ledger::outbox::Publisher::start(ledger.clone(), cfg.outbox(url)));
        if args.demo && empty {
            let n = demo(&ledger).await?;
            println!("demo history appended: {n} events");
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| anyhow::anyhow!("{}: cannot listen: {e}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}");
        tracing::info!(%addr, store = %store_path.display(), "serving");
        let (stop_feed, stop_rx) = tokio::sync::watch::channel(false);
        let mut feed = None;
        let beside = read.as_ref().map(|read| {
            let local = LogReaderHandle::of(&ledger);
            feed = Some(match &args.nats {
                None => tokio::spawn(follow_ledger(read.applier.clone(), local, stop_rx)),
                Some(url) => tokio::spawn(follow_nats(
                    read.applier.clone(),
                    cfg.consumer(url),
                    Backfill::Local(local),
                    stop_rx,
                )),
            });
            beside(read, tokens.clone(), AuditSink::Local(ledger.clone()))
        });
        let app = router_with(
            AppState {
                ledger: ledger.clone(),
                tokens: tokens.clone(),
            },
            beside,
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        let _ = stop_feed.send(true);
        if let Some(f) = feed {
            let _ = f.await;
        }
        if let Some(p) = publisher {
            p.stop().await;
        }
        anyhow::Ok(())
    });
    drop(rt);
    drop(ledger);
    writer.join();
    result?;
    println!("stopped; every accepted request was committed");
    Ok(ExitCode::SUCCESS)
}

/// The forensic API of `read`, to serve beside the write API.
pub fn beside(read: &query::ReadSide, tokens: Arc<TokenSet>, audit: AuditSink) -> Beside {
    let (routes, doc) = query::http::forensic_routes().split_for_parts();
    let status = read.status.clone();
    let metrics = read.metrics.clone();
    Beside {
        routes: routes.with_state(read.http_state(tokens, audit)),
        doc,
        not_ready: Arc::new(move || query::http::ops::not_ready(&status.borrow())),
        metrics: Arc::new(move || metrics.render()),
    }
}

async fn demo(ledger: &Ledger) -> anyhow::Result<u64> {
    let events = DemoGenerator::new(DemoConfig {
        employees: 40,
        customers: 400,
        days: 30,
        seed: 1,
        id_prefix: Some("demo-s1-h0".into()),
    });
    let mut n = 0;
    let mut chunk = Vec::with_capacity(1024);
    for e in events {
        chunk.push(NewEntry::new(e)?);
        if chunk.len() == 1024 {
            n += ledger.append(std::mem::take(&mut chunk)).await?.len() as u64;
        }
    }
    if !chunk.is_empty() {
        n += ledger.append(chunk).await?.len() as u64;
    }
    Ok(n)
}

/// On SIGHUP (`systemctl reload`), reads the tokens from `cfg_path` again and puts them in place
/// of `tokens`: a token revoked or added with `handover token` counts from the next request. A
/// configuration that does not read leaves the tokens in use as they were. Installed when called
/// (inside the runtime).
pub(crate) fn reload_tokens_on_hangup(cfg_path: std::path::PathBuf, tokens: Arc<TokenSet>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP: tokens are read at start only");
            return;
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match config::load(&cfg_path).and_then(|c| c.token_records()) {
                    Ok(records) => {
                        let names: Vec<String> = records.iter().map(|r| r.name.clone()).collect();
                        tokens.replace(records);
                        tracing::info!(tokens = ?names, "tokens reloaded");
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "tokens not reloaded: the ones in use stay");
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (cfg_path, tokens);
}

/// SIGTERM or Ctrl-C. The handlers are installed when this is called (inside the runtime), not
/// when it is first awaited, so that a signal that comes as soon as the address is printed is
/// not lost to the default action.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = term => {},
        }
        tracing::info!("shutting down: finishing requests in flight");
    }
}
