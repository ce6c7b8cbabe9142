//! The Statement of Applicability and the risk register, on SQLite and PostgreSQL: traceable
//! entries, exclusions justified by the risk assessment, approval that freezes a version,
//! exports with all 93 rows, and risks linked to controls from both sides.

mod common;

use common::{Harness, TestDb, ok, postgres_url, refused, run_cli};
use isms::catalog::catalog;
use isms::domain::actor::Role;
use isms::error::Error;
use serde_json::{Value, json};

const ACTORS: &[(&str, Role)] =
    &[("agent-1", Role::Agent), ("bob", Role::Agent), ("julian", Role::IsmsManager), ("amber", Role::Auditor)];

async fn draft_hash(h: &Harness) -> String {
    ok(h, "amber", "export_soa", json!({"format": "csv"})).await["draft_hash"].as_str().unwrap().to_owned()
}

fn refs(v: &Value) -> Vec<String> {
    v["controls"].as_array().unwrap().iter().map(|c| c["ref"].as_str().unwrap().to_owned()).collect()
}

async fn soa_version(h: &Harness, control: &str) -> i64 {
    let found = ok(h, "agent-1", "query_controls", json!({"ref": control})).await;
    found["controls"][0]["soa"]["version"].as_i64().unwrap()
}

/// Reads every control's SoA entry on its own (a `ref` query, get_record) and checks it
/// against the whole SoA; returns the whole SoA's entries by control.
async fn each_entry_alone_matches_the_whole_soa(h: &Harness) -> serde_json::Map<String, Value> {
    let whole = ok(h, "amber", "query_controls", json!({"limit": 93})).await;
    assert_eq!(whole["total"], 93);
    let mut entries = serde_json::Map::new();
    for found in whole["controls"].as_array().unwrap() {
        let c = found["ref"].as_str().unwrap();
        let one = ok(h, "amber", "query_controls", json!({"ref": c})).await;
        assert_eq!(one["controls"][0]["ref"], c);
        assert_eq!(one["controls"][0]["soa"], found["soa"], "{c} read on its own");
        let record = ok(h, "amber", "get_record", json!({"ref": c})).await["record"]["soa"].clone();
        for field in ["applicable", "status", "owner", "risks", "untraceable", "stale_evidence", "version"] {
            assert_eq!(record[field], found["soa"][field], "{c}'s {field} in get_record");
        }
        entries.insert(c.to_owned(), found["soa"].clone());
    }
    entries
}

