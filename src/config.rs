//! Command line and environment: every flag is also an `ISMS_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The ISO/IEC 27001:2022 ISMS system of record, for AI agents (MCP) and scripts (JSON-RPC).
#[derive(Debug, Parser)]
#[command(name = "isms", version, about)]
pub struct Cli {
    /// Database: sqlite://PATH or postgres://USER@HOST/DB [default: SQLite file in the data directory].
    #[arg(long, env = "ISMS_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Log filter for stderr (tracing syntax).
    #[arg(long, env = "ISMS_LOG", default_value = "info", global = true)]
    pub log: String,
    /// Days until a major nonconformity's corrective action is due.
    #[arg(long, env = "ISMS_MAJOR_DUE_DAYS", default_value_t = 90, global = true)]
    pub major_due_days: u64,
    /// Days until a minor nonconformity's corrective action is due, without a surveillance audit date.
    #[arg(long, env = "ISMS_MINOR_DUE_DAYS", default_value_t = 365, global = true)]
    pub minor_due_days: u64,
    /// Date of the next surveillance audit (YYYY-MM-DD): minor nonconformities are due by then.
    #[arg(long, env = "ISMS_NEXT_SURVEILLANCE_AUDIT", global = true)]
    pub next_surveillance_audit: Option<chrono::NaiveDate>,
    /// Highest residual risk score (likelihood x impact, 1-25) that may be accepted.
    #[arg(long, env = "ISMS_RISK_ACCEPTANCE_THRESHOLD", default_value_t = 6, global = true)]
    pub risk_acceptance_threshold: i64,
    /// Age in days after which SoA evidence counts as stale.
    #[arg(long, env = "ISMS_EVIDENCE_MAX_AGE_DAYS", default_value_t = 365, global = true)]
    pub evidence_max_age_days: u64,
    /// Hours within which an emergency change needs its retrospective approval.
    #[arg(long, env = "ISMS_EMERGENCY_APPROVAL_HOURS", default_value_t = 72, global = true)]
    pub emergency_approval_hours: i64,
    /// Days within which an implemented change needs its post-implementation review.
    #[arg(long, env = "ISMS_CHANGE_REVIEW_DAYS", default_value_t = 14, global = true)]
    pub change_review_days: i64,
    /// Redis to publish events to (stream `isms:events`); unset: events stay in the outbox.
    #[arg(long, env = "ISMS_REDIS_URL", global = true)]
    pub redis_url: Option<String>,
    /// Redis stream name for events.
    #[arg(long, env = "ISMS_REDIS_STREAM", default_value = "isms:events", global = true)]
    pub redis_stream: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over stdin/stdout, acting as one actor.
    Stdio {
        /// The registered actor this session acts as.
        #[arg(long, env = "ISMS_ACTOR")]
        actor: Option<String>,
    },
    /// Serve HTTP: MCP at /mcp, JSON-RPC at /rpc, /healthz.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage actors and their tokens.
    #[command(subcommand)]
    Actor(ActorCommand),
    /// The Statement of Applicability.
    #[command(subcommand)]
    Soa(SoaCommand),
    /// Awareness (7.3).
    #[command(subcommand)]
    Awareness(AwarenessCommand),
    /// Management review (9.3).
    #[command(subcommand)]
    Review(ReviewCommand),
}

/// `isms review …`
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Write the management-review pack: a self-contained HTML page with charts.
    Pack {
        /// Where to write it.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Start of the period (YYYY-MM-DD); default since the last review.
        #[arg(long)]
        since: Option<String>,
    },
}

/// `isms awareness …`
#[derive(Debug, Subcommand)]
pub enum AwarenessCommand {
    /// Exit 0 when the actor has acknowledged every current policy; otherwise exit 3 and list
    /// what to acknowledge (a boot hook for agents).
    Check {
        /// The actor.
        #[arg(long, env = "ISMS_ACTOR")]
        actor: String,
    },
}

/// `isms soa …`
#[derive(Debug, Subcommand)]
pub enum SoaCommand {
    /// Print the SoA with its approval header to stdout.
    Export {
        /// csv or markdown.
        #[arg(long, default_value = "csv")]
        format: String,
        /// An approved version; omit for the SoA as it stands.
        #[arg(long)]
        version: Option<i64>,
    },
}

/// Options of `isms serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ISMS_LISTEN", default_value = "127.0.0.1:8727")]
    pub listen: SocketAddr,
    /// Browser origins allowed to call (comma-separated); requests with any other Origin get 403.
    #[arg(long, env = "ISMS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Host names (or host:port) requests may be addressed to (comma-separated); others get
    /// 403, which defeats DNS rebinding. Add the name clients use behind a proxy.
    #[arg(long, env = "ISMS_ALLOWED_HOSTS", value_delimiter = ',', default_value = "localhost,127.0.0.1,::1")]
    pub allowed_hosts: Vec<String>,
    /// Most calls in one JSON-RPC batch.
    #[arg(long, env = "ISMS_MAX_BATCH", default_value_t = 50)]
    pub max_batch: u32,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "ISMS_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
}

/// `isms actor …`
#[derive(Debug, Subcommand)]
pub enum ActorCommand {
    /// Register an actor and print its bearer token (shown once).
    Add {
        /// Unique name (a-z, 0-9, '.', '_', '-').
        name: String,
        /// agent, isms_manager, auditor, top_management or viewer.
        #[arg(long)]
        role: String,
        /// human or agent.
        #[arg(long, default_value = "agent")]
        kind: String,
        /// An agent's model, e.g. claude-opus-4.
        #[arg(long)]
        model: Option<String>,
        /// The model's version.
        #[arg(long)]
        model_version: Option<String>,
    },
    /// Retire an actor: its tokens stop working.
    Retire {
        /// The actor's name.
        name: String,
    },
    /// List an actor's tokens (ids only; tokens are stored hashed).
    Tokens {
        /// The actor's name.
        name: String,
    },
    /// Revoke a token by the id `tokens` shows.
    Revoke {
        /// Token id (at least 8 hex digits).
        id: String,
    },
    /// Issue another bearer token for an actor (shown once).
    Token {
        /// The actor's name.
        name: String,
    },
    /// List active actors.
    List,
}

/// The default SQLite file: `$XDG_DATA_HOME/isms/isms.db`, else `~/.local/share/isms/isms.db`,
/// else `./isms.db`.
pub fn default_database_path() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    match base {
        Some(b) => b.join("isms").join("isms.db"),
        None => PathBuf::from("isms.db"),
    }
}
