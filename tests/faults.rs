//! Faults: the server killed with SIGKILL under write load, two replicas on one database,
//! Redis stopped and restarted during writes, and the database unreachable. Each prints its
//! counts (run with `--nocapture` to see them).

mod common;

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Harness, HttpServer, TestDb, event_ids, postgres_url, read_stream, try_rpc};
use isms::domain::actor::Role;
use isms::error::Error;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

fn finding(key: &str) -> Value {
    json!({"title": key, "description": "written under load", "severity": "minor", "source": "monitoring",
           "idempotency_key": key})
}

fn nc_number(reference: &str) -> u64 {
    reference.strip_prefix("NC-").and_then(|n| n.parse().ok()).expect("an NC reference")
}

async fn assert_chain_intact(client: &reqwest::Client, server: &HttpServer) -> i64 {
    let report = try_rpc(client, &server.base, &server.admin_token, "verify_audit_trail", json!({})).await.unwrap();
    assert_eq!(report["result"]["intact"], true, "{report}");
    report["result"]["entries_checked"].as_i64().unwrap()
}

/// Writers log findings until the server stops answering; each returns what was
/// acknowledged and the key in flight when the connection broke.
async fn write_until_killed(base: String, token: String, writer: usize) -> (Vec<(String, String)>, Option<String>) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut acknowledged = Vec::new();
    for i in 0.. {
        let key = format!("w{writer}-{i}");
        match try_rpc(&client, &base, &token, "log_nonconformity", finding(&key)).await {
            Ok(reply) => {
                let reference = reply["result"]["ref"].as_str().unwrap_or_else(|| panic!("{reply}")).to_owned();
                acknowledged.push((key, reference));
            }
            Err(_) => return (acknowledged, Some(key)),
        }
    }
    unreachable!()
}

async fn kill_during_writes(db: &TestDb, backend: &str) {
    const WRITERS: usize = 8;
    let server = HttpServer::start(&db.url, &[]);
    let token = server.admin_token.clone();
    let writers: Vec<_> =
        (0..WRITERS).map(|w| tokio::spawn(write_until_killed(server.base.clone(), token.clone(), w))).collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let mut acknowledged = Vec::new();
    let mut in_flight = Vec::new();
    for w in writers {
        let (acked, pending) = w.await.unwrap();
        acknowledged.extend(acked);
        in_flight.extend(pending);
    }
    assert!(acknowledged.len() > 20, "the load ran: {} writes", acknowledged.len());

    let server = HttpServer::restart(&db.url, &[], &token);
    let client = reqwest::Client::new();
    let mut found = 0;
    for (key, reference) in &acknowledged {
        let record = try_rpc(&client, &server.base, &token, "get_record", json!({"ref": reference})).await.unwrap();
        assert_eq!(record["result"]["record"]["title"], key.as_str(), "{reference}: {record}");
        found += 1;
    }
    // The calls cut off by the kill, retried with their keys: each lands exactly once.
    let mut refs: Vec<String> = acknowledged.iter().map(|(_, r)| r.clone()).collect();
    for key in &in_flight {
        let reply = try_rpc(&client, &server.base, &token, "log_nonconformity", finding(key)).await.unwrap();
        refs.push(reply["result"]["ref"].as_str().unwrap_or_else(|| panic!("{reply}")).to_owned());
    }
    let distinct: HashSet<&String> = refs.iter().collect();
    assert_eq!(distinct.len(), refs.len(), "no finding recorded twice");
    let highest = refs.iter().map(|r| nc_number(r)).max().unwrap();
    assert_eq!(highest as usize, refs.len(), "every finding in the database belongs to one key");
    let entries = assert_chain_intact(&client, &server).await;
    eprintln!(
        "kill -9 ({backend}): {} writes acknowledged, {found} found after restart; {} in flight retried; \
         audit trail intact over {entries} entries",
        acknowledged.len(),
        in_flight.len()
    );
}

#[tokio::test]
async fn kill_9_under_write_load_loses_nothing_acknowledged_on_sqlite() {
    let db = TestDb::sqlite();
    kill_during_writes(&db, "SQLite").await;
}

#[tokio::test]
async fn kill_9_under_write_load_loses_nothing_acknowledged_on_postgres() {
    let Some(pg) = postgres_url() else { return };
    let db = TestDb::postgres(&pg).await;
    kill_during_writes(&db, "PostgreSQL").await;
    db.cleanup().await;
}

#[tokio::test]
async fn two_replicas_on_one_postgres_lose_no_update_and_share_one_chain() {
    let Some(pg) = postgres_url() else { return };
    let db = TestDb::postgres(&pg).await;
    two_replicas(&db, "PostgreSQL").await;
    db.cleanup().await;
}

/// Two processes on one SQLite file: SQLite's lock orders their writers, and the relay lock
/// beside the file lets one relay publish at a time.
#[tokio::test]
async fn two_replicas_on_one_sqlite_file_lose_no_update_and_share_one_chain() {
    let db = TestDb::sqlite();
    two_replicas(&db, "SQLite").await;
}

