//! Publishing the outbox: events written in each write's transaction are relayed to a Redis
//! stream, at least once, oldest first, each carrying its outbox id so consumers can
//! de-duplicate. While Redis is unreachable the events wait in the outbox.

use std::time::Duration;

use redis::aio::MultiplexedConnection;

use crate::store::{OutboxEvent, Store};

/// Most events published per round.
const BATCH: i64 = 200;

async fn publish(conn: &mut MultiplexedConnection, stream: &str, events: &[OutboxEvent]) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for e in events {
        pipe.cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg("id")
            .arg(e.id)
            .arg("type")
            .arg(&e.event_type)
            .arg("ref")
            .arg(&e.record_ref)
            .arg("at")
            .arg(&e.at)
            .arg("payload")
            .arg(&e.payload)
            .ignore();
    }
    pipe.query_async(conn).await
}

/// Relays the outbox to `stream` until the task is dropped. Wakes on each local commit and
/// at least every second (for writes by other replicas); backs off while Redis is down.
pub async fn relay(store: Store, redis_url: String, stream: String) {
    let client = match redis::Client::open(redis_url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid Redis URL; events stay in the outbox");
            return;
        }
    };
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backoff = Duration::from_millis(250);
    loop {
        if conn.is_none() {
            match client.get_multiplexed_async_connection().await {
                Ok(c) => {
                    tracing::info!(%stream, "event relay connected to Redis");
                    conn = Some(c);
                    backoff = Duration::from_millis(250);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Redis unreachable; events wait in the outbox");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
        }
        let events = match store.pending_events(BATCH).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if events.is_empty() {
            tokio::select! {
                () = store.committed() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let Some(c) = conn.as_mut() else { continue };
        if let Err(e) = publish(c, &stream, &events).await {
            tracing::warn!(error = %e, "publishing to Redis failed; will retry");
            conn = None;
            continue;
        }
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        if let Err(e) = store.mark_published(&ids).await {
            tracing::warn!(error = %e, "cannot mark events published; they will be sent again");
        }
    }
}
