//! Clause 10.2 end to end, on SQLite and PostgreSQL: a major nonconformity from logging to
//! closure through every gate with different actors, each premature step refused with the
//! step it misses, an ineffective review reopening it, and the whole history on record.

mod common;

use common::{Harness, TestDb, actor, postgres_url};
use isms::domain::actor::Role;
use isms::error::Error;
use serde_json::{Value, json};

const ACTORS: &[(&str, Role)] =
    &[("agent-1", Role::Agent), ("bob", Role::Agent), ("julian", Role::IsmsManager), ("amber", Role::Auditor)];

struct Cycle {
    h: Harness,
}

impl Cycle {
    async fn as_(&self, who: &str, tool: &str, args: Value) -> Result<Value, Error> {
        let role = ACTORS.iter().find(|(n, _)| *n == who).map(|(_, r)| *r).expect("known actor");
        self.h.call_as(&actor(who, role), tool, args).await
    }

    async fn ok(&self, who: &str, tool: &str, args: Value) -> Value {
        self.as_(who, tool, args.clone()).await.unwrap_or_else(|e| panic!("{who} {tool} {args}: {e}"))
    }

    /// Expects a refusal whose message contains every `needle`.
    async fn refused(&self, who: &str, tool: &str, args: Value, needles: &[&str]) -> Error {
        let e = self.as_(who, tool, args.clone()).await.expect_err(&format!("{who} {tool} {args} must be refused"));
        let msg = e.to_string();
        for n in needles {
            assert!(msg.contains(n), "{tool}: `{msg}` should mention `{n}`");
        }
        e
    }

    async fn record(&self, r: &str) -> Value {
        self.ok("agent-1", "get_record", json!({"ref": r})).await
    }

    async fn version(&self, r: &str) -> i64 {
        self.record(r).await["record"]["version"].as_i64().unwrap()
    }
}

