//! One HTTP port: MCP Streamable HTTP at `/mcp`, JSON-RPC at `/rpc` (plain HTTP, or a
//! WebSocket for the live event subscription), and the open probes `/healthz` (the process
//! and database answer), `/readyz` (database and Redis answer; outbox backlog) and
//! `/metrics` (Prometheus text). The protocol paths require a bearer token (401 otherwise);
//! every path refuses an Origin not allowed (403); bodies are size-limited (413), chunked
//! ones too.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post_service};
use futures::StreamExt as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::Shared;
use super::mcp::McpServer;
use super::rpc;
use crate::events::Feed;
use crate::store::Store;

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Browser origins allowed to call (`http://localhost:6274`); others get 403.
    pub allowed_origins: Vec<String>,
    /// Hosts (`localhost`, or `host:port`) requests may be addressed to; others get 403.
    pub allowed_hosts: Vec<String>,
    /// Most calls in one JSON-RPC batch.
    pub max_batch: u32,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Redis the event relay publishes to, checked by `/readyz`.
    pub redis_url: Option<String>,
}

/// What the open probes need.
#[derive(Debug, Clone)]
struct Probes {
    shared: Shared,
    redis: Option<redis::Client>,
}

/// Longest a probe waits for the database or Redis.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"isms\""));
    }
    response
}

async fn authenticate(State(shared): State<Shared>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let Some(token) = token else {
        shared.app.metrics.refused("missing_token");
        return json_error(
            StatusCode::UNAUTHORIZED,
            "missing bearer token: send `Authorization: Bearer <token>` (`isms actor add` issues one)",
        );
    };
    match shared.app.store.actor_by_token(&token).await {
        Ok(Some(actor)) => {
            request.extensions_mut().insert(actor);
            next.run(request).await
        }
        Ok(None) => {
            tracing::info!(path = %request.uri().path(), "refused an invalid or revoked bearer token");
            shared.app.metrics.refused("invalid_token");
            json_error(StatusCode::UNAUTHORIZED, "invalid or revoked bearer token")
        }
        Err(e) => {
            tracing::warn!(error = %e, "token lookup failed");
            json_error(StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable; retry shortly")
        }
    }
}

/// Whether a `Host` header names an allowed host, by name alone or with its port.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => {
            host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
        }
    };
    allowed.iter().any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(name))
}

async fn check_host(State(allowed): State<Arc<Vec<String>>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).map(|h| h.to_str().map(|h| host_allowed(h, &allowed)));
    match host {
        None | Some(Ok(true)) => next.run(request).await,
        Some(_) => json_error(
            StatusCode::FORBIDDEN,
            "this Host is not allowed; add it with --allowed-hosts / ISMS_ALLOWED_HOSTS",
        ),
    }
}

async fn check_origin(State(allowed): State<Arc<Vec<String>>>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let permitted = origin.to_str().is_ok_and(|o| allowed.iter().any(|a| a == o));
        if !permitted {
            return json_error(
                StatusCode::FORBIDDEN,
                "this Origin is not allowed; add it with --allowed-origins / ISMS_ALLOWED_ORIGINS",
            );
        }
    }
    next.run(request).await
}

/// Reads the request body, up to the limit, before the protocol services see it. A body
/// declared too large is refused at once; one sent in chunks is counted as it arrives. (A
/// limit inside the services' body stream would reach jsonrpsee and rmcp as a read error,
/// which both answer with 500.)
async fn read_body(State(max): State<usize>, request: Request, next: Next) -> Response {
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the request body is over {max} bytes: send less per call (e.g. split a batch) or raise --max-body-bytes"
            ),
        )
    };
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) if bytes.len() + chunk.len() <= max => bytes.extend_from_slice(&chunk),
            Ok(_) => return too_large(),
            Err(_) => return json_error(StatusCode::BAD_REQUEST, "the request body could not be read; send it again"),
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// True when a JSON-RPC body asks for no answer: a notification or a batch of them.
fn only_notifications(body: &[u8]) -> bool {
    let one = |v: &serde_json::Value| v.as_object().is_some_and(|o| !o.contains_key("id"));
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(items)) => !items.is_empty() && items.iter().all(one),
        Ok(v) => one(&v),
        Err(_) => false,
    }
}

