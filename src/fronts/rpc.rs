//! Plain JSON-RPC 2.0 through jsonrpsee: method name = tool name, params = the tool's
//! arguments object, result = its structured output. Failures are JSON-RPC error objects.

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::Value;

use super::Shared;
use crate::domain::actor::Actor;
use crate::error::Error;

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

/// One JSON-RPC method per registry operation.
pub fn module(shared: Shared) -> RpcModule<Shared> {
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
    module
}