/// Two replicas on one database, written to at once: no lost update, no duplicate or missing
/// reference, one intact chain, and (with Redis) every event published once, in order.
async fn two_replicas(db: &TestDb, backend: &str) {
    const CLIENTS: usize = 16;
    const ROUNDS: usize = 10;
    // Both replicas relay events to one stream, when a Redis is at hand.
    let redis = common::redis_url();
    let stream = common::unique("isms:replicas");
    let relay: Vec<&str> = match &redis {
        Some(url) => vec!["--redis-url", url, "--redis-stream", &stream],
        None => Vec::new(),
    };
    let a = HttpServer::start(&db.url, &relay);
    let b = HttpServer::restart(&db.url, &relay, &a.admin_token);
    let token = a.admin_token.clone();
    let client = reqwest::Client::new();
    let risk = json!({
        "title": "Shared risk", "asset": "Everything", "threat": "Concurrent edits", "vulnerability": "Two replicas",
        "properties": ["integrity"], "likelihood": 2, "impact": 2, "owner": "admin", "treatment": "accept"
    });
    let created = try_rpc(&client, &a.base, &token, "register_risk", risk).await.unwrap();
    assert_eq!(created["result"]["risk"]["ref"], "RISK-1", "{created}");

    let updates = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let base = if c % 2 == 0 { a.base.clone() } else { b.base.clone() };
            let (token, updates, conflicts) = (token.clone(), updates.clone(), conflicts.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut refs = Vec::new();
                for i in 0..ROUNDS {
                    let key = format!("c{c}-{i}");
                    let logged = try_rpc(&client, &base, &token, "log_nonconformity", finding(&key)).await.unwrap();
                    refs.push(logged["result"]["ref"].as_str().unwrap_or_else(|| panic!("{logged}")).to_owned());
                    let read = try_rpc(&client, &base, &token, "get_record", json!({"ref": "RISK-1"})).await.unwrap();
                    let version = read["result"]["record"]["version"].clone();
                    let update = json!({"ref": "RISK-1", "version": version, "treatment_plan": format!("plan {key}")});
                    let reply = try_rpc(&client, &base, &token, "update_risk", update).await.unwrap();
                    if reply["result"].is_object() {
                        updates.fetch_add(1, Ordering::Relaxed);
                    } else {
                        assert_eq!(reply["error"]["code"], -31009, "only a version conflict may refuse: {reply}");
                        conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                }
                refs
            })
        })
        .collect();
    let mut refs = Vec::new();
    for t in tasks {
        refs.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<u64> = refs.iter().map(|r| nc_number(r)).collect();
    assert_eq!(distinct.len(), CLIENTS * ROUNDS, "no duplicate reference");
    assert_eq!(distinct.last().copied(), Some((CLIENTS * ROUNDS) as u64), "no gap either");
    let updates = updates.load(Ordering::Relaxed);
    let risk = try_rpc(&client, &b.base, &token, "get_record", json!({"ref": "RISK-1"})).await.unwrap();
    assert_eq!(risk["result"]["record"]["version"], 1 + updates, "every acknowledged update counted: {risk}");
    let entries = assert_chain_intact(&client, &a).await;
    // Bootstrap, the risk, the findings and the updates: one chain, nothing missing.
    assert_eq!(entries as u64, 2 + (CLIENTS * ROUNDS) as u64 + updates);
    eprintln!(
        "two replicas on {backend}: {} findings with distinct refs, {updates} updates applied, {} refused as stale, \
         one chain of {entries} entries",
        refs.len(),
        conflicts.load(Ordering::Relaxed)
    );
    if let Some(url) = redis {
        // Every write's event published once, in commit order, although both replicas relay.
        let published = read_stream(&url, &stream, Duration::from_secs(30), |e| e.len() as i64 >= entries).await;
        let ids = event_ids(&published);
        assert_eq!(ids.len() as i64, entries, "one event per write, none published twice");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in commit order: {ids:?}");
        eprintln!("two replicas relaying on {backend}: {} events written, {} published", entries, ids.len());
    }
}

