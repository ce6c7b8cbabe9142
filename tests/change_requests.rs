//! Change requests (6.3, A.8.32) on SQLite and PostgreSQL: every transition, no
//! self-approval, no closing without review, the emergency path with a late retrospective
//! approval flagged, and a change raised from a corrective action visible from both records.

mod common;

use common::{Harness, TestDb, ok, postgres_url, refused};
use isms::domain::actor::Role;
use isms::error::Error;
use serde_json::{Value, json};

const ACTORS: &[(&str, Role)] =
    &[("agent-1", Role::Agent), ("bob", Role::Agent), ("julian", Role::IsmsManager), ("dirk-jan", Role::TopManagement)];

fn change(kind: &str, extra: Value) -> Value {
    let mut c = json!({
        "title": "Move backups to a second region", "description": "Nightly backups also copied to fsn1",
        "purpose": "Survive the loss of one data centre", "consequences": "Doubles backup storage cost",
        "type": kind, "controls": ["A.8.13"], "assets": ["backup bucket"],
        "implementation_plan": "Add a replication job", "rollback_plan": "Disable the job and delete the copy"
    });
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

fn cr(v: &Value) -> &Value {
    &v["change_request"]
}

async fn suite(url: &str) {
    let h = Harness::new(url, ACTORS).await;

    // Bad input changes nothing.
    refused(&h, "agent-1", "raise_change_request", change("normal", json!({"controls": ["A.99.1"]})), "A.99.1").await;
    refused(&h, "agent-1", "raise_change_request", change("normal", json!({"risks": ["RISK-5"]})), "RISK-5").await;
    refused(
        &h,
        "agent-1",
        "raise_change_request",
        change("normal", json!({"window_start": "2027-02-01", "window_end": "2027-01-01"})),
        "window_end",
    )
    .await;
    refused(&h, "agent-1", "raise_change_request", change("normal", json!({"rollback_plan": ""})), "rollback_plan")
        .await;

    // Normal: submitted → approved (not by the requester) → implementing → implemented → reviewed → closed.
    let c1 = ok(&h, "agent-1", "raise_change_request", change("normal", json!({"window_start": "2027-01-10"}))).await;
    assert_eq!(cr(&c1)["ref"], "CR-1");
    assert_eq!(cr(&c1)["status"], "submitted");
    let waiting = ok(&h, "bob", "list_change_requests", json!({"awaiting_decision": true})).await;
    assert_eq!(waiting["items"][0]["ref"], "CR-1");
    refused(
        &h,
        "agent-1",
        "update_change_request",
        json!({"ref": "CR-1", "version": 1, "status": "implementing"}),
        "decide_change_request",
    )
    .await;
    let e = refused(
        &h,
        "agent-1",
        "decide_change_request",
        json!({"ref": "CR-1", "version": 1, "decision": "approve"}),
        "isms_manager",
    )
    .await;
    assert!(matches!(e, Error::Forbidden { .. }));
    let own = ok(&h, "julian", "raise_change_request", change("normal", json!({"title": "Rotate the TLS keys"}))).await;
    refused(
        &h,
        "julian",
        "decide_change_request",
        json!({"ref": cr(&own)["ref"], "version": 1, "decision": "approve"}),
        "may not decide",
    )
    .await;
    refused(
        &h,
        "dirk-jan",
        "decide_change_request",
        json!({"ref": cr(&own)["ref"], "version": 1, "decision": "reject"}),
        "reason",
    )
    .await;
    let rejected = ok(
        &h,
        "dirk-jan",
        "decide_change_request",
        json!({"ref": cr(&own)["ref"], "version": 1, "decision": "reject", "reason": "Wait for the audit to end"}),
    )
    .await;
    assert_eq!(cr(&rejected)["status"], "rejected");
    refused(
        &h,
        "julian",
        "update_change_request",
        json!({"ref": cr(&own)["ref"], "version": 2, "status": "implementing"}),
        "rejected",
    )
    .await;

    let approved = ok(
        &h,
        "julian",
        "decide_change_request",
        json!({"ref": "CR-1", "version": 1, "decision": "approve", "reason": "Risk accepted by owner"}),
    )
    .await;
    assert_eq!(cr(&approved)["status"], "approved");
    assert_eq!(cr(&approved)["decided_by"], "julian");
    refused(
        &h,
        "dirk-jan",
        "decide_change_request",
        json!({"ref": "CR-1", "version": 2, "decision": "approve"}),
        "already decided",
    )
    .await;
    refused(
        &h,
        "bob",
        "update_change_request",
        json!({"ref": "CR-1", "version": 2, "status": "implementing"}),
        "owned by `agent-1`",
    )
    .await;
    let implementing = ok(
        &h,
        "agent-1",
        "update_change_request",
        json!({"ref": "CR-1", "version": 2, "status": "implementing", "note": "Job deployed to staging"}),
    )
    .await;
    assert!(cr(&implementing)["started_at"].is_string());
    let implemented =
        ok(&h, "agent-1", "update_change_request", json!({"ref": "CR-1", "version": 3, "status": "implemented"})).await;
    assert!(cr(&implemented)["finished_at"].is_string(), "implementation end is recorded");
    refused(
        &h,
        "agent-1",
        "update_change_request",
        json!({"ref": "CR-1", "version": 4, "status": "closed"}),
        "post-implementation review",
    )
    .await;
    refused(
        &h,
        "agent-1",
        "update_change_request",
        json!({"ref": "CR-1", "version": 3, "status": "closed"}),
        "version",
    )
    .await;
    let reviewed = ok(&h, "agent-1", "update_change_request", json!({"ref": "CR-1", "version": 4, "review": {"outcome": "Backups replicate nightly", "issues_found": "First run slow", "controls_or_soa_update_needed": true}})).await;
    assert_eq!(cr(&reviewed)["status"], "reviewed");
    assert_eq!(cr(&reviewed)["review"]["controls_or_soa_update_needed"], true);
    let closed =
        ok(&h, "julian", "update_change_request", json!({"ref": "CR-1", "version": 5, "status": "closed"})).await;
    assert_eq!(cr(&closed)["status"], "closed");
    let history = ok(&h, "bob", "get_record", json!({"ref": "CR-1"})).await;
    let ops: Vec<&str> =
        history["history"].as_array().unwrap().iter().map(|e| e["operation"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        [
            "raise_change_request",
            "decide_change_request",
            "update_change_request",
            "update_change_request",
            "update_change_request",
            "update_change_request"
        ]
    );

    // Standard changes are pre-approved; failure and roll-back still need a review.
    let std = ok(&h, "bob", "raise_change_request", change("standard", json!({"title": "Patch the base image"}))).await;
    assert_eq!(cr(&std)["status"], "approved");
    let r = cr(&std)["ref"].clone();
    ok(&h, "bob", "update_change_request", json!({"ref": r, "version": 1, "status": "implementing"})).await;
    let failed = ok(
        &h,
        "bob",
        "update_change_request",
        json!({"ref": r, "version": 2, "status": "failed", "note": "Image did not boot"}),
    )
    .await;
    let rolled = ok(&h, "bob", "update_change_request", json!({"ref": r, "version": 3, "status": "rolled_back"})).await;
    assert_eq!(cr(&rolled)["status"], "rolled_back");
    assert_eq!(cr(&failed)["notes"].as_array().unwrap().len(), 1);
    ok(&h, "bob", "update_change_request", json!({"ref": r, "version": 4, "review": {"outcome": "Rolled back cleanly", "controls_or_soa_update_needed": false}})).await;

    // An emergency change cannot close without its approval; a rejected one must be rolled back.
    let unapproved =
        ok(&h, "agent-1", "raise_change_request", change("emergency", json!({"title": "Hotfix the proxy"}))).await;
    let u = cr(&unapproved)["ref"].clone();
    ok(&h, "agent-1", "update_change_request", json!({"ref": u, "version": 1, "status": "implementing"})).await;
    ok(
        &h,
        "dirk-jan",
        "decide_change_request",
        json!({"ref": u, "version": 2, "decision": "reject", "reason": "Too risky"}),
    )
    .await;
    refused(
        &h,
        "agent-1",
        "update_change_request",
        json!({"ref": u, "version": 3, "status": "implemented"}),
        "rolled_back",
    )
    .await;
    ok(&h, "agent-1", "update_change_request", json!({"ref": u, "version": 3, "status": "rolled_back"})).await;
    ok(
        &h,
        "agent-1",
        "update_change_request",
        json!({"ref": u, "version": 4, "review": {"outcome": "Undone", "controls_or_soa_update_needed": false}}),
    )
    .await;
    refused(
        &h,
        "julian",
        "update_change_request",
        json!({"ref": u, "version": 5, "status": "closed"}),
        "without an approval",
    )
    .await;

    // Emergency: implemented first, flagged until a retrospective approval; late approval is flagged too.
    let em =
        ok(&h, "agent-1", "raise_change_request", change("emergency", json!({"title": "Block the leaked key"}))).await;
    let r = cr(&em)["ref"].clone();
    ok(&h, "agent-1", "update_change_request", json!({"ref": r, "version": 1, "status": "implementing"})).await;
    ok(&h, "agent-1", "update_change_request", json!({"ref": r, "version": 2, "status": "implemented"})).await;
    let number = r.as_str().unwrap().trim_start_matches("CR-").to_owned();
    h.raw(&format!("UPDATE change_requests SET started_at = '2020-01-01T00:00:00.000000Z', finished_at = '2020-01-01T01:00:00.000000Z' WHERE number = {number}")).await;
    let overdue = ok(&h, "bob", "list_change_requests", json!({"overdue": true})).await;
    let item = overdue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["ref"] == r)
        .expect("the emergency change is overdue")
        .clone();
    assert_eq!(item["retrospective_approval_overdue"], true);
    assert_eq!(item["review_overdue"], true);
    let waiting = ok(&h, "bob", "list_change_requests", json!({"awaiting_decision": true, "type": "emergency"})).await;
    assert_eq!(waiting["items"][0]["ref"], r);
    let late = ok(
        &h,
        "dirk-jan",
        "decide_change_request",
        json!({"ref": r, "version": 3, "decision": "approve", "reason": "Right call"}),
    )
    .await;
    assert_eq!(cr(&late)["status"], "implemented", "a retrospective approval keeps the status");
    assert_eq!(cr(&late)["retrospective_approval_overdue"], false);
    assert!(
        cr(&late)["decided_at"].as_str().unwrap() > cr(&late)["started_at"].as_str().unwrap(),
        "decided after it started: retrospective"
    );
    assert_eq!(cr(&late)["review_overdue"], true, "the review is still late");

    // Raised from a corrective action: visible from the action, its nonconformity and the change.
    ok(&h, "agent-1", "log_nonconformity", json!({"title": "Restore untested", "description": "No restore test", "severity": "minor", "source": "internal_audit", "correction": "Ran a restore"})).await;
    ok(
        &h,
        "agent-1",
        "record_nonconformity_analysis",
        json!({"ref": "NC-1", "version": 1, "method": "5 whys", "root_cause": "No schedule", "action_needed": true}),
    )
    .await;
    ok(
        &h,
        "agent-1",
        "plan_corrective_action",
        json!({"ref": "NC-1", "version": 2, "description": "Schedule monthly restore tests", "owner": "bob"}),
    )
    .await;
    let from_ca = ok(
        &h,
        "bob",
        "raise_change_request",
        change("normal", json!({"title": "Add restore test job", "corrective_action": "CA-1"})),
    )
    .await;
    let served = cr(&from_ca)["ref"].clone();
    assert_eq!(cr(&from_ca)["corrective_action"], "CA-1");
    assert_eq!(cr(&from_ca)["nonconformity"], "NC-1");
    assert_eq!(ok(&h, "bob", "get_record", json!({"ref": "CA-1"})).await["record"]["change_requests"], json!([served]));
    assert_eq!(ok(&h, "bob", "get_record", json!({"ref": "NC-1"})).await["record"]["change_requests"], json!([served]));
    refused(
        &h,
        "bob",
        "raise_change_request",
        change("normal", json!({"corrective_action": "CA-1", "nonconformity": "NC-9"})),
        "belongs to NC-1",
    )
    .await;

    let by_control = ok(&h, "bob", "list_change_requests", json!({"control": "A.8.13", "limit": 2})).await;
    assert_eq!(by_control["items"].as_array().unwrap().len(), 2);
    assert!(by_control["next_cursor"].is_string());
    assert_eq!(
        ok(&h, "bob", "list_change_requests", json!({"requester": "julian"})).await["items"].as_array().unwrap().len(),
        1
    );
    assert_eq!(ok(&h, "julian", "verify_audit_trail", json!({})).await["intact"], true);
    h.app.store.close().await;
}

#[tokio::test]
async fn sqlite_change_requests() {
    let db = TestDb::sqlite();
    suite(&db.url).await;
}

#[tokio::test]
async fn postgres_change_requests() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    suite(&db.url).await;
    db.cleanup().await;
}
