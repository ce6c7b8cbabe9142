//! Helpers shared by the integration tests: temporary databases on both backends and the
//! real `isms` binary driven over stdio and HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use std::sync::Arc;

use isms::domain::actor::{Actor, ActorKind, ActorName, Role};
use isms::error::Error;
use isms::operations::{App, Registry};
use isms::store::{NewActor, Store};
use serde_json::{Value, json};

/// Path of the binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_isms")
}

/// The PostgreSQL server URL for tests (`ISMS_TEST_POSTGRES_URL`). Absent: the caller skips,
/// with a notice, unless `ISMS_REQUIRE_POSTGRES` is set (as CI does), which makes it a failure.
pub fn postgres_url() -> Option<String> {
    match std::env::var("ISMS_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("ISMS_REQUIRE_POSTGRES").is_none(),
                "ISMS_REQUIRE_POSTGRES is set but ISMS_TEST_POSTGRES_URL is not"
            );
            eprintln!("NOTICE: ISMS_TEST_POSTGRES_URL is not set; skipping the PostgreSQL suite");
            None
        }
    }
}

/// A database for one test: a fresh SQLite file or a fresh PostgreSQL database, removed after.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("isms.db").display());
        TestDb { url, _dir: Some(dir), pg: None }
    }

    /// A new database on the test PostgreSQL server.
    pub async fn postgres(server_url: &str) -> Self {
        use sqlx::Connection;
        let name = format!("isms_test_{}_{}", std::process::id(), rand_suffix());
        let mut admin = sqlx::PgConnection::connect(server_url).await.expect("connect to PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create db");
        let (base, _) = server_url.rsplit_once('/').expect("URL has a database path");
        TestDb { url: format!("{base}/{name}"), _dir: None, pg: Some((server_url.to_owned(), name)) }
    }

    /// Drops a PostgreSQL test database.
    pub async fn cleanup(self) {
        use sqlx::Connection;
        if let Some((server, name)) = &self.pg
            && let Ok(mut admin) = sqlx::PgConnection::connect(server).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut admin)
                .await;
        }
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    nanos ^ (std::ptr::addr_of!(nanos) as u64)
}

/// Runs `isms` with arguments on a database and returns (status, stdout, stderr).
pub fn run_cli(db: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env("ISMS_DATABASE_URL", db)
        .env_remove("ISMS_ACTOR")
        .output()
        .expect("run isms");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Registers an actor through the CLI and returns its token.
pub fn add_actor(db: &str, name: &str, role: &str) -> String {
    let (code, out, err) = run_cli(db, &["actor", "add", name, "--role", role]);
    assert_eq!(code, 0, "actor add failed: {err}");
    out.trim().to_owned()
}

/// An `isms stdio` process spoken to line by line.
pub struct StdioServer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    next_id: i64,
}

impl StdioServer {
    pub fn start(db: &str, actor: &str) -> Self {
        let mut child = Command::new(binary())
            .args(["stdio", "--actor", actor])
            .env("ISMS_DATABASE_URL", db)
            .env("ISMS_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn isms stdio");
        let stdin = child.stdin.take().unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        StdioServer { child, stdin, lines, next_id: 1 }
    }

    /// Sends one raw line.
    pub fn send_raw(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Reads the next line as JSON.
    pub fn recv(&mut self) -> Value {
        let line = self.lines.recv_timeout(Duration::from_secs(20)).expect("a reply from isms stdio");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
    }

    /// Sends a request and waits for the reply with its id.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_raw(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string());
        loop {
            let reply = self.recv();
            if reply.get("id") == Some(&json!(id)) {
                return reply;
            }
        }
    }

    /// The 2025-11-25 handshake.
    pub fn initialize_legacy(&mut self) -> Value {
        let reply = self.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "tests", "version": "1"}}),
        );
        self.send_raw(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string());
        reply
    }
}

impl Drop for StdioServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Kills a spawned server at once (SIGKILL) and reaps it.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// `_meta` of a 2026-07-28 request.
pub fn meta_2026() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "1"}
    })
}

