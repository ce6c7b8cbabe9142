//! The plans SQLite chooses for the queries that must stay fast at a million entries. No
//! `ANALYZE` runs, so SQLite plans from the schema and the query alone: the plan on an empty
//! database is the plan at any size. A change of query or index that turns one of these into
//! a scan fails here instead of showing first in a benchmark (one such change took a 15 ms
//! list to 21 s).

use chrono::NaiveDate;

use super::audit::HISTORY;
use super::nonconformities::{NcFilter, list_query};
use super::people::acknowledged_query;
use super::review::{ACTIONS_DONE_SINCE, NC_FACTS, NCS_CLOSED_SINCE, actions_overdue_query, aggregated};
use super::soa::soa_query;
use super::{Store, sql, sqlite_url};
use crate::domain::nonconformity::{NcStatus, Severity};
use crate::domain::references::ControlRef;

/// A migrated, empty SQLite database and a native connection to it.
async fn migrated() -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("plans.db");
    Store::open(&sqlite_url(&file)).await.expect("migrated").close().await;
    let conn = sql::open_native(&file, "PRAGMA query_only = ON;").expect("native connection");
    (dir, conn)
}

/// The detail lines of `EXPLAIN QUERY PLAN` for `sql` (parameters bound to NULL).
fn plan(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("the query prepares");
    let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
    let rows = stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3)).expect("explained");
    rows.collect::<Result<_, _>>().expect("plan rows")
}

fn unfiltered() -> NcFilter {
    NcFilter {
        status: None,
        severity: None,
        source: None,
        control: None,
        overdue: false,
        awaiting_review: false,
        text: None,
        before: None,
        limit: 50,
        today: NaiveDate::from_ymd_opt(2026, 11, 28).expect("a date"),
    }
}

#[tokio::test]
async fn nonconformity_lists_use_their_indexes() {
    let (_dir, conn) = migrated().await;

    // Each listed nonconformity's late actions, in the overdue filter and the overdue flag:
    // one probe of the partial index of open actions, not of the (status, due_date) index.
    let overdue = plan(&conn, &list_query(&NcFilter { overdue: true, ..unfiltered() }).0);
    let late: Vec<&String> = overdue.iter().filter(|l| l.contains(" ca ")).collect();
    assert_eq!(late.len(), 2, "{overdue:#?}");
    for line in late {
        assert_eq!(line, "SEARCH ca USING INDEX corrective_actions_late (nc=? AND due_date<?)", "{overdue:#?}");
    }

    let by_status =
        NcFilter { status: Some(NcStatus::ActionsPlanned), severity: Some(Severity::Major), ..unfiltered() };
    let by_status = plan(&conn, &list_query(&by_status).0);
    assert_eq!(by_status[0], "SEARCH nonconformities USING INDEX nonconformities_status (status=?)", "{by_status:#?}");

    let control = ControlRef::parse("control", "A.8.28").expect("a control");
    let by_control = plan(&conn, &list_query(&NcFilter { control: Some(control), ..unfiltered() }).0);
    assert!(
        by_control
            .contains(&"SEARCH nc_controls USING COVERING INDEX sqlite_autoindex_nc_controls_1 (control=?)".into()),
        "{by_control:#?}"
    );
    assert!(!by_control.iter().any(|l| l.starts_with("SCAN nc_controls")), "{by_control:#?}");
}

#[tokio::test]
async fn review_history_and_awareness_queries_use_their_indexes() {
    let (_dir, conn) = migrated().await;

    let overdue_actions = plan(&conn, &actions_overdue_query());
    assert_eq!(
        overdue_actions,
        [
            "SEARCH ca USING INDEX corrective_actions_open (status=? AND due_date<?)",
            "SEARCH n USING INTEGER PRIMARY KEY (rowid=?)"
        ]
    );

    assert_eq!(plan(&conn, HISTORY), ["SEARCH audit_log USING INDEX audit_log_record (record_ref=?)"]);

    assert_eq!(
        plan(&conn, &acknowledged_query()),
        [
            "SEARCH policies USING INDEX policies_current (is_current=?)",
            "CORRELATED SCALAR SUBQUERY 1",
            "SEARCH a USING COVERING INDEX sqlite_autoindex_acknowledgements_1 (actor=? AND policy_id=? AND version=?)",
            "CORRELATED SCALAR SUBQUERY 2",
            "SEARCH a USING INDEX acknowledgements_actor (actor=? AND policy_id=?)"
        ]
    );
}

#[tokio::test]
async fn review_inputs_and_the_soa_read_indexes_not_tables() {
    let (_dir, conn) = migrated().await;
    for (sql, line) in [
        (NC_FACTS.to_owned(), "SEARCH nonconformities USING COVERING INDEX nonconformities_created (created_at>?)"),
        (
            aggregated(NCS_CLOSED_SINCE),
            "SEARCH nonconformities USING COVERING INDEX nonconformities_closed (closed_at>?)",
        ),
        (
            aggregated(ACTIONS_DONE_SINCE),
            "SEARCH corrective_actions USING COVERING INDEX corrective_actions_done (status=? AND updated_at>?)",
        ),
        (
            aggregated(&actions_overdue_query()),
            "SEARCH ca USING INDEX corrective_actions_open (status=? AND due_date<?)",
        ),
    ] {
        let plan = plan(&conn, &sql);
        assert!(plan.iter().any(|l| l == line), "{sql}: {plan:#?}");
        assert!(!plan.iter().any(|l| l.starts_with("SCAN")), "{sql}: {plan:#?}");
    }
    let one = plan(&conn, &soa_query(true));
    assert!(!one.iter().any(|l| l.starts_with("SCAN")), "one control's entry and links are looked up: {one:#?}");
}
