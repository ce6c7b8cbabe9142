//! The store suite: the same checks through the operation registry against a real SQLite
//! file and a real PostgreSQL database.

mod common;

use common::{Harness, TestDb, actor, postgres_url};
use isms::domain::actor::Role;
use isms::error::Error;
use isms::operations::Registry;
use isms::store::Store;
use serde_json::{Value, json};

fn nc(title: &str, severity: &str, controls: &[&str]) -> Value {
    json!({
        "title": title,
        "description": format!("{title}: found during work"),
        "severity": severity,
        "source": "self_report",
        "controls": controls,
    })
}

async fn suite(url: &str) {
    let h =
        Harness::new(url, &[("agent-1", Role::Agent), ("julian", Role::IsmsManager), ("guest", Role::Viewer)]).await;

    // Logging: ref, status, due date, validated and canonical controls, history.
    let logged = h
        .ok(
            "log_nonconformity",
            json!({
                "title": "API key printed in CI log",
                "description": "The deploy job echoed STRIPE_KEY",
                "severity": "major",
                "source": "monitoring",
                "clauses": ["8.1"],
                "controls": ["a.8.12", "A.8.12", "8.28"],
                "evidence": ["ci/run/123"],
                "correction": "Key rotated and log purged",
                "due_date": "2099-01-31"
            }),
        )
        .await;
    assert_eq!(logged["ref"], "NC-1");
    assert_eq!(logged["status"], "corrected", "a correction given at logging is step a) done");
    assert_eq!(logged["due_date"], "2099-01-31");
    assert_eq!(logged["version"], 1);
    assert_eq!(logged["next_step"], "record_nonconformity_analysis");
    assert_eq!(logged["replayed"], false);

    let record = h.ok("get_record", json!({"ref": "nc-1"})).await;
    assert_eq!(record["record"]["controls"], json!(["A.8.12", "A.8.28"]));
    assert_eq!(record["kind"], "nonconformity");
    assert_eq!(record["record"]["title"], "API key printed in CI log");
    let history = record["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["operation"], "log_nonconformity");
    assert_eq!(history[0]["actor"], "agent-1");
    // The record logging returned and chained (built in memory) is the one read back.
    let mut read_back = record["record"].clone();
    read_back.as_object_mut().unwrap().remove("change_requests");
    assert_eq!(history[0]["detail"], read_back);

    // Bad input changes nothing.
    for (args, field) in [
        (nc("", "major", &[]), "title"),
        (nc("x", "severe", &[]), "severity"),
        (nc("x", "minor", &["A.9.1"]), "controls"),
        (json!({"title": "x", "description": "y", "severity": "minor", "source": "gossip"}), "source"),
        (
            json!({"title": "x", "description": "y", "severity": "minor", "source": "incident", "clauses": ["11.2"]}),
            "clauses",
        ),
        (
            json!({"title": "x", "description": "y", "severity": "minor", "source": "incident", "due_date": "2020-01-01"}),
            "due_date",
        ),
        (json!({"title": "x", "description": "y", "severity": "minor", "source": "incident", "extra": 1}), "extra"),
        (json!({"title": 5, "description": "y", "severity": "minor", "source": "incident"}), "title"),
    ] {
        let e = h.call("log_nonconformity", args.clone()).await.expect_err(&format!("{args} must be refused"));
        assert!(matches!(e, Error::Invalid { .. }), "{args}: {e}");
        assert!(e.to_string().contains(field), "{args}: message `{e}` should name {field}");
    }
    let missing = h.call("log_nonconformity", json!({"title": "x"})).await.unwrap_err().to_string();
    assert!(missing.contains("missing field"), "{missing}");
    let page = h.ok("list_nonconformities", json!({})).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "refused calls created nothing");

    // A viewer may read but not log.
    let viewer = actor("guest", Role::Viewer);
    let e = h.call_as(&viewer, "log_nonconformity", nc("x", "minor", &[])).await.unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e}");
    h.call_as(&viewer, "list_nonconformities", json!({})).await.unwrap();

    // Idempotency: a retry returns the same record; a different call under the key is refused.
    let with_key = json!({"title": "Backup not tested", "description": "No restore test this quarter", "severity": "minor", "source": "internal_audit", "controls": ["A.8.13"], "idempotency_key": "agent-1/backup-check"});
    let a = h.ok("log_nonconformity", with_key.clone()).await;
    let b = h.ok("log_nonconformity", with_key.clone()).await;
    assert_eq!(a["ref"], b["ref"]);
    assert_eq!(b["replayed"], true);
    let mut changed = with_key.clone();
    changed["title"] = json!("Something else");
    let e = h.call("log_nonconformity", changed).await.unwrap_err();
    assert!(matches!(e, Error::Rule { .. }) && e.to_string().contains("idempotency_key"), "{e}");
    let history = h.ok("get_record", json!({"ref": a["ref"]})).await;
    assert_eq!(history["history"].as_array().unwrap().len(), 1, "the retry wrote no second entry");

    // More records for filters and paging.
    h.ok("log_nonconformity", nc("Laptop unencrypted", "major", &["A.8.1"])).await;
    h.ok("log_nonconformity", nc("Access review late 100%_done", "observation", &["A.5.18"])).await;
    h.ok("log_nonconformity", nc("Secure coding rule skipped", "minor", &["A.8.28"])).await;
    let refs = |v: &Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|i| i["ref"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(refs(&h.ok("list_nonconformities", json!({})).await), ["NC-5", "NC-4", "NC-3", "NC-2", "NC-1"]);
    assert_eq!(refs(&h.ok("list_nonconformities", json!({"control": "A.8.28"})).await), ["NC-5", "NC-1"]);
    assert_eq!(refs(&h.ok("list_nonconformities", json!({"severity": "major"})).await), ["NC-3", "NC-1"]);
    assert_eq!(refs(&h.ok("list_nonconformities", json!({"status": "corrected"})).await), ["NC-1"]);
    assert_eq!(refs(&h.ok("list_nonconformities", json!({"source": "internal_audit"})).await), ["NC-2"]);
    assert_eq!(refs(&h.ok("list_nonconformities", json!({"text": "LAPTOP"})).await), ["NC-3"]);
    assert_eq!(
        refs(&h.ok("list_nonconformities", json!({"text": "100%_"})).await),
        ["NC-4"],
        "wildcards match literally"
    );
    assert!(refs(&h.ok("list_nonconformities", json!({"text": "'; DROP TABLE nonconformities; --"})).await).is_empty());
    assert!(h.call("list_nonconformities", json!({"control": "A.99"})).await.is_err());
    assert!(h.call("list_nonconformities", json!({"limit": 0})).await.is_err());
    assert!(h.call("list_nonconformities", json!({"limit": 201})).await.is_err());
    assert!(h.call("list_nonconformities", json!({"cursor": "garbage"})).await.is_err());

    // Overdue: only open records past their due date.
    assert!(refs(&h.ok("list_nonconformities", json!({"overdue": true})).await).is_empty());
    h.raw("UPDATE nonconformities SET due_date = '2000-01-01' WHERE number = 3").await;
    let overdue = h.ok("list_nonconformities", json!({"overdue": true})).await;
    assert_eq!(refs(&overdue), ["NC-3"]);
    assert_eq!(overdue["items"][0]["overdue"], true);

    // Paging: every record once, in order, and the last page has no cursor.
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let mut args = json!({"limit": 2});
        if !cursor.is_null() {
            args["cursor"] = cursor.clone();
        }
        let page = h.ok("list_nonconformities", args).await;
        seen.extend(refs(&page));
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(seen, ["NC-5", "NC-4", "NC-3", "NC-2", "NC-1"]);

    // Concurrent writers: unique refs, one unbroken chain (hashing the UTF-8 bytes of any text).
    let mut tasks = Vec::new();
    for i in 0..24 {
        let app = h.app.clone();
        let op = Registry::new();
        tasks.push(tokio::spawn(async move {
            op.get("log_nonconformity")
                .unwrap()
                .call(
                    app,
                    actor("agent-1", Role::Agent),
                    nc(&format!("concurrent {i}: Zürich — ✓ 監査"), "minor", &["A.5.1"]),
                )
                .await
                .map(|v| v["ref"].as_str().unwrap().to_owned())
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        created.push(t.await.unwrap().expect("concurrent write"));
    }
    created.sort();
    created.dedup();
    assert_eq!(created.len(), 24, "no duplicate refs");

    // Verification while others write: never a false alarm.
    let writer = {
        let app = h.app.clone();
        tokio::spawn(async move {
            let op = Registry::new();
            for i in 0..30 {
                op.get("log_nonconformity")
                    .unwrap()
                    .call(app.clone(), actor("agent-1", Role::Agent), nc(&format!("during verify {i}"), "minor", &[]))
                    .await
                    .expect("write during verification");
            }
        })
    };
    for _ in 0..15 {
        let report = h.ok("verify_audit_trail", json!({})).await;
        assert_eq!(report["intact"], true, "a verification during writes: {report}");
    }
    writer.await.unwrap();

    // Every write has its outbox event.
    let events = h.app.store.claim_pending(1000).await.unwrap().expect("no other relay").events;
    let nc_events = events.iter().filter(|e| e.event_type == "nonconformity.logged").count();
    assert_eq!(nc_events, 59);
    assert_eq!(h.app.store.outbox_backlog().await.unwrap(), events.len() as i64);

    // The chain is intact, then tampering and truncation are found.
    let report = h.ok("verify_audit_trail", json!({})).await;
    assert_eq!(report["intact"], true, "{report}");
    let total = report["entries_checked"].as_i64().unwrap();
    assert_eq!(total, 3 + 59, "3 actors and 59 nonconformities");
    h.raw("UPDATE audit_log SET detail = '{\"title\":\"nothing happened\"}' WHERE seq = 5").await;
    let report = h.ok("verify_audit_trail", json!({})).await;
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_broken_seq"], 5);
    assert!(report["problem"].as_str().unwrap().contains("altered"), "{report}");

    h.app.store.close().await;
}

async fn truncation_is_found(url: &str) {
    let h =
        Harness::new(url, &[("agent-1", Role::Agent), ("julian", Role::IsmsManager), ("guest", Role::Viewer)]).await;
    h.ok("log_nonconformity", nc("one", "minor", &[])).await;
    h.ok("log_nonconformity", nc("two", "minor", &[])).await;
    h.raw("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)").await;
    let report = h.ok("verify_audit_trail", json!({})).await;
    assert_eq!(report["intact"], false, "{report}");
    assert!(report["problem"].as_str().unwrap().contains("removed"), "{report}");
    h.app.store.close().await;
}

/// Every open checks the applied migrations against the embedded ones (a quick path skips the
/// migrator only when all match): an edited or failed migration stops the server from
/// starting on that database.
async fn changed_migrations_are_refused(url: &str, some_checksum: &str) {
    Store::open(url).await.expect("a new database is migrated").close().await;
    Store::open(url).await.expect("a current database opens").close().await;
    common::raw_sql(url, "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 3").await;
    let failed = Store::open(url).await.expect_err("a failed migration is refused");
    assert!(failed.to_string().contains("migration 3 is partially applied"), "{failed}");
    let edit = format!("UPDATE _sqlx_migrations SET success = TRUE, checksum = {some_checksum} WHERE version = 3");
    common::raw_sql(url, &edit).await;
    let edited = Store::open(url).await.expect_err("an edited migration is refused");
    assert!(edited.to_string().contains("migration 3 was previously applied but has been modified"), "{edited}");
}

/// Concurrent writes, some abandoned and some cancelled mid-way: exactly the committed ones
/// are kept, each acknowledged only once durable, in one unbroken chain (on SQLite they
/// share group-commit transactions, so an abandoned write must not take its batch with it).
async fn abandoned_writes_leave_the_others(url: &str) {
    use isms::store::{Change, Store};
    let store = Store::open(url).await.unwrap();
    let before = store.verify_chain().await.unwrap().entries_checked;
    let write = |store: Store, i: usize| async move {
        let mut w = store.begin_write().await.unwrap();
        let detail = json!({ "i": i });
        let record = format!("test:{i}");
        let change =
            Change { actor: "tests", operation: "test", record: &record, event: "test.written", detail: &detail };
        w.record(change).unwrap();
        match i % 4 {
            // Abandoned: dropped without commit after writing.
            1 => false,
            // Dropped after letting the other writers run (every eighth is also aborted by the
            // test, at whatever point it has reached: waiting for its turn, or in it).
            3 => {
                tokio::task::yield_now().await;
                false
            }
            _ => {
                w.commit().await.unwrap();
                true
            }
        }
    };
    let mut tasks = Vec::new();
    for i in 0..64 {
        let task = tokio::spawn(write(store.clone(), i));
        if i % 8 == 7 {
            task.abort();
        }
        tasks.push((i, task));
    }
    let mut kept = Vec::new();
    for (i, task) in tasks {
        if let Ok(true) = task.await {
            kept.push(i);
        }
    }
    let report = store.verify_chain().await.unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.entries_checked - before, kept.len() as i64, "exactly the acknowledged writes are kept");
    for i in kept {
        let history = store.history(&format!("test:{i}")).await.unwrap();
        assert_eq!(history.len(), 1, "test:{i} kept once");
    }
    for i in [1, 5, 9] {
        assert!(store.history(&format!("test:{i}")).await.unwrap().is_empty(), "test:{i} was abandoned");
    }
    store.close().await;
}

/// A write that records a change and then takes a number, beside one that takes the number
/// and then records (as recording an audit with findings does beside logging a
/// nonconformity): both commit, in one chain. Appending when recorded would take the chain
/// head's lock first on PostgreSQL, and the two would wait on each other until the database
/// aborted one (the sleep below gives the second write time to take its number first).
async fn records_then_numbers_do_not_deadlock(url: &str) {
    use isms::domain::references::RecordKind;
    let store = Store::open(url).await.unwrap();
    let before = store.verify_chain().await.unwrap().entries_checked;
    let mut first = store.begin_write().await.unwrap();
    first.record(test_change("test:first")).unwrap();
    let second = tokio::spawn({
        let store = store.clone();
        async move {
            let mut w = store.begin_write().await?;
            w.next_number(RecordKind::Nonconformity).await?;
            w.record(test_change("test:second")).unwrap();
            w.commit().await
        }
    });
    // On PostgreSQL, let the second write take its number and reach its commit before the
    // first asks for one (on SQLite the second waits for the writer until the first commits).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    first.next_number(RecordKind::Nonconformity).await.expect("the first write takes a number");
    first.commit().await.expect("the first write commits");
    second.await.unwrap().expect("the second write commits");
    let report = store.verify_chain().await.unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.entries_checked - before, 2);
    store.close().await;
}

/// Reads from one `Store::snapshot` see one state of the database, as `get_record` relies on
/// for a record and its history: a write committed between two of them is seen only after the
/// snapshot ends. The write does not wait for the snapshot.
async fn a_snapshot_sees_one_state(url: &str) {
    let store = Store::open(url).await.unwrap();
    let write = async |store: &Store| {
        let mut w = store.begin_write().await.unwrap();
        w.record(test_change("test:snapshot")).unwrap();
        w.commit().await.unwrap();
    };
    write(&store).await;
    let mut snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.history("test:snapshot").await.unwrap().len(), 1);
    write(&store).await;
    assert_eq!(store.history("test:snapshot").await.unwrap().len(), 2, "committed and seen outside the snapshot");
    assert_eq!(snapshot.history("test:snapshot").await.unwrap().len(), 1, "the snapshot still sees its state");
    snapshot.finish().await.unwrap();
    let mut later = store.snapshot().await.unwrap();
    assert_eq!(later.history("test:snapshot").await.unwrap().len(), 2, "a new snapshot sees the write");
    later.finish().await.unwrap();
    store.close().await;
}

