//! Actors, competence (7.2) and awareness (7.3), on SQLite and PostgreSQL: gaps from missing
//! and expired evidence, a policy version bump making an agent's check fail until it
//! acknowledges with the right hash, and the CLI's boot check exit codes.

mod common;

use common::{Harness, TestDb, ok, postgres_url, refused, run_cli};
use isms::domain::actor::Role;
use isms::domain::awareness::content_hash;
use isms::error::Error;
use isms::operations::resources;
use serde_json::{Value, json};

const ACTORS: &[(&str, Role)] = &[
    ("agent-1", Role::Agent),
    ("bob", Role::Agent),
    ("julian", Role::IsmsManager),
    ("amber", Role::Auditor),
    ("guest", Role::Viewer),
];

async fn suite(url: &str) {
    let h = Harness::new(url, ACTORS).await;

    // Competence: requirements per role, evidence checked by someone else, gaps.
    let e = refused(
        &h,
        "agent-1",
        "set_competence_requirements",
        json!({"role": "agent", "competencies": []}),
        "isms_manager",
    )
    .await;
    assert!(matches!(e, Error::Forbidden { .. }));
    ok(
        &h,
        "julian",
        "set_competence_requirements",
        json!({"role": "agent", "competencies": [
        {"name": "Secure  Coding", "description": "OWASP top 10"}, {"name": "incident response"}]}),
    )
    .await;
    refused(&h, "agent-1", "record_competence", json!({"actor": "agent-1", "competency": "secure coding", "evidence_type": "agent_profile", "evidence_ref": "profiles/agent-1.md"}), "own competence").await;
    refused(
        &h,
        "julian",
        "record_competence",
        json!({"actor": "nobody", "competency": "x", "evidence_type": "training", "evidence_ref": "r"}),
        "nobody",
    )
    .await;
    ok(&h, "julian", "record_competence", json!({"actor": "agent-1", "competency": "secure coding", "evidence_type": "certification", "evidence_ref": "cert/123", "valid_until": "2020-06-30"})).await;
    ok(&h, "amber", "record_competence", json!({"actor": "agent-1", "competency": "Incident Response", "evidence_type": "assessment", "evidence_ref": "drill/2026-10"})).await;
    let gaps = ok(&h, "guest", "list_competence_gaps", json!({"actor": "agent-1"})).await;
    assert_eq!(gaps["gaps"].as_array().unwrap().len(), 1, "{gaps}");
    assert_eq!(gaps["gaps"][0]["competency"], "secure coding");
    assert_eq!(gaps["gaps"][0]["reason"], "expired on 2020-06-30");
    let bob = ok(&h, "guest", "list_competence_gaps", json!({"role": "agent"})).await;
    let bobs: Vec<&Value> = bob["gaps"].as_array().unwrap().iter().filter(|g| g["actor"] == "bob").collect();
    assert_eq!(bobs.len(), 2);
    assert!(bobs.iter().all(|g| g["reason"] == "missing"));
    let closed = ok(&h, "julian", "record_competence", json!({"actor": "agent-1", "competency": "secure coding", "evidence_type": "training", "evidence_ref": "owasp/2026", "valid_until": "2099-12-31", "gap_action": "Sent on the OWASP course"})).await;
    assert_eq!(closed["gaps"], json!([]), "the action closed the gap");
    let after = ok(&h, "julian", "list_competence_gaps", json!({"actor": "agent-1"})).await;
    assert_eq!(after["closed_by_action"][0]["action"], "Sent on the OWASP course");
    refused(&h, "julian", "list_competence_gaps", json!({"actor": "ghost"}), "ghost").await;

    // Awareness: publish, read, acknowledge with the hash read; a new version makes it stale.
    let v1 = "# Constitution v1\nProtect client data.";
    refused(
        &h,
        "agent-1",
        "publish_policy",
        json!({"policy_id": "constitution", "version": "1", "title": "Constitution", "content": v1}),
        "isms_manager",
    )
    .await;
    refused(&h, "julian", "publish_policy", json!({"policy_id": "constitution", "version": "1", "title": "Constitution", "location": "https://wiki/constitution"}), "sha256").await;
    refused(
        &h,
        "julian",
        "publish_policy",
        json!({"policy_id": "Constitution!", "version": "1", "title": "C", "content": v1}),
        "policy id",
    )
    .await;
    let published = ok(
        &h,
        "julian",
        "publish_policy",
        json!({"policy_id": "constitution", "version": "1", "title": "Constitution", "content": v1}),
    )
    .await;
    assert_eq!(published["policy"]["sha256"], content_hash(v1));
    let check = ok(&h, "agent-1", "check_awareness", json!({})).await;
    assert_eq!(check["current"], false);
    assert_eq!(check["pending"][0]["reason"], "never acknowledged");
    refused(
        &h,
        "agent-1",
        "acknowledge_policy",
        json!({"policy_id": "constitution", "version": "1", "sha256": content_hash("something else")}),
        "does not match",
    )
    .await;
    let ack = ok(&h, "agent-1", "acknowledge_policy", json!({"policy_id": "constitution", "version": "1", "sha256": content_hash(v1), "context": "boot 42, claude-x 1.0"})).await;
    assert_eq!(ack["pending"], json!([]));
    assert_eq!(ack["already"], false);
    assert_eq!(
        ok(
            &h,
            "agent-1",
            "acknowledge_policy",
            json!({"policy_id": "constitution", "version": "1", "sha256": content_hash(v1)})
        )
        .await["already"],
        true
    );
    assert_eq!(ok(&h, "agent-1", "check_awareness", json!({})).await["current"], true);

    let v2 = "# Constitution v2\nProtect client data. Never log secrets.";
    ok(
        &h,
        "julian",
        "publish_policy",
        json!({"policy_id": "constitution", "version": "2", "title": "Constitution", "content": v2}),
    )
    .await;
    refused(
        &h,
        "julian",
        "publish_policy",
        json!({"policy_id": "constitution", "version": "2", "title": "Constitution", "content": v2}),
        "already published",
    )
    .await;
    let stale = ok(&h, "agent-1", "check_awareness", json!({})).await;
    assert_eq!(stale["current"], false);
    assert!(stale["pending"][0]["reason"].as_str().unwrap().contains("after you acknowledged version 1"), "{stale}");
    refused(
        &h,
        "agent-1",
        "acknowledge_policy",
        json!({"policy_id": "constitution", "version": "1", "sha256": content_hash(v1)}),
        "not the current one",
    )
    .await;
    let (text, _) = resources::read(&h.app, "isms://policies/constitution").await.unwrap();
    assert_eq!(content_hash(&text), content_hash(v2), "the resource serves exactly the published text");
    ok(
        &h,
        "agent-1",
        "acknowledge_policy",
        json!({"policy_id": "constitution", "version": "2", "sha256": content_hash(&text)}),
    )
    .await;
    assert_eq!(ok(&h, "agent-1", "check_awareness", json!({})).await["current"], true);

    // A policy for agents only binds agents; others' awareness is for overseers to check.
    ok(&h, "julian", "publish_policy", json!({"policy_id": "agent-rules", "version": "1", "title": "Agent rules", "content": "Stay in scope.", "roles": ["agent"]})).await;
    let amber = ok(&h, "amber", "check_awareness", json!({})).await;
    assert!(amber["pending"].as_array().unwrap().iter().all(|p| p["policy_id"] != "agent-rules"));
    refused(&h, "agent-1", "check_awareness", json!({"actor": "bob"}), "only an ISMS manager").await;
    refused(&h, "agent-1", "check_awareness", json!({"summary": true}), "only an ISMS manager").await;
    let bob = ok(&h, "amber", "check_awareness", json!({"actor": "bob"})).await;
    assert_eq!(bob["pending"].as_array().unwrap().len(), 2);
    let summary = ok(&h, "julian", "check_awareness", json!({"summary": true})).await;
    assert_eq!(summary["figures"]["active_agents"], 5, "the harness registers every actor as an agent");
    assert_eq!(summary["figures"]["agents_current"], 0, "agent-1 has not acknowledged agent-rules yet");
    ok(
        &h,
        "guest",
        "acknowledge_policy",
        json!({"policy_id": "constitution", "version": "2", "sha256": content_hash(v2)}),
    )
    .await;
    assert_eq!(
        ok(&h, "julian", "check_awareness", json!({"summary": true})).await["figures"]["agents_current"],
        1,
        "the viewer binds to the constitution only"
    );

    assert_eq!(ok(&h, "amber", "verify_audit_trail", json!({})).await["intact"], true);
    h.app.store.close().await;
}

#[tokio::test]
async fn sqlite_people() {
    let db = TestDb::sqlite();
    suite(&db.url).await;

    // The boot check for scripts: exit 0 when current, 3 with the list otherwise.
    let (code, out, err) = run_cli(&db.url, &["awareness", "check", "--actor", "guest"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("guest: current"));
    let (code, out, _) = run_cli(&db.url, &["awareness", "check", "--actor", "bob"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("constitution version 2") && out.contains("isms://policies/constitution"), "{out}");
    let (code, _, err) = run_cli(&db.url, &["awareness", "check", "--actor", "ghost"]);
    assert_eq!(code, 1);
    assert!(err.contains("ghost"), "{err}");
}

#[tokio::test]
async fn postgres_people() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    suite(&db.url).await;
    db.cleanup().await;
}
