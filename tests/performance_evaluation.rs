//! Objectives and measurement (6.2, 9.1) and internal audits (9.2) on SQLite and PostgreSQL:
//! recorded and computed figures against their targets, audit findings becoming
//! nonconformities, and auditors refused on their own work.

mod common;

use common::{Harness, TestDb, ok, postgres_url, refused};
use isms::domain::actor::Role;
use isms::domain::awareness::content_hash;
use isms::error::Error;
use serde_json::json;

const ACTORS: &[(&str, Role)] =
    &[("agent-1", Role::Agent), ("bob", Role::Agent), ("julian", Role::IsmsManager), ("amber", Role::Auditor)];

async fn suite(url: &str) {
    let h = Harness::new(url, ACTORS).await;

    // The seed's objectives: one computed from awareness records, one recorded from scans.
    let compliance = json!({"statement": "100% agent compliance with the constitution", "metric": "agents with current acknowledgements", "target": 100, "comparator": "at_least", "unit": "%", "frequency": "continuous", "owner": "julian", "computed": "agent_awareness_share"});
    let e = refused(&h, "agent-1", "define_objective", compliance.clone(), "isms_manager").await;
    assert!(matches!(e, Error::Forbidden { .. }));
    let o1 = ok(&h, "julian", "define_objective", compliance).await;
    assert_eq!(o1["objective"]["ref"], "OBJ-1");
    ok(&h, "julian", "define_objective", json!({"statement": "Zero critical vulnerabilities in production > 48 hours", "metric": "critical vulnerabilities open > 48h", "target": 0, "comparator": "at_most", "unit": "count", "frequency": "weekly", "owner": "bob"})).await;
    refused(&h, "julian", "define_objective", json!({"statement": "s", "metric": "m", "target": 1, "comparator": "at_least", "unit": "%", "frequency": "weekly", "owner": "ghost"}), "ghost").await;

    let text = "Protect client data.";
    ok(
        &h,
        "julian",
        "publish_policy",
        json!({"policy_id": "constitution", "version": "1", "title": "Constitution", "content": text}),
    )
    .await;
    ok(
        &h,
        "agent-1",
        "acknowledge_policy",
        json!({"policy_id": "constitution", "version": "1", "sha256": content_hash(text)}),
    )
    .await;
    refused(&h, "agent-1", "record_measurement", json!({"ref": "OBJ-1", "value": 100}), "computed").await;
    let m1 = ok(&h, "agent-1", "record_measurement", json!({"ref": "OBJ-1", "period": "2026-11"})).await;
    let last = &m1["objective"]["measurements"][0];
    assert_eq!(last["value"], 25.0, "1 of 4 agents is current");
    assert_eq!(last["met"], false);
    assert_eq!(last["source"], "computed: agent_awareness_share");

    refused(&h, "bob", "record_measurement", json!({"ref": "OBJ-2"}), "value").await;
    ok(&h, "bob", "record_measurement", json!({"ref": "OBJ-2", "value": 0, "period": "2026-W47", "source": "trivy"}))
        .await;
    let m2 = ok(
        &h,
        "bob",
        "record_measurement",
        json!({"ref": "OBJ-2", "value": 2, "period": "2026-W48", "source": "trivy"}),
    )
    .await;
    assert_eq!(m2["objective"]["met"], false);
    let record = ok(&h, "amber", "get_record", json!({"ref": "OBJ-2"})).await;
    assert_eq!(record["record"]["measurements"].as_array().unwrap().len(), 2);
    assert_eq!(record["history"].as_array().unwrap().len(), 3);

    // Major actions done on time, computed from the 10.2 records.
    ok(&h, "julian", "define_objective", json!({"statement": "Major nonconformities' actions done within 90 days", "metric": "actions on time", "target": 100, "comparator": "at_least", "unit": "%", "frequency": "quarterly", "owner": "julian", "computed": "major_actions_on_time"})).await;
    ok(&h, "agent-1", "log_nonconformity", json!({"title": "No MFA", "description": "Admin console lacks MFA", "severity": "major", "source": "external_audit", "correction": "Console closed"})).await;
    ok(
        &h,
        "agent-1",
        "record_nonconformity_analysis",
        json!({"ref": "NC-1", "version": 1, "method": "5 whys", "root_cause": "No SSO", "action_needed": true}),
    )
    .await;
    ok(
        &h,
        "agent-1",
        "plan_corrective_action",
        json!({"ref": "NC-1", "version": 2, "description": "Enable MFA", "owner": "bob"}),
    )
    .await;
    ok(
        &h,
        "agent-1",
        "plan_corrective_action",
        json!({"ref": "NC-1", "version": 3, "description": "Review all consoles", "owner": "bob"}),
    )
    .await;
    ok(
        &h,
        "bob",
        "update_corrective_action",
        json!({"ref": "CA-1", "version": 1, "status": "done", "evidence": ["sso/config"]}),
    )
    .await;
    h.raw("UPDATE corrective_actions SET due_date = '2001-01-01' WHERE number = 2").await;
    let on_time = ok(&h, "julian", "record_measurement", json!({"ref": "OBJ-3"})).await;
    assert_eq!(on_time["objective"]["measurements"][0]["value"], 50.0, "CA-1 on time, CA-2 overdue");

    // Internal audit: planned, then performed by someone independent; findings become NCs.
    ok(&h, "julian", "update_soa_entry", json!({"control": "A.8.32", "version": 0, "applicable": true, "justification": "Agents change systems daily", "owner": "bob"})).await;
    let e = refused(
        &h,
        "agent-1",
        "record_audit",
        json!({"scope": {"processes": ["change management"]}, "criteria": "6.3"}),
        "auditor",
    )
    .await;
    assert!(matches!(e, Error::Forbidden { .. }));
    refused(&h, "amber", "record_audit", json!({"criteria": "6.3"}), "scope").await;
    let planned = ok(&h, "amber", "record_audit", json!({"scope": {"processes": ["change management"], "controls": ["A.8.32"]}, "criteria": "ISO 27001 6.3 and A.8.32; change procedure v2", "planned_date": "2026-12-10"})).await;
    assert_eq!(planned["audit"]["ref"], "AUD-1");
    assert_eq!(planned["audit"]["status"], "planned");
    let complete = |auditor: &str, version: i64| json!({"ref": "AUD-1", "version": version, "auditor": auditor, "auditees": ["agent-1"], "audit_date": "2026-11-27", "conclusion": "Changes are planned but reviews lag", "findings": [{"title": "Post-implementation reviews missing", "description": "3 of 5 sampled changes had no review", "severity": "minor", "controls": ["A.8.32"], "clauses": ["6.3"]}]});
    refused(&h, "julian", "record_audit", complete("bob", 1), "owns A.8.32").await;
    refused(&h, "julian", "record_audit", complete("agent-1", 1), "auditee").await;
    refused(&h, "amber", "record_audit", complete("amber", 9), "version").await;
    let done = ok(&h, "amber", "record_audit", complete("amber", 1)).await;
    let audit = &done["audit"];
    assert_eq!(audit["status"], "completed");
    assert_eq!(audit["auditor"], "amber");
    assert_eq!(audit["findings"], json!(["NC-2"]));
    let finding = ok(&h, "amber", "get_record", json!({"ref": "NC-2"})).await;
    assert_eq!(finding["record"]["source"], "internal_audit");
    assert_eq!(finding["history"][0]["detail"]["audit"], "AUD-1");
    refused(&h, "amber", "record_audit", complete("amber", 2), "already completed").await;
    let aud = ok(&h, "bob", "get_record", json!({"ref": "AUD-1"})).await;
    assert_eq!(aud["history"].as_array().unwrap().len(), 2, "planned, completed");

    assert_eq!(ok(&h, "amber", "verify_audit_trail", json!({})).await["intact"], true);
    h.app.store.close().await;
}

#[tokio::test]
async fn sqlite_performance_evaluation() {
    let db = TestDb::sqlite();
    suite(&db.url).await;
}

#[tokio::test]
async fn postgres_performance_evaluation() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    suite(&db.url).await;
    db.cleanup().await;
}
