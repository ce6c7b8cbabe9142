//! The `isms` command: serve over stdio or HTTP, migrate, manage actors.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use rmcp::ServiceExt;

use super::Shared;
use super::http::{HttpOptions, router};
use super::mcp::McpServer;
use crate::config::{
    ActorCommand, AwarenessCommand, Cli, Command, ReviewCommand, ServeArgs, SoaCommand, default_database_path,
};
use crate::domain::actor::{Actor, ActorKind, ActorName, Role};
use crate::domain::change::ChangePolicy;
use crate::domain::nonconformity::DuePolicy;
use crate::domain::risk::Methodology;
use crate::operations::{App, Registry};
use crate::store::{NewActor, Store, sqlite_url};

/// The actor name written in the audit trail for changes made from the command line.
const CLI_ACTOR: &str = "cli";
/// The first actor created on an empty database.
const FIRST_ACTOR: &str = "admin";

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

/// What an operator can do about a database whose recorded migrations this build refuses.
fn open_hint(e: &sqlx::Error) -> &'static str {
    use sqlx::migrate::MigrateError;
    let sqlx::Error::Migrate(refused) = e else { return "" };
    match **refused {
        MigrateError::VersionMismatch(_) => {
            " (the database was set up by a different build of isms: run that build, or restore the database from a backup)"
        }
        MigrateError::VersionMissing(_) => {
            " (the database was set up by a newer isms: run that version or a later one, or restore the database from a backup)"
        }
        MigrateError::Dirty(_) => {
            " (a migration is recorded as failed: restore the database from the backup taken before the upgrade)"
        }
        _ => "",
    }
}

async fn open_store(cli: &Cli) -> anyhow::Result<Store> {
    let url = match &cli.database_url {
        Some(u) => u.clone(),
        None => sqlite_url(&default_database_path()),
    };
    // sqlx's message already holds its source's text, so it is printed alone, not as a chain.
    let store = Store::open(&url)
        .await
        .map_err(|e| anyhow!("cannot open the database {}: {e}{}", redact(&url), open_hint(&e)))?;
    tracing::info!(database = %redact(&url), "database ready");
    Ok(store)
}

/// On a database without actors, registers the first ISMS manager and prints its token.
async fn bootstrap(store: &Store, listen: Option<&str>) -> anyhow::Result<()> {
    if !store.actors().await?.is_empty() {
        return Ok(());
    }
    let first = NewActor {
        name: ActorName::parse(FIRST_ACTOR)?,
        kind: ActorKind::Human,
        role: Role::IsmsManager,
        model: None,
        model_version: None,
    };
    let issued = store.add_actor(CLI_ACTOR, &first).await?;
    let url = listen.map_or_else(|| "http://127.0.0.1:8727".to_owned(), |l| format!("http://{l}"));
    eprintln!(
        "\nNew ISMS database: created actor `{FIRST_ACTOR}` (role isms_manager).\n\
         Its bearer token, shown only this once:\n\n    {token}\n\n\
         Connect an MCP client over HTTP to {url}/mcp with header `Authorization: Bearer <token>`,\n\
         or over stdio with `isms stdio --actor {FIRST_ACTOR}`. Register more actors with `isms actor add NAME --role ROLE`.\n",
        token = issued.token
    );
    Ok(())
}

/// Builds the operation registry on a blocking thread, so its JSON Schemas (a few
/// milliseconds of work) are made while the database is being opened.
fn build_registry() -> tokio::task::JoinHandle<Registry> {
    tokio::task::spawn_blocking(Registry::new)
}