/// A Redis server of the test's own, with an append-only file so a restart keeps the stream.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn binary() -> Option<&'static str> {
        let found = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok();
        if !found {
            assert!(
                std::env::var_os("ISMS_REQUIRE_REDIS").is_none(),
                "ISMS_REQUIRE_REDIS is set but `redis-server` is not on PATH"
            );
            eprintln!("NOTICE: redis-server is not on PATH; skipping the Redis restart test");
        }
        found.then_some("redis-server")
    }

    fn start(port: u16, dir: &std::path::Path) -> OwnRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnRedis { child, port }
    }

    /// Stops Redis the way an operator would (SIGTERM), keeping its data directory.
    fn stop(mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn events_written_while_redis_restarts_all_reach_the_stream() {
    const WRITES: usize = 150;
    if OwnRedis::binary().is_none() {
        return;
    }
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let redis = OwnRedis::start(port, data.path());
    let url = redis.url();
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &["--redis-url", &url, "--redis-stream", "isms:faults"]);
    let client = reqwest::Client::new();
    let mut redis = Some(redis);
    let mut backlog_seen_while_down = None;
    for i in 0..WRITES {
        let reply =
            try_rpc(&client, &server.base, &server.admin_token, "log_nonconformity", finding(&format!("e{i}"))).await;
        assert!(reply.unwrap()["result"].is_object(), "writes go on whatever Redis does");
        if i == 50 {
            redis.take().expect("running").stop();
        }
        if i == 100 {
            let ready: Value = client.get(server.url("/readyz")).send().await.unwrap().json().await.unwrap();
            assert_eq!(ready["redis"], "unreachable", "{ready}");
            backlog_seen_while_down = ready["outbox_backlog"].as_i64();
            redis = Some(OwnRedis::start(port, data.path()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let written = WRITES + 1; // and the admin bootstrap
    let enough = |e: &[common::StreamEntry]| event_ids(e).iter().collect::<HashSet<_>>().len() >= written;
    let ids = event_ids(&read_stream(&url, "isms:faults", Duration::from_secs(30), enough).await);
    let distinct: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct, (1..=written as i64).collect(), "every event reached the stream");
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "in commit order");
    let ready: Value = client.get(server.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["outbox_backlog"], 0, "{ready}");
    eprintln!(
        "Redis restart: {written} events written, {} distinct published ({} entries, {} re-sent); \
         backlog while Redis was down: {}",
        distinct.len(),
        ids.len(),
        ids.len() - distinct.len(),
        backlog_seen_while_down.unwrap_or(-1)
    );
    drop(redis);
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of PostgreSQL that the test can cut and restore.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0);
        let (accepting, cuts) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let mut cut = cuts.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { addr, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_fast_while_the_database_is_unreachable_and_recover_after() {
    let Some(pg) = postgres_url() else { return };
    let db = TestDb::postgres(&pg).await;
    let rest = db.url.split_once("://").unwrap().1;
    let (authority, path) = rest.split_once('/').unwrap();
    let (userinfo, host) = authority.rsplit_once('@').map_or(("", authority), |(u, h)| (u, h));
    let proxy = Proxy::start(host.to_owned()).await;
    let at = if userinfo.is_empty() { String::new() } else { format!("{userinfo}@") };
    let proxied = format!("postgres://{at}{}/{path}", proxy.addr);
    let server = HttpServer::start(&proxied, &[]);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let token = server.admin_token.clone();
    let ok = try_rpc(&client, &server.base, &token, "log_nonconformity", finding("before")).await.unwrap();
    assert_eq!(ok["result"]["ref"], "NC-1", "{ok}");

    proxy.down();
    let started = Instant::now();
    let response = client
        .post(server.url("/rpc"))
        .bearer_auth(&token)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "log_nonconformity", "params": finding("during")}))
        .send()
        .await
        .expect("an answer, not a hang");
    let failed_after = started.elapsed();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("database is unavailable"), "{body}");
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<Value>().await.unwrap()["database"], "unreachable");

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    let recovered = loop {
        let reply = try_rpc(&client, &server.base, &token, "log_nonconformity", finding("after")).await;
        if let Ok(r) = reply.as_ref()
            && r["result"].is_object()
        {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "the server did not recover: {reply:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(recovered["result"]["ref"], "NC-2", "the refused call wrote nothing: {recovered}");
    assert_chain_intact(&client, &server).await;
    eprintln!("database unreachable: refused with 503 after {failed_after:?}; recovered by itself once restored");
    drop(server);
    db.cleanup().await;
}

/// PostgreSQL ends the server's sessions (as a restart or `pg_terminate_backend` does) while
/// they lie in the pool, used moments ago and so not pinged before reuse: a call that meets one
/// is answered "database unavailable" (retry), never an internal error, and each such
/// connection is replaced, so calls succeed again.
#[tokio::test]
async fn sessions_ended_by_postgres_answer_unavailable_then_recover() {
    let Some(pg) = postgres_url() else { return };
    let db = TestDb::postgres(&pg).await;
    let h = Harness::new(&db.url, &[("agent-1", Role::Agent)]).await;
    h.ok("query_controls", json!({"ref": "A.8.28"})).await;
    let name = db.url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    h.raw(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .await;
    let mut unavailable = 0;
    let recovered = loop {
        match h.call("query_controls", json!({"ref": "A.8.28"})).await {
            Ok(v) => break v,
            Err(Error::Unavailable) if unavailable < 10 => unavailable += 1,
            Err(e) => panic!("after {unavailable} unavailable answers: {e:?}"),
        }
    };
    assert_eq!(recovered["controls"][0]["ref"], "A.8.28");
    assert!(unavailable >= 1, "no call met an ended session, so nothing here checked how one is answered");
    eprintln!("sessions ended by PostgreSQL: {unavailable} call(s) answered unavailable, then recovered");
    h.app.store.close().await;
    db.cleanup().await;
}
