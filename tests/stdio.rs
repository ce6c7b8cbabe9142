//! The real binary over stdio, in both protocol eras, plus the CLI's actor commands.

mod common;

use common::{StdioServer, TestDb, add_actor, meta_2026, run_cli};
use serde_json::json;

fn tool_names(reply: &serde_json::Value) -> Vec<String> {
    reply["result"]["tools"].as_array().expect("tools").iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn legacy_handshake_then_log_find_and_verify() {
    let db = TestDb::sqlite();
    let mut s = StdioServer::start(&db.url, "admin");
    let init = s.initialize_legacy();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(init["result"]["serverInfo"]["name"], "isms");

    let tools = s.request("tools/list", json!({}));
    let names = tool_names(&tools);
    for expected in ["get_record", "verify_audit_trail", "log_nonconformity", "list_nonconformities", "query_controls"]
    {
        assert!(names.contains(&expected.to_owned()), "{expected} missing from {names:?}");
    }
    for tool in tools["result"]["tools"].as_array().unwrap() {
        assert_eq!(tool["outputSchema"]["type"], "object", "{}", tool["name"]);
        assert_eq!(tool["inputSchema"]["additionalProperties"], false, "{}", tool["name"]);
    }

    let logged = s.request(
        "tools/call",
        json!({"name": "log_nonconformity", "arguments": {
            "title": "Secret in log file", "description": "A token appeared in app.log",
            "severity": "major", "source": "self_report", "controls": ["A.8.12"]}}),
    );
    let result = &logged["result"];
    assert_eq!(result["isError"], false);
    assert_eq!(result["structuredContent"]["ref"], "NC-1");
    let text: serde_json::Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"], "text content is the same JSON");

    let listed = s.request("tools/call", json!({"name": "list_nonconformities", "arguments": {"control": "A.8.12"}}));
    assert_eq!(listed["result"]["structuredContent"]["items"][0]["ref"], "NC-1");
    let record = s.request("tools/call", json!({"name": "get_record", "arguments": {"ref": "NC-1"}}));
    assert_eq!(record["result"]["structuredContent"]["history"][0]["operation"], "log_nonconformity");
    let controls = s.request("tools/call", json!({"name": "query_controls", "arguments": {"ref": "A.8.28"}}));
    assert_eq!(controls["result"]["structuredContent"]["controls"][0]["title"], "Secure coding");
    let verify = s.request("tools/call", json!({"name": "verify_audit_trail", "arguments": {}}));
    assert_eq!(verify["result"]["structuredContent"]["intact"], true);
}

#[test]
fn stateless_2026_era_discovers_and_calls() {
    let db = TestDb::sqlite();
    let mut s = StdioServer::start(&db.url, "admin");
    let discover = s.request("server/discover", json!({"_meta": meta_2026()}));
    let versions = discover["result"]["supportedVersions"].to_string();
    assert!(versions.contains("2026-07-28") && versions.contains("2025-11-25"), "{discover}");
    let tools = s.request("tools/list", json!({"_meta": meta_2026()}));
    assert_eq!(tool_names(&tools).len(), isms::operations::Registry::new().all().len(), "{tools}");
    let call = s.request(
        "tools/call",
        json!({"_meta": meta_2026(), "name": "query_controls", "arguments": {"text": "secure coding"}}),
    );
    assert_eq!(call["result"]["structuredContent"]["controls"][0]["ref"], "A.8.28", "{call}");
    assert_eq!(call["result"]["resultType"], "complete");
}

#[test]
fn bad_input_gets_the_right_kind_of_error_and_the_server_lives_on() {
    let db = TestDb::sqlite();
    let mut s = StdioServer::start(&db.url, "admin");
    s.initialize_legacy();

    // Malformed JSON: a JSON-RPC parse error (or the line is dropped); the server keeps serving.
    s.send_raw("{this is not json");
    // Unknown tool: protocol error.
    let unknown = s.request("tools/call", json!({"name": "delete_everything", "arguments": {}}));
    assert!(unknown["error"]["message"].as_str().unwrap().contains("unknown tool"), "{unknown}");
    // Wrong type, missing field, unknown control: isError results naming the field.
    for (args, needle) in [
        (json!({"title": 1, "description": "d", "severity": "minor", "source": "incident"}), "title"),
        (json!({"description": "d", "severity": "minor", "source": "incident"}), "missing field `title`"),
        (
            json!({"title": "t", "description": "d", "severity": "minor", "source": "incident", "controls": ["A.8.99"]}),
            "A.8.99",
        ),
    ] {
        let r = s.request("tools/call", json!({"name": "log_nonconformity", "arguments": args}));
        assert_eq!(r["result"]["isError"], true, "{r}");
        let text = r["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(needle), "`{text}` should mention {needle}");
    }
    let ok = s.request("tools/call", json!({"name": "list_nonconformities", "arguments": {}}));
    assert_eq!(ok["result"]["structuredContent"]["items"], json!([]), "nothing was written");
}

#[test]
fn role_decides_the_tool_list_and_calls() {
    let db = TestDb::sqlite();
    run_cli(&db.url, &["migrate"]);
    add_actor(&db.url, "reader", "viewer");
    let mut s = StdioServer::start(&db.url, "reader");
    s.initialize_legacy();
    let names = tool_names(&s.request("tools/list", json!({})));
    assert!(!names.contains(&"log_nonconformity".to_owned()), "{names:?}");
    assert!(names.contains(&"get_record".to_owned()));
    let r = s.request(
        "tools/call",
        json!({"name": "log_nonconformity", "arguments": {"title": "t", "description": "d", "severity": "minor", "source": "incident"}}),
    );
    assert_eq!(r["result"]["isError"], true);
    assert!(r["result"]["content"][0]["text"].as_str().unwrap().contains("forbidden"), "{r}");
}

/// A database whose recorded migrations this build does not have is refused at start, once,
/// with what the operator can do about it.
#[test]
fn an_edited_migration_stops_the_start_with_what_to_do() {
    let db = TestDb::sqlite();
    run_cli(&db.url, &["migrate"]);
    let edit = "UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 3";
    tokio::runtime::Runtime::new().unwrap().block_on(common::raw_sql(&db.url, edit));
    let (code, _, err) = run_cli(&db.url, &["actor", "list"]);
    assert_ne!(code, 0);
    let refused = "migration 3 was previously applied but has been modified";
    assert_eq!(err.matches(refused).count(), 1, "{err}");
    assert!(err.contains("run that build, or restore the database from a backup"), "{err}");
}

#[test]
fn cli_actor_commands_and_unknown_stdio_actor() {
    let db = TestDb::sqlite();
    let token = add_actor(&db.url, "claude-1", "agent");
    assert!(token.starts_with("isms_"), "{token}");
    let (code, out, _) = run_cli(&db.url, &["actor", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("claude-1\tagent"), "{out}");
    let (code, _, err) = run_cli(&db.url, &["actor", "add", "claude-1", "--role", "agent"]);
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run_cli(&db.url, &["actor", "add", "x", "--role", "root"]);
    assert_ne!(code, 0);
    assert!(err.contains("not a role"), "{err}");
    let (code, out, _) = run_cli(&db.url, &["actor", "token", "claude-1"]);
    assert_eq!(code, 0);
    assert_ne!(out.trim(), token, "a new token each time");
    let (code, _, err) = run_cli(&db.url, &["stdio", "--actor", "nobody"]);
    assert_ne!(code, 0);
    assert!(err.contains("`nobody` is not registered") && err.contains("claude-1"), "{err}");
    let (code, _, err) = run_cli(&db.url, &["stdio"]);
    assert_ne!(code, 0);
    assert!(err.contains("--actor"), "{err}");
}

#[test]
fn records_are_resources_and_root_cause_analysis_is_a_prompt() {
    let db = TestDb::sqlite();
    let mut s = StdioServer::start(&db.url, "admin");
    s.initialize_legacy();
    s.request(
        "tools/call",
        json!({"name": "log_nonconformity", "arguments": {
            "title": "Backup restore never tested", "description": "No restore test on record for Q3",
            "severity": "minor", "source": "internal_audit", "controls": ["A.8.13"]}}),
    );
    let templates = s.request("resources/templates/list", json!({}));
    assert_eq!(templates["result"]["resourceTemplates"][0]["uriTemplate"], "isms://records/{ref}", "{templates}");
    let read = s.request("resources/read", json!({"uri": "isms://records/NC-1"}));
    let text = read["result"]["contents"][0]["text"].as_str().expect("text contents");
    let record: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(record["record"]["title"], "Backup restore never tested");
    assert_eq!(record["history"][0]["operation"], "log_nonconformity");
    let missing = s.request("resources/read", json!({"uri": "isms://records/NC-9"}));
    assert!(missing["error"]["message"].as_str().unwrap().contains("NC-9"), "{missing}");
    assert_eq!(missing["error"]["data"]["uri"], "isms://records/NC-9", "{missing}");

    let prompts = s.request("prompts/list", json!({}));
    assert_eq!(prompts["result"]["prompts"][0]["name"], "root_cause_analysis");
    let prompt = s.request("prompts/get", json!({"name": "root_cause_analysis", "arguments": {"ref": "NC-1"}}));
    let text = prompt["result"]["messages"][0]["content"]["text"].as_str().expect("prompt text");
    assert!(text.contains("Backup restore never tested") && text.contains("record_nonconformity_analysis"), "{text}");
    assert!(text.contains("version 1"), "{text}");
    let bad = s.request("prompts/get", json!({"name": "root_cause_analysis", "arguments": {}}));
    assert!(bad["error"]["message"].as_str().unwrap().contains("ref"), "{bad}");
}
