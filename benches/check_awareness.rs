//! Server-side time of `check_awareness` (issue 6): thousands of agents, each with
//! acknowledgements of several policies, one of which has a newer version; the operation is
//! called through the registry exactly as the MCP and JSON-RPC fronts call it.
//!
//! Run: `cargo bench --bench check_awareness` (SQLite in a temporary file; set
//! `ISMS_BENCH_DATABASE_URL` to a PostgreSQL database URL to measure that instead).

use std::sync::Arc;
use std::time::Instant;

use isms::domain::actor::{Actor, ActorKind, ActorName, Role};
use isms::domain::awareness::content_hash;
use isms::operations::{App, Registry};
use isms::store::{NewActor, Store};
use serde_json::json;

const AGENTS: usize = 2000;
const POLICIES: usize = 3;
const CALLS: usize = 5000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = std::env::var("ISMS_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()));
    let store = Store::open(&url).await.expect("open store");
    let app = Arc::new(App::new(store.clone()));
    let registry = Registry::new();
    let call = |actor: Actor, tool: &'static str, args: serde_json::Value| {
        let app = app.clone();
        let op = registry.get(tool).expect("tool");
        async move { op.call(app, actor, args).await.expect(tool) }
    };

    let manager = Actor { name: "bench-manager".into(), kind: ActorKind::Human, role: Role::IsmsManager };
    store
        .add_actor(
            "bench",
            &NewActor {
                name: ActorName::parse(&manager.name).unwrap(),
                kind: ActorKind::Human,
                role: Role::IsmsManager,
                model: None,
                model_version: None,
            },
        )
        .await
        .unwrap();
    let texts: Vec<String> = (0..POLICIES).map(|p| format!("Policy {p}, version 1.")).collect();
    for (p, text) in texts.iter().enumerate() {
        call(manager.clone(), "publish_policy", json!({"policy_id": format!("policy-{p}"), "version": "1", "title": format!("Policy {p}"), "content": text})).await;
    }
    let seeding = Instant::now();
    let mut agents = Vec::with_capacity(AGENTS);
    for i in 0..AGENTS {
        let name = format!("agent-{i:05}");
        store
            .add_actor(
                "bench",
                &NewActor {
                    name: ActorName::parse(&name).unwrap(),
                    kind: ActorKind::Agent,
                    role: Role::Agent,
                    model: Some("model".into()),
                    model_version: Some("1".into()),
                },
            )
            .await
            .unwrap();
        let agent = Actor { name, kind: ActorKind::Agent, role: Role::Agent };
        for (p, text) in texts.iter().enumerate() {
            call(
                agent.clone(),
                "acknowledge_policy",
                json!({"policy_id": format!("policy-{p}"), "version": "1", "sha256": content_hash(text)}),
            )
            .await;
        }
        agents.push(agent);
    }
    // A newer version of one policy: every agent's check now has something pending.
    call(
        manager.clone(),
        "publish_policy",
        json!({"policy_id": "policy-0", "version": "2", "title": "Policy 0", "content": "Policy 0, version 2."}),
    )
    .await;
    let seeded = seeding.elapsed();

    let mut times = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let agent = agents[(i * 7919) % AGENTS].clone();
        let start = Instant::now();
        let out = call(agent, "check_awareness", json!({})).await;
        times.push(start.elapsed().as_secs_f64() * 1e6);
        assert_eq!(out["current"], false);
    }
    times.sort_by(f64::total_cmp);
    let backend = if url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
    println!(
        "check_awareness, {backend}: {AGENTS} agents, {} acknowledgements, {POLICIES} policies (one with a new version)",
        AGENTS * POLICIES
    );
    println!("seeded in {:.1} s; {CALLS} calls through the registry:", seeded.as_secs_f64());
    println!("| p50 µs | p90 µs | p99 µs | max µs |");
    println!("|---|---|---|---|");
    println!(
        "| {:.0} | {:.0} | {:.0} | {:.0} |",
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        percentile(&times, 0.99),
        times[times.len() - 1]
    );
    store.close().await;
}