/// jsonrpsee answers whatever it can read only as a notification with 200 and `null`: right
/// for a notification, wrong for a request whose `id` it cannot keep (negative, fractional,
/// over u64, an object, an array, a boolean, or given twice), which gets no answer it can
/// tell from success. Those get JSON-RPC's Invalid Request error instead.
async fn no_bare_null(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // The body is already in memory (read_body).
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return json_error(StatusCode::BAD_REQUEST, "the request body could not be read; send it again");
    };
    let notification = only_notifications(&bytes);
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if notification || response.status() != StatusCode::OK || response.body().size_hint().exact() != Some(4) {
        return response;
    }
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, 4).await {
        Ok(answer) if &answer[..] == b"null" => {
            let error = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {
                "code": jsonrpsee::types::error::INVALID_REQUEST_CODE,
                "message": "invalid request: `id` must be a string, a non-negative integer or null, and appear once",
            }});
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], error.to_string()).into_response()
        }
        Ok(answer) => Response::from_parts(parts, Body::from(answer)),
        Err(_) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "the JSON-RPC answer could not be read"),
    }
}

async fn rpc_transport_error(e: Box<dyn std::error::Error + Send + Sync>) -> Response {
    tracing::warn!(error = %e, "JSON-RPC transport error");
    json_error(StatusCode::BAD_REQUEST, "malformed JSON-RPC request")
}

async fn healthz(State(probes): State<Probes>) -> Response {
    match tokio::time::timeout(PROBE_TIMEOUT, probes.shared.app.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, axum::Json(serde_json::json!({ "status": "ok" }))).into_response(),
        _ => json_error(StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
    }
}

/// The outbox backlog, or `None` when the database does not answer in time.
async fn backlog(store: &Store) -> Option<i64> {
    tokio::time::timeout(PROBE_TIMEOUT, store.outbox_backlog()).await.ok().and_then(Result::ok)
}

async fn redis_answers(client: &redis::Client) -> bool {
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    matches!(tokio::time::timeout(PROBE_TIMEOUT, ping).await, Ok(Ok(_)))
}

/// Ready to serve: the database answers and, when events go to Redis, Redis answers too.
/// The body names each check and the outbox backlog.
async fn readyz(State(probes): State<Probes>) -> Response {
    let store = &probes.shared.app.store;
    let backlog = backlog(store).await;
    let database = backlog.is_some();
    let redis = match &probes.redis {
        Some(client) => Some(redis_answers(client).await),
        None => None,
    };
    let ready = database && redis != Some(false);
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": if database { "ok" } else { "unreachable" },
        "redis": match redis { None => "not configured", Some(true) => "ok", Some(false) => "unreachable" },
        "outbox_backlog": backlog,
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

/// Prometheus text exposition of the operation metrics and the outbox backlog (-1 when the
/// database cannot be read).
async fn metrics(State(probes): State<Probes>) -> Response {
    let app = &probes.shared.app;
    let backlog = backlog(&app.store).await;
    let text = app.metrics.render(backlog.unwrap_or(-1));
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// The router, and the handle that keeps the JSON-RPC service running until dropped.
pub fn router(shared: Shared, options: &HttpOptions) -> (Router, jsonrpsee::server::ServerHandle) {
    let mcp_config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_allowed_origins(options.allowed_origins.clone())
        .with_allowed_hosts(options.allowed_hosts.clone())
        .enforce_origin_validation();
    let mcp_shared = shared.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(McpServer::http(mcp_shared.clone())),
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    );

    let (stop, handle) = jsonrpsee::server::stop_channel();
    let rpc_config = jsonrpsee::server::ServerConfig::builder()
        .max_connections(1_000)
        .max_subscriptions_per_connection(16)
        .set_batch_request_config(jsonrpsee::server::BatchRequestConfig::Limit(options.max_batch))
        .max_request_body_size(u32::try_from(options.max_body_bytes).unwrap_or(u32::MAX))
        .build();
    // POST is plain HTTP (no subscription); GET upgrades to the WebSocket, which has it.
    let feed = Feed::start(shared.app.store.clone());
    let rpc_service = |module| {
        let service = jsonrpsee::server::Server::builder()
            .set_config(rpc_config.clone())
            .to_service_builder()
            .build(module, stop.clone());
        axum::error_handling::HandleError::new(service, rpc_transport_error)
    };
    let rpc_routes = post_service(rpc_service(rpc::http_module(shared.clone(), feed.clone())))
        .get_service(rpc_service(rpc::module(shared.clone(), feed)))
        .layer(middleware::from_fn(no_bare_null));

    let protected = Router::new()
        .route_service("/mcp", mcp)
        .route("/rpc", rpc_routes)
        .layer(middleware::from_fn_with_state(options.max_body_bytes, read_body))
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate));
    let redis = options.redis_url.as_deref().and_then(|url| redis::Client::open(url).ok());
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Probes { shared, redis })
        .merge(protected)
        .layer(middleware::from_fn_with_state(Arc::new(options.allowed_origins.clone()), check_origin))
        .layer(middleware::from_fn_with_state(Arc::new(options.allowed_hosts.clone()), check_host));
    (router, handle)
}
