//! The benchmark of issue 9 in one command: `cargo bench --bench isms`.
//!
//! On SQLite, and on PostgreSQL when `ISMS_BENCH_POSTGRES_URL` names a server, it measures:
//! 1. cold start over stdio: the built binary spawned as `isms stdio --actor admin`, timed from
//!    spawn to the answer of the first `tools/list` after the initialize handshake, on a new
//!    database (migrated and given its `admin` with the CLI beforehand, so the first-run
//!    bootstrap is not counted) and on the populated one; median and p90 of fresh spawns;
//! 2. per-call latency (p50, p99) and throughput of the reads `query_controls`, `get_record`,
//!    `check_awareness` (as an agent, one policy pending) and the durable write
//!    `log_nonconformity`: in-process through `Registry::get(name).call(app, actor, args)`
//!    (server-side time), over stdio (one client), and over HTTP JSON-RPC `/rpc` with one
//!    client and with 16 concurrent clients (one keep-alive `reqwest` client each);
//! 3. a bare baseline in the same run: single-row INSERT transactions on one native connection
//!    (SQLite through `rusqlite` in WAL mode with `synchronous=FULL`, on a file in the same
//!    directory; PostgreSQL through sqlx's `PgConnection` in the bench database), and the ratio
//!    of isms durable writes/s with 16 HTTP clients to it;
//! 4. aggregates at scale: a generator seeded with 27001 writes a valid ISMS directly with SQL
//!    (100,000 nonconformities in every 10.2 state, 100,000 corrective actions, 1,000,000
//!    audit-trail entries on a valid SHA-256 chain made with `isms::domain::audit::entry_hash`,
//!    chain head and counters set so the server numbers on), then the registers through the
//!    operations (every SoA decision, 300 risks, 30 objectives with 12 measurements each, 24
//!    audits, 40 change requests, 12 context entries; see [`Registers`]); then `list_nonconformities` with
//!    filters, `get_management_review_inputs` and `verify_audit_trail` are timed in-process
//!    (p50 of a few runs);
//! 5. memory of `isms serve`: VmRSS when idle after start, VmHWM after the 16-client load;
//! 6. the tool catalogue: bytes of the `tools/list` tools array (compact JSON) per role, listed
//!    over stdio by one actor of each role, and bytes/4 as tokens.
//!
//! It ends with one table (measure | value | target | met?) and the machine it ran on. Nothing
//! is asserted about time; the checks only make sure every call succeeded and the generated
//! chain verifies.
//!
//! Knobs: `ISMS_BENCH_QUICK=1` (implied by a debug build, e.g. `cargo test --benches`) is a
//! smoke run: a 1,000-entry data set and few calls through the same code paths and table.
//! `ISMS_BENCH_POSTGRES_URL=postgres://…/postgres` adds PostgreSQL: fresh databases are created,
//! seeded and dropped at the end. The SQLite data set is cached in `target/bench-data/`, keyed
//! by generator version, seed and scale, and made again after 7 days (its dates are relative to
//! the day it was made); every run works on a copy in a temporary directory beside it.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, Utc};
use isms::catalog::catalog;
use isms::domain::actor::{Actor, ActorKind, Role};
use isms::domain::audit::{EntryFields, GENESIS, entry_hash};
use isms::domain::awareness::content_hash;
use isms::domain::references::CLAUSES;
use isms::domain::time::{date, stamp};
use isms::operations::{App, Registry};
use isms::store::{Store, sqlite_url};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::postgres::PgConnection;
use sqlx::{AnyConnection, Connection};
use tokio::runtime::Runtime;

/// Seed of the data-set generator.
const SEED: u64 = 27001;
/// Part of the cache key: bumped whenever the generator changes what it writes.
const GENERATOR_VERSION: u32 = 3;
/// Age after which a cached data set is generated again.
const CACHE_DAYS: u64 = 7;
/// The tools timed per call; the last is the durable write.
const TOOLS: [&str; 4] = ["query_controls", "get_record", "check_awareness", "log_nonconformity"];
/// Concurrent HTTP clients.
const CLIENTS: usize = 16;
/// The agent the per-call measurements act as (registered with the CLI).
const BENCH_AGENT: &str = "bench-agent";
/// One day in microseconds.
const DAY: i64 = 86_400_000_000;

/// How much each part does: the full run or the quick smoke run.
struct Budget {
    quick: bool,
    /// Audit-trail entries of the generated data set (a tenth as many nonconformities and actions).
    entries: usize,
    /// Cold starts timed per database.
    spawns: usize,
    /// Sequential calls per read tool and transport.
    reads: usize,
    /// Sequential `log_nonconformity` calls per transport.
    writes: usize,
    /// How long the 16 clients run per tool, and the bare baseline.
    window: Duration,
    /// Runs of each aggregate.
    runs: usize,
}

impl Budget {
    fn from_env() -> Self {
        let asked = std::env::var("ISMS_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if asked || cfg!(debug_assertions) {
            Budget {
                quick: true,
                entries: 1_000,
                spawns: 5,
                reads: 50,
                writes: 20,
                window: Duration::from_millis(300),
                runs: 3,
            }
        } else {
            Budget {
                quick: false,
                entries: 1_000_000,
                spawns: 30,
                reads: 2_000,
                writes: 300,
                window: Duration::from_secs(3),
                runs: 5,
            }
        }
    }

    fn nonconformities(&self) -> usize {
        self.entries / 10
    }

    fn calls(&self, tool: &str) -> usize {
        if tool == "log_nonconformity" { self.writes } else { self.reads }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Latency in µs and throughput of a series of calls.
struct Latency {
    p50: f64,
    p99: f64,
    per_sec: f64,
}

impl Latency {
    fn of(mut times: Vec<f64>, elapsed: Duration) -> Self {
        times.sort_by(f64::total_cmp);
        Latency {
            p50: percentile(&times, 0.5),
            p99: percentile(&times, 0.99),
            per_sec: times.len() as f64 / elapsed.as_secs_f64(),
        }
    }
}

/// `12,345` for 12345.4.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in µs, written in µs or ms.
fn micros(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1} µs")
    } else if v < 10_000.0 {
        format!("{v:.0} µs")
    } else {
        format!("{:.1} ms", v / 1000.0)
    }
}

/// One line of the final table.
struct Line {
    measure: String,
    value: String,
    target: &'static str,
    met: Option<bool>,
}

/// The final table.
#[derive(Default)]
struct Report {
    lines: Vec<Line>,
}

impl Report {
    fn info(&mut self, measure: String, value: String) {
        self.add(measure, value, "", None);
    }

    fn check(&mut self, measure: String, value: String, target: &'static str, met: bool) {
        self.add(measure, value, target, Some(met));
    }

    /// A line whose target is judged only when `met` is given.
    fn add(&mut self, measure: String, value: String, target: &'static str, met: Option<bool>) {
        self.lines.push(Line { measure, value, target, met });
    }

    fn print(&self) {
        println!("\n| measure | value | target | met? |\n|---|---|---|---|");
        for l in &self.lines {
            let met = match l.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            println!("| {} | {} | {} | {met} |", l.measure, l.value, l.target);
        }
    }
}

/// nproc, CPU model, memory, kernel, compiler, build profile and date.
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let meminfo = read("/proc/meminfo");
    let mem_kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let load = read("/proc/loadavg");
    format!(
        "nproc {cores}, {cpu}, {:.0} GiB RAM, Linux {}, {rustc}, {profile} build, {}, load average {}",
        mem_kb / 1_048_576.0,
        read("/proc/sys/kernel/osrelease").trim(),
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    )
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_isms")
}

