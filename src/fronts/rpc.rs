//! Plain JSON-RPC 2.0 through jsonrpsee: method name = tool name, params = the tool's
//! arguments object, result = its structured output. Failures are JSON-RPC error objects.
//!
//! Over a WebSocket, `subscribe_events` streams committed events as `isms_event`
//! notifications (see [`SubscribeEvents`]); `unsubscribe_events` ends the stream.

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::Deserialize;
use serde_json::Value;

use super::Shared;
use crate::domain::actor::Actor;
use crate::error::Error;
use crate::events::{EventFilter, Feed};
use crate::store::OutboxEvent;

/// Application error codes (the JSON-RPC reserved range is -32768..-32000 for protocol
/// faults; these sit just outside it, apart from invalid params).
pub mod codes {
    /// Bad arguments (JSON-RPC "invalid params").
    pub const INVALID_PARAMS: i32 = -32602;
    /// Internal error.
    pub const INTERNAL: i32 = -32603;
    /// No valid credentials.
    pub const UNAUTHENTICATED: i32 = -31001;
    /// Role may not call this.
    pub const FORBIDDEN: i32 = -31003;
    /// Record not found.
    pub const NOT_FOUND: i32 = -31004;
    /// Stale version.
    pub const CONFLICT: i32 = -31009;
    /// A rule of the standard refused the step.
    pub const RULE_VIOLATION: i32 = -31010;
    /// Database unavailable; retry.
    pub const UNAVAILABLE: i32 = -31050;
}

/// The JSON-RPC error object for a failed operation; internal details stay in the log.
pub fn rpc_error(e: &Error) -> ErrorObjectOwned {
    let code = match e {
        Error::Invalid { .. } => codes::INVALID_PARAMS,
        Error::NotFound { .. } => codes::NOT_FOUND,
        Error::Rule { .. } => codes::RULE_VIOLATION,
        Error::Conflict { .. } => codes::CONFLICT,
        Error::Forbidden { .. } => codes::FORBIDDEN,
        Error::Unauthenticated => codes::UNAUTHENTICATED,
        Error::Unavailable => codes::UNAVAILABLE,
        Error::Internal(detail) => {
            tracing::error!(%detail, "internal error in a JSON-RPC call");
            codes::INTERNAL
        }
    };
    let message = match e {
        Error::Internal(_) => "internal error: the server logged the details".to_owned(),
        other => other.to_string(),
    };
    ErrorObjectOwned::owned(code, message, Some(serde_json::json!({ "kind": e.code() })))
}

/// Parameters of `subscribe_events`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeEvents {
    /// Event types to receive (`nonconformity.logged`, or `nonconformity.*` for a family);
    /// omitted or empty: every event.
    #[serde(default)]
    pub types: Vec<String>,
    /// Replay the events after this event id first (resume after a disconnect); omitted:
    /// only events committed from now on.
    pub after: Option<i64>,
}

/// One `isms_event` notification.
fn notification(event: &OutboxEvent) -> Value {
    let payload = serde_json::from_str::<Value>(&event.payload).unwrap_or(Value::Null);
    serde_json::json!({
        "id": event.id,
        "type": event.event_type,
        "ref": event.record_ref,
        "at": event.at,
        "payload": payload,
    })
}

/// Streams the events of `feed` that the subscription asks for until either side stops.
fn register_events(module: &mut RpcModule<Shared>, feed: Feed) {
    module
        .register_subscription(
            "subscribe_events",
            "isms_event",
            "unsubscribe_events",
            move |params: Params<'static>, pending, _shared, extensions| {
                let feed = feed.clone();
                async move {
                    if extensions.get::<Actor>().is_none() {
                        pending.reject(rpc_error(&Error::Unauthenticated)).await;
                        return Ok(());
                    }
                    let request = match params.as_str() {
                        None => Ok(SubscribeEvents::default()),
                        Some(_) => params.parse::<SubscribeEvents>().map_err(|e| Error::invalid("params", e.message())),
                    };
                    let subscription = match request {
                        Ok(r) => match EventFilter::new(r.types) {
                            Ok(filter) => feed.follow(r.after, filter).await,
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    };
                    let mut subscription = match subscription {
                        Ok(s) => s,
                        Err(e) => {
                            pending.reject(rpc_error(&e)).await;
                            return Ok(());
                        }
                    };
                    let sink = pending.accept().await?;
                    loop {
                        let event = tokio::select! {
                            () = sink.closed() => return Ok(()),
                            next = subscription.next() => next,
                        };
                        match event {
                            Ok(Some(event)) => {
                                let message = serde_json::value::to_raw_value(&notification(&event))?;
                                sink.send(message).await?;
                            }
                            Ok(None) => return Ok(()),
                            Err(e) => {
                                tracing::warn!(error = %e, "event subscription ended: the outbox cannot be read");
                                return Err(e.to_string().into());
                            }
                        }
                    }
                }
            },
        )
        .expect("subscription names are unique");
}

/// One JSON-RPC method per registry operation, and the event subscription.
pub fn module(shared: Shared, feed: Feed) -> RpcModule<Shared> {
    let names: Vec<&'static str> = shared.registry.all().iter().map(|op| op.name).collect();
    let mut module = RpcModule::new(shared);
    for name in names {
        module
            .register_async_method(name, move |params: Params<'static>, shared, extensions| async move {
                let actor = extensions.get::<Actor>().cloned().ok_or_else(|| rpc_error(&Error::Unauthenticated))?;
                let args = match params.as_str() {
                    None => Value::Null,
                    Some(_) => {
                        params.parse::<Value>().map_err(|e| rpc_error(&Error::invalid("params", e.message())))?
                    }
                };
                if !(args.is_object() || args.is_null()) {
                    return Err(rpc_error(&Error::invalid("params", "must be an object of named arguments")));
                }
                let op =
                    shared.registry.get(name).ok_or_else(|| rpc_error(&Error::Internal(format!("{name} vanished"))))?;
                op.call(shared.app.clone(), actor, args).await.map_err(|e| rpc_error(&e))
            })
            .expect("operation names are unique");
    }
    register_events(&mut module, feed);
    module
}

/// The module for plain HTTP. The event subscription needs a WebSocket; jsonrpsee answers a
/// subscription over plain HTTP with "internal error", so here its two methods say what to do.
pub fn http_module(shared: Shared, feed: Feed) -> RpcModule<Shared> {
    let mut module = module(shared, feed);
    for name in ["subscribe_events", "unsubscribe_events"] {
        module.remove_method(name);
        module
            .register_method(name, move |_, _, _| -> Result<(), ErrorObjectOwned> {
                Err(ErrorObjectOwned::owned(
                    jsonrpsee::types::error::METHOD_NOT_FOUND_CODE,
                    format!("`{name}` needs a WebSocket: connect to ws://<host>/rpc with the same bearer token"),
                    Some(serde_json::json!({ "kind": "websocket_required" })),
                ))
            })
            .expect("the name was just removed");
    }
    module
}
