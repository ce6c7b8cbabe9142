//! The real binary over HTTP: MCP Streamable HTTP at /mcp (both protocol eras), JSON-RPC at
//! /rpc, and the guards in front of them (bearer token, Origin, body size).

mod common;

use common::{HttpServer, TestDb, add_actor, rpc};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// Reads a JSON-RPC message from a JSON or SSE response body.
fn message(body: &str) -> Value {
    if let Ok(v) = serde_json::from_str(body) {
        return v;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC message in {body}"))
}

fn mcp_post(client: &Client, server: &HttpServer, token: &str, version: &str) -> reqwest::RequestBuilder {
    client
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", version)
}

#[tokio::test]
async fn guards_answer_with_the_right_status() {
    let db = TestDb::sqlite();
    // A small body limit, so an oversized request still fits the socket buffers and the client
    // reads the 413 instead of racing the server's close.
    let server =
        HttpServer::start(&db.url, &["--allowed-origins", "http://localhost:6274", "--max-body-bytes", "4096"]);
    // No connection reuse: the server closes a connection after refusing an oversized body,
    // and a pooled client could otherwise send the next request into that closed socket.
    let client = Client::builder().pool_max_idle_per_host(0).build().unwrap();

    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    for path in ["/mcp", "/rpc"] {
        let r = client.post(server.url(path)).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} without a token");
        assert!(r.headers().get("www-authenticate").is_some());
        let r = client.post(server.url(path)).bearer_auth("isms_wrong").json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} with a wrong token");
        let r = client
            .post(server.url(path))
            .bearer_auth(&server.admin_token)
            .header("Origin", "http://evil.example")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} from a foreign Origin");
    }
    let allowed = client
        .post(server.url("/rpc"))
        .bearer_auth(&server.admin_token)
        .header("Origin", "http://localhost:6274")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "query_controls", "params": {"ref": "A.5.1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);

    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"log_nonconformity","params":{{"title":"{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    for path in ["/mcp", "/rpc"] {
        let r = client
            .post(server.url(path))
            .bearer_auth(&server.admin_token)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path} with a 16 KiB body over a 4 KiB limit");
    }
    let list = rpc(&client, &server, &server.admin_token, "list_nonconformities", json!({})).await;
    assert_eq!(list["result"]["items"], json!([]), "nothing was written");
}