async fn cycle(url: &str) -> Vec<Value> {
    let c = Cycle { h: Harness::new(url, ACTORS).await };

    // An earlier, similar nonconformity.
    c.ok("agent-1", "log_nonconformity", json!({"title": "API token in worker log", "description": "A token was logged by the worker", "severity": "minor", "source": "monitoring", "controls": ["A.8.12"]})).await;

    // a) Logged without correction: the server proposes the similar one.
    let logged = c
        .ok("agent-1", "log_nonconformity", json!({"title": "Database password in worker log", "description": "The worker logged its database password", "severity": "major", "source": "self_report", "controls": ["A.8.12", "A.5.17"]}))
        .await;
    assert_eq!(logged["ref"], "NC-2");
    assert_eq!(logged["status"], "open");
    assert_eq!(logged["next_step"], "record_nonconformity_analysis");
    let record = c.record("NC-2").await;
    let mut read_back = record["record"].clone();
    read_back.as_object_mut().unwrap().remove("change_requests");
    assert_eq!(record["history"][0]["detail"], read_back, "logging chains the record as it is read back");
    assert_eq!(logged["similar"][0]["ref"], "NC-1", "{logged}");
    assert!(logged["similar"][0]["reasons"][0].as_str().unwrap().contains("A.8.12"));

    // Premature steps are refused, naming the step that is missing.
    let plan = json!({"ref": "NC-2", "version": 1, "description": "Redact", "owner": "bob"});
    c.refused("agent-1", "plan_corrective_action", plan.clone(), &["10.2 b)", "record_nonconformity_analysis"]).await;
    c.refused(
        "julian",
        "review_effectiveness",
        json!({"ref": "NC-2", "version": 1, "result": "effective", "notes": "n"}),
        &["record_nonconformity_analysis"],
    )
    .await;
    c.refused(
        "julian",
        "close_nonconformity",
        json!({"ref": "NC-2", "version": 1, "isms_changes": "none"}),
        &["record_nonconformity_analysis"],
    )
    .await;

    // b) Analysis: correction first, every similar one addressed, action decided, fresh version.
    let analysis = |extra: Value| {
        let mut a = json!({"ref": "NC-2", "version": 1, "method": "5 whys", "root_cause": "Config objects logged whole at debug level", "action_needed": true});
        a.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        a
    };
    c.refused(
        "agent-1",
        "record_nonconformity_analysis",
        analysis(json!({"similar": [{"ref": "NC-1", "related": true}]})),
        &["10.2 a)", "correction"],
    )
    .await;
    c.refused(
        "agent-1",
        "record_nonconformity_analysis",
        analysis(json!({"correction": "Password rotated"})),
        &["NC-1", "same control A.8.12"],
    )
    .await;
    c.refused("agent-1", "record_nonconformity_analysis", analysis(json!({"correction": "Password rotated", "similar": [{"ref": "NC-1", "related": true}], "action_needed": false, "justification": "one-off"})), &["major"]).await;
    c.refused("agent-1", "record_nonconformity_analysis", analysis(json!({"correction": "Password rotated", "similar": [{"ref": "NC-99", "related": true}, {"ref": "NC-1", "related": true}]})), &["NC-99"]).await;
    let stale = c
        .refused(
            "agent-1",
            "record_nonconformity_analysis",
            analysis(json!({"version": 7, "correction": "x", "similar": [{"ref": "NC-1", "related": true}]})),
            &["version 1, not 7", "get_record"],
        )
        .await;
    assert!(matches!(stale, Error::Conflict { .. }));
    let analysed = c
        .ok("agent-1", "record_nonconformity_analysis", analysis(json!({"correction": "Password rotated, lines purged", "consequences": "None found in access logs", "similar": [{"ref": "NC-1", "related": true, "note": "same logger"}], "similar_note": "Checked the other two workers"})))
        .await;
    assert_eq!(analysed["status"], "analysed");
    assert_eq!(analysed["next_step"], "plan_corrective_action");
    assert_eq!(analysed["version"], 2);

    // c) Actions: a registered owner, a due date no later than the nonconformity's.
    let nc_due = c.record("NC-2").await["record"]["due_date"].as_str().unwrap().to_owned();
    c.refused(
        "agent-1",
        "plan_corrective_action",
        json!({"ref": "NC-2", "version": 2, "description": "Redact", "owner": "nobody"}),
        &["nobody"],
    )
    .await;
    c.refused(
        "agent-1",
        "plan_corrective_action",
        json!({"ref": "NC-2", "version": 2, "description": "Redact", "owner": "bob", "due_date": "2999-01-01"}),
        &[&nc_due],
    )
    .await;
    let p1 = c
        .ok(
            "agent-1",
            "plan_corrective_action",
            json!({"ref": "NC-2", "version": 2, "description": "Redact secrets in the logger", "owner": "bob"}),
        )
        .await;
    assert_eq!(p1["action"]["ref"], "CA-1");
    assert_eq!(p1["action"]["due_date"], nc_due.as_str());
    assert_eq!(p1["nonconformity"]["status"], "actions_planned");
    let p2 = c.ok("agent-1", "plan_corrective_action", json!({"ref": "NC-2", "version": 3, "description": "Add a secret scanner to CI", "owner": "julian", "idempotency_key": "k-ca2"})).await;
    assert_eq!(p2["action"]["ref"], "CA-2");
    let again = c.ok("agent-1", "plan_corrective_action", json!({"ref": "NC-2", "version": 3, "description": "Add a secret scanner to CI", "owner": "julian", "idempotency_key": "k-ca2"})).await;
    assert_eq!(again["action"]["ref"], "CA-2");
    assert_eq!(again["replayed"], true);

    // Only the owner (or a manager) moves an action; done needs evidence.
    c.refused(
        "agent-1",
        "update_corrective_action",
        json!({"ref": "CA-1", "version": 1, "status": "in_progress"}),
        &["owned by `bob`"],
    )
    .await;
    c.ok(
        "bob",
        "update_corrective_action",
        json!({"ref": "CA-1", "version": 1, "status": "in_progress", "progress": "Patch in review"}),
    )
    .await;
    c.refused("bob", "update_corrective_action", json!({"ref": "CA-1", "version": 2, "status": "done"}), &["evidence"])
        .await;
    let d1 = c
        .ok(
            "bob",
            "update_corrective_action",
            json!({"ref": "CA-1", "version": 2, "status": "done", "evidence": ["commit 1a2b3c"]}),
        )
        .await;
    assert_eq!(d1["nonconformity"]["status"], "actions_planned", "CA-2 is still open");
    c.refused(
        "bob",
        "update_corrective_action",
        json!({"ref": "CA-1", "version": 3, "status": "in_progress"}),
        &["done"],
    )
    .await;
    c.refused(
        "amber",
        "review_effectiveness",
        json!({"ref": "NC-2", "version": c.version("NC-2").await, "result": "effective", "notes": "n"}),
        &["update_corrective_action"],
    )
    .await;
    let d2 = c
        .ok(
            "julian",
            "update_corrective_action",
            json!({"ref": "CA-2", "version": 1, "status": "done", "evidence": ["ci/pipeline/88"]}),
        )
        .await;
    assert_eq!(d2["nonconformity"]["status"], "actions_done");
    assert_eq!(d2["nonconformity"]["next_step"], "review_effectiveness");
    let waiting = c.ok("agent-1", "list_nonconformities", json!({"awaiting_review": true})).await;
    assert_eq!(waiting["items"][0]["ref"], "NC-2");

    // d) Effectiveness: reviewers only, never an action's owner; not effective reopens.
    let v = d2["nonconformity"]["version"].clone();
    let e = c
        .refused(
            "agent-1",
            "review_effectiveness",
            json!({"ref": "NC-2", "version": v, "result": "effective", "notes": "n"}),
            &["agent"],
        )
        .await;
    assert!(matches!(e, Error::Forbidden { .. }));
    c.refused(
        "julian",
        "review_effectiveness",
        json!({"ref": "NC-2", "version": v, "result": "effective", "notes": "n"}),
        &["owns a corrective action"],
    )
    .await;
    let reopened = c.ok("amber", "review_effectiveness", json!({"ref": "NC-2", "version": v, "result": "not_effective", "evidence": ["scan 2026-11"], "notes": "Secrets still appear in the batch worker"})).await;
    assert_eq!(reopened["status"], "analysed");
    assert_eq!(reopened["next_step"], "plan_corrective_action");
    let p3 = c.ok("agent-1", "plan_corrective_action", json!({"ref": "NC-2", "version": reopened["version"], "description": "Redact in the batch worker too", "owner": "bob"})).await;
    assert_eq!(p3["action"]["round"], 2);
    let d3 = c
        .ok(
            "bob",
            "update_corrective_action",
            json!({"ref": "CA-3", "version": 1, "status": "done", "evidence": ["commit 4d5e6f"]}),
        )
        .await;
    assert_eq!(d3["nonconformity"]["status"], "actions_done");
    // julian owned a round-1 action only: now he may review.
    let verified = c.ok("julian", "review_effectiveness", json!({"ref": "NC-2", "version": d3["nonconformity"]["version"], "result": "effective", "notes": "A week of logs without secrets"})).await;
    assert_eq!(verified["status"], "verified");

    // e) Closure: managers only, with the ISMS changes.
    c.refused(
        "amber",
        "close_nonconformity",
        json!({"ref": "NC-2", "version": verified["version"], "isms_changes": "none"}),
        &["isms_manager"],
    )
    .await;
    c.refused(
        "julian",
        "close_nonconformity",
        json!({"ref": "NC-2", "version": verified["version"], "isms_changes": " "}),
        &["isms_changes"],
    )
    .await;
    let closed = c.ok("julian", "close_nonconformity", json!({"ref": "NC-2", "version": verified["version"], "isms_changes": "Logging standard now forbids logging config objects"})).await;
    assert_eq!(closed["status"], "closed");
    assert!(closed["next_step"].is_null());
    c.refused(
        "julian",
        "close_nonconformity",
        json!({"ref": "NC-2", "version": closed["version"], "isms_changes": "none"}),
        &["already closed"],
    )
    .await;
    c.refused(
        "bob",
        "update_corrective_action",
        json!({"ref": "CA-3", "version": 2, "status": "done", "evidence": ["x"]}),
        &["done"],
    )
    .await;

    // The whole cycle is on record.
    let full = c.record("NC-2").await;
    let record = &full["record"];
    assert_eq!(record["analysis"]["method"], "5 whys");
    assert_eq!(record["analysis"]["similar"][0]["ref"], "NC-1");
    assert_eq!(record["actions"].as_array().unwrap().len(), 3);
    let results: Vec<&str> =
        record["reviews"].as_array().unwrap().iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["not_effective", "effective"]);
    assert_eq!(record["round"], 2);
    assert_eq!(record["closed_by"], "julian");
    let ops: Vec<(&str, &str)> = full["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["operation"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ops,
        [
            ("log_nonconformity", "agent-1"),
            ("record_nonconformity_analysis", "agent-1"),
            ("plan_corrective_action", "agent-1"),
            ("plan_corrective_action", "agent-1"),
            ("update_corrective_action", "julian"),
            ("review_effectiveness", "amber"),
            ("plan_corrective_action", "agent-1"),
            ("update_corrective_action", "bob"),
            ("review_effectiveness", "julian"),
            ("close_nonconformity", "julian"),
        ]
    );
    let ca = c.record("CA-1").await;
    assert_eq!(ca["kind"], "corrective_action");
    assert_eq!(ca["record"]["nonconformity"], "NC-2");
    assert_eq!(ca["history"].as_array().unwrap().len(), 3, "planned, in progress, done");

    // An observation may close without corrective action, with a justification.
    c.ok("agent-1", "log_nonconformity", json!({"title": "Wiki page stale", "description": "Access procedure page is a year old", "severity": "observation", "source": "internal_audit", "correction": "Page reviewed"})).await;
    let candidates = c.record("NC-3").await["record"]["similar"].clone();
    let similar: Vec<Value> =
        candidates.as_array().unwrap().iter().map(|s| json!({"ref": s["ref"], "related": false})).collect();
    c.refused("agent-1", "record_nonconformity_analysis", json!({"ref": "NC-3", "version": 1, "method": "review", "root_cause": "No review date", "similar": similar, "action_needed": false}), &["justification"]).await;
    let obs = c.ok("agent-1", "record_nonconformity_analysis", json!({"ref": "NC-3", "version": 1, "method": "review", "root_cause": "No review date", "similar": similar, "action_needed": false, "justification": "Annual review already scheduled"})).await;
    assert_eq!(obs["next_step"], "close_nonconformity");
    c.refused(
        "agent-1",
        "plan_corrective_action",
        json!({"ref": "NC-3", "version": 2, "description": "x", "owner": "bob", "due_date": "2099-01-01"}),
        &["no corrective action is needed"],
    )
    .await;
    let closed =
        c.ok("julian", "close_nonconformity", json!({"ref": "NC-3", "version": 2, "isms_changes": "none"})).await;
    assert_eq!(closed["status"], "closed");

    // A new nonconformity on a control with a recently closed one is flagged as a recurrence.
    let recurring = c.ok("agent-1", "log_nonconformity", json!({"title": "Secret in CI output", "description": "A token printed by a test", "severity": "minor", "source": "monitoring", "controls": ["A.5.17"]})).await;
    assert_eq!(recurring["recurrence_of"], json!(["NC-2"]));

    // An open action past its due date makes its nonconformity overdue.
    let r = c.ok("agent-1", "record_nonconformity_analysis", json!({"ref": "NC-4", "version": 1, "correction": "Token revoked", "method": "5 whys", "root_cause": "Test prints env", "similar": [{"ref": "NC-2", "related": true}, {"ref": "NC-1", "related": false}], "action_needed": true})).await;
    c.ok(
        "agent-1",
        "plan_corrective_action",
        json!({"ref": "NC-4", "version": r["version"], "description": "Mask env in tests", "owner": "bob"}),
    )
    .await;
    c.h.raw("UPDATE corrective_actions SET due_date = '2001-01-01' WHERE number = 4").await;
    let overdue = c.ok("agent-1", "list_nonconformities", json!({"overdue": true})).await;
    let refs: Vec<&str> = overdue["items"].as_array().unwrap().iter().map(|i| i["ref"].as_str().unwrap()).collect();
    assert_eq!(refs, ["NC-4"]);
    assert_eq!(c.record("CA-4").await["record"]["overdue"], true);
    // Every record so far, for comparing backends (the races below may end either way).
    let records = c.every_record().await;

    // Two owners finishing the last two actions at once: the nonconformity still moves on.
    for round in 0..3 {
        let logged = c.ok("agent-1", "log_nonconformity", json!({"title": format!("Race {round}"), "description": "two owners", "severity": "minor", "source": "monitoring", "correction": "contained"})).await;
        let r = logged["ref"].as_str().unwrap().to_owned();
        let similar: Vec<Value> =
            logged["similar"].as_array().unwrap().iter().map(|s| json!({"ref": s["ref"], "related": false})).collect();
        c.ok("agent-1", "record_nonconformity_analysis", json!({"ref": r, "version": 1, "method": "5 whys", "root_cause": "x", "similar": similar, "action_needed": true})).await;
        let p1 = c
            .ok(
                "agent-1",
                "plan_corrective_action",
                json!({"ref": r, "version": 2, "description": "one", "owner": "bob"}),
            )
            .await;
        let p2 = c
            .ok(
                "agent-1",
                "plan_corrective_action",
                json!({"ref": r, "version": 3, "description": "two", "owner": "agent-1"}),
            )
            .await;
        let (x, y) = tokio::join!(
            c.as_(
                "bob",
                "update_corrective_action",
                json!({"ref": p1["action"]["ref"], "version": 1, "status": "done", "evidence": ["e1"]})
            ),
            c.as_(
                "agent-1",
                "update_corrective_action",
                json!({"ref": p2["action"]["ref"], "version": 1, "status": "done", "evidence": ["e2"]})
            ),
        );
        x.unwrap();
        y.unwrap();
        assert_eq!(c.record(&r).await["record"]["status"], "actions_done", "round {round}");
    }

    // Every step published its event; the chain holds.
    let events: Vec<String> =
        c.h.app
            .store
            .claim_pending(500)
            .await
            .unwrap()
            .expect("no other relay")
            .events
            .into_iter()
            .map(|e| e.event_type)
            .collect();
    for expected in [
        "nonconformity.analysed",
        "corrective_action.planned",
        "corrective_action.updated",
        "corrective_action.done",
        "nonconformity.actions_done",
        "nonconformity.reopened",
        "nonconformity.verified",
        "nonconformity.closed",
    ] {
        assert!(events.iter().any(|e| e == expected), "no {expected} event in {events:?}");
    }
    assert_eq!(c.ok("amber", "verify_audit_trail", json!({})).await["intact"], true);
    c.h.app.store.close().await;
    records
}