async fn suite(url: &str) {
    let h = Harness::new(url, ACTORS).await;
    let risk = json!({
        "title": "Secrets leak through logs", "asset": "Worker fleet", "threat": "Credentials read from logs",
        "vulnerability": "Loggers print config objects", "properties": ["confidentiality"],
        "likelihood": 4, "impact": 4, "owner": "bob", "treatment": "mitigate", "controls": ["A.8.12", "a.5.17"]
    });
    let with = |extra: Value| {
        let mut r = risk.clone();
        r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        r
    };

    // Risk register: the method's rules.
    refused(&h, "agent-1", "register_risk", with(json!({"likelihood": 6})), "likelihood").await;
    refused(&h, "agent-1", "register_risk", with(json!({"controls": []})), "controls").await;
    refused(&h, "agent-1", "register_risk", with(json!({"owner": "nobody"})), "nobody").await;
    refused(&h, "agent-1", "register_risk", with(json!({"properties": []})), "properties").await;
    refused(&h, "agent-1", "register_risk", with(json!({"residual_likelihood": 5, "residual_impact": 5})), "residual")
        .await;
    refused(&h, "agent-1", "register_risk", with(json!({"residual_likelihood": 2})), "residual_impact").await;
    let r1 = ok(&h, "agent-1", "register_risk", with(json!({"idempotency_key": "risk-logs"}))).await;
    let again = ok(&h, "agent-1", "register_risk", with(json!({"idempotency_key": "risk-logs"}))).await;
    assert_eq!(again["risk"]["ref"], r1["risk"]["ref"]);
    assert_eq!(again["replayed"], true);
    let r1 = &r1["risk"];
    assert_eq!(r1["ref"], "RISK-1");
    assert_eq!(r1["score"], 16);
    assert_eq!(r1["level"], "high");
    assert_eq!(r1["controls"], json!(["A.5.17", "A.8.12"]));
    assert!(r1["residual_score"].is_null());

    // Linked from both sides: the risk names its controls, the controls name the risk.
    assert_eq!(
        refs(&ok(&h, "agent-1", "query_controls", json!({"risk": "RISK-1", "limit": 93})).await),
        ["A.5.17", "A.8.12"]
    );
    ok(&h, "julian", "update_soa_entry", json!({"control": "A.8.24", "version": 0, "applicable": true, "justification": "Secrets at rest need encryption", "risks": ["RISK-1"]})).await;
    let risk_record = ok(&h, "agent-1", "get_record", json!({"ref": "RISK-1"})).await;
    assert_eq!(risk_record["record"]["controls"], json!(["A.5.17", "A.8.12", "A.8.24"]));
    refused(
        &h,
        "julian",
        "update_soa_entry",
        json!({"control": "A.8.25", "version": 0, "applicable": true, "justification": "j", "risks": ["RISK-9"]}),
        "RISK-9",
    )
    .await;

    // A control's entry read on its own is the whole SoA's, decided (A.8.24) or not (A.5.17,
    // linked from the risk's side only).
    let whole = each_entry_alone_matches_the_whole_soa(&h).await;
    assert_eq!((&whole["A.5.17"]["risks"], &whole["A.5.17"]["version"]), (&json!(["RISK-1"]), &json!(0)));
    assert_eq!((&whole["A.8.24"]["risks"], &whole["A.8.24"]["version"]), (&json!(["RISK-1"]), &json!(1)));

    // Exclusions must rest on the risk assessment; justification both ways.
    let exclude =
        json!({"control": "A.7.3", "version": 0, "applicable": false, "justification": "Fully remote, no offices"});
    refused(&h, "julian", "update_soa_entry", exclude.clone(), "risk assessment").await;
    refused(&h, "julian", "update_soa_entry", json!({"control": "A.7.3", "version": 0, "applicable": false, "justification": "  ", "risk_assessment": "RA-2026"}), "justification").await;
    refused(&h, "julian", "update_soa_entry", json!({"control": "A.7.3", "version": 0, "applicable": false, "justification": "remote", "risk_assessment": "RA-2026", "status": "implemented", "implementation": "x"}), "not_implemented").await;
    refused(
        &h,
        "julian",
        "update_soa_entry",
        json!({"control": "A.9.9", "version": 0, "applicable": true, "justification": "j"}),
        "A.9.9",
    )
    .await;
    let mut ok_exclusion = exclude.clone();
    ok_exclusion["risk_assessment"] =
        json!("Risk assessment 2026-Q3: no premises in scope, physical threats to offices not applicable");
    let excluded = ok(&h, "julian", "update_soa_entry", ok_exclusion).await;
    assert_eq!(excluded["entry"]["applicable"], false);
    let stale = refused(&h, "julian", "update_soa_entry", exclude.clone(), "version").await;
    assert!(matches!(stale, Error::Conflict { .. }));
    let e = refused(
        &h,
        "amber",
        "update_soa_entry",
        json!({"control": "A.5.1", "version": 0, "applicable": true, "justification": "j"}),
        "auditor",
    )
    .await;
    assert!(matches!(e, Error::Forbidden { .. }), "auditors audit the SoA, they do not write it");

    // Untraceable and stale evidence show.
    ok(
        &h,
        "julian",
        "update_soa_entry",
        json!({"control": "A.5.1", "version": 0, "applicable": true, "justification": "Policies are needed"}),
    )
    .await;
    let untraceable = ok(&h, "agent-1", "query_controls", json!({"untraceable": true, "limit": 93})).await;
    assert_eq!(refs(&untraceable), ["A.5.1"]);
    let implemented = json!({"control": "A.8.12", "version": 0, "applicable": true, "justification": "Treats RISK-1", "status": "implemented", "implementation": "Log redaction in the shared logger", "owner": "bob", "evidence": [{"ref": "scan/2020", "date": "2020-01-01"}]});
    ok(&h, "julian", "update_soa_entry", implemented).await;
    assert_eq!(refs(&ok(&h, "agent-1", "query_controls", json!({"stale_evidence": true})).await), ["A.8.12"]);
    refused(&h, "julian", "update_soa_entry", json!({"control": "A.8.12", "version": 1, "applicable": true, "justification": "j", "evidence": [{"ref": "x", "date": "2999-01-01"}]}), "future").await;
    refused(
        &h,
        "julian",
        "update_soa_entry",
        json!({"control": "A.8.13", "version": 0, "applicable": true, "justification": "j", "status": "implemented"}),
        "implementation",
    )
    .await;

    // Approval needs every control decided, and an ISMS manager.
    refused(&h, "julian", "approve_soa", json!({"draft_hash": draft_hash(&h).await}), "undecided").await;
    let undecided = ok(&h, "agent-1", "query_controls", json!({"undecided": true, "limit": 93})).await;
    assert_eq!(undecided["total"], 93 - 4, "A.8.24, A.7.3, A.5.1 and A.8.12 are decided");
    for c in catalog().controls() {
        if refs(&undecided).contains(&c.reference) {
            ok(&h, "agent-1", "update_soa_entry", json!({"control": c.reference, "version": 0, "applicable": true, "justification": "Baseline for SaaS delivery", "requirement": "Client contracts require ISO 27001 certification"})).await;
        }
    }
    let e = refused(&h, "agent-1", "approve_soa", json!({"draft_hash": draft_hash(&h).await}), "isms_manager").await;
    assert!(matches!(e, Error::Forbidden { .. }));
    let v1 = ok(
        &h,
        "julian",
        "approve_soa",
        json!({"note": "Management review 2026-Q4", "draft_hash": draft_hash(&h).await}),
    )
    .await;
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["approved_by"], "julian");
    assert_eq!(v1["changes"].as_array().unwrap().len(), 93);

    // Exports hold all 93 rows under the approval header.
    let csv = ok(&h, "amber", "export_soa", json!({"format": "csv"})).await;
    assert_eq!(csv["rows"], 93);
    assert_eq!(csv["draft"], false);
    assert_eq!(csv["version"], 1);
    let text = csv["content"].as_str().unwrap();
    assert_eq!(text.lines().count(), 95, "approval header, column header, 93 controls");
    assert!(text.lines().next().unwrap().contains("Version 1 approved") && text.contains("julian"));
    assert!(text.lines().any(|l| l.starts_with("A.7.3,") && l.contains(",no,\"Fully remote")), "{text}");
    let md = ok(&h, "amber", "export_soa", json!({"format": "markdown"})).await;
    let md = md["content"].as_str().unwrap();
    assert_eq!(md.lines().filter(|l| l.starts_with("| A.")).count(), 93);
    assert!(md.contains("Version 1 approved"));

    // Later edits make a draft; the approved version does not change.
    let v = soa_version(&h, "A.5.1").await;
    ok(&h, "julian", "update_soa_entry", json!({"control": "A.5.1", "version": v, "applicable": true, "justification": "Policies are needed", "status": "implemented", "implementation": "Security policy v3 on the wiki", "evidence": [{"ref": "wiki/policy", "date": "2026-11-01"}], "requirement": "ISO 27001 5.2"})).await;
    let draft = ok(&h, "amber", "export_soa", json!({"format": "csv"})).await;
    assert_eq!(draft["draft"], true);
    assert!(
        draft["content"]
            .as_str()
            .unwrap()
            .starts_with("# Statement of Applicability (ISO/IEC 27001:2022),DRAFT: changed since version 1")
    );
    let frozen = ok(&h, "amber", "export_soa", json!({"format": "csv", "version": 1})).await;
    assert_eq!(frozen["draft"], false);
    assert!(!frozen["content"].as_str().unwrap().contains("Security policy v3"), "version 1 is immutable");
    refused(&h, "julian", "approve_soa", json!({"draft_hash": "0".repeat(64)}), "not the draft you reviewed").await;
    let v2 = ok(&h, "julian", "approve_soa", json!({"draft_hash": draft_hash(&h).await})).await;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["changes"].as_array().unwrap().len(), 1, "{v2}");
    assert_eq!(v2["changes"][0]["fields"], json!(["status", "implementation", "evidence", "requirement"]));
    assert_eq!(v2["changes"][0]["control"], "A.5.1");
    refused(&h, "julian", "approve_soa", json!({"draft_hash": draft_hash(&h).await}), "nothing changed").await;
    let soa2 = ok(&h, "agent-1", "get_record", json!({"ref": "SOA-2"})).await;
    assert_eq!(soa2["record"]["changes"][0]["control"], "A.5.1");
    assert_eq!(soa2["history"][0]["operation"], "approve_soa");
    refused(&h, "agent-1", "export_soa", json!({"format": "csv", "version": 7}), "SOA-7").await;
    let control = ok(&h, "agent-1", "get_record", json!({"ref": "A.5.1"})).await;
    assert_eq!(control["kind"], "control");
    assert_eq!(control["record"]["soa"]["status"], "implemented");
    assert_eq!(control["history"].as_array().unwrap().len(), 2);

    // Residual risk: accepted by its owner, once rated; a reassessment voids the acceptance.
    refused(
        &h,
        "agent-1",
        "update_risk",
        json!({"ref": "RISK-1", "version": 1, "accept_residual": true}),
        "owned by `bob`",
    )
    .await;
    let rv = ok(&h, "agent-1", "get_record", json!({"ref": "RISK-1"})).await["record"]["version"].as_i64().unwrap();
    refused(
        &h,
        "bob",
        "update_risk",
        json!({"ref": "RISK-1", "version": rv, "accept_residual": true}),
        "no residual risk",
    )
    .await;
    let accepted = ok(&h, "bob", "update_risk", json!({"ref": "RISK-1", "version": rv, "residual_likelihood": 1, "residual_impact": 2, "accept_residual": true})).await;
    assert_eq!(accepted["risk"]["accepted_by"], "bob");
    assert_eq!(accepted["risk"]["residual_score"], 2);
    assert_eq!(accepted["risk"]["acceptable"], true);
    let v = accepted["risk"]["version"].clone();
    let reassessed = ok(&h, "julian", "update_risk", json!({"ref": "RISK-1", "version": v, "likelihood": 5})).await;
    assert!(reassessed["risk"]["accepted_by"].is_null(), "a new assessment needs a new acceptance");
    assert_eq!(reassessed["risk"]["score"], 20);
    assert_eq!(reassessed["risk"]["level"], "critical");
    refused(&h, "julian", "update_risk", json!({"ref": "RISK-1", "version": v, "likelihood": 2}), "version").await;

    // Links keep both sides' rules: a mitigated risk keeps a control, an exclusion its basis.
    let lone = ok(&h, "agent-1", "register_risk", json!({"title": "Tailgating", "asset": "none", "threat": "t", "vulnerability": "v", "properties": ["confidentiality"], "likelihood": 1, "impact": 1, "owner": "bob", "treatment": "mitigate", "controls": ["A.7.2"]})).await;
    let lone_ref = lone["risk"]["ref"].as_str().unwrap().to_owned();
    let v = soa_version(&h, "A.7.2").await;
    refused(&h, "julian", "update_soa_entry", json!({"control": "A.7.2", "version": v, "applicable": false, "justification": "remote", "risk_assessment": "no premises", "risks": []}), "only control").await;
    ok(&h, "julian", "update_soa_entry", json!({"control": "A.7.2", "version": v, "applicable": false, "justification": "Remote work only", "risks": [lone_ref]})).await;
    let rv = ok(&h, "bob", "get_record", json!({"ref": lone_ref})).await["record"]["version"].as_i64().unwrap();
    refused(
        &h,
        "bob",
        "update_risk",
        json!({"ref": lone_ref, "version": rv, "treatment": "accept", "controls": []}),
        "rests on",
    )
    .await;

    // Every control decided now; its entry read on its own is still the whole SoA's.
    let third = with(json!({"title": "Keys in tickets", "controls": ["A.8.12", "A.8.24"]}));
    assert_eq!(ok(&h, "agent-1", "register_risk", third).await["risk"]["ref"], "RISK-3");
    let whole = each_entry_alone_matches_the_whole_soa(&h).await;
    assert_eq!(whole["A.8.12"]["risks"], json!(["RISK-1", "RISK-3"]));
    assert_eq!(whole["A.8.24"]["risks"], json!(["RISK-1", "RISK-3"]));
    assert_eq!(whole["A.7.2"]["risks"], json!(["RISK-2"]));

    assert_eq!(ok(&h, "amber", "verify_audit_trail", json!({})).await["intact"], true);
    h.app.store.close().await;
}

#[tokio::test]
async fn sqlite_soa_and_risks() {
    let db = TestDb::sqlite();
    suite(&db.url).await;
    let (code, out, err) = run_cli(&db.url, &["soa", "export", "--format", "csv", "--version", "2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 95);
    assert!(out.starts_with("# Statement of Applicability (ISO/IEC 27001:2022),Version 2 approved"), "{out}");
}

#[tokio::test]
async fn postgres_soa_and_risks() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    suite(&db.url).await;
    db.cleanup().await;
}
