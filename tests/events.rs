//! The outbox relay against a real Redis: every write's event reaches the stream with its
//! outbox id; with Redis unreachable, writes still succeed and the events wait.

mod common;

use std::time::Duration;

use common::{HttpServer, TestDb, event_ids, read_stream, redis_url, rpc, stream_field, unique};
use serde_json::{Value, json};

async fn log(client: &reqwest::Client, server: &HttpServer, title: &str) -> Value {
    let params = json!({"title": title, "description": "relay test", "severity": "minor", "source": "monitoring"});
    rpc(client, server, &server.admin_token, "log_nonconformity", params).await
}

#[tokio::test]
async fn events_reach_the_redis_stream_with_their_ids() {
    let Some(redis) = redis_url() else { return };
    let stream = unique("isms:test:events");
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &["--redis-url", &redis, "--redis-stream", &stream]);
    let client = reqwest::Client::new();
    for i in 0..3 {
        let r = log(&client, &server, &format!("event {i}")).await;
        assert!(r["result"].is_object(), "{r}");
    }
    let entries = read_stream(&redis, &stream, Duration::from_secs(15), |e| e.len() >= 4).await;
    assert_eq!(entries.len(), 4, "the admin bootstrap and three nonconformities: {entries:?}");
    let ids = event_ids(&entries);
    assert_eq!(ids, [1, 2, 3, 4], "published once each, in commit order");
    assert_eq!(stream_field(&entries[0], "type"), "actor.added");
    for (i, e) in entries[1..].iter().enumerate() {
        assert_eq!(stream_field(e, "type"), "nonconformity.logged");
        assert_eq!(stream_field(e, "ref"), format!("NC-{}", i + 1));
        let payload: Value = serde_json::from_str(&stream_field(e, "payload")).unwrap();
        assert_eq!(payload["title"], format!("event {i}"));
    }
}

#[tokio::test]
async fn writes_succeed_while_redis_is_unreachable() {
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &["--redis-url", "redis://127.0.0.1:1"]);
    let client = reqwest::Client::new();
    let r = log(&client, &server, "redis is down").await;
    assert_eq!(r["result"]["ref"], "NC-1", "{r}");
    drop(server);
    let store = isms::store::Store::open(&db.url).await.unwrap();
    let pending = store.claim_pending(100).await.unwrap().expect("no other relay").events;
    assert_eq!(pending.len(), 2, "both events wait in the outbox");
    assert_eq!(pending[1].record_ref, "NC-1");
    store.close().await;
}

/// Events a relay published without marking them (a lost reply, a failed mark, a kill in
/// between) are marked by the next round, not sent again: the stream keeps commit order.
#[tokio::test]
async fn events_already_in_the_stream_are_not_sent_again() {
    let Some(redis) = redis_url() else { return };
    let stream = unique("isms:test:resend");
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &["--redis-url", "redis://127.0.0.1:1"]);
    let client = reqwest::Client::new();
    for i in 0..2 {
        assert!(log(&client, &server, &format!("pending {i}")).await["result"].is_object());
    }
    let token = server.admin_token.clone();
    drop(server);
    // A relay published events 1 and 2, then stopped before marking them.
    let store = isms::store::Store::open(&db.url).await.unwrap();
    let pending = store.claim_pending(2).await.unwrap().expect("no other relay").events;
    drop(store);
    let mut conn = redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    for e in &pending {
        let mut add = redis::cmd("XADD");
        add.arg(&stream).arg("*").arg("id").arg(e.id).arg("ref").arg(&e.record_ref).arg("at").arg(&e.at);
        let _: String = add.query_async(&mut conn).await.unwrap();
    }
    let server = HttpServer::restart(&db.url, &["--redis-url", &redis, "--redis-stream", &stream], &token);
    assert!(log(&client, &server, "after the restart").await["result"].is_object());
    let entries = read_stream(&redis, &stream, Duration::from_secs(15), |e| event_ids(e).contains(&4)).await;
    assert_eq!(event_ids(&entries), [1, 2, 3, 4], "each event once, in commit order");
}

/// A stream that another database used before (its newest entry is not one of this outbox's
/// events) does not make the relay skip anything.
#[tokio::test]
async fn a_stream_reused_by_another_database_skips_nothing() {
    let Some(redis) = redis_url() else { return };
    let stream = unique("isms:test:reused");
    let mut conn = redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let mut add = redis::cmd("XADD");
    add.arg(&stream).arg("*").arg("id").arg(7).arg("ref").arg("NC-99").arg("at").arg("2020-01-01T00:00:00Z");
    let _: String = add.query_async(&mut conn).await.unwrap();
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &["--redis-url", &redis, "--redis-stream", &stream]);
    let client = reqwest::Client::new();
    for i in 0..7 {
        assert!(log(&client, &server, &format!("new database {i}")).await["result"].is_object());
    }
    let entries = read_stream(&redis, &stream, Duration::from_secs(15), |e| e.len() >= 9).await;
    assert_eq!(event_ids(&entries), [7, 1, 2, 3, 4, 5, 6, 7, 8], "the old entry, then every event of this database");
}