impl Cycle {
    /// `get_record` of every nonconformity and corrective action, each time stamp replaced by
    /// its rank among the time stamps read: two runs of the cycle differ in their times, not
    /// in their order.
    async fn every_record(&self) -> Vec<Value> {
        type Stamp = chrono::DateTime<chrono::FixedOffset>;
        fn stamps(v: &Value, out: &mut Vec<Stamp>) {
            match v {
                Value::String(s) => out.extend(chrono::DateTime::parse_from_rfc3339(s).ok()),
                Value::Array(items) => items.iter().for_each(|i| stamps(i, out)),
                Value::Object(fields) => fields.values().for_each(|f| stamps(f, out)),
                _ => {}
            }
        }
        fn ranked(v: &mut Value, order: &[Stamp]) {
            match v {
                Value::String(s) => {
                    if let Some(rank) =
                        chrono::DateTime::parse_from_rfc3339(s).ok().and_then(|t| order.binary_search(&t).ok())
                    {
                        *s = format!("<time {rank}>");
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(|i| ranked(i, order)),
                Value::Object(fields) => fields.values_mut().for_each(|f| ranked(f, order)),
                _ => {}
            }
        }
        let mut records = Vec::new();
        for prefix in ["NC", "CA"] {
            for n in 1.. {
                match self.as_("agent-1", "get_record", json!({"ref": format!("{prefix}-{n}")})).await {
                    Ok(record) => records.push(record),
                    Err(Error::NotFound { .. }) => break,
                    Err(e) => panic!("{prefix}-{n}: {e}"),
                }
            }
        }
        let mut order = Vec::new();
        records.iter().for_each(|r| stamps(r, &mut order));
        order.sort();
        order.dedup();
        records.iter_mut().for_each(|r| ranked(r, &order));
        records
    }
}

#[tokio::test]
async fn sqlite_nonconformity_cycle() {
    let db = TestDb::sqlite();
    cycle(&db.url).await;
}

/// The cycle on PostgreSQL, where a record is read with its actions, reviews, change requests
/// and history in one statement and decoded from JSON; every record must read exactly as it
/// does from SQLite, where each part is its own query.
#[tokio::test]
async fn postgres_nonconformity_cycle_reads_every_record_as_sqlite_does() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    let on_postgres = cycle(&db.url).await;
    db.cleanup().await;
    let on_sqlite = cycle(&TestDb::sqlite().url).await;
    assert_eq!(on_sqlite.len(), 8, "NC-1 to NC-4 and CA-1 to CA-4");
    assert!(on_sqlite.iter().any(|r| !r["record"]["reviews"].as_array().is_none_or(Vec::is_empty)));
    assert_eq!(on_postgres.len(), on_sqlite.len());
    for (pg, lite) in on_postgres.iter().zip(&on_sqlite) {
        assert_eq!(pg, lite, "{} reads differently on PostgreSQL", lite["ref"]);
    }
}