/// An `isms serve` process on a free port, with the bootstrap token.
pub struct HttpServer {
    child: Child,
    pub base: String,
    pub admin_token: String,
}

impl HttpServer {
    /// Serves a new database and takes the admin token it prints.
    pub fn start(db: &str, extra: &[&str]) -> Self {
        Self::start_watching(db, extra, |_| {})
    }

    /// Like [`HttpServer::start`], handing every stderr line to `watch`.
    pub fn start_watching(db: &str, extra: &[&str], watch: impl FnMut(&str) + Send + 'static) -> Self {
        let (mut child, base, token) = Self::spawn(db, extra, watch);
        let Some(admin_token) = token else {
            stop(&mut child);
            panic!(
                "a new database prints the admin token; none was printed (for a database already set up, use `HttpServer::restart`)"
            );
        };
        HttpServer { child, base, admin_token }
    }

    /// Serves a database already set up, whose admin token is `admin_token`.
    pub fn restart(db: &str, extra: &[&str], admin_token: &str) -> Self {
        let (child, base, _) = Self::spawn(db, extra, |_| {});
        HttpServer { child, base, admin_token: admin_token.to_owned() }
    }

    fn spawn(
        db: &str,
        extra: &[&str],
        mut watch: impl FnMut(&str) + Send + 'static,
    ) -> (Child, String, Option<String>) {
        let mut child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("ISMS_DATABASE_URL", db)
            .env("ISMS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn isms serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut token = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let t = line.trim();
                if t.starts_with("isms_") {
                    token = Some(t.to_owned());
                }
                if let Some(addr) = t.strip_prefix("isms listening on ") {
                    let base = addr.split_whitespace().next().unwrap_or_default().to_owned();
                    let _ = tx.send((base, token.clone()));
                }
                watch(&line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((base, token)) => (child, base, token),
            Err(e) => {
                stop(&mut child);
                panic!("isms serve did not say it was listening: {e}");
            }
        }
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("isms serve exited: {status}")),
            Err(e) => Err(format!("cannot poll isms serve: {e}")),
        }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        stop(&mut self.child);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// The Redis URL for tests (`ISMS_TEST_REDIS_URL`). Absent: the caller skips, with a notice,
/// unless `ISMS_REQUIRE_REDIS` is set (as CI does), which makes it a failure.
pub fn redis_url() -> Option<String> {
    match std::env::var("ISMS_TEST_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("ISMS_REQUIRE_REDIS").is_none(),
                "ISMS_REQUIRE_REDIS is set but ISMS_TEST_REDIS_URL is not"
            );
            eprintln!("NOTICE: ISMS_TEST_REDIS_URL is not set; skipping the Redis suite");
            None
        }
    }
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), rand_suffix())
}

/// One JSON-RPC call to `/rpc` with a bearer token; the reply as JSON.
pub async fn rpc(client: &reqwest::Client, server: &HttpServer, token: &str, method: &str, params: Value) -> Value {
    try_rpc(client, &server.base, token, method, params).await.expect("a JSON reply from POST /rpc")
}

/// One JSON-RPC call to `{base}/rpc`; `Err` when no answer came (the server is gone).
pub async fn try_rpc(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: &str,
    params: Value,
) -> Result<Value, String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let response = client.post(format!("{base}/rpc")).bearer_auth(token).json(&body).send().await;
    let response = response.map_err(|e| e.to_string())?;
    response.json::<Value>().await.map_err(|e| e.to_string())
}

/// One entry of a Redis stream: its id and its fields.
pub type StreamEntry = (String, Vec<(String, String)>);

/// The value of field `key` of a stream entry.
pub fn stream_field(entry: &StreamEntry, key: &str) -> String {
    entry.1.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no `{key}` in {entry:?}"))
}

/// The event ids (field `id`) of stream entries, in stream order.
pub fn event_ids(entries: &[StreamEntry]) -> Vec<i64> {
    entries.iter().map(|e| stream_field(e, "id").parse().expect("a numeric event id")).collect()
}

