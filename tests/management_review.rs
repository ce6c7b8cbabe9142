//! Management review (9.3) and Stage 1 readiness on SQLite and PostgreSQL: a realistic
//! quarter of records, each computed input checked against figures worked out by hand, and
//! readiness flipping from failing to passing as the missing records are added.

mod common;

use common::{Harness, TestDb, as_, ok, postgres_url, run_cli};
use isms::catalog::catalog;
use isms::domain::actor::Role;
use isms::error::Error;
use isms::store::RecordCounts;
use serde_json::{Value, json};

const ACTORS: &[(&str, Role)] = &[
    ("agent-1", Role::Agent),
    ("bob", Role::Agent),
    ("julian", Role::IsmsManager),
    ("amber", Role::Auditor),
    ("dirk-jan", Role::TopManagement),
];

async fn draft_hash(h: &Harness) -> String {
    ok(h, "amber", "export_soa", json!({"format": "csv"})).await["draft_hash"].as_str().unwrap().to_owned()
}

fn failing(readiness: &Value) -> Vec<String> {
    readiness["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["clause"].as_str().unwrap().to_owned())
        .collect()
}

async fn quarter(h: &Harness) {
    // An earlier review with two actions; one done since.
    let mr1 = ok(h, "dirk-jan", "record_management_review", json!({"review_date": "2026-09-30", "attendees": ["dirk-jan", "julian"], "since": "2026-07-01", "improvements": ["Automate evidence collection"], "actions": [
        {"description": "Write the logging standard", "owner": "bob", "due_date": "2026-10-31"},
        {"description": "Run a restore drill", "owner": "agent-1", "due_date": "2099-01-31"}]})).await;
    assert_eq!(mr1["ref"], "MR-1");
    ok(h, "bob", "complete_review_action", json!({"ref": "MR-1.1", "note": "Standard v1 on the wiki"})).await;

    // Context.
    ok(h, "julian", "record_context", json!({"kind": "scope", "name": "ISMS scope", "description": "Design, development and delivery of custom SaaS applications"})).await;
    ok(
        h,
        "julian",
        "record_context",
        json!({"kind": "external_issue", "name": "NIS2", "description": "NIS2 transposed into national law"}),
    )
    .await;
    ok(h, "julian", "record_context", json!({"kind": "interested_party", "name": "Clients", "description": "Enterprise SMEs", "expectations": "ISO 27001 certificate", "feedback": "Asked for faster incident notices"})).await;

    // Nonconformities and actions.
    ok(h, "agent-1", "log_nonconformity", json!({"title": "Admin console without MFA", "description": "Found by the certification body", "severity": "major", "source": "external_audit", "correction": "Console closed to the internet"})).await;
    ok(h, "agent-1", "log_nonconformity", json!({"title": "Incident notice late", "description": "Client complained about a late notice", "severity": "minor", "source": "complaint"})).await;
    ok(h, "agent-1", "log_nonconformity", json!({"title": "Wiki page stale", "description": "Procedure page not reviewed this year", "severity": "observation", "source": "monitoring", "correction": "Page reviewed"})).await;
    ok(h, "agent-1", "record_nonconformity_analysis", json!({"ref": "NC-1", "version": 1, "method": "5 whys", "root_cause": "No SSO on the console", "action_needed": true})).await;
    ok(
        h,
        "agent-1",
        "plan_corrective_action",
        json!({"ref": "NC-1", "version": 2, "description": "Enable SSO with MFA", "owner": "bob"}),
    )
    .await;
    ok(
        h,
        "agent-1",
        "plan_corrective_action",
        json!({"ref": "NC-1", "version": 3, "description": "Review every console", "owner": "bob"}),
    )
    .await;
    ok(
        h,
        "bob",
        "update_corrective_action",
        json!({"ref": "CA-1", "version": 1, "status": "done", "evidence": ["sso/config"]}),
    )
    .await;
    h.raw("UPDATE corrective_actions SET due_date = '2026-10-15' WHERE number = 2").await;
    ok(h, "agent-1", "record_nonconformity_analysis", json!({"ref": "NC-3", "version": 1, "method": "review", "root_cause": "No review date set", "action_needed": false, "justification": "Yearly review now scheduled"})).await;
    ok(h, "julian", "close_nonconformity", json!({"ref": "NC-3", "version": 2, "isms_changes": "none"})).await;

    // Risks.
    let risk = |title: &str, l: i64, i: i64, treatment: &str| json!({"title": title, "asset": "platform", "threat": "t", "vulnerability": "v", "properties": ["availability"], "likelihood": l, "impact": i, "owner": "bob", "treatment": treatment, "controls": ["A.8.13"]});
    let mut r1 = risk("Backups lost", 4, 4, "mitigate");
    r1["residual_likelihood"] = json!(1);
    r1["residual_impact"] = json!(2);
    ok(h, "agent-1", "register_risk", r1).await;
    ok(h, "bob", "update_risk", json!({"ref": "RISK-1", "version": 1, "accept_residual": true})).await;
    ok(h, "agent-1", "register_risk", risk("Single node down", 5, 5, "mitigate")).await;
    ok(h, "agent-1", "register_risk", risk("Typo in docs", 1, 2, "accept")).await;

    // Objectives and measurements.
    let objective = |statement: &str, target: f64, comparator: &str| json!({"statement": statement, "metric": "m", "target": target, "comparator": comparator, "unit": "n", "frequency": "monthly", "owner": "julian"});
    ok(h, "julian", "define_objective", objective("Zero critical vulnerabilities > 48h", 0.0, "at_most")).await;
    ok(h, "julian", "define_objective", objective("Secret rotation on time", 95.0, "at_least")).await;
    ok(h, "julian", "define_objective", objective("Pen test remediation < 30 days", 30.0, "at_most")).await;
    ok(h, "bob", "record_measurement", json!({"ref": "OBJ-1", "value": 2, "period": "2026-11"})).await;
    ok(h, "bob", "record_measurement", json!({"ref": "OBJ-2", "value": 97, "period": "2026-11"})).await;

    // An internal audit with one finding.
    ok(h, "amber", "record_audit", json!({"scope": {"processes": ["incident management"]}, "criteria": "ISO 27001 A.5.24-A.5.28", "auditor": "amber", "auditees": ["agent-1"], "audit_date": "2026-11-20", "conclusion": "Notices are late", "findings": [{"title": "Notice template missing", "description": "No template for client notices", "severity": "minor", "clauses": ["7.4"]}]})).await;
}

async fn suite(url: &str) {
    let h = Harness::new(url, ACTORS).await;
    let empty = ok(&h, "amber", "check_certification_readiness", json!({})).await;
    assert_eq!(empty["ready"], false);
    assert_eq!(failing(&empty).len(), 8, "{empty}");

    quarter(&h).await;
    let inputs = ok(&h, "dirk-jan", "get_management_review_inputs", json!({})).await;
    assert_eq!(inputs["since"], "2026-09-30", "the period starts at the last review");
    // a)
    let actions: Vec<(&str, &str, bool)> = inputs["a_previous_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["ref"].as_str().unwrap(), a["status"].as_str().unwrap(), a["overdue"].as_bool().unwrap()))
        .collect();
    assert_eq!(actions, [("MR-1.1", "done", false), ("MR-1.2", "open", false)]);
    // b), c)
    assert_eq!(inputs["b_issues"].as_array().unwrap().len(), 1);
    assert_eq!(inputs["b_issues"][0]["name"], "NIS2");
    assert_eq!(inputs["c_interested_parties"][0]["name"], "Clients");
    // d)
    let d = &inputs["d_performance"];
    let nc = &d["nonconformities"];
    assert_eq!(nc["logged"], json!(["NC-1", "NC-2", "NC-3", "NC-4"]));
    assert_eq!(nc["totals"], json!({"logged": 4, "closed": 1, "actions_done": 1, "actions_overdue": 1}));
    assert_eq!(nc["by_severity"], json!({"major": 1, "minor": 2, "observation": 1}));
    let logged_at = ok(&h, "amber", "get_record", json!({"ref": "NC-1"})).await["record"]["created_at"].clone();
    let month = logged_at.as_str().unwrap()[..7].to_owned();
    let by_month = nc["by_month"].as_object().unwrap();
    assert!(by_month.contains_key(&month), "{by_month:?}");
    assert_eq!(by_month.values().map(|n| n.as_u64().unwrap()).sum::<u64>(), 4, "every one counted in its month");
    assert_eq!(nc["closed"], json!(["NC-3"]));
    assert_eq!(nc["open"], 3);
    assert_eq!(nc["actions_done"], json!(["CA-1"]));
    assert_eq!(nc["actions_overdue"], json!(["CA-2"]));
    assert_eq!(d["measurements"].as_array().unwrap().len(), 2);
    assert_eq!(d["objectives_met"], json!(["OBJ-2"]));
    assert_eq!(d["objectives_not_met"], json!(["OBJ-1"]));
    assert_eq!(d["objectives_unmeasured"], json!(["OBJ-3"]));
    assert_eq!(d["audits"][0]["ref"], "AUD-1");
    assert_eq!(d["audits"][0]["findings"], json!(["NC-4"]));
    // e)
    assert_eq!(inputs["e_feedback"]["complaints"], json!(["NC-2"]));
    assert_eq!(inputs["e_feedback"]["complaints_total"], 1);
    assert_eq!(inputs["e_feedback"]["parties"][0]["feedback"], "Asked for faster incident notices");
    // f)
    let f = &inputs["f_risks"];
    assert_eq!(f["total"], 3);
    assert_eq!(f["by_level"], json!({"critical": 1, "high": 1, "low": 1}));
    assert_eq!(f["by_treatment"], json!({"accept": 1, "mitigate": 2}));
    assert_eq!(f["accepted"], json!(["RISK-1"]));
    assert_eq!(f["awaiting_acceptance"], json!(["RISK-3"]));
    assert_eq!(f["high_untreated"], json!(["RISK-2"]));
    // g)
    assert_eq!(inputs["g_opportunities"]["observations"], json!(["NC-3"]));
    assert_eq!(inputs["g_opportunities"]["observations_total"], 1);

    // Readiness: what is still missing, then added.
    let mid = ok(&h, "amber", "check_certification_readiness", json!({})).await;
    assert_eq!(failing(&mid), ["5.2", "6.1.3, 8.3", "6.1.3 d", "6.2, 7.2, 9.1"], "{mid}");
    ok(&h, "julian", "publish_policy", json!({"policy_id": "security-policy", "version": "1", "title": "Information security policy", "content": "We protect client data."})).await;
    ok(
        &h,
        "bob",
        "update_risk",
        json!({"ref": "RISK-1", "version": 2, "treatment_plan": "Offsite copies", "accept_residual": true}),
    )
    .await;
    ok(&h, "bob", "update_risk", json!({"ref": "RISK-2", "version": 1, "treatment_plan": "Second node", "residual_likelihood": 2, "residual_impact": 3, "accept_residual": true})).await;
    ok(&h, "bob", "update_risk", json!({"ref": "RISK-3", "version": 1, "accept_residual": true})).await;
    for c in catalog().controls() {
        ok(&h, "julian", "update_soa_entry", json!({"control": c.reference, "version": 0, "applicable": true, "justification": "Baseline", "requirement": "Client contracts"})).await;
    }
    ok(&h, "julian", "approve_soa", json!({"draft_hash": draft_hash(&h).await})).await;
    ok(&h, "julian", "record_competence", json!({"actor": "agent-1", "competency": "secure coding", "evidence_type": "agent_profile", "evidence_ref": "profiles/agent-1"})).await;
    let ready = ok(&h, "amber", "check_certification_readiness", json!({})).await;
    assert_eq!(ready["ready"], true, "{ready}");

    // The review records its snapshot; its actions feed the next one.
    let e = as_(
        &h,
        "agent-1",
        "record_management_review",
        json!({"review_date": "2026-12-15", "attendees": ["x"], "improvements": ["y"]}),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }));
    let bad = as_(
        &h,
        "dirk-jan",
        "record_management_review",
        json!({"review_date": "2026-12-15", "attendees": ["dirk-jan"]}),
    )
    .await
    .unwrap_err();
    assert!(bad.to_string().contains("9.3.3"), "{bad}");
    let mr2 = ok(&h, "dirk-jan", "record_management_review", json!({"review_date": "2026-12-15", "attendees": ["dirk-jan", "julian"], "improvements": ["Template for client notices"], "isms_changes": ["none"], "actions": [{"description": "Add notice template", "owner": "agent-1", "due_date": "2027-01-15"}]})).await;
    assert_eq!(mr2["actions"][0]["ref"], "MR-2.1");
    // What readiness counts, each its own: AUD-1, MR-1 and MR-2, OBJ-1..3, two measurements,
    // one competence record.
    let year_ago = (chrono::Utc::now().date_naive() - chrono::Duration::days(365)).to_string();
    let counts = h.app.store.record_counts(&year_ago).await.unwrap();
    assert_eq!(
        counts,
        RecordCounts { audits: 1, reviews: 2, objectives: 3, measurements: 2, competence_records: 1 },
        "{counts:?}"
    );
    assert_eq!(h.app.store.record_counts("2026-10-01").await.unwrap().reviews, 1, "MR-1 was held before");
    let stored = ok(&h, "amber", "get_record", json!({"ref": "MR-2"})).await;
    assert_eq!(stored["record"]["inputs"]["d_performance"]["nonconformities"]["logged"].as_array().unwrap().len(), 4);
    let next = ok(&h, "dirk-jan", "get_management_review_inputs", json!({})).await;
    assert_eq!(next["since"], "2026-12-15");
    let refs: Vec<&str> =
        next["a_previous_actions"].as_array().unwrap().iter().map(|a| a["ref"].as_str().unwrap()).collect();
    assert_eq!(refs, ["MR-1.2", "MR-2.1"], "open actions carry over; MR-1.1 was done before the period");
    assert_eq!(ok(&h, "amber", "verify_audit_trail", json!({})).await["intact"], true);
    lists_match_records_read_one_by_one(&h).await;
    h.app.store.close().await;
}