/// A test change to `record`.
fn test_change(record: &str) -> isms::store::Change<'_> {
    static DETAIL: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));
    isms::store::Change { actor: "tests", operation: "test", record, event: "test.written", detail: &DETAIL }
}

/// Starts a write that records a change to `record`, returning once it holds its turn (on
/// SQLite, the writer); it commits when the sender is used.
async fn held_write(
    store: &Store,
    record: &'static str,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<isms::error::Result<()>>) {
    let (ready, is_ready) = tokio::sync::oneshot::channel();
    let (go, goes) = tokio::sync::oneshot::channel::<()>();
    let write = tokio::spawn({
        let store = store.clone();
        async move {
            let mut w = store.begin_write().await.unwrap();
            w.record(test_change(record)).unwrap();
            ready.send(()).unwrap();
            goes.await.unwrap();
            w.commit().await
        }
    });
    is_ready.await.unwrap();
    (go, write)
}

/// The relay's claim, once the one dropped before it is released (PostgreSQL rolls a dropped
/// transaction back in the background, as when a relay gives up on Redis).
async fn claim_once_released(store: &Store) -> isms::store::Claimed {
    for _ in 0..250 {
        if let Some(claimed) = store.claim_pending(100).await.unwrap() {
            return claimed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the dropped claim was not released within 5 s");
}

/// The relay publishes only committed events, one relay at a time (a second replica on the
/// same database finds the claim taken), and neither waits for the writer nor holds it. On SQLite an
/// event appended to a group-commit batch that is not committed yet must not be claimed: if
/// the batch then failed, Redis would hold an event for a change that never happened.
async fn the_relay_claims_committed_events_one_relay_at_a_time(url: &str) {
    let store = Store::open(url).await.unwrap();
    let replica = Store::open(url).await.unwrap();
    // A writes and, on SQLite, hands its batch to B before the batch commits: A's event is
    // in the open transaction B now holds.
    let (go, a) = held_write(&store, "test:a").await;
    let mut b = Box::pin(store.begin_write());
    let _ = futures::poll!(&mut b);
    go.send(()).unwrap();
    let mut b = b.await.unwrap();
    b.record(test_change("test:b")).unwrap();

    // On PostgreSQL A commits on its own meanwhile, so the claim is bracketed by two reads.
    let committed = async || -> Vec<i64> { replica.events_after(0, 100).await.unwrap().iter().map(|e| e.id).collect() };
    let before = committed().await;
    if store.backend() == isms::store::Backend::Sqlite {
        assert!(before.is_empty(), "A's event waits, uncommitted, in the batch B holds: {before:?}");
    }
    let claim = tokio::time::timeout(std::time::Duration::from_secs(5), store.claim_pending(100));
    let claimed = claim.await.expect("the relay does not wait for the writer").unwrap().expect("no other relay");
    let after = committed().await;
    let ids: Vec<i64> = claimed.events.iter().map(|e| e.id).collect();
    assert!(ids.starts_with(&before) && after.starts_with(&ids), "committed events only: {before:?} {ids:?} {after:?}");
    assert!(replica.claim_pending(100).await.unwrap().is_none(), "one relay at a time");
    // Writes go on while the relay holds its claim (and waits on Redis).
    let commit = tokio::time::timeout(std::time::Duration::from_secs(5), b.commit());
    commit.await.expect("writes do not wait for the relay").unwrap();
    a.await.unwrap().unwrap();
    drop(claimed);
    let claimed = claim_once_released(&replica).await;
    let refs: Vec<&str> = claimed.events.iter().map(|e| e.record_ref.as_str()).collect();
    assert_eq!(refs, ["test:a", "test:b"], "both events, in commit order");
    claimed.published().await.unwrap();
    assert!(store.claim_pending(100).await.unwrap().expect("released after marking").events.is_empty());
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    replica.close().await;
    store.close().await;
}

/// The chain walked in segments at once finds the same breaks as one walk: an altered entry
/// in a middle segment, an entry removed at a segment boundary, a truncated end.
async fn segmented_walks_find_every_break(url: &str) {
    use isms::store::{Change, Store};
    let store = Store::open(url).await.unwrap();
    for i in 0..40 {
        let mut w = store.begin_write().await.unwrap();
        let detail = json!({ "i": i });
        let change =
            Change { actor: "tests", operation: "test", record: "test:x", event: "test.written", detail: &detail };
        w.record(change).unwrap();
        w.commit().await.unwrap();
    }
    let whole = store.verify_chain_in(1, 0).await.unwrap();
    let split = store.verify_chain_in(4, 0).await.unwrap();
    assert!(whole.intact && split.intact, "{whole:?} {split:?}");
    assert_eq!((split.entries_checked, &split.head_hash), (40, &whole.head_hash));

    let raw = |sql: &'static str| common::raw_sql(url, sql);
    raw("UPDATE audit_log SET detail = '{\"i\":99}' WHERE seq = 25").await;
    for parts in [1, 3, 4] {
        let r = store.verify_chain_in(parts, 0).await.unwrap();
        assert_eq!((r.intact, r.first_broken_seq, r.entries_checked), (false, Some(25), 24), "{parts}: {r:?}");
        assert!(r.problem.unwrap().contains("altered"));
    }
    raw("UPDATE audit_log SET detail = '{\"i\":24}' WHERE seq = 25").await;
    assert!(store.verify_chain_in(4, 0).await.unwrap().intact);
    // Entry 20 ends the second of four segments.
    raw("DELETE FROM audit_log WHERE seq = 20").await;
    for parts in [1, 4] {
        let r = store.verify_chain_in(parts, 0).await.unwrap();
        assert_eq!((r.intact, r.entries_checked), (false, 19), "{parts}: {r:?}");
        assert!(r.problem.unwrap().contains("entry 20 is missing"), "{parts}");
    }
    store.close().await;
}

#[tokio::test]
async fn sqlite_segmented_walks_find_every_break() {
    let db = TestDb::sqlite();
    segmented_walks_find_every_break(&db.url).await;
}

#[tokio::test]
async fn postgres_segmented_walks_find_every_break() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    segmented_walks_find_every_break(&db.url).await;
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_abandoned_writes_leave_the_others() {
    let db = TestDb::sqlite();
    abandoned_writes_leave_the_others(&db.url).await;
}

#[tokio::test]
async fn postgres_abandoned_writes_leave_the_others() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    abandoned_writes_leave_the_others(&db.url).await;
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_the_relay_claims_committed_events_one_relay_at_a_time() {
    let db = TestDb::sqlite();
    the_relay_claims_committed_events_one_relay_at_a_time(&db.url).await;
}

/// A replica that names the database through a symbolic link shares the relay lock: two
/// lock files would let two relays publish the same events.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_replicas_naming_the_file_through_a_link_share_the_relay_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (file, link) = (dir.path().join("isms.db"), dir.path().join("elsewhere").join("link.db"));
    let store = Store::open(&isms::store::sqlite_url(&file)).await.unwrap();
    std::fs::create_dir(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let replica = Store::open(&isms::store::sqlite_url(&link)).await.unwrap();
    let claimed = store.claim_pending(100).await.unwrap().expect("no other relay");
    assert!(replica.claim_pending(100).await.unwrap().is_none(), "one relay at a time");
    drop(claimed);
    assert!(replica.claim_pending(100).await.unwrap().is_some(), "the claim was released");
    replica.close().await;
    store.close().await;
}

#[tokio::test]
async fn postgres_the_relay_claims_committed_events_one_relay_at_a_time() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    the_relay_claims_committed_events_one_relay_at_a_time(&db.url).await;
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_a_snapshot_sees_one_state() {
    let db = TestDb::sqlite();
    a_snapshot_sees_one_state(&db.url).await;
}

#[tokio::test]
async fn postgres_a_snapshot_sees_one_state() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    a_snapshot_sees_one_state(&db.url).await;
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_records_then_numbers_do_not_deadlock() {
    let db = TestDb::sqlite();
    records_then_numbers_do_not_deadlock(&db.url).await;
}

#[tokio::test]
async fn postgres_records_then_numbers_do_not_deadlock() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    records_then_numbers_do_not_deadlock(&db.url).await;
    db.cleanup().await;
}

/// A batch whose writers all hang up while it is handed on (as when every HTTP client
/// disconnects at once) is still closed: another process can write next.
#[tokio::test]
async fn sqlite_batches_of_cancelled_writers_release_the_writer_lock() {
    let db = TestDb::sqlite();
    let store = Store::open(&db.url).await.unwrap();
    // A writes in the open batch and waits; B queues for its turn.
    let (go, a) = held_write(&store, "test:a").await;
    let mut b = Box::pin(store.begin_write());
    assert!(futures::poll!(&mut b).is_pending(), "B waits for its turn");
    // A finishes its turn and hands the batch on to B; then both callers are gone, B before
    // it ever ran.
    go.send(()).unwrap();
    tokio::task::yield_now().await;
    a.abort();
    let _ = a.await;
    drop(b);
    // A second store has its own writer connection, which waits on SQLite's lock as another
    // process would; its busy timeout (5 s) would expire behind a batch left open.
    let other = Store::open(&db.url).await.unwrap();
    let mut w = other.begin_write().await.expect("the writer lock is free");
    w.record(test_change("test:other")).unwrap();
    w.commit().await.unwrap();
    let report = other.verify_chain().await.unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(other.history("test:a").await.unwrap().len(), 1, "A's write was committed by the closer");
    other.close().await;
    store.close().await;
}

#[tokio::test]
async fn sqlite_store_suite() {
    let db = TestDb::sqlite();
    suite(&db.url).await;
    let db = TestDb::sqlite();
    truncation_is_found(&db.url).await;
    let db = TestDb::sqlite();
    changed_migrations_are_refused(&db.url, "X'00'").await;
}

#[tokio::test]
async fn postgres_store_suite() {
    let Some(server) = postgres_url() else { return };
    let db = TestDb::postgres(&server).await;
    suite(&db.url).await;
    db.cleanup().await;
    let db = TestDb::postgres(&server).await;
    truncation_is_found(&db.url).await;
    db.cleanup().await;
    let db = TestDb::postgres(&server).await;
    changed_migrations_are_refused(&db.url, "'\\x00'::bytea").await;
    db.cleanup().await;
}
