//! The live feed: one task per process tails the outbox and fans new events out to
//! subscribers. A subscriber starts from a given event id (or from now), replays what it
//! missed from the outbox, then follows live; if it falls behind it replays again, so it
//! sees every event once, in commit order.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, broadcast, watch};

use crate::error::{Error, Result};
use crate::store::{OutboxEvent, Store};

/// Events buffered per subscriber before it must replay from the outbox.
const CHANNEL: usize = 1024;
/// Most events read from the outbox at once.
const PAGE: i64 = 500;
/// Most event types one filter may name.
pub const MAX_TYPES: usize = 64;

/// Which events a subscriber wants: all, or those whose type is listed. `nonconformity.*`
/// matches every type that starts with `nonconformity.`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    types: Vec<String>,
}

impl EventFilter {
    /// A filter on these types (empty: every event).
    pub fn new(types: Vec<String>) -> Result<Self> {
        if types.len() > MAX_TYPES {
            return Err(Error::invalid("types", format!("at most {MAX_TYPES} event types")));
        }
        for t in &types {
            let name = t.strip_suffix(".*").unwrap_or(t);
            let valid = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
            if !valid {
                return Err(Error::invalid(
                    "types",
                    format!("`{t}` is not an event type: use names like `nonconformity.logged` or `nonconformity.*`"),
                ));
            }
        }
        Ok(EventFilter { types })
    }

    /// Whether `event_type` passes.
    pub fn matches(&self, event_type: &str) -> bool {
        self.types.is_empty()
            || self.types.iter().any(|t| match t.strip_suffix('*') {
                Some(prefix) => event_type.starts_with(prefix),
                None => t == event_type,
            })
    }
}

/// The process's live feed of committed events.
#[derive(Debug, Clone)]
pub struct Feed {
    store: Store,
    sender: broadcast::Sender<Arc<OutboxEvent>>,
    /// The last event id the tail has broadcast; `None` while nobody listens.
    position: Arc<Mutex<Option<i64>>>,
}

impl Feed {
    /// Starts tailing the outbox of `store` (needs a Tokio runtime).
    pub fn start(store: Store) -> Feed {
        let (sender, _) = broadcast::channel(CHANNEL);
        let position = Arc::new(Mutex::new(None));
        tokio::spawn(tail(store.clone(), sender.clone(), position.clone()));
        Feed { store, sender, position }
    }

    /// Follows the events after `after` (the newest event when `None`) that pass `filter`.
    pub async fn follow(&self, after: Option<i64>, filter: EventFilter) -> Result<Subscription> {
        // Under the tail's lock, so the tail broadcasts every event after `latest`.
        let mut position = self.position.lock().await;
        let live = self.sender.subscribe();
        let latest = self.store.latest_event_id().await?;
        position.get_or_insert(latest);
        drop(position);
        let last = after.map_or(latest, |id| id.max(0));
        Ok(Subscription { store: self.store.clone(), live, last, filter, replay: Vec::new(), caught_up: false })
    }
}

/// One subscriber's position in the event stream.
#[derive(Debug)]
pub struct Subscription {
    store: Store,
    live: broadcast::Receiver<Arc<OutboxEvent>>,
    last: i64,
    filter: EventFilter,
    /// Events read from the outbox, not yet handed out (newest first).
    replay: Vec<OutboxEvent>,
    /// Whether the outbox holds nothing after `last` that the live feed will not bring.
    caught_up: bool,
}

impl Subscription {
    /// The next event that passes the filter, waiting for one if need be. `None` when the
    /// feed has stopped.
    pub async fn next(&mut self) -> Result<Option<Arc<OutboxEvent>>> {
        loop {
            if self.replay.is_empty() && !self.caught_up {
                self.replay = self.store.events_after(self.last, PAGE).await?;
                self.caught_up = (self.replay.len() as i64) < PAGE;
                self.replay.reverse();
            }
            if let Some(event) = self.replay.pop() {
                self.last = event.id;
                if self.filter.matches(&event.event_type) {
                    return Ok(Some(Arc::new(event)));
                }
                continue;
            }
            match self.live.recv().await {
                Ok(event) if event.id <= self.last => {}
                Ok(event) if event.id == self.last + 1 => {
                    self.last = event.id;
                    if self.filter.matches(&event.event_type) {
                        return Ok(Some(event));
                    }
                }
                // A gap, or this subscriber fell behind: read the outbox from where it is.
                // (Ids skipped by rolled-back writes look like gaps and cost one read.)
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.caught_up = false,
                Err(broadcast::error::RecvError::Closed) => return Ok(None),
            }
        }
    }
}

async fn tail(store: Store, sender: broadcast::Sender<Arc<OutboxEvent>>, position: Arc<Mutex<Option<i64>>>) {
    let mut commits: watch::Receiver<u64> = store.commits();
    loop {
        let mut more = false;
        {
            let mut position = position.lock().await;
            if sender.receiver_count() == 0 {
                *position = None;
            } else if let Some(from) = *position {
                match store.events_after(from, PAGE).await {
                    Ok(events) => {
                        more = events.len() as i64 == PAGE;
                        if let Some(newest) = events.last() {
                            *position = Some(newest.id);
                        }
                        for event in events {
                            let _ = sender.send(Arc::new(event));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "the live feed cannot read the outbox"),
                }
            }
        }
        if !more {
            tokio::select! {
                _ = commits.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}