/// The review inputs and the readiness check read all risks, objectives and audits at once:
/// each must equal the record `get_record` shows (controls, and measurements in the order
/// recorded, with the right record among several); only completed audits held since the date
/// count.
async fn lists_match_records_read_one_by_one(h: &Harness) {
    fn json(v: &impl serde::Serialize) -> Value {
        serde_json::to_value(v).unwrap()
    }
    ok(h, "agent-1", "register_risk", json!({"title": "Lost laptop", "asset": "laptops", "threat": "t", "vulnerability": "v", "properties": ["confidentiality"], "likelihood": 3, "impact": 3, "owner": "bob", "treatment": "mitigate", "controls": ["A.8.1", "A.5.10"]})).await;
    // OBJ-1's second measurement comes after OBJ-2's, and makes it met.
    ok(h, "bob", "record_measurement", json!({"ref": "OBJ-1", "value": 0, "period": "2026-12"})).await;
    ok(h, "amber", "record_audit", json!({"scope": {"processes": ["backup"]}, "criteria": "ISO 27001 A.8.13", "planned_date": "2027-03-01", "auditor": "amber"})).await;
    let store = &h.app.store;
    let shown = async |reference: &str| ok(h, "amber", "get_record", json!({"ref": reference})).await["record"].clone();
    let risks = store.risks(h.app.risk).await.unwrap();
    assert_eq!(risks.len(), 4);
    for r in &risks {
        assert_eq!(json(r), shown(&r.reference).await);
    }
    let objectives = store.objectives().await.unwrap();
    assert_eq!(objectives.iter().map(|o| o.measurements.len()).collect::<Vec<_>>(), [2, 1, 0]);
    assert_eq!(objectives[0].met, Some(true), "the last measurement recorded decides");
    for o in &objectives {
        assert_eq!(json(o), shown(&o.reference).await);
    }
    let audits = store.audits_held_since("").await.unwrap();
    assert_eq!(
        audits.iter().map(|a| a.reference.as_str()).collect::<Vec<_>>(),
        ["AUD-1"],
        "the planned AUD-2 is not held"
    );
    assert_eq!(json(&audits[0]), shown("AUD-1").await);
    assert!(store.audits_held_since("2026-11-21").await.unwrap().is_empty(), "AUD-1 was held on 2026-11-20");
}