async fn shared(cli: &Cli, store: Store, registry: tokio::task::JoinHandle<Registry>) -> anyhow::Result<Shared> {
    let due = DuePolicy {
        major_days: cli.major_due_days,
        minor_days: cli.minor_due_days,
        next_surveillance_audit: cli.next_surveillance_audit,
    };
    let risk = Methodology { acceptance_threshold: cli.risk_acceptance_threshold };
    let change =
        ChangePolicy { emergency_approval_hours: cli.emergency_approval_hours, review_days: cli.change_review_days };
    let app = App { due, risk, evidence_max_age_days: cli.evidence_max_age_days, change, ..App::new(store) };
    let registry = registry.await.context("building the operation registry")?;
    Ok(Shared::new(Arc::new(app), Arc::new(registry)))
}

fn start_relay(cli: &Cli, shared: &Shared) {
    if let Some(url) = &cli.redis_url {
        let app = &shared.app;
        tokio::spawn(crate::events::relay(
            app.store.clone(),
            app.metrics.clone(),
            url.clone(),
            cli.redis_stream.clone(),
        ));
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn serve(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    let registry = build_registry();
    let store = open_store(cli).await?;
    bootstrap(&store, Some(&args.listen.to_string())).await?;
    let shared = shared(cli, store.clone(), registry).await?;
    start_relay(cli, &shared);
    let options = HttpOptions {
        allowed_origins: args.allowed_origins.clone(),
        allowed_hosts: args.allowed_hosts.clone(),
        max_batch: args.max_batch,
        max_body_bytes: args.max_body_bytes,
        redis_url: cli.redis_url.clone(),
    };
    let (app, _rpc_handle) = router(shared, &options);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "isms serving: MCP at /mcp, JSON-RPC at /rpc (WebSocket too), /healthz, /readyz, /metrics");
    eprintln!("isms listening on http://{local} (MCP: /mcp, JSON-RPC: /rpc)");
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    store.close().await;
    Ok(())
}

async fn stdio(cli: &Cli, actor: Option<&str>) -> anyhow::Result<()> {
    let registry = build_registry();
    let store = open_store(cli).await?;
    let known = || async {
        let list: Vec<String> =
            store.actors().await.unwrap_or_default().into_iter().map(|a| format!("{} ({})", a.name, a.role)).collect();
        list.join(", ")
    };
    let Some(name) = actor else {
        bootstrap(&store, None).await?;
        return Err(anyhow!("no actor: set --actor NAME or ISMS_ACTOR to one of: {}", known().await));
    };
    // A registered actor means the database is set up: one query at start instead of two.
    let mut found = store.actor_by_name(name).await?;
    if found.is_none() {
        bootstrap(&store, None).await?;
        found = store.actor_by_name(name).await?;
    }
    let Some(actor) = found else {
        return Err(anyhow!("actor `{name}` is not registered (or retired); registered: {}", known().await));
    };
    let shared = shared(cli, store.clone(), registry).await?;
    start_relay(cli, &shared);
    tracing::info!(actor = %actor.name, role = %actor.role, "serving MCP over stdio");
    let running = McpServer::stdio(shared, actor).serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    store.close().await;
    Ok(())
}

async fn actor_command(cli: &Cli, command: &ActorCommand) -> anyhow::Result<()> {
    let store = open_store(cli).await?;
    match command {
        ActorCommand::Add { name, role, kind, model, model_version } => {
            let new = NewActor {
                name: ActorName::parse(name)?,
                kind: kind.parse()?,
                role: role.parse()?,
                model: model.clone(),
                model_version: model_version.clone(),
            };
            let issued = store.add_actor(CLI_ACTOR, &new).await?;
            eprintln!("registered `{}` ({}); its bearer token, shown only this once:", issued.actor, new.role);
            println!("{}", issued.token);
        }
        ActorCommand::Retire { name } => {
            store.retire_actor(CLI_ACTOR, &ActorName::parse(name)?).await?;
            eprintln!("retired `{name}`; its tokens no longer work");
        }
        ActorCommand::Tokens { name } => {
            for t in store.tokens(name).await? {
                println!(
                    "{}\t{}\t{}",
                    t.id,
                    t.created_at,
                    t.revoked_at.as_deref().map_or("active".to_owned(), |r| format!("revoked {r}"))
                );
            }
        }
        ActorCommand::Revoke { id } => {
            let actor = store.revoke_token(CLI_ACTOR, id).await?;
            eprintln!("revoked token {id} of `{actor}`");
        }
        ActorCommand::Token { name } => {
            let issued = store.issue_token(CLI_ACTOR, &ActorName::parse(name)?).await?;
            eprintln!("new bearer token for `{}`, shown only this once:", issued.actor);
            println!("{}", issued.token);
        }
        ActorCommand::List => {
            for a in store.actor_list().await? {
                let model = match (&a.model, &a.model_version) {
                    (Some(m), Some(v)) => format!("{m} {v}"),
                    (Some(m), None) => m.clone(),
                    _ => String::new(),
                };
                println!("{}\t{}\t{}\t{}\t{model}", a.name, a.role, a.kind.as_str(), a.status);
            }
        }
    }
    store.close().await;
    Ok(())
}

/// Runs a read-only operation from the command line, as a viewer, and returns its output.
async fn read_operation(cli: &Cli, name: &str, args: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let registry = build_registry();
    let store = open_store(cli).await?;
    let shared = shared(cli, store.clone(), registry).await?;
    let op = shared.registry.get(name).ok_or_else(|| anyhow!("no operation {name}"))?;
    let reader = Actor { name: CLI_ACTOR.to_owned(), kind: ActorKind::Human, role: Role::Viewer };
    let out = op.call(shared.app.clone(), reader, args).await;
    store.close().await;
    Ok(out?)
}

/// The boot check: exit 0 when `name` is current, 3 with the list otherwise.
async fn awareness_check(cli: &Cli, name: &str) -> anyhow::Result<ExitCode> {
    let registry = build_registry();
    let store = open_store(cli).await?;
    let shared = shared(cli, store.clone(), registry).await?;
    let actor =
        store.actor_by_name(name).await?.ok_or_else(|| anyhow!("actor `{name}` is not registered (or retired)"))?;
    let op = shared.registry.get("check_awareness").ok_or_else(|| anyhow!("no operation check_awareness"))?;
    let status = op.call(shared.app.clone(), actor, serde_json::json!({})).await;
    store.close().await;
    let status = status?;
    let pending = status["pending"].as_array().cloned().unwrap_or_default();
    if pending.is_empty() {
        println!("{name}: current");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{name}: {} to acknowledge", pending.len());
    for p in &pending {
        println!(
            "{} version {} ({}): {}; read isms://policies/{} and call acknowledge_policy with sha256 {}",
            p["policy_id"].as_str().unwrap_or_default(),
            p["version"].as_str().unwrap_or_default(),
            p["title"].as_str().unwrap_or_default(),
            p["reason"].as_str().unwrap_or_default(),
            p["policy_id"].as_str().unwrap_or_default(),
            p["sha256"].as_str().unwrap_or_default(),
        );
    }
    Ok(ExitCode::from(3))
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve(args) => serve(&cli, args).await?,
        Command::Stdio { actor } => stdio(&cli, actor.as_deref()).await?,
        Command::Migrate => {
            open_store(&cli).await?.close().await;
            eprintln!("migrations applied");
        }
        Command::Actor(command) => actor_command(&cli, command).await?,
        Command::Awareness(AwarenessCommand::Check { actor }) => return awareness_check(&cli, actor).await,
        Command::Review(ReviewCommand::Pack { out, since }) => {
            let inputs =
                read_operation(&cli, "get_management_review_inputs", serde_json::json!({ "since": since })).await?;
            std::fs::write(out, super::report::review_pack(&inputs))
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!("management-review pack written to {}", out.display());
        }
        Command::Soa(SoaCommand::Export { format, version }) => {
            let out =
                read_operation(&cli, "export_soa", serde_json::json!({ "format": format, "version": version })).await?;
            print!("{}", out["content"].as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}