/// Runs an `isms` command on a database and returns its stdout.
fn cli(url: &str, args: &[&str]) -> String {
    let out = Command::new(binary())
        .args(args)
        .env("ISMS_DATABASE_URL", url)
        .env("ISMS_LOG", "warn")
        .env_remove("ISMS_ACTOR")
        .output()
        .expect("run isms");
    assert!(out.status.success(), "isms {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// An `isms stdio` process, spoken to one line at a time.
struct StdioClient {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: i64,
}

impl StdioClient {
    fn spawn(url: &str, actor: &str) -> Self {
        let mut child = Command::new(binary())
            .args(["stdio", "--actor", actor])
            .env("ISMS_DATABASE_URL", url)
            .env("ISMS_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn isms stdio");
        let stdin = child.stdin.take().expect("stdin of isms stdio");
        let stdout = BufReader::new(child.stdout.take().expect("stdout of isms stdio"));
        StdioClient { child, stdin, stdout, next_id: 1 }
    }

    fn send(&mut self, message: &Value) {
        writeln!(self.stdin, "{message}").expect("write to isms stdio");
        self.stdin.flush().expect("flush to isms stdio");
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut line = String::new();
        loop {
            line.clear();
            let read = self.stdout.read_line(&mut line).expect("read from isms stdio");
            assert!(read > 0, "isms stdio ended before answering {method}");
            let reply: Value = serde_json::from_str(&line).expect("a JSON line from isms stdio");
            if reply["id"] == id {
                return reply;
            }
        }
    }

    /// The 2025-11-25 handshake.
    fn initialize(&mut self) {
        let reply = self.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "isms-bench", "version": "1"}}),
        );
        assert!(reply.get("result").is_some(), "initialize failed: {reply}");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    }

    /// The tools array of `tools/list` (one page: the server does not paginate it).
    fn tools(&mut self) -> Value {
        let reply = self.request("tools/list", json!({}));
        assert!(reply["result"]["nextCursor"].is_null(), "tools/list is paginated: {reply}");
        let tools = reply["result"]["tools"].clone();
        assert!(tools.as_array().is_some_and(|t| !t.is_empty()), "tools/list failed: {reply}");
        tools
    }

    fn call(&mut self, tool: &str, args: Value) {
        let reply = self.request("tools/call", json!({"name": tool, "arguments": args}));
        assert_eq!(reply["result"]["isError"], false, "{tool} over stdio failed: {reply}");
    }
}

impl Drop for StdioClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `isms serve` process on a free port.
struct HttpServer {
    child: Child,
    rpc: String,
}

impl HttpServer {
    fn start(url: &str) -> Self {
        let mut child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("ISMS_DATABASE_URL", url)
            .env("ISMS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn isms serve");
        let stderr = child.stderr.take().expect("stderr of isms serve");
        let (tx, rx) = mpsc::channel();
        // Reads stderr to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.trim().strip_prefix("isms listening on ") {
                    let _ = tx.send(address.split_whitespace().next().unwrap_or_default().to_owned());
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(60)).expect("isms serve started");
        HttpServer { child, rpc: format!("{base}/rpc") }
    }

    /// A memory figure of the server process from /proc (`VmRSS`, `VmHWM`), in MB.
    fn memory(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc status");
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field).and_then(|v| v.strip_prefix(':')))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"));
        kib * 1024.0 / 1e6
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Arguments of the `i`th call of a timed tool.
fn arguments(tool: &str, i: usize, nonconformities: usize) -> Value {
    match tool {
        "query_controls" => json!({"ref": "A.8.28"}),
        "get_record" => json!({"ref": format!("NC-{}", 1 + (i * 7919) % nonconformities)}),
        "check_awareness" => json!({}),
        _ => json!({
            "title": format!("Bench finding {i}: API token printed in a deploy log"),
            "description": "The nightly scan of build output found an API token printed by the deploy job of the payments service.",
            "severity": "minor",
            "source": "monitoring",
            "controls": ["A.8.12"],
        }),
    }
}

/// A JSON-RPC reply as the load client checks it: a result (skipped unread, so the client
/// spends its share of the two cores on calls rather than on building values) or an error.
#[derive(serde::Deserialize)]
struct Reply {
    result: Option<serde::de::IgnoredAny>,
    error: Option<Value>,
}

/// One JSON-RPC call to `/rpc`; panics unless it succeeded.
async fn rpc(client: &reqwest::Client, url: &str, token: &str, tool: &str, args: Value) {
    let reply: Reply = client
        .post(url)
        .bearer_auth(token)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": tool, "params": args}))
        .send()
        .await
        .expect("POST /rpc")
        .json()
        .await
        .expect("a JSON-RPC reply from /rpc");
    assert!(reply.result.is_some(), "{tool} over /rpc failed: {:?}", reply.error);
}

/// Median and p90 (ms) of cold starts over stdio, after one uncounted spawn.
fn cold_start(url: &str, spawns: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(spawns);
    for i in 0..=spawns {
        let started = Instant::now();
        let mut client = StdioClient::spawn(url, "admin");
        client.initialize();
        client.tools();
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if i > 0 {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), percentile(&times, 0.9))
}

/// Three policies for everyone; the bench agent acknowledged two, so one is pending.
async fn publish_policies(app: &Arc<App>, registry: &Registry) {
    let admin = Actor { name: "admin".into(), kind: ActorKind::Human, role: Role::IsmsManager };
    let agent = Actor { name: BENCH_AGENT.into(), kind: ActorKind::Agent, role: Role::Agent };
    for p in 0..3 {
        let text = format!("Policy {p}: what every actor of the ISMS must do, version 1.");
        let published = json!({"policy_id": format!("policy-{p}"), "version": "1", "title": format!("Policy {p}"), "content": text});
        registry.get("publish_policy").unwrap().call(app.clone(), admin.clone(), published).await.expect("publish");
        if p < 2 {
            let ack = json!({"policy_id": format!("policy-{p}"), "version": "1", "sha256": content_hash(&text)});
            registry.get("acknowledge_policy").unwrap().call(app.clone(), agent.clone(), ack).await.expect("ack");
        }
    }
}