#[tokio::test]
async fn sqlite_management_review() {
    let db = TestDb::sqlite();
    suite(&db.url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pack.html");
    let (code, _, err) = run_cli(&db.url, &["review", "pack", "--out", out.to_str().unwrap(), "--since", "2026-09-30"]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>")
            && html.contains("<svg")
            && html.contains("NC-4")
            && html.contains("RISK-2")
            && html.contains("Complaints: 1 (NC-2).")
            && html.contains("Observations: 1 (NC-3)."),
        "{html}"
    );
}

#[tokio::test]
async fn postgres_management_review() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    suite(&db.url).await;
    db.cleanup().await;
}

/// Complaints and observations are nonconformity lists like the others: the newest 100 with
/// a total that counts them all.
#[tokio::test]
async fn sqlite_complaints_and_observations_keep_the_newest_with_totals() {
    let db = TestDb::sqlite();
    let h = Harness::new(&db.url, ACTORS).await;
    for i in 1..=102 {
        ok(&h, "agent-1", "log_nonconformity", json!({"title": format!("Client complaint {i}"), "description": "A client reported a weakness", "severity": "observation", "source": "complaint"})).await;
    }
    let inputs = ok(&h, "amber", "get_management_review_inputs", json!({})).await;
    for (list, total) in [
        (&inputs["e_feedback"]["complaints"], &inputs["e_feedback"]["complaints_total"]),
        (&inputs["g_opportunities"]["observations"], &inputs["g_opportunities"]["observations_total"]),
    ] {
        assert_eq!(*total, 102);
        let refs = list.as_array().unwrap();
        assert_eq!((refs.len(), &refs[0], &refs[99]), (100, &json!("NC-3"), &json!("NC-102")));
    }
    h.app.store.close().await;
}
