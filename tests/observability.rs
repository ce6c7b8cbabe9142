//! Live events over a JSON-RPC WebSocket on `/rpc`, and the probes `/metrics`, `/readyz`.

mod common;

use std::time::Duration;

use common::{HttpServer, TestDb, add_actor, rpc};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &HttpServer, token: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = server.url("/rpc").replacen("http://", "ws://", 1).into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
}

async fn send(socket: &mut Socket, id: u64, method: &str, params: Value) {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    socket.send(Message::text(body.to_string())).await.unwrap();
}

async fn receive(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn log(client: &reqwest::Client, server: &HttpServer, title: &str) -> Value {
    let params = json!({"title": title, "description": "live", "severity": "minor", "source": "monitoring"});
    let r = rpc(client, server, &server.admin_token, "log_nonconformity", params).await;
    assert!(r["result"].is_object(), "{r}");
    r["result"].clone()
}

#[tokio::test]
async fn subscribers_get_the_events_they_filter_for_in_commit_order() {
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &[]);
    let client = reqwest::Client::new();
    let mut socket = connect(&server, &server.admin_token).await.unwrap();
    send(&mut socket, 1, "subscribe_events", json!({"types": ["nonconformity.*"]})).await;
    let accepted = receive(&mut socket).await;
    let subscription = accepted["result"].clone();
    assert!(!subscription.is_null(), "{accepted}");

    log(&client, &server, "first").await;
    // A write by another process (the CLI) is an `actor.added` event: filtered out.
    add_actor(&db.url, "eve", "agent");
    log(&client, &server, "second").await;

    let mut seen = Vec::new();
    for _ in 0..2 {
        let n = receive(&mut socket).await;
        assert_eq!(n["method"], "isms_event", "{n}");
        assert_eq!(n["params"]["subscription"], subscription);
        seen.push(n["params"]["result"].clone());
    }
    assert_eq!(seen[0]["type"], "nonconformity.logged");
    assert_eq!(seen[0]["ref"], "NC-1");
    assert_eq!(seen[0]["payload"]["title"], "first");
    assert_eq!(seen[1]["ref"], "NC-2");
    assert!(seen[1]["id"].as_i64() > seen[0]["id"].as_i64(), "ids rise in commit order: {seen:?}");

    // Resuming after the first event replays the rest, the other process's write included.
    let mut resumed = connect(&server, &server.admin_token).await.unwrap();
    send(&mut resumed, 1, "subscribe_events", json!({"after": seen[0]["id"]})).await;
    assert!(!receive(&mut resumed).await["result"].is_null());
    let replayed: Vec<Value> = {
        let mut v = Vec::new();
        for _ in 0..2 {
            v.push(receive(&mut resumed).await["params"]["result"].clone());
        }
        v
    };
    assert_eq!(replayed[0]["type"], "actor.added");
    assert_eq!(replayed[0]["ref"], "actor:eve");
    assert_eq!(replayed[1]["ref"], "NC-2");
    // And then follows live.
    log(&client, &server, "third").await;
    assert_eq!(receive(&mut resumed).await["params"]["result"]["ref"], "NC-3");
}

#[tokio::test]
async fn subscriptions_need_a_token_and_a_valid_filter() {
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &[]);
    let refused = connect(&server, "isms_not-a-token").await.unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");

    let mut socket = connect(&server, &server.admin_token).await.unwrap();
    send(&mut socket, 1, "subscribe_events", json!({"types": ["DROP TABLE outbox"]})).await;
    let r = receive(&mut socket).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("not an event type"), "{r}");
    send(&mut socket, 2, "subscribe_events", json!({"kinds": []})).await;
    assert_eq!(receive(&mut socket).await["error"]["code"], -32602);
    // Ordinary calls work over the same socket.
    send(&mut socket, 3, "list_nonconformities", json!({})).await;
    let r = receive(&mut socket).await;
    assert!(r["result"].is_object(), "{r}");
}

#[tokio::test]
async fn metrics_count_calls_per_operation_and_outcome() {
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &[]);
    let client = reqwest::Client::new();
    log(&client, &server, "counted").await;
    let missing = rpc(&client, &server, &server.admin_token, "get_record", json!({"ref": "NC-999"})).await;
    assert_eq!(missing["error"]["code"], -31004, "{missing}");
    let response = client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for line in [
        r#"isms_operation_calls_total{operation="log_nonconformity",outcome="ok"} 1"#,
        r#"isms_operation_calls_total{operation="get_record",outcome="not_found"} 1"#,
        r#"isms_operation_duration_seconds_count{operation="log_nonconformity"} 1"#,
        // No Redis configured: the admin bootstrap and the nonconformity wait in the outbox.
        "isms_outbox_backlog 2",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[tokio::test]
async fn readiness_reports_the_database_redis_and_the_backlog() {
    let db = TestDb::sqlite();
    let ready = HttpServer::start(&db.url, &[]);
    let client = reqwest::Client::new();
    let r = client.get(ready.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"status": "ready", "database": "ok", "redis": "not configured", "outbox_backlog": 1}));
    let token = ready.admin_token.clone();
    drop(ready);

    let no_redis = HttpServer::restart(&db.url, &["--redis-url", "redis://127.0.0.1:1"], &token);
    let r = client.get(no_redis.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["redis"], "unreachable", "{body}");
    assert_eq!(body["database"], "ok", "{body}");
    // Liveness does not depend on Redis.
    assert_eq!(client.get(no_redis.url("/healthz")).send().await.unwrap().status(), 200);
}