/// Reads `stream` from the Redis at `url` until `enough` says so or `wait` has passed, then
/// deletes it; the entries read last.
pub async fn read_stream(
    url: &str,
    stream: &str,
    wait: Duration,
    enough: impl Fn(&[StreamEntry]) -> bool,
) -> Vec<StreamEntry> {
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let deadline = std::time::Instant::now() + wait;
    let entries = loop {
        let raw: redis::Value =
            redis::cmd("XRANGE").arg(stream).arg("-").arg("+").query_async(&mut conn).await.unwrap();
        let entries: Vec<StreamEntry> = redis::from_redis_value(raw).unwrap();
        if enough(&entries) || std::time::Instant::now() > deadline {
            break entries;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _: () = redis::cmd("DEL").arg(stream).query_async(&mut conn).await.unwrap();
    entries
}

/// An actor as the operations see it.
pub fn actor(name: &str, role: Role) -> Actor {
    Actor { name: name.into(), kind: ActorKind::Agent, role }
}

/// The operation registry on a store, for suites that run in-process on both backends.
pub struct Harness {
    pub actors: Vec<(String, Role)>,
    pub app: Arc<App>,
    pub registry: Registry,
    pub url: String,
}

impl Harness {
    /// Opens the store and registers `actors`.
    pub async fn new(url: &str, actors: &[(&str, Role)]) -> Self {
        let store = Store::open(url).await.expect("open store");
        for &(name, role) in actors {
            let new = NewActor {
                name: ActorName::parse(name).unwrap(),
                kind: ActorKind::Agent,
                role,
                model: None,
                model_version: None,
            };
            store.add_actor("tests", &new).await.unwrap();
        }
        Harness {
            actors: actors.iter().map(|(n, r)| (n.to_string(), *r)).collect(),
            app: Arc::new(App::new(store)),
            registry: Registry::new(),
            url: url.to_owned(),
        }
    }

    /// Calls a tool as `who`.
    pub async fn call_as(&self, who: &Actor, tool: &str, args: Value) -> Result<Value, Error> {
        self.registry.get(tool).expect("tool exists").call(self.app.clone(), who.clone(), args).await
    }

    /// Calls a tool as `agent-1`.
    pub async fn call(&self, tool: &str, args: Value) -> Result<Value, Error> {
        self.call_as(&actor("agent-1", Role::Agent), tool, args).await
    }

    /// Calls a tool as `agent-1` and expects success.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        self.call(tool, args).await.unwrap_or_else(|e| panic!("{tool} failed: {e}"))
    }

    /// Runs SQL directly on the database (to set up states the tools refuse to make).
    pub async fn raw(&self, sql: &str) {
        raw_sql(&self.url, sql).await;
    }
}

/// Runs SQL directly on the database at `url`, bypassing the server (to tamper, or to set up
/// states the tools refuse to make).
pub async fn raw_sql(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&pool).await.unwrap();
    pool.close().await;
}

/// Calls a tool as one of the harness's actors, by name.
pub async fn as_(h: &Harness, who: &str, tool: &str, args: Value) -> Result<Value, Error> {
    let role = h.actors.iter().find(|(n, _)| n == who).map(|(_, r)| *r).expect("a registered test actor");
    h.call_as(&actor(who, role), tool, args).await
}

/// Calls a tool and expects success.
pub async fn ok(h: &Harness, who: &str, tool: &str, args: Value) -> Value {
    as_(h, who, tool, args.clone()).await.unwrap_or_else(|e| panic!("{who} {tool} {args}: {e}"))
}

/// Calls a tool and expects a refusal whose message mentions `needle`.
pub async fn refused(h: &Harness, who: &str, tool: &str, args: Value, needle: &str) -> Error {
    let e = as_(h, who, tool, args.clone()).await.expect_err(&format!("{tool} {args} must be refused"));
    assert!(e.to_string().contains(needle), "{tool}: `{e}` should mention `{needle}`");
    e
}