#[tokio::test]
async fn json_rpc_methods_results_and_errors() {
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &[]);
    let client = Client::new();
    let token = server.admin_token.clone();

    let logged = rpc(
        &client,
        &server,
        &token,
        "log_nonconformity",
        json!({"title": "Unreviewed merge", "description": "PR merged without review", "severity": "minor", "source": "monitoring", "controls": ["A.8.32"]}),
    )
    .await;
    assert_eq!(logged["result"]["ref"], "NC-1", "{logged}");
    let record = rpc(&client, &server, &token, "get_record", json!({"ref": "NC-1"})).await;
    assert_eq!(record["result"]["history"][0]["actor"], "admin");

    let bad = rpc(&client, &server, &token, "log_nonconformity", json!({"title": "t"})).await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("missing field"), "{bad}");
    let missing = rpc(&client, &server, &token, "get_record", json!({"ref": "NC-99"})).await;
    assert_eq!(missing["error"]["code"], -31004, "{missing}");
    let unknown = rpc(&client, &server, &token, "drop_database", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    let positional = rpc(&client, &server, &token, "get_record", json!(["NC-1"])).await;
    assert_eq!(positional["error"]["code"], -32602, "{positional}");
    let malformed: Value = client
        .post(server.url("/rpc"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\"")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(malformed["error"]["code"], -32700, "{malformed}");

    let viewer = add_actor(&db.url, "reader", "viewer");
    let refused = rpc(
        &client,
        &server,
        &viewer,
        "log_nonconformity",
        json!({"title": "t", "description": "d", "severity": "minor", "source": "incident"}),
    )
    .await;
    assert_eq!(refused["error"]["code"], -31003, "{refused}");
    let read = rpc(&client, &server, &viewer, "verify_audit_trail", json!({})).await;
    assert_eq!(read["result"]["intact"], true, "{read}");
}

#[tokio::test]
async fn mcp_over_http_in_both_eras() {
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &[]);
    let client = Client::new();
    let token = server.admin_token.clone();

    // 2026-07-28: stateless, per-request _meta and the Mcp-Method / Mcp-Name headers.
    let r = mcp_post(&client, &server, &token, "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "log_nonconformity")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "_meta": common::meta_2026(), "name": "log_nonconformity",
            "arguments": {"title": "No MFA on admin", "description": "Admin console lacks MFA", "severity": "major", "source": "external_audit", "controls": ["A.8.5"]}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let reply = message(&r.text().await.unwrap());
    assert_eq!(reply["result"]["structuredContent"]["ref"], "NC-1", "{reply}");

    // 2025-11-25: initialize, session id, then calls in the session.
    let r = mcp_post(&client, &server, &token, "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "tests", "version": "1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let session = r.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_owned());
    let init = message(&r.text().await.unwrap());
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
    let with_session = |b: reqwest::RequestBuilder| match &session {
        Some(s) => b.header("Mcp-Session-Id", s),
        None => b,
    };
    let r = with_session(mcp_post(&client, &server, &token, "2025-11-25"))
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = with_session(mcp_post(&client, &server, &token, "2025-11-25"))
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_record", "arguments": {"ref": "NC-1"}}}))
        .send()
        .await
        .unwrap();
    let reply = message(&r.text().await.unwrap());
    assert_eq!(reply["result"]["structuredContent"]["record"]["title"], "No MFA on admin", "{reply}");
    let r = with_session(mcp_post(&client, &server, &token, "2025-11-25"))
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_record", "arguments": {"ref": "bogus"}}}))
        .send()
        .await
        .unwrap();
    let reply = message(&r.text().await.unwrap());
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    assert!(reply["result"]["content"][0]["text"].as_str().unwrap().contains("NC-12"), "the message shows the format");
}

#[tokio::test]
async fn the_binary_serves_from_postgresql_too() {
    let Some(pg) = common::postgres_url() else { return };
    let db = TestDb::postgres(&pg).await;
    {
        let server = HttpServer::start(&db.url, &[]);
        let client = Client::new();
        let token = server.admin_token.clone();
        let logged = rpc(
            &client,
            &server,
            &token,
            "log_nonconformity",
            json!({"title": "Restore untested", "description": "No restore test in Q3", "severity": "major", "source": "internal_audit", "controls": ["A.8.13"]}),
        )
        .await;
        assert_eq!(logged["result"]["ref"], "NC-1", "{logged}");
        let listed = rpc(&client, &server, &token, "list_nonconformities", json!({"control": "A.8.13"})).await;
        assert_eq!(listed["result"]["items"][0]["ref"], "NC-1");
        let record = rpc(&client, &server, &token, "get_record", json!({"ref": "NC-1"})).await;
        assert_eq!(record["result"]["history"].as_array().unwrap().len(), 1);
        let verified = rpc(&client, &server, &token, "verify_audit_trail", json!({})).await;
        assert_eq!(verified["result"]["intact"], true);
        assert_eq!(verified["result"]["entries_checked"], 2);
    }
    db.cleanup().await;
}

#[tokio::test]
async fn revoked_tokens_and_retired_actors_are_refused() {
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &[]);
    let client = Client::new();
    let first = add_actor(&db.url, "claude-2", "agent");
    let (code, second, _) = common::run_cli(&db.url, &["actor", "token", "claude-2"]);
    assert_eq!(code, 0);
    let second = second.trim().to_owned();
    let ok = rpc(&client, &server, &first, "check_awareness", json!({})).await;
    assert_eq!(ok["result"]["current"], true, "{ok}");

    let (_, listed, _) = common::run_cli(&db.url, &["actor", "tokens", "claude-2"]);
    let ids: Vec<&str> = listed.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(!listed.contains(&first) && !listed.contains(&second), "tokens are never shown again");
    let first_id = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(first.as_bytes()))[..12].to_owned()
    };
    let (code, _, err) = common::run_cli(&db.url, &["actor", "revoke", &first_id]);
    assert_eq!(code, 0, "{err}");
    let r = client.post(server.url("/rpc")).bearer_auth(&first).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a revoked token");
    assert_eq!(rpc(&client, &server, &second, "check_awareness", json!({})).await["result"]["actor"], "claude-2");

    let (code, _, _) = common::run_cli(&db.url, &["actor", "retire", "claude-2"]);
    assert_eq!(code, 0);
    let r = client.post(server.url("/rpc")).bearer_auth(&second).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a retired actor's token");
    let (_, listed, _) = common::run_cli(&db.url, &["actor", "list"]);
    assert!(listed.lines().any(|l| l.starts_with("claude-2\tagent\tagent\tretired")), "{listed}");
}

#[tokio::test]
async fn hosts_batches_and_token_schemes_are_checked() {
    let db = TestDb::sqlite();
    let server = HttpServer::start(&db.url, &[]);
    let client = Client::new();
    let token = &server.admin_token;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "verify_audit_trail", "params": {}});

    // DNS rebinding: a page on another name that resolves to 127.0.0.1 is refused everywhere.
    for path in ["/rpc", "/mcp", "/healthz", "/readyz", "/metrics"] {
        let r = client.post(server.url(path)).header("host", "evil.example").bearer_auth(token).json(&call);
        let status = r.send().await.unwrap().status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} with a foreign Host");
    }
    let port = server.base.rsplit(':').next().unwrap();
    let r = client.post(server.url("/rpc")).header("host", format!("localhost:{port}")).bearer_auth(token).json(&call);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK, "localhost with its port passes");

    // The auth scheme is case-insensitive (RFC 6750); refusals are counted.
    let r = client.post(server.url("/rpc")).header("authorization", format!("bearer {token}")).json(&call);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
    let r = client.post(server.url("/rpc")).bearer_auth("isms_wrong").json(&call);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let metrics = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"isms_http_refused_total{reason="invalid_token"} 1"#), "{metrics}");

    // Batches are bounded (default 50 calls).
    let batch = |n: usize| {
        Value::Array((0..n).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "verify_audit_trail"})).collect())
    };
    let ok: Value =
        client.post(server.url("/rpc")).bearer_auth(token).json(&batch(50)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ok.as_array().map(Vec::len), Some(50), "{ok}");
    let refused: Value =
        client.post(server.url("/rpc")).bearer_auth(token).json(&batch(51)).send().await.unwrap().json().await.unwrap();
    assert!(refused["error"]["message"].as_str().unwrap_or_default().contains("atch"), "{refused}");
}

#[cfg(unix)]
#[test]
fn a_new_sqlite_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested").join("isms.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let (code, _, err) = common::run_cli(&url, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "database file mode {mode:o}");
}