/// List filters, review inputs and the chain walk, `runs` times each, in-process.
async fn aggregates(app: &Arc<App>, registry: &Registry, label: &str, budget: &Budget, report: &mut Report) {
    let reader = Actor { name: "admin".into(), kind: ActorKind::Human, role: Role::IsmsManager };
    let scale = format!("{} entries", thousands(budget.entries as f64));
    let cases = [
        (
            "list_nonconformities severity=major status=actions_planned",
            json!({"severity": "major", "status": "actions_planned"}),
        ),
        ("list_nonconformities overdue=true", json!({"overdue": true})),
        ("get_management_review_inputs", json!({})),
        ("verify_audit_trail", json!({})),
    ];
    println!("\n| aggregate ({scale}) | p50 ms | runs | output |\n|---|---|---|---|");
    for (what, args) in cases {
        let tool = what.split_whitespace().next().unwrap_or(what);
        let op = registry.get(tool).expect("tool");
        let mut times = Vec::with_capacity(budget.runs);
        let mut out = Value::Null;
        for _ in 0..budget.runs {
            let started = Instant::now();
            out = op.call(app.clone(), reader.clone(), args.clone()).await.unwrap_or_else(|e| panic!("{tool}: {e}"));
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let p50 = percentile(&times, 0.5);
        let shape = match tool {
            "list_nonconformities" => format!("{} items", out["items"].as_array().map_or(0, Vec::len)),
            "get_management_review_inputs" => {
                let nc = &out["d_performance"]["nonconformities"];
                let count = |v: &Value| v.as_array().map_or(0, Vec::len);
                let performance = &out["d_performance"];
                format!(
                    "{} logged, {} closed, {} open, {} actions overdue; {} risks, {} measurements, {} audits; \
                     {} KB of JSON",
                    nc["totals"]["logged"],
                    nc["totals"]["closed"],
                    nc["open"],
                    nc["totals"]["actions_overdue"],
                    out["f_risks"]["total"],
                    count(&performance["measurements"]),
                    count(&performance["audits"]),
                    out.to_string().len() / 1000
                )
            }
            _ => {
                assert_eq!(out["intact"], true, "the generated audit trail must verify: {out}");
                format!("{} entries, intact", thousands(out["entries_checked"].as_f64().unwrap_or(0.0)))
            }
        };
        println!("| {what} | {p50:.1} | {} | {shape} |", budget.runs);
        let measure = format!("{label}: {what} ({scale}), p50");
        // The targets are set for the full scale; a quick run shows them unjudged.
        let judged = |met: bool| (!budget.quick).then_some(met);
        match tool {
            "get_management_review_inputs" => {
                report.add(measure, format!("{p50:.1} ms"), "< 100 ms at 1M", judged(p50 < 100.0))
            }
            "verify_audit_trail" => {
                let rate = out["entries_checked"].as_f64().unwrap_or(0.0) / (p50 / 1e3);
                let value = format!("{p50:.0} ms = {} entries/s", thousands(rate));
                let measure = format!("{label}: verify_audit_trail ({scale})");
                report.add(measure, value, "> 500,000 entries/s at 1M", judged(rate > 5e5))
            }
            _ => report.info(measure, format!("{p50:.2} ms")),
        }
    }
}

/// Sequential calls through the registry (server-side time).
async fn in_process(app: &Arc<App>, registry: &Registry, tool: &str, n: usize, ncs: usize) -> Latency {
    let agent = Actor { name: BENCH_AGENT.into(), kind: ActorKind::Agent, role: Role::Agent };
    let op = registry.get(tool).expect("tool");
    for i in 0..5 {
        op.call(app.clone(), agent.clone(), arguments(tool, i, ncs)).await.unwrap_or_else(|e| panic!("{tool}: {e}"));
    }
    let mut times = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        op.call(app.clone(), agent.clone(), arguments(tool, i, ncs)).await.unwrap_or_else(|e| panic!("{tool}: {e}"));
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Latency::of(times, started.elapsed())
}

/// Round trips of `SELECT 1` through the store's pool (`Store::ping`): the floor of every query
/// an operation makes.
async fn round_trips(store: &Store, n: usize) -> Latency {
    let mut times = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        store.ping().await.expect("ping");
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Latency::of(times, started.elapsed())
}

/// Sequential calls over one stdio session.
fn over_stdio(client: &mut StdioClient, tool: &str, n: usize, ncs: usize) -> Latency {
    for i in 0..5 {
        client.call(tool, arguments(tool, i, ncs));
    }
    let mut times = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        client.call(tool, arguments(tool, i, ncs));
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Latency::of(times, started.elapsed())
}

/// Sequential calls from one HTTP client.
async fn over_http(url: &str, token: &str, tool: &str, n: usize, ncs: usize) -> Latency {
    let client = reqwest::Client::new();
    for i in 0..5 {
        rpc(&client, url, token, tool, arguments(tool, i, ncs)).await;
    }
    let mut times = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        rpc(&client, url, token, tool, arguments(tool, i, ncs)).await;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Latency::of(times, started.elapsed())
}

/// `CLIENTS` HTTP clients calling as fast as they can for `window`, each after one warm-up call.
async fn over_http_concurrent(url: &str, token: &str, tool: &'static str, window: Duration, ncs: usize) -> Latency {
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, token, barrier) = (url.to_owned(), token.to_owned(), barrier.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                rpc(&client, &url, &token, tool, arguments(tool, c, ncs)).await;
                barrier.wait().await;
                let started = Instant::now();
                let mut times = Vec::new();
                let mut i = c;
                while started.elapsed() < window {
                    let t = Instant::now();
                    rpc(&client, &url, &token, tool, arguments(tool, i, ncs)).await;
                    times.push(t.elapsed().as_secs_f64() * 1e6);
                    i += CLIENTS;
                }
                (times, started.elapsed())
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut longest = Duration::ZERO;
    for task in tasks {
        let (times, elapsed) = task.await.expect("client task");
        all.extend(times);
        longest = longest.max(elapsed);
    }
    Latency::of(all, longest)
}

/// Commits/s of `commit_one(n)` called back to back for `window`.
fn per_second(window: Duration, mut commit_one: impl FnMut(u64)) -> f64 {
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < window {
        commit_one(n);
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Bare SQLite: single-row INSERT transactions through a native connection to `file` in
/// WAL mode with `synchronous=FULL`, as fast as they go for `window`: commits/s.
fn bare_sqlite_commits(file: &Path, window: Duration) -> f64 {
    let conn = rusqlite::Connection::open(file).expect("open the bare database");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         CREATE TABLE bench_bare (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
    )
    .expect("set up the bare table");
    per_second(window, |n| {
        conn.execute_batch("BEGIN").expect("BEGIN");
        let mut insert = conn.prepare_cached("INSERT INTO bench_bare (v) VALUES (?1)").expect("prepare INSERT");
        insert.execute([format!("row {n}")]).expect("INSERT");
        conn.execute_batch("COMMIT").expect("COMMIT");
    })
}

/// Bare PostgreSQL: the same through a native sqlx `PgConnection` to the bench database.
fn bare_postgres_commits(rt: &Runtime, url: &str, window: Duration) -> f64 {
    let mut conn = rt.block_on(PgConnection::connect(url)).expect("connect for the bare baseline");
    let setup = "CREATE TABLE bench_bare (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)";
    rt.block_on(sqlx::raw_sql(setup).execute(&mut conn)).expect("set up the bare table");
    let rate = per_second(window, |n| {
        rt.block_on(async {
            let mut tx = conn.begin().await.expect("BEGIN");
            sqlx::query("INSERT INTO bench_bare (v) VALUES ($1)")
                .bind(format!("row {n}"))
                .execute(&mut *tx)
                .await
                .expect("INSERT");
            tx.commit().await.expect("COMMIT");
        })
    });
    rt.block_on(conn.close()).expect("close the bare connection");
    rate
}

/// Everything measured on one backend; returns the durable writes/s of 16 HTTP clients.
fn run_backend(label: &str, populated: &str, fresh: &str, budget: &Budget, rt: &Runtime, report: &mut Report) -> f64 {
    let ncs = budget.nonconformities();
    println!("\n## {label}\n\n| cold start over stdio | p50 ms | p90 ms | spawns |\n|---|---|---|---|");
    for (what, url) in [("new database", fresh), ("populated database", populated)] {
        let (p50, p90) = cold_start(url, budget.spawns);
        println!("| {what} | {p50:.1} | {p90:.1} | {} |", budget.spawns);
        let value = format!("p50 {p50:.1} ms (p90 {p90:.1})");
        report.check(format!("{label}: cold start over stdio, {what}"), value, "< 15 ms", p50 < 15.0);
    }
    let token = cli(populated, &["actor", "add", BENCH_AGENT, "--role", "agent"]);

    let mut rows: Vec<(&str, &str, Latency)> = Vec::new();
    rt.block_on(async {
        let store = Store::open(populated).await.expect("open the populated store");
        let app = Arc::new(App::new(store.clone()));
        let registry = Registry::new();
        publish_policies(&app, &registry).await;
        aggregates(&app, &registry, label, budget, report).await;
        rows.push(("SELECT 1 (Store::ping)", "in-process", round_trips(&store, budget.reads).await));
        for tool in TOOLS {
            rows.push((tool, "in-process", in_process(&app, &registry, tool, budget.calls(tool), ncs).await));
        }
        store.close().await;
    });

    let mut client = StdioClient::spawn(populated, BENCH_AGENT);
    client.initialize();
    for tool in TOOLS {
        rows.push((tool, "stdio, 1 client", over_stdio(&mut client, tool, budget.calls(tool), ncs)));
    }
    drop(client);

    let server = HttpServer::start(populated);
    std::thread::sleep(Duration::from_millis(500));
    let idle = server.memory("VmRSS");
    rt.block_on(async {
        for tool in TOOLS {
            rows.push((
                tool,
                "HTTP /rpc, 1 client",
                over_http(&server.rpc, &token, tool, budget.calls(tool), ncs).await,
            ));
        }
        for tool in TOOLS {
            let latency = over_http_concurrent(&server.rpc, &token, tool, budget.window, ncs).await;
            rows.push((tool, "HTTP /rpc, 16 clients", latency));
        }
    });
    let peak = server.memory("VmHWM");
    drop(server);

    println!("\n| tool | transport | p50 | p99 | calls/s |\n|---|---|---|---|---|");
    let mut writes = 0.0;
    for (tool, transport, l) in &rows {
        println!("| {tool} | {transport} | {} | {} | {} |", micros(l.p50), micros(l.p99), thousands(l.per_sec));
        let measure = format!("{label}: {tool}, {transport}");
        let value = format!("p50 {}, p99 {}, {}/s", micros(l.p50), micros(l.p99), thousands(l.per_sec));
        if *transport == "in-process" && TOOLS[..3].contains(tool) {
            report.check(measure, value, "p50 < 0.1 ms", l.p50 < 100.0);
        } else {
            report.info(measure, value);
        }
        if *tool == "log_nonconformity" && transport.ends_with("16 clients") {
            writes = l.per_sec;
        }
    }
    println!("\nisms serve: VmRSS {idle:.1} MB idle after start, VmHWM {peak:.1} MB after the 16-client load");
    report.check(
        format!("{label}: isms serve VmRSS, idle after start"),
        format!("{idle:.1} MB"),
        "< 20 MB",
        idle < 20.0,
    );
    report.check(format!("{label}: isms serve VmHWM, 16-client load"), format!("{peak:.1} MB"), "< 60 MB", peak < 60.0);
    writes
}

/// Durable writes of 16 HTTP clients against the bare baseline.
fn write_ratio(label: &str, writes: f64, bare: f64, report: &mut Report) {
    println!(
        "\n{label}: bare single-row commits {}/s; isms log_nonconformity, 16 HTTP clients {}/s",
        thousands(bare),
        thousands(writes)
    );
    let ratio = writes / bare;
    let value = format!("{} / {} = {ratio:.2}", thousands(writes), thousands(bare));
    report.check(format!("{label}: durable writes/s (16 HTTP clients) / bare commits/s"), value, "≥ 0.8", ratio >= 0.8);
}

/// The tool list each role sees, listed over stdio by a new actor of that role.
fn catalogue(url: &str, report: &mut Report) {
    let all = Registry::new().all().len();
    println!(
        "\n## Tool catalogue (tools/list over stdio)\n\n| role | tools | bytes | ~tokens | of which outputSchema |\n|---|---|---|---|---|"
    );
    for role in Role::ALL {
        let name = format!("catalogue-{}", role.as_str());
        cli(url, &["actor", "add", &name, "--role", role.as_str()]);
        let mut client = StdioClient::spawn(url, &name);
        client.initialize();
        let tools = client.tools();
        let count = tools.as_array().map_or(0, Vec::len);
        let bytes = tools.to_string().len();
        let tokens = bytes / 4;
        let outputs: usize = tools.as_array().into_iter().flatten().map(|t| t["outputSchema"].to_string().len()).sum();
        let share = 100 * outputs / bytes;
        println!("| {} | {count} | {bytes} | {tokens} | {outputs} bytes ({share}%) |", role.as_str());
        let value =
            format!("{} bytes ≈ {} tokens ({share}% outputSchema)", thousands(bytes as f64), thousands(tokens as f64));
        let measure = format!("catalogue, {} ({count} tools)", role.as_str());
        if count == all {
            report.check(format!("{measure}: all tools"), value, "< 9,000 tokens", tokens < 9_000);
        } else if role == Role::Agent {
            report.check(measure, value, "< 5,000 tokens", tokens < 5_000);
        } else {
            report.info(measure, value);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The data-set generator.

/// A value bound to a `$n` placeholder.
enum Val {
    Text(Option<String>),
    Int(Option<i64>),
}

fn text(s: impl Into<String>) -> Val {
    Val::Text(Some(s.into()))
}

fn int(i: i64) -> Val {
    Val::Int(Some(i))
}

/// Writes rows with multi-row INSERTs in large transactions.
struct Loader {
    conn: AnyConnection,
    /// Most placeholders per statement: SQLite looks `$n` names up one by one (binding slows
    /// with the square of their number), PostgreSQL gains from fewer, larger statements.
    max_params: usize,
    uncommitted: usize,
}

impl Loader {
    async fn open(url: &str) -> Self {
        let mut conn = AnyConnection::connect(url).await.expect("connect to seed");
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            // A fixture, not a record: no fsync, and a page cache that holds the indexes.
            sqlx::raw_sql("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144")
                .execute(&mut conn)
                .await
                .expect("pragma");
        }
        sqlx::raw_sql("BEGIN").execute(&mut conn).await.expect("BEGIN");
        Loader { conn, max_params: if sqlite { 256 } else { 16_000 }, uncommitted: 0 }
    }

    async fn insert(&mut self, table: &str, columns: &str, rows: Vec<Vec<Val>>) {
        let width = columns.split(',').count();
        let per_statement = (self.max_params / width).max(1);
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Val>> = rows.by_ref().take(per_statement).collect();
            let values: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let p: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            let sql = format!("INSERT INTO {table} ({columns}) VALUES {}", values.join(", "));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            self.uncommitted += chunk.len();
            for value in chunk.into_iter().flatten() {
                query = match value {
                    Val::Text(t) => query.bind(t),
                    Val::Int(i) => query.bind(i),
                };
            }
            query.execute(&mut self.conn).await.unwrap_or_else(|e| panic!("insert into {table}: {e}"));
        }
        if self.uncommitted >= 200_000 {
            sqlx::raw_sql("COMMIT; BEGIN").execute(&mut self.conn).await.expect("COMMIT");
            self.uncommitted = 0;
        }
    }

    async fn execute(&mut self, sql: &'static str, values: Vec<Val>) {
        let query = values.into_iter().fold(sqlx::query(sql), |q, v| match v {
            Val::Text(t) => q.bind(t),
            Val::Int(i) => q.bind(i),
        });
        query.execute(&mut self.conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Commits what was loaded, so others can write beside it.
    async fn commit(&mut self) {
        sqlx::raw_sql("COMMIT").execute(&mut self.conn).await.expect("COMMIT");
    }

    /// Settles a committed data set as a running database would be, then closes.
    async fn finish(mut self, url: &str) {
        // PostgreSQL: VACUUM as well as ANALYZE, so autovacuum does not start on the freshly
        // filled tables while the bench measures, and the visibility map is set, as in a
        // database that has been running; then a checkpoint, so the checkpointer is not still
        // writing the loaded data out (over a minute here) while the first measures run.
        let after: &[&str] = if url.starts_with("sqlite:") {
            &["PRAGMA wal_checkpoint(TRUNCATE)"]
        } else {
            &["VACUUM ANALYZE", "CHECKPOINT"]
        };
        for sql in after {
            sqlx::raw_sql(*sql).execute(&mut self.conn).await.expect(sql);
        }
        self.conn.close().await.expect("close the seeding connection");
    }
}

/// A step of a nonconformity's life as the operations record it in the audit trail; the
/// number is the index of the corrective action it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Log,
    Analyse,
    Plan(usize),
    PlanNc(usize),
    Progress(usize),
    Done(usize),
    ActionsDone(usize),
    Review,
    Close,
}

impl Step {
    /// Whether the step updates the nonconformity row (and its version).
    fn updates_nc(self) -> bool {
        matches!(self, Step::Analyse | Step::PlanNc(_) | Step::ActionsDone(_) | Step::Review | Step::Close)
    }
}

struct SeedCa {
    status: &'static str,
    notes: usize,
    owner: String,
    number: i64,
}

struct SeedNc {
    number: i64,
    created: i64,
    severity: &'static str,
    source: &'static str,
    status: &'static str,
    subject: &'static str,
    place: &'static str,
    title: String,
    description: String,
    controls: Vec<&'static str>,
    clauses: Vec<&'static str>,
    due: Option<NaiveDate>,
    action_needed: Option<bool>,
    by: String,
    evidence: String,
    cas: Vec<SeedCa>,
    steps: Vec<(Step, i64)>,
}

const SUBJECTS: [&str; 20] = [
    "API token",
    "database password",
    "TLS certificate",
    "backup job",
    "access review",
    "firewall rule",
    "admin account",
    "log retention",
    "vendor contract",
    "laptop encryption",
    "MFA enrolment",
    "patch window",
    "change ticket",
    "incident report",
    "training record",
    "key rotation",
    "bucket policy",
    "pipeline secret",
    "onboarding checklist",
    "offboarding step",
];
const PROBLEMS: [&str; 10] = [
    "was missing",
    "expired",
    "was not reviewed",
    "was shared in chat",
    "was printed in a log",
    "was left public",
    "was not approved",
    "failed silently",
    "was out of date",
    "had no owner",
];
const PLACES: [&str; 10] = [
    "payments service",
    "customer portal",
    "build server",
    "HR system",
    "data warehouse",
    "mobile app",
    "VPN gateway",
    "support desk",
    "mail relay",
    "staging cluster",
];

fn pick(rng: &mut StdRng, weighted: &[(&'static str, u32)]) -> &'static str {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut r = rng.random_range(0..total);
    for (item, w) in weighted {
        if r < *w {
            return item;
        }
        r -= w;
    }
    unreachable!("r is below the total weight")
}

fn at(t: i64) -> String {
    stamp(DateTime::from_timestamp_micros(t).expect("a time in range"))
}

fn day(t: i64) -> NaiveDate {
    DateTime::from_timestamp_micros(t).expect("a time in range").date_naive()
}

fn json_list(items: &[&str]) -> String {
    serde_json::to_string(items).expect("JSON")
}

/// The actors of the generated ISMS: name, kind, role.
fn seed_actors() -> Vec<(String, &'static str, &'static str)> {
    let mut actors =
        vec![("admin".to_owned(), "human", "isms_manager"), ("ciso".to_owned(), "human", "top_management")];
    actors.extend((1..=2).map(|i| (format!("auditor-{i}"), "human", "auditor")));
    actors.extend((1..=16).map(|i| (format!("agent-{i:02}"), "agent", "agent")));
    actors
}

/// Decides every nonconformity, its actions and its dated steps: a tenth of `entries` as many
/// nonconformities and as many actions, whose steps fill the audit trail up to `entries` less
/// the `reserved` entries others make (the actors' registration, the registers).
fn plan_seed(rng: &mut StdRng, entries: usize, reserved: usize, now: i64) -> Vec<SeedNc> {
    let (ncs, cas) = (entries / 10, entries / 10);
    let span = 3 * 365 * DAY;
    let slot = span / ncs as i64;
    let controls: Vec<&'static str> = catalog().controls().iter().map(|c| c.reference.as_str()).collect();
    let mut out = Vec::with_capacity(ncs);
    for n in 0..ncs {
        let created = now - span + slot * n as i64 + rng.random_range(0..slot);
        let age_days = ((now - created) / DAY) as f64;
        let severity = pick(rng, &[("major", 2), ("minor", 5), ("observation", 3)]);
        let source = pick(
            rng,
            &[
                ("internal_audit", 20),
                ("monitoring", 30),
                ("self_report", 25),
                ("incident", 10),
                ("external_audit", 5),
                ("complaint", 5),
                ("management_review", 5),
            ],
        );
        let due = match severity {
            "major" => day(created).checked_add_days(Days::new(90)),
            "minor" => day(created).checked_add_days(Days::new(365)),
            _ => rng.random_bool(0.3).then(|| day(created) + Days::new(180)),
        };
        let status = if rng.random_bool((age_days / 200.0).min(0.97)) {
            "closed"
        } else {
            pick(
                rng,
                &[
                    ("open", 15),
                    ("corrected", 15),
                    ("analysed", 15),
                    ("actions_planned", 35),
                    ("actions_done", 10),
                    ("verified", 10),
                ],
            )
        };
        let no_action = severity != "major" && matches!(status, "closed" | "analysed") && rng.random_bool(0.25);
        let action_needed = (!matches!(status, "open" | "corrected")).then_some(!no_action);
        let (subject, place) = (*SUBJECTS.choose(rng).unwrap(), *PLACES.choose(rng).unwrap());
        let problem = *PROBLEMS.choose(rng).unwrap();
        let cited = rng.random_range(1..=3);
        let picked = rand::seq::index::sample(rng, controls.len(), cited);
        let clauses = if rng.random_bool(0.3) { vec![*CLAUSES.choose(rng).unwrap()] } else { Vec::new() };
        out.push(SeedNc {
            number: n as i64 + 1,
            created,
            severity,
            source,
            status,
            subject,
            place,
            title: format!("{subject} {problem} in the {place}"),
            description: format!(
                "During routine work on the {place}, the {subject} {problem}. This breaks the documented procedure \
                 and leaves the {place} exposed until it is corrected; ticket SEC-{}.",
                rng.random_range(1000..99999)
            ),
            controls: picked.into_iter().map(|i| controls[i]).collect(),
            clauses,
            due,
            action_needed,
            by: format!("agent-{:02}", rng.random_range(1..=16)),
            evidence: format!("https://git.example.com/{}/commit/{:07x}", place.replace(' ', "-"), rng.random::<u32>()),
            cas: Vec::new(),
            steps: Vec::new(),
        });
    }

    // Actions: one for each nonconformity past analysis with action needed, the rest spread.
    let with_actions: Vec<usize> = (0..ncs)
        .filter(|&i| matches!(out[i].status, "actions_planned" | "actions_done" | "verified" | "closed"))
        .filter(|&i| out[i].action_needed == Some(true))
        .collect();
    let mut counts = vec![0usize; ncs];
    for &i in &with_actions {
        counts[i] = 1;
    }
    for _ in with_actions.len()..cas {
        counts[*with_actions.choose(rng).expect("nonconformities with actions")] += 1;
    }
    for (nc, count) in out.iter_mut().zip(counts) {
        for _ in 0..count {
            let status = if nc.status == "actions_planned" {
                pick(rng, &[("planned", 1), ("in_progress", 2), ("done", 1)])
            } else {
                "done"
            };
            let owner = format!("agent-{:02}", rng.random_range(1..=16));
            nc.cas.push(SeedCa { status, notes: usize::from(status == "in_progress"), owner, number: 0 });
        }
        // actions_planned means at least one action is not done yet.
        if nc.status == "actions_planned"
            && nc.cas.iter().all(|c| c.status == "done")
            && let Some(last) = nc.cas.last_mut()
        {
            (last.status, last.notes) = ("in_progress", 1);
        }
    }

    // Progress notes fill the trail up to `entries`.
    let base: usize = out.iter().map(|nc| steps_of(nc).len()).sum();
    let padding = entries.checked_sub(reserved + base).expect("the scale leaves room for the lifecycle entries");
    let eligible: Vec<(usize, usize)> = out
        .iter()
        .enumerate()
        .flat_map(|(i, nc)| nc.cas.iter().enumerate().filter(|(_, c)| c.status != "planned").map(move |(k, _)| (i, k)))
        .collect();
    for _ in 0..padding {
        let &(i, k) = eligible.choose(rng).expect("actions to note progress on");
        out[i].cas[k].notes += 1;
    }

    // Dates: the steps spread evenly from logging to the last one.
    for nc in &mut out {
        let created = nc.created;
        let steps = steps_of(nc);
        let length = if nc.status == "closed" { rng.random_range(20..150) } else { rng.random_range(5..120) };
        let end = (created + length * DAY).min(now).max(created + steps.len() as i64);
        let last = (steps.len() as i64 - 1).max(1);
        nc.steps =
            steps.into_iter().enumerate().map(|(k, s)| (s, created + (end - created) * k as i64 / last)).collect();
    }
    out
}

/// The steps a nonconformity went through to reach its state, in order.
fn steps_of(nc: &SeedNc) -> Vec<Step> {
    let mut steps = vec![Step::Log];
    if matches!(nc.status, "open" | "corrected") {
        return steps;
    }
    steps.push(Step::Analyse);
    for k in 0..nc.cas.len() {
        steps.extend([Step::Plan(k), Step::PlanNc(k)]);
    }
    for (k, ca) in nc.cas.iter().enumerate() {
        steps.extend(std::iter::repeat_n(Step::Progress(k), ca.notes));
        if ca.status == "done" {
            steps.push(Step::Done(k));
        }
    }
    if !nc.cas.is_empty() && nc.status != "actions_planned" {
        steps.push(Step::ActionsDone(nc.cas.len() - 1));
        if nc.status != "actions_done" {
            steps.push(Step::Review);
        }
    }
    if nc.status == "closed" {
        steps.push(Step::Close);
    }
    steps
}

impl SeedNc {
    fn reference(&self) -> String {
        format!("NC-{}", self.number)
    }

    fn correction(&self) -> Option<String> {
        (self.status != "open").then(|| format!("Revoked and replaced the {}; removed the exposed copy.", self.subject))
    }

    fn ca_reference(&self, k: usize) -> String {
        format!("CA-{}", self.cas[k].number)
    }

    fn ca_due(&self, planned: i64) -> String {
        date(self.due.unwrap_or_else(|| day(planned) + Days::new(60)))
    }

    fn time_of(&self, step: Step) -> i64 {
        self.steps.iter().find(|(s, _)| *s == step).map(|(_, t)| *t).expect("the step happened")
    }

    fn actor_of(&self, step: Step) -> String {
        match step {
            Step::Log | Step::Analyse => self.by.clone(),
            Step::Plan(_) | Step::PlanNc(_) | Step::Close => "admin".into(),
            Step::Progress(k) | Step::Done(k) | Step::ActionsDone(k) => self.cas[k].owner.clone(),
            Step::Review => format!("auditor-{}", 1 + self.number % 2),
        }
    }

    fn analysis(&self) -> Value {
        let needed = self.action_needed == Some(true);
        json!({
            "method": "5 whys",
            "root_cause": format!("No automated check of the {} in the {} process", self.subject, self.place),
            "similar": [],
            "similar_note": null,
            "action_needed": needed,
            "justification": (!needed).then_some("A single lapse; the control works otherwise"),
            "analysed_at": at(self.time_of(Step::Analyse)),
            "analysed_by": self.by,
        })
    }

    fn review(&self) -> Value {
        json!({
            "round": 1,
            "result": "effective",
            "evidence": [format!("https://tickets.example.com/SEC-{}/verification", self.number)],
            "notes": format!("Sampled the {} for 30 days after the fix: no repeat.", self.place),
            "reviewer": self.actor_of(Step::Review),
            "at": at(self.time_of(Step::Review)),
        })
    }

    /// The audit-trail detail of a step, shaped as the operation writes it.
    fn detail(&self, step: Step, when: i64) -> Value {
        match step {
            Step::Log => {
                let created = at(when);
                let status = if self.status == "open" { "open" } else { "corrected" };
                json!({
                    "ref": self.reference(), "title": self.title, "description": self.description,
                    "severity": self.severity, "source": self.source, "status": status,
                    "next_step": "record_nonconformity_analysis", "clauses": self.clauses, "controls": self.controls,
                    "detected_in": self.place, "evidence": [self.evidence], "correction": self.correction(),
                    "due_date": self.due.map(date), "overdue": false, "version": 1,
                    "created_at": created, "created_by": self.by, "updated_at": created, "updated_by": self.by,
                    "consequences": null, "similar": [], "recurrence_of": [], "analysis": null, "actions": [],
                    "reviews": [], "round": 1, "isms_changes": null, "closed_at": null, "closed_by": null,
                })
            }
            Step::Analyse => {
                json!({"correction": null, "consequences": self.consequences(), "analysis": self.analysis()})
            }
            Step::Plan(k) => json!({
                "ref": self.ca_reference(k), "nonconformity": self.reference(), "round": 1,
                "description": self.ca_description(), "owner": self.cas[k].owner, "due_date": self.ca_due(when),
                "status": "planned", "progress": null, "evidence": [], "overdue": false, "version": 1,
                "created_at": at(when), "created_by": "admin", "updated_at": at(when), "updated_by": "admin",
            }),
            Step::PlanNc(k) => json!({"action": self.ca_reference(k), "status": "actions_planned"}),
            Step::Progress(_) => json!({"status": "in_progress", "progress": self.progress_note(), "evidence": []}),
            Step::Done(k) => json!({"status": "done", "progress": null, "evidence": [self.ca_evidence(k)]}),
            Step::ActionsDone(k) => json!({"status": "actions_done", "last_action": self.ca_reference(k)}),
            Step::Review => self.review(),
            Step::Close => json!({"isms_changes": self.isms_changes()}),
        }
    }

    fn consequences(&self) -> String {
        format!("The {} was exposed for up to a day; no misuse found in the logs.", self.subject)
    }

    fn ca_description(&self) -> String {
        format!("Add an automated check of the {} to the {} pipeline", self.subject, self.place)
    }

    fn ca_evidence(&self, k: usize) -> String {
        format!("https://tickets.example.com/SEC-{}", self.cas[k].number)
    }

    fn progress_note(&self) -> String {
        format!("Check drafted for the {}; review pending.", self.place)
    }

    fn isms_changes(&self) -> String {
        format!("Procedure for the {} updated with the new check", self.subject)
    }

    /// The nonconformity row as the operations leave it after its steps.
    fn row(&self) -> Vec<Val> {
        let created = self.steps[0].1;
        let last = self.steps.iter().rev().find(|(s, _)| s.updates_nc()).copied();
        let (updated, updated_by) = last.map_or((created, self.by.clone()), |(s, t)| (t, self.actor_of(s)));
        let analysed = self.action_needed.is_some();
        let closed = self.status == "closed";
        vec![
            int(self.number),
            text(self.title.as_str()),
            text(self.description.as_str()),
            text(self.severity),
            text(self.source),
            text(self.status),
            text(json_list(&self.clauses)),
            text(json_list(&self.controls)),
            text(self.place),
            text(json_list(&[self.evidence.as_str()])),
            Val::Text(self.correction()),
            Val::Text(self.due.map(date)),
            int(1 + self.steps.iter().filter(|(s, _)| s.updates_nc()).count() as i64),
            text(at(created)),
            text(self.by.as_str()),
            text(at(updated)),
            text(updated_by),
            Val::Text(analysed.then(|| self.consequences())),
            text("[]"),
            text("[]"),
            Val::Text(analysed.then(|| self.analysis().to_string())),
            Val::Int(self.action_needed.map(i64::from)),
            int(1),
            Val::Text(closed.then(|| self.isms_changes())),
            Val::Text(closed.then(|| at(self.time_of(Step::Close)))),
            Val::Text(closed.then(|| "admin".to_owned())),
        ]
    }

    /// The rows of its corrective actions.
    fn action_rows(&self) -> Vec<Vec<Val>> {
        (0..self.cas.len())
            .map(|k| {
                let ca = &self.cas[k];
                let planned = self.time_of(Step::Plan(k));
                let updates: Vec<i64> = self
                    .steps
                    .iter()
                    .filter(|(s, _)| matches!(s, Step::Progress(j) | Step::Done(j) if *j == k))
                    .map(|(_, t)| *t)
                    .collect();
                let updated = updates.last().copied().unwrap_or(planned);
                let evidence =
                    if ca.status == "done" { json_list(&[self.ca_evidence(k).as_str()]) } else { "[]".into() };
                vec![
                    int(ca.number),
                    int(self.number),
                    int(1),
                    text(self.ca_description()),
                    text(ca.owner.as_str()),
                    text(self.ca_due(planned)),
                    text(ca.status),
                    Val::Text((ca.notes > 0).then(|| self.progress_note())),
                    text(evidence),
                    int(1 + updates.len() as i64),
                    text(at(planned)),
                    text("admin"),
                    text(at(updated)),
                    text(if updates.is_empty() { "admin".to_owned() } else { ca.owner.clone() }),
                ]
            })
            .collect()
    }
}

const NC_COLUMNS: &str = "number, title, description, severity, source, status, clauses, controls, detected_in, \
    evidence, correction, due_date, version, created_at, created_by, updated_at, updated_by, consequences, \
    similar_at_logging, recurrence_of, analysis, action_needed, round, isms_changes, closed_at, closed_by";
const CA_COLUMNS: &str = "number, nc, round, description, owner, due_date, status, progress, evidence, version, \
    created_at, created_by, updated_at, updated_by";
const AUDIT_COLUMNS: &str = "seq, at, actor, operation, record_ref, detail, prev_hash, hash";

/// Writes the generated ISMS into a migrated database at `url`.
async fn seed(url: &str, entries: usize) {
    let started = Instant::now();
    Store::open(url).await.expect("migrate the seed database").close().await;
    let mut rng = StdRng::seed_from_u64(SEED);
    let now = Utc::now().timestamp_micros() - DAY;
    let actors = seed_actors();
    let registers = Registers::for_scale(entries);
    let mut ncs = plan_seed(&mut rng, entries, registers.entries() + actors.len(), now);

    // The trail in time order; actions are numbered as they are planned.
    let mut events: Vec<(i64, u32, u16)> = ncs
        .iter()
        .enumerate()
        .flat_map(|(i, nc)| nc.steps.iter().enumerate().map(move |(k, (_, t))| (*t, i as u32, k as u16)))
        .collect();
    events.sort_unstable();
    let mut next_ca = 0;
    for &(_, i, k) in &events {
        if let (Step::Plan(c), _) = ncs[i as usize].steps[k as usize] {
            next_ca += 1;
            ncs[i as usize].cas[c].number = next_ca;
        }
    }

    let mut loader = Loader::open(url).await;
    let since = at(now - 3 * 365 * DAY - DAY);
    let actor_rows = actors
        .iter()
        .map(|(name, kind, role)| {
            vec![
                text(name.as_str()),
                text(*kind),
                text(*role),
                Val::Text(None),
                Val::Text(None),
                text("active"),
                text(since.as_str()),
            ]
        })
        .collect();
    loader.insert("actors", "name, kind, role, model, model_version, status, created_at", actor_rows).await;
    for chunk in ncs.chunks(5_000) {
        loader.insert("nonconformities", NC_COLUMNS, chunk.iter().map(SeedNc::row).collect()).await;
        let links = chunk.iter().flat_map(|nc| nc.controls.iter().map(|c| vec![text(*c), int(nc.number)])).collect();
        loader.insert("nc_controls", "control, nc", links).await;
        loader.insert("corrective_actions", CA_COLUMNS, chunk.iter().flat_map(SeedNc::action_rows).collect()).await;
        let reviews = chunk
            .iter()
            .filter(|nc| nc.steps.iter().any(|(s, _)| *s == Step::Review))
            .map(|nc| {
                let r = nc.review();
                vec![
                    int(nc.number),
                    int(1),
                    text("effective"),
                    text(r["evidence"].to_string()),
                    text(r["notes"].as_str().unwrap_or_default()),
                    text(r["reviewer"].as_str().unwrap_or_default()),
                    text(r["at"].as_str().unwrap_or_default()),
                ]
            })
            .collect();
        loader.insert("effectiveness_reviews", "nc, round, result, evidence, notes, reviewer, at", reviews).await;
    }

    // The audit trail: the actors' registration, then every step, on one hash chain.
    let mut prev = GENESIS.to_owned();
    let mut seq = 0i64;
    let mut rows = Vec::with_capacity(10_000);
    let mut append = |at: &str, actor: &str, operation: &str, record: &str, detail: &str, rows: &mut Vec<Vec<Val>>| {
        seq += 1;
        let fields = EntryFields { seq, at, actor, operation, record_ref: record, detail };
        let hash = entry_hash(&prev, &fields);
        rows.push(vec![
            int(seq),
            text(at),
            text(actor),
            text(operation),
            text(record),
            text(detail),
            text(prev.as_str()),
            text(hash.as_str()),
        ]);
        prev = hash;
    };
    for (name, kind, role) in &actors {
        let detail = json!({"name": name, "kind": kind, "role": role, "model": null, "model_version": null});
        append(&since, "cli", "add_actor", &format!("actor:{name}"), &detail.to_string(), &mut rows);
    }
    for (when, i, k) in events {
        let nc = &ncs[i as usize];
        let step = nc.steps[k as usize].0;
        let (operation, record) = match step {
            Step::Log => ("log_nonconformity", nc.reference()),
            Step::Analyse => ("record_nonconformity_analysis", nc.reference()),
            Step::Plan(c) => ("plan_corrective_action", nc.ca_reference(c)),
            Step::PlanNc(_) => ("plan_corrective_action", nc.reference()),
            Step::Progress(c) | Step::Done(c) => ("update_corrective_action", nc.ca_reference(c)),
            Step::ActionsDone(_) => ("update_corrective_action", nc.reference()),
            Step::Review => ("review_effectiveness", nc.reference()),
            Step::Close => ("close_nonconformity", nc.reference()),
        };
        append(&at(when), &nc.actor_of(step), operation, &record, &nc.detail(step, when).to_string(), &mut rows);
        if rows.len() == 10_000 {
            loader.insert("audit_log", AUDIT_COLUMNS, std::mem::take(&mut rows)).await;
        }
    }
    loader.insert("audit_log", AUDIT_COLUMNS, rows).await;
    let (entries_written, head) = (seq, prev);
    loader
        .execute("UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1", vec![int(entries_written), text(head)])
        .await;
    loader.execute("UPDATE counters SET last = $1 WHERE kind = 'NC'", vec![int(ncs.len() as i64)]).await;
    loader.execute("UPDATE counters SET last = $1 WHERE kind = 'CA'", vec![int(next_ca)]).await;
    loader.commit().await;
    registers.write(url, &mut rng).await;
    loader.finish(url).await;
    let store = Store::open(url).await.expect("open the seeded store");
    let report = store.verify_chain().await.expect("count the entries");
    store.close().await;
    assert!(report.intact, "the registers' entries extend the generated chain: {:?}", report.problem);
    assert_eq!(report.entries_checked as usize, entries, "the registers made as many audit entries as planned");
    println!(
        "generated {} nonconformities, {} corrective actions, {} audit-trail entries ({} of them by the \
         registers' operations) in {:.1} s (seed {SEED})",
        thousands(ncs.len() as f64),
        thousands(next_ca as f64),
        thousands(report.entries_checked as f64),
        thousands(registers.entries() as f64),
        started.elapsed().as_secs_f64()
    );
}

/// The registers beside the nonconformities, written through the operations themselves (so
/// their rules, numbering and audit entries are the server's own) after the generated trail:
/// every SoA decision, risks (some with residual risk, some of those accepted), objectives
/// with monthly measurements, internal audits held in the review period and planned after it,
/// change requests and context entries. Their audit entries count towards the data set's.
struct Registers {
    risks: usize,
    accepted: usize,
    objectives: usize,
    measurements: usize,
    audits_held: usize,
    audits_planned: usize,
    change_requests: usize,
    context: usize,
}

impl Registers {
    /// The registers of a data set of `entries` audit-trail entries: an organisation's worth
    /// at full scale, a handful for the smoke run.
    fn for_scale(entries: usize) -> Self {
        if entries >= 100_000 {
            Registers {
                risks: 300,
                accepted: 60,
                objectives: 30,
                measurements: 12,
                audits_held: 20,
                audits_planned: 4,
                change_requests: 40,
                context: 12,
            }
        } else {
            Registers {
                risks: 6,
                accepted: 2,
                objectives: 2,
                measurements: 3,
                audits_held: 2,
                audits_planned: 1,
                change_requests: 2,
                context: 2,
            }
        }
    }

    /// The audit-trail entries they make: one per call, two for an audit recorded as held
    /// (planned, then completed).
    fn entries(&self) -> usize {
        let soa = catalog().controls().len();
        soa + self.risks
            + self.accepted
            + self.objectives * (1 + self.measurements)
            + 2 * self.audits_held
            + self.audits_planned
            + self.change_requests
            + self.context
    }

    /// Writes them into the seeded database at `url`, deciding every choice with `rng`.
    async fn write(&self, url: &str, rng: &mut StdRng) {
        let store = Store::open(url).await.expect("open the seeded store");
        let app = Arc::new(App::new(store.clone()));
        let registry = Registry::new();
        let call = async |tool: &str, who: &str, role: Role, args: Value| -> Value {
            let kind = if role == Role::Agent { ActorKind::Agent } else { ActorKind::Human };
            let actor = Actor { name: who.into(), kind, role };
            registry
                .get(tool)
                .expect("tool")
                .call(app.clone(), actor, args)
                .await
                .unwrap_or_else(|e| panic!("{tool} while seeding: {e}"))
        };
        let agent = |rng: &mut StdRng| format!("agent-{:02}", rng.random_range(1..=16));
        let controls: Vec<&'static str> = catalog().controls().iter().map(|c| c.reference.as_str()).collect();
        let today = Utc::now().date_naive();

        for (k, control) in controls.iter().enumerate() {
            let mut args = json!({"control": control, "version": 0, "owner": agent(rng)});
            if k % 15 == 14 {
                args["applicable"] = json!(false);
                args["justification"] = json!("No such activity within the ISMS scope.");
                args["risk_assessment"] = json!("The 2026 risk assessment found no risk this control would treat.");
            } else {
                let (status, evidence_age) =
                    *[("implemented", 30), ("implemented", 500), ("partially_implemented", 60), ("planned", 0)]
                        .choose(rng)
                        .unwrap();
                args["applicable"] = json!(true);
                args["status"] = json!(status);
                args["justification"] = json!("Required by the risk assessment and customer contracts.");
                if status != "planned" {
                    args["implementation"] = json!(format!("Implemented by the platform team for {control}."));
                    let dated = date(today - Days::new(evidence_age));
                    args["evidence"] = json!([{"ref": format!("https://wiki.example.com/{control}"), "date": dated}]);
                }
            }
            call("update_soa_entry", "admin", Role::IsmsManager, args).await;
        }

        for r in 0..self.risks {
            let (likelihood, impact) = (rng.random_range(1..=5), rng.random_range(1..=5));
            let treatment = pick(rng, &[("mitigate", 6), ("accept", 2), ("avoid", 1), ("transfer", 1)]);
            let count = rng.random_range(1..=3);
            let cited = rand::seq::index::sample(rng, controls.len(), count);
            let (subject, place) = (*SUBJECTS.choose(rng).unwrap(), *PLACES.choose(rng).unwrap());
            let mut args = json!({
                "title": format!("{subject} exposed in the {place}"),
                "asset": place,
                "threat": format!("An attacker obtains the {subject}"),
                "vulnerability": format!("The {subject} is handled by hand"),
                "properties": ["confidentiality", "integrity"],
                "likelihood": likelihood,
                "impact": impact,
                "owner": agent(rng),
                "treatment": treatment,
                "controls": cited.into_iter().map(|i| controls[i]).collect::<Vec<_>>(),
            });
            if r < self.accepted || rng.random_bool(0.3) {
                args["residual_likelihood"] = json!((likelihood - 1).max(1));
                args["residual_impact"] = json!(impact);
            }
            let risk = call("register_risk", &agent(rng), Role::Agent, args).await;
            if r < self.accepted {
                let accept =
                    json!({"ref": risk["risk"]["ref"], "version": risk["risk"]["version"], "accept_residual": true});
                call("update_risk", "admin", Role::IsmsManager, accept).await;
            }
        }

        for o in 0..self.objectives {
            let target = rng.random_range(80..=99);
            let defined = json!({
                "statement": format!("Keep control area {o} effective"),
                "metric": format!("Share of checks passed in area {o}"),
                "target": target,
                "comparator": "at_least",
                "unit": "%",
                "frequency": "monthly",
                "owner": "admin",
            });
            let objective = call("define_objective", "admin", Role::IsmsManager, defined).await;
            for m in (0..self.measurements as u64).rev() {
                let period = today.checked_sub_months(chrono::Months::new(m as u32)).expect("a month in range");
                let measured = json!({
                    "ref": objective["objective"]["ref"],
                    "period": period.format("%Y-%m").to_string(),
                    "value": rng.random_range(70..=100),
                    "source": "monthly compliance scan",
                });
                call("record_measurement", &agent(rng), Role::Agent, measured).await;
            }
        }

        for a in 0..self.audits_held + self.audits_planned {
            let scope = json!({"controls": [controls[rng.random_range(0..controls.len())]], "processes": ["change management"]});
            let mut args =
                json!({"scope": scope, "criteria": "ISO/IEC 27001:2022 clauses 4 to 10 and the access policy"});
            if a < self.audits_held {
                args["audit_date"] = json!(date(today - Days::new(rng.random_range(1..80))));
                args["auditor"] = json!(format!("auditor-{}", 1 + a % 2));
                args["auditees"] = json!([agent(rng)]);
                args["conclusion"] = json!("Conforms; two observations were discussed with the auditees.");
            } else {
                args["planned_date"] = json!(date(today + Days::new(rng.random_range(10..120))));
            }
            call("record_audit", "auditor-1", Role::Auditor, args).await;
        }

        for c in 0..self.change_requests {
            let args = json!({
                "title": format!("Rotate the {} of the {}", SUBJECTS[c % SUBJECTS.len()], PLACES[c % PLACES.len()]),
                "description": "Replace the credential and update the services that use it.",
                "purpose": "Reduce exposure after a finding.",
                "consequences": "A short restart of the dependent services.",
                "type": pick(rng, &[("standard", 3), ("normal", 6), ("emergency", 1)]),
                "implementation_plan": "Issue the new credential, deploy, revoke the old one.",
                "rollback_plan": "Restore the previous credential from the vault.",
                "controls": [controls[rng.random_range(0..controls.len())]],
            });
            call("raise_change_request", &agent(rng), Role::Agent, args).await;
        }

        for k in 0..self.context {
            let kind = ["interested_party", "internal_issue", "external_issue"][k % 3];
            let mut args = json!({"kind": kind, "name": format!("{kind} {k}"), "description": "Named in the 2026 context review."});
            if kind == "interested_party" {
                args["expectations"] = json!("Timely notice of incidents affecting their data.");
                args["feedback"] = json!("Asked for quarterly security reports.");
            }
            call("record_context", "admin", Role::IsmsManager, args).await;
        }
        store.close().await;
    }
}

/// The newest SQLite migration, by its number: part of the cache key, so a data set is
/// generated at the current schema. (A copy migrated on open would carry the migration's
/// pages in its WAL, and every read of the run would pay for looking them up there.)
fn schema_version() -> u32 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    std::fs::read_dir(&dir)
        .expect("the SQLite migrations")
        .filter_map(|e| e.ok()?.file_name().to_str()?.split('_').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// The cached SQLite data set for this scale and schema, generated when missing or old.
fn sqlite_seed(data_dir: &Path, budget: &Budget, rt: &Runtime) -> PathBuf {
    let name = format!("isms-v{GENERATOR_VERSION}-schema{}-seed{SEED}-{}.db", schema_version(), budget.entries);
    let path = data_dir.join(name);
    let age = std::fs::metadata(&path).and_then(|m| m.modified()).ok().and_then(|m| m.elapsed().ok());
    if age.is_some_and(|a| a < Duration::from_secs(CACHE_DAYS * 86_400)) {
        println!("reusing the cached data set {}", path.display());
        return path;
    }
    // Data sets of this scale made by another schema or generator are stale (700 MB at 1M).
    let scale = format!("-{}.db", budget.entries);
    for entry in std::fs::read_dir(data_dir).into_iter().flatten().flatten() {
        let stale = entry.file_name().to_str().is_some_and(|n| n.starts_with("isms-v") && n.ends_with(&scale));
        if stale && entry.path() != path {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let partial = path.with_extension("partial");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", partial.display()));
    }
    rt.block_on(seed(&sqlite_url(&partial), budget.entries));
    std::fs::rename(&partial, &path).expect("store the generated data set");
    path
}

/// Fresh PostgreSQL databases for the bench, dropped by `drop_databases`.
async fn create_databases(server: &str, names: &[String]) {
    let mut admin = AnyConnection::connect(server).await.expect("connect to PostgreSQL");
    for name in names {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the bench database");
    }
    admin.close().await.expect("close");
}

async fn drop_databases(server: &str, names: &[String]) {
    let mut admin = AnyConnection::connect(server).await.expect("connect to PostgreSQL");
    for name in names {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut admin)
            .await
            .expect("drop the bench database");
    }
    admin.close().await.expect("close");
}

/// A new database: migrated, with only its `admin`, added with the CLI (no bootstrap at start).
fn new_database(url: &str) {
    cli(url, &["migrate"]);
    cli(url, &["actor", "add", "admin", "--role", "isms_manager", "--kind", "human"]);
}

fn main() {
    let wall = Instant::now();
    let budget = Budget::from_env();
    let machine = machine();
    println!("# isms benchmark ({})\n\nmachine: {machine}", if budget.quick { "quick smoke run" } else { "full run" });
    sqlx::any::install_default_drivers();
    let rt = Runtime::new().expect("tokio runtime");
    let data_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("bench-data");
    std::fs::create_dir_all(&data_dir).expect("target/bench-data");
    let run_dir = tempfile::Builder::new().prefix("run-").tempdir_in(&data_dir).expect("temp dir");
    let mut report = Report::default();

    let fresh = sqlite_url(&run_dir.path().join("new.db"));
    new_database(&fresh);
    let cached = sqlite_seed(&data_dir, &budget, &rt);
    let populated_path = run_dir.path().join("isms.db");
    std::fs::copy(&cached, &populated_path).expect("copy the data set");
    let writes = run_backend("SQLite", &sqlite_url(&populated_path), &fresh, &budget, &rt, &mut report);
    let bare = bare_sqlite_commits(&run_dir.path().join("bare.db"), budget.window);
    write_ratio("SQLite", writes, bare, &mut report);

    match std::env::var("ISMS_BENCH_POSTGRES_URL") {
        Ok(server) if !server.is_empty() => {
            let (base, _) = server.rsplit_once('/').expect("a PostgreSQL URL with a database path");
            let names =
                [format!("isms_bench_{}", std::process::id()), format!("isms_bench_{}_new", std::process::id())];
            rt.block_on(create_databases(&server, &names));
            let (populated, fresh) = (format!("{base}/{}", names[0]), format!("{base}/{}", names[1]));
            new_database(&fresh);
            rt.block_on(seed(&populated, budget.entries));
            let writes = run_backend("PostgreSQL", &populated, &fresh, &budget, &rt, &mut report);
            let bare = bare_postgres_commits(&rt, &populated, budget.window);
            write_ratio("PostgreSQL", writes, bare, &mut report);
            rt.block_on(drop_databases(&server, &names));
        }
        _ => println!("\nNOTICE: ISMS_BENCH_POSTGRES_URL is not set; the PostgreSQL rows are skipped"),
    }
    catalogue(&fresh, &mut report);

    report.print();
    println!("\nmachine: {machine}\nwall time: {:.1} s", wall.elapsed().as_secs_f64());
}
