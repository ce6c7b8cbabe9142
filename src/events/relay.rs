//! Publishing the outbox to a Redis stream. While Redis is unreachable the events wait in the
//! outbox (the backlog shows in `/metrics` and `/readyz`) and flow again when it returns.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;

use crate::metrics::Metrics;
use crate::store::{OutboxEvent, Store};

/// Most events published per round.
const BATCH: i64 = 500;

/// Longest wait for Redis to take a batch; the relay's claim is held meanwhile (writes go on).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

async fn publish(conn: &mut MultiplexedConnection, stream: &str, events: &[OutboxEvent]) -> Result<(), String> {
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
    in_time(pipe.query_async::<()>(conn)).await
}

/// Redis's answer, or an error if it does not come within [`PUBLISH_TIMEOUT`].
async fn in_time<T>(answer: impl Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(PUBLISH_TIMEOUT, answer).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("Redis did not answer in time".to_owned()),
    }
}

/// How many of `events` (oldest first) the stream already holds: those up to its newest entry,
/// if that entry is one of them (same id, record and time; an entry from another database
/// that reused the stream proves nothing).
async fn already_sent(conn: &mut MultiplexedConnection, stream: &str, events: &[OutboxEvent]) -> Result<usize, String> {
    let mut newest = redis::cmd("XREVRANGE");
    newest.arg(stream).arg("+").arg("-").arg("COUNT").arg(1);
    let reply: StreamRangeReply = in_time(newest.query_async(conn)).await?;
    let Some(head) = reply.ids.first() else { return Ok(0) };
    let same = |e: &OutboxEvent| {
        head.get::<i64>("id") == Some(e.id)
            && head.get::<String>("ref").as_deref() == Some(e.record_ref.as_str())
            && head.get::<String>("at").as_deref() == Some(e.at.as_str())
    };
    Ok(events.iter().position(same).map_or(0, |i| i + 1))
}

/// What one round of the relay did.
enum Round {
    /// Published this many events.
    Published(usize),
    /// Nothing to publish, or another replica holds the claim.
    Idle,
    /// Redis refused or vanished: reconnect.
    RedisDown,
    /// The database failed: wait and retry.
    DatabaseDown,
}

/// One round: claim pending events and publish those the stream does not hold yet. A publish
/// may reach the stream without being marked (a timeout or a lost reply, a failed mark, a
/// relay killed in between, here or in another replica); those events are marked without
/// being sent again, so a retry never puts an older event after a newer one.
async fn round(store: &Store, conn: &mut MultiplexedConnection, stream: &str) -> Round {
    let claimed = match store.claim_pending(BATCH).await {
        Ok(Some(c)) if !c.events.is_empty() => c,
        Ok(_) => return Round::Idle,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the outbox");
            return Round::DatabaseDown;
        }
    };
    let sent = match already_sent(conn, stream, &claimed.events).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the stream's newest event; the events wait in the outbox");
            return Round::RedisDown;
        }
    };
    let unsent = &claimed.events[sent..];
    if let Err(e) = if unsent.is_empty() { Ok(()) } else { publish(conn, stream, unsent).await } {
        tracing::warn!(error = %e, "publishing to Redis failed; the events wait in the outbox");
        return Round::RedisDown;
    }
    let count = claimed.events.len() - sent;
    match claimed.published().await {
        Ok(()) => Round::Published(count),
        Err(e) => {
            tracing::warn!(error = %e, "cannot mark events published; the next round marks them");
            Round::DatabaseDown
        }
    }
}

/// Relays the outbox to `stream` until the task is dropped. Wakes on each local commit and at
/// least every second (for writes by other replicas); backs off while Redis is down.
pub async fn relay(store: Store, metrics: Metrics, redis_url: String, stream: String) {
    let client = match redis::Client::open(redis_url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid Redis URL; events stay in the outbox");
            return;
        }
    };
    let mut commits = store.commits();
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(c) = conn.as_mut() else {
            match client.get_multiplexed_async_connection().await {
                Ok(c) => {
                    tracing::info!(%stream, "event relay connected to Redis");
                    conn = Some(c);
                    metrics.set_redis_up(true);
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Redis unreachable; events wait in the outbox");
                    metrics.set_redis_up(false);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            continue;
        };
        match round(&store, c, &stream).await {
            Round::Published(n) => metrics.events_published(n),
            Round::Idle => {
                tokio::select! {
                    _ = commits.changed() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Round::RedisDown => {
                conn = None;
                metrics.set_redis_up(false);
            }
            Round::DatabaseDown => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}
