//! Hostile input, bounded in time: generated garbage, malformed JSON, deep and wide JSON,
//! random methods and random tool arguments thrown at the real binary over JSON-RPC (`/rpc`),
//! MCP over HTTP (`/mcp`, after the initialize handshake) and MCP over stdio. Every case must
//! get an answer below 500 (and a well-formed JSON-RPC message when the status is 200) within
//! a timeout, the process must neither panic nor log an internal error, and a valid request
//! must still be answered afterwards. Fixed cases check the limits: 413 above the body size,
//! 10,000-level nesting refused, over-long strings refused (not stored), page size refused
//! above the maximum, and SQL-looking text stored and read back verbatim.
//!
//! Generation is deterministic (a fixed seed per target, overridable with
//! `ISMS_HOSTILE_SEED=<u64>`); `ISMS_HOSTILE_CASES` overrides the case count (default 256).
//! Nothing is written to disk by proptest (`failure_persistence: None`). Run with
//! `--nocapture` to see how many generated cases ran per target.

mod common;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::TestDb;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Runner configuration

/// Generated cases per target unless `ISMS_HOSTILE_CASES` says otherwise.
const CASES: u32 = 256;
/// Longest any single request may take before it counts as a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

fn cases() -> u32 {
    std::env::var("ISMS_HOSTILE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(CASES)
}

/// A runner with a fixed seed derived from the target's name, bounded shrinking and no
/// failure persistence.
fn runner(target: &str) -> (TestRunner, u64) {
    let base: u64 =
        std::env::var("ISMS_HOSTILE_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x1505_2700_1270_0001);
    // FNV-1a of the target name, mixed with the base seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ base;
    for b in target.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut seed = [0u8; 32];
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&h.rotate_left(13 * i as u32).wrapping_add(i as u64).to_le_bytes());
    }
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 200,
        max_shrink_time: 30_000,
        max_local_rejects: 10_000,
        max_global_rejects: 10_000,
        ..Config::default()
    };
    (TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed)), base)
}

/// Runs `cases()` generated cases of `strategy` through `check`; on failure, panics with the
/// first failing input (before shrinking, in case the process is gone by then) and the
/// shrunk one. Returns how many cases ran.
fn fuzz<S: Strategy>(target: &str, strategy: S, check: impl Fn(&S::Value) -> Result<(), String>) -> u32
where
    S::Value: fmt::Debug,
{
    let (mut runner, seed) = runner(target);
    // Cases generated until the first failure, and runs spent shrinking after it.
    let (ran, shrinking) = (Cell::new(0u32), Cell::new(0u32));
    let first_failure: RefCell<Option<String>> = RefCell::new(None);
    let started = Instant::now();
    let result = runner.run(&strategy, |case| {
        let counter = if first_failure.borrow().is_none() { &ran } else { &shrinking };
        counter.set(counter.get() + 1);
        check(&case).map_err(|e| {
            first_failure.borrow_mut().get_or_insert_with(|| format!("{case:?}\n  -> {e}"));
            TestCaseError::fail(e)
        })
    });
    eprintln!(
        "hostile_input: {target}: {} generated cases run in {:.1}s (seed base {seed:#x}{})",
        ran.get(),
        started.elapsed().as_secs_f64(),
        if shrinking.get() > 0 {
            format!("; then {} runs shrinking a failure", shrinking.get())
        } else {
            String::new()
        }
    );
    if let Err(e) = result {
        panic!(
            "{target}: a hostile input got a wrong answer\nfirst failing case: {}\nshrunk: {e}",
            first_failure.borrow().clone().unwrap_or_default()
        );
    }
    ran.get()
}

// ---------------------------------------------------------------------------------------------
// Processes under test, with their stderr watched for panics and internal errors

/// Lines of a process's stderr that signal a fault: a panic or an internal error.
#[derive(Clone, Default)]
struct Alarms(Arc<Mutex<Vec<String>>>);

impl Alarms {
    fn watch(&self, line: &str) {
        let fault = line.contains("panicked") || line.contains("internal error") || line.contains("stack overflow");
        if fault {
            self.0.lock().unwrap().push(line.to_owned());
        }
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Fails when new alarms were raised since `before`.
    fn check_since(&self, before: usize) -> Result<(), String> {
        let all = self.0.lock().unwrap();
        if all.len() > before {
            Err(format!("the server's stderr reports a fault: {:?}", &all[before..]))
        } else {
            Ok(())
        }
    }
}

/// `isms serve` on a free port, stderr watched.
struct Serve {
    server: common::HttpServer,
    base: String,
    token: String,
    alarms: Alarms,
}

impl Serve {
    fn start(db: &str, extra: &[&str]) -> Self {
        let alarms = Alarms::default();
        let watch = alarms.clone();
        let server = common::HttpServer::start_watching(db, extra, move |line| watch.watch(line));
        let (base, token) = (server.base.clone(), server.admin_token.clone());
        Serve { server, base, token, alarms }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    fn alive(&mut self) -> Result<(), String> {
        self.server.alive()
    }
}

/// An HTTP answer.
struct Reply {
    status: u16,
    content_type: String,
    session: Option<String>,
    body: String,
}

/// A blocking front to an async client: proptest runs cases synchronously.
///
/// The connection is reused. The server may close it after answering a request whose body it
/// did not read (a 415, say), and the next request can then hit the closed socket before the
/// client notices; such a request is sent once more on a new connection and counted in
/// `resent`. A server that died or hung fails the second attempt too.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    fresh: reqwest::Client,
    resent: Cell<u32>,
}

impl Http {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let client = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap();
        let fresh = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).pool_max_idle_per_host(0).build().unwrap();
        Http { rt, client, fresh, resent: Cell::new(0) }
    }

    fn post(&self, url: &str, token: &str, headers: &[(&str, String)], body: Vec<u8>) -> Result<Reply, String> {
        match self.post_with(&self.client, url, token, headers, body.clone()) {
            Err(e) if e.is_request() && !e.is_timeout() => {
                self.resent.set(self.resent.get() + 1);
                self.post_with(&self.fresh, url, token, headers, body)
            }
            other => other,
        }
        .map_err(|e| format!("no answer: {e:?}"))
    }

    fn post_with(
        &self,
        client: &reqwest::Client,
        url: &str,
        token: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Reply, reqwest::Error> {
        self.rt.block_on(async {
            let mut request = client.post(url).bearer_auth(token).body(body);
            for (name, value) in headers {
                request = request.header(*name, value.as_str());
            }
            let response = request.send().await?;
            let status = response.status().as_u16();
            let content_type = header(&response, "content-type");
            let session = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body = response.text().await?;
            Ok(Reply { status, content_type, session, body })
        })
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Checks on answers

/// A JSON-RPC message from the server: a response with `result` xor `error` (code and
/// message), or a request/notification of its own. An internal error (-32603) or an
/// `isError` result reporting one is a fault: hostile input must be refused as the caller's
/// mistake.
fn check_message(v: &Value) -> Result<(), String> {
    let obj = v.as_object().ok_or_else(|| format!("not a JSON-RPC object: {}", preview(&v.to_string())))?;
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(format!("`jsonrpc` is not \"2.0\": {}", preview(&v.to_string())));
    }
    if obj.contains_key("method") {
        return Ok(());
    }
    // rmcp's stdio transport answers JSON that is no JSON-RPC message with an error that
    // omits `id` instead of sending `"id": null`; an error needs no id to correlate.
    if !obj.contains_key("id") && !obj.contains_key("error") {
        return Err(format!("a result without `id`: {}", preview(&v.to_string())));
    }
    match (obj.get("result"), obj.get("error")) {
        (Some(result), None) => {
            if result.get("isError") == Some(&json!(true)) {
                let text = result["content"][0]["text"].as_str().unwrap_or_default();
                if text.starts_with("internal") {
                    return Err(format!("a tool reported an internal error: {text}"));
                }
            }
            Ok(())
        }
        (None, Some(error)) => {
            let code = error.get("code").and_then(Value::as_i64);
            let message = error.get("message").and_then(Value::as_str);
            match (code, message) {
                (Some(-32603), _) => Err(format!("internal error: {}", preview(&v.to_string()))),
                (Some(_), Some(_)) => Ok(()),
                _ => Err(format!("an error without integer code and string message: {}", preview(&v.to_string()))),
            }
        }
        _ => Err(format!("a response needs exactly one of `result` and `error`: {}", preview(&v.to_string()))),
    }
}

/// True when `body` is JSON that asks for no answer: a notification (a method and no `id`),
/// or a batch of them. (jsonrpsee answers those over HTTP with 200 and a body of `null`.)
fn only_notifications(body: &[u8]) -> bool {
    let is_notification = |v: &Value| {
        v.as_object().is_some_and(|o| !o.contains_key("id") && o.get("method").is_some_and(Value::is_string))
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => !items.is_empty() && items.iter().all(is_notification),
        Ok(v) => is_notification(&v),
        Err(_) => false,
    }
}

/// The JSON-RPC messages in an SSE body (events' `data`, joined per event; empty data skipped).
fn sse_messages(body: &str) -> Result<Vec<Value>, String> {
    let mut messages = Vec::new();
    for event in body.replace("\r\n", "\n").split("\n\n") {
        let data: Vec<&str> =
            event.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| d.strip_prefix(' ').unwrap_or(d)).collect();
        let data = data.join("\n");
        if data.trim().is_empty() {
            continue;
        }
        messages
            .push(serde_json::from_str(&data).map_err(|e| format!("SSE data is not JSON ({e}): {}", preview(&data)))?);
    }
    Ok(messages)
}

fn preview(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let cut = (0..=MAX).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    format!("{}… ({} bytes)", &s[..cut], s.len())
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Text that has broken servers before: SQL, LIKE wildcards, escapes, Unicode oddities,
/// references and dates at and past their edges.
const SPICY: &[&str] = &[
    "",
    " ",
    "   \t\r\n ",
    "'); DROP TABLE nonconformities;--",
    "' OR '1'='1",
    "\"; DELETE FROM audit_log; --",
    "%",
    "_",
    "\\",
    "%%_\\%\\_",
    "\0",
    "a\0b",
    "\u{feff}",
    "\u{202e}evil\u{202c}",
    "\u{200b}\u{200d}",
    "e\u{301}\u{301}\u{301}",
    "👩‍👩‍👧‍👦",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "ÄÖÜẞ",
    "日本語のテキスト",
    "null",
    "NULL",
    "undefined",
    "NaN",
    "-1",
    "0",
    "NC-0",
    "NC-1",
    "NC-2",
    "NC--1",
    "NC-9223372036854775807",
    "NC-9223372036854775808",
    "NC-18446744073709551616",
    "nc-1",
    "CA-1",
    "CA-0",
    "RISK-1",
    "SOA-1",
    "SOA-0",
    "MR-1",
    "MR-1.1",
    "MR-0.0",
    "MR-1.99999999999999999999",
    "AUD-1",
    "CR-1",
    "OBJ-1",
    "A.8.28",
    "A.5.1",
    "A.9.9",
    "a.8.28",
    "A.8.28 ",
    "A.",
    "A..",
    "9.2.1",
    "10.2",
    "4.3",
    "99.99.99",
    "2026-02-29",
    "2024-02-29",
    "2026-13-01",
    "2026-00-10",
    "9999-12-31",
    "0000-01-01",
    "0001-01-01",
    "+262142-12-31",
    "-0001-01-01",
    "1970-01-01",
    "2026-1-1",
    "2026-07-28T00:00:00Z",
    "2026-Q3",
    "isms://records/NC-1",
    "isms://records/../../etc/passwd",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "${jndi:ldap://x/a}",
    "{{7*7}}",
    "nonconformity.*",
    "*",
    "sha256:",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "isms_",
    "admin",
    "5 whys",
];

/// Real tool names, each with its input schema, from the registry every front serves.
fn tools() -> Vec<(String, Value)> {
    isms::operations::Registry::new()
        .all()
        .iter()
        .map(|op| (op.name.to_owned(), Value::Object((*op.input_schema).clone())))
        .collect()
}

fn tool_names() -> Vec<String> {
    tools().into_iter().map(|(n, _)| n).collect()
}

/// Strings: printable and any Unicode, the spicy list, references, dates, and now and then
/// a few thousand characters.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "\\PC{0,24}",
        2 => any::<String>().prop_map(|s| s.chars().take(48).collect()),
        4 => prop::sample::select(SPICY).prop_map(str::to_owned),
        1 => "(NC|CA|RISK|SOA|MR|CR|AUD|OBJ)-[0-9]{1,22}",
        1 => "A\\.[0-9]{1,2}\\.[0-9]{1,3}",
        1 => "[+-]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}",
        1 => (prop::sample::select(&["x", "é", "😀", "%", "'", "\\", "\0"][..]), 150usize..6_000)
            .prop_map(|(c, n)| c.repeat(n)),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (-3i64..300).prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        2 => any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        1 => prop::sample::select(vec![
            json!(u64::MAX),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::from(u32::MAX) + 1),
            json!(0.5),
            json!(-0.0),
            json!(1e300),
            json!(-1e-300),
        ]),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String),]
        .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-z_]{1,12}",
        1 => "\\PC{0,16}",
        1 => prop::sample::select(
            &["jsonrpc", "id", "method", "params", "result", "error", "_meta", "name", "arguments", "ref", "__proto__", ""][..]
        )
        .prop_map(str::to_owned),
    ]
    .boxed()
}

/// Any JSON value: nested up to 6 levels, up to 12 items per collection.
fn json_value() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(6, 160, 12, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..12).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..12).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// JSON nested `depth` levels deep around `inner`, alternating arrays and objects or not.
fn nest(depth: usize, inner: Value, objects: bool) -> Value {
    (0..depth).fold(inner, |v, i| if objects && i % 2 == 0 { json!({ "a": v }) } else { json!([v]) })
}

/// Deep (around serde_json's recursion limit of 128) and wide (thousands of items) JSON.
fn deep_or_wide() -> BoxedStrategy<Value> {
    prop_oneof![
        (1usize..300, leaf(), any::<bool>()).prop_map(|(d, v, o)| nest(d, v, o)),
        (120usize..140, leaf(), any::<bool>()).prop_map(|(d, v, o)| nest(d, v, o)),
        prop::collection::vec(leaf(), 500..3_000).prop_map(Value::Array),
        prop::collection::vec(("[a-z]{1,10}", leaf()), 300..1_500)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
    ]
    .boxed()
}

/// A value of the schema's own type (so the operation's checks run, not just serde's), with
/// hostile content.
fn from_schema(schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    if let Some(options) = schema.get("enum").and_then(Value::as_array).filter(|o| !o.is_empty()) {
        return prop_oneof![4 => prop::sample::select(options.clone()), 1 => text().prop_map(Value::String)].boxed();
    }
    if let Some(alternatives) = schema.get("anyOf").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        return Union::new(alternatives.iter().map(|a| from_schema(a, depth)).collect::<Vec<_>>()).boxed();
    }
    let types: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => vec![],
    };
    if types.is_empty() || depth > 4 {
        return json_value();
    }
    let choices: Vec<BoxedStrategy<Value>> = types
        .iter()
        .map(|t| match t.as_str() {
            "string" => text().prop_map(Value::String).boxed(),
            "integer" | "number" => number(),
            "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
            "null" => Just(Value::Null).boxed(),
            "array" => {
                let item = schema.get("items").map_or_else(json_value, |s| from_schema(s, depth + 1));
                prop_oneof![
                    8 => prop::collection::vec(item.clone(), 0..4),
                    1 => prop::collection::vec(item, 45..60),
                ]
                .prop_map(Value::Array)
                .boxed()
            }
            "object" if schema.get("properties").is_some() => object_from_schema(schema, depth + 1),
            _ => json_value(),
        })
        .collect();
    Union::new(choices).boxed()
}

/// An arguments object for a tool: each property present or not (required ones mostly
/// present), with hostile values of the right type, and now and then an unknown field.
fn object_from_schema(schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, prop)| {
                    let name = name.clone();
                    let weight = if required.contains(&name.as_str()) { 0.9 } else { 0.5 };
                    prop::option::weighted(weight, from_schema(prop, depth))
                        .prop_map(move |v| v.map(|v| (name.clone(), v)))
                        .boxed()
                })
                .collect()
        })
        .unwrap_or_default();
    let extra = prop::collection::vec((key(), leaf()), 0..2);
    (fields, prop::option::weighted(0.1, extra))
        .prop_map(|(fields, extra)| {
            let mut map: Map<String, Value> = fields.into_iter().flatten().collect();
            map.extend(extra.unwrap_or_default());
            Value::Object(map)
        })
        .boxed()
}

/// A real tool name and arguments for it: typed hostile values, real field names with values
/// of any type, a huge string in a string field, or arguments that are not an object at all.
fn tool_call() -> BoxedStrategy<(String, Value)> {
    let per_tool: Vec<BoxedStrategy<(String, Value)>> = tools()
        .into_iter()
        .map(|(name, schema)| {
            let props: Vec<String> = schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            let strings: Vec<String> = schema["properties"]
                .as_object()
                .map(|p| {
                    p.iter()
                        .filter(|(_, s)| s["type"] == "string" || s["type"] == json!(["string", "null"]))
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            let typed = object_from_schema(&schema, 0);
            let field = if props.is_empty() {
                key()
            } else {
                prop_oneof![4 => prop::sample::select(props), 1 => key()].boxed()
            };
            let wrong = prop::collection::vec((field, json_value()), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect()))
                .boxed();
            let mut kinds: Vec<(u32, BoxedStrategy<Value>)> =
                vec![(6, typed.clone()), (2, wrong), (1, json_value()), (1, deep_or_wide())];
            if !strings.is_empty() {
                let huge = (
                    typed,
                    prop::sample::select(strings),
                    prop::sample::select(&["x", "é"][..]),
                    100_000usize..450_000,
                )
                    .prop_map(|(mut args, field, c, n)| {
                        if let Some(map) = args.as_object_mut() {
                            map.insert(field, Value::String(c.repeat(n)));
                        }
                        args
                    })
                    .boxed();
                kinds.push((1, huge));
            }
            Union::new_weighted(kinds).prop_map(move |args| (name.clone(), args)).boxed()
        })
        .collect();
    Union::new(per_tool).boxed()
}

/// An `id`: mostly a number, sometimes anything.
fn id() -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        6 => (0i64..1_000_000).prop_map(|n| Some(Value::from(n))),
        1 => text().prop_map(|s| Some(Value::String(s))),
        1 => Just(Some(Value::Null)),
        1 => Just(None),
        1 => leaf().prop_map(Some),
        1 => json_value().prop_map(Some),
    ]
    .boxed()
}

/// A JSON-RPC envelope around `method` and `params`, with `jsonrpc` and `id` mostly right.
fn envelope(method: BoxedStrategy<Value>, params: BoxedStrategy<Option<Value>>) -> BoxedStrategy<Value> {
    let version = prop_oneof![8 => Just(Some(json!("2.0"))), 1 => Just(None), 1 => leaf().prop_map(Some)];
    (version, id(), method, params)
        .prop_map(|(version, id, method, params)| {
            let mut m = Map::new();
            if let Some(v) = version {
                m.insert("jsonrpc".into(), v);
            }
            if let Some(id) = id {
                m.insert("id".into(), id);
            }
            m.insert("method".into(), method);
            if let Some(p) = params {
                m.insert("params".into(), p);
            }
            Value::Object(m)
        })
        .boxed()
}

/// Method names: real ones (tools, MCP methods, the event subscription), mangled ones and
/// random text; rarely not a string.
fn method(mcp: bool) -> BoxedStrategy<Value> {
    let mut real = tool_names();
    real.extend(["subscribe_events", "unsubscribe_events", "rpc.discover"].map(str::to_owned));
    if mcp {
        real.extend(
            [
                "initialize",
                "ping",
                "tools/list",
                "tools/call",
                "resources/list",
                "resources/read",
                "resources/templates/list",
                "resources/subscribe",
                "prompts/list",
                "prompts/get",
                "completion/complete",
                "logging/setLevel",
                "server/discover",
                "tasks/get",
                "tasks/list",
                "notifications/initialized",
                "notifications/cancelled",
                "notifications/progress",
                "notifications/roots/list_changed",
            ]
            .map(str::to_owned),
        );
    }
    let mangled = (prop::sample::select(real.clone()), 0..4u8).prop_map(|(m, how)| match how {
        0 => m.to_uppercase(),
        1 => format!("{m} "),
        2 => format!("{m}/x"),
        _ => m.chars().rev().collect(),
    });
    prop_oneof![
        4 => prop::sample::select(real).prop_map(Value::String),
        1 => mangled.prop_map(Value::String),
        2 => text().prop_map(Value::String),
        1 => leaf(),
    ]
    .boxed()
}

fn params() -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        6 => json_value().prop_map(Some),
        1 => Just(None),
        1 => deep_or_wide().prop_map(Some),
    ]
    .boxed()
}

/// Raw text that is not quite JSON-RPC: snippets known to trip parsers.
const RAW: &[&str] = &[
    "",
    " ",
    "null",
    "true",
    "0",
    "\"\"",
    "[]",
    "{}",
    "[{}]",
    "[[]]",
    "[null]",
    "[1,]",
    "{,}",
    "-",
    "1e999999",
    "123456789012345678901234567890",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"get_record\",\"params\":{\"ref\":\"\\ud800\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"get_record\",\"params\":{\"ref\":\"NC-1\",\"ref\":\"NC-2\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"verify_audit_trail\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":1e400,\"method\":\"verify_audit_trail\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":18446744073709551616,\"method\":\"verify_audit_trail\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":-0,\"method\":\"verify_audit_trail\",\"params\":null}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"verify_audit_trail\",\"params\":[]}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"verify_audit_trail\",\"params\":\"x\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"verify_audit_trail\"} trailing",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"verify_audit_trail\"}{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"get_record\",\"arguments\":null}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"get_record\",\"arguments\":[\"NC-1\"]}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":null}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"x\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{}}",
    "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"verify_audit_trail\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"verify_audit_trail\u{0}\"}",
];

/// A valid envelope's text, cut or with one byte changed: partial and corrupt JSON.
fn corrupted() -> BoxedStrategy<Vec<u8>> {
    let valid = envelope(method(true), params()).prop_map(|v| v.to_string().into_bytes());
    prop_oneof![
        (valid.clone(), any::<prop::sample::Index>()).prop_map(|(b, i)| b[..i.index(b.len() + 1)].to_vec()),
        (valid.clone(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut b, i, x)| {
            let at = i.index(b.len());
            b[at] = x;
            b
        }),
        valid.prop_map(|b| String::from_utf8(b).unwrap().encode_utf16().flat_map(u16::to_le_bytes).collect()),
    ]
    .boxed()
}

/// One message as sent, with a short `Debug` (huge bodies would flood a failure report).
#[derive(Clone)]
struct Wire {
    label: &'static str,
    body: Vec<u8>,
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes): {}", self.label, self.body.len(), preview(&String::from_utf8_lossy(&self.body)))
    }
}

fn wire(label: &'static str, s: impl Strategy<Value = Vec<u8>> + 'static) -> BoxedStrategy<Wire> {
    s.prop_map(move |body| Wire { label, body }).boxed()
}

fn json_wire(label: &'static str, s: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Wire> {
    wire(label, s.prop_map(|v| v.to_string().into_bytes()))
}

/// Every kind of hostile message for a JSON-RPC endpoint; `mcp` adds MCP methods and wraps
/// tool calls in `tools/call`.
fn hostile_message(mcp: bool) -> BoxedStrategy<Wire> {
    let call = tool_call();
    let tool_envelope = if mcp {
        (call, 0i64..1_000_000)
            .prop_map(|((name, args), id)| {
                json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}})
            })
            .boxed()
    } else {
        (call, 0i64..1_000_000)
            .prop_map(|((name, args), id)| json!({"jsonrpc": "2.0", "id": id, "method": name, "params": args}))
            .boxed()
    };
    let batch = prop::collection::vec(envelope(method(mcp), params()), 0..20).prop_map(Value::Array);
    prop_oneof![
        1 => wire("random bytes", prop::collection::vec(any::<u8>(), 0..2_048)),
        1 => wire("raw snippet", prop::sample::select(RAW).prop_map(|s| s.as_bytes().to_vec())),
        1 => wire("corrupted envelope", corrupted()),
        2 => json_wire("random JSON", json_value()),
        1 => json_wire("deep or wide JSON", deep_or_wide()),
        3 => json_wire("envelope with random method and params", envelope(method(mcp), params())),
        6 => json_wire("tool call with random arguments", tool_envelope),
        1 => json_wire("batch", batch),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC over HTTP

/// A few records at the start of each 10.2 step, so generated refs (`NC-1`, `CA-1`, `RISK-1`,
/// `CR-1`) and small versions reach the rules, not only "not found". `call` returns the
/// result (null on refusal); the refs made are printed.
fn seed_records(call: impl Fn(&str, Value) -> Value) {
    let steps = [
        (
            "log_nonconformity",
            json!({"title": "Secret in a log", "description": "An API key was printed by the deploy job",
                   "severity": "major", "source": "self_report", "controls": ["A.8.12"]}),
        ),
        (
            "log_nonconformity",
            json!({"title": "Unreviewed merge", "description": "A PR was merged without review", "severity": "minor",
                   "source": "monitoring", "controls": ["A.8.32"], "correction": "Reverted"}),
        ),
        (
            "record_nonconformity_analysis",
            json!({"ref": "NC-1", "version": 1, "method": "5 whys", "root_cause": "No log scrubbing",
                   "correction": "Key rotated", "consequences": "None known", "action_needed": true}),
        ),
        (
            "plan_corrective_action",
            json!({"ref": "NC-1", "version": 2, "description": "Add a log scrubber", "owner": "admin"}),
        ),
        (
            "register_risk",
            json!({"title": "Key leak", "asset": "deploy job", "threat": "log reader", "vulnerability": "no scrubbing",
                   "properties": ["confidentiality"], "likelihood": 3, "impact": 4, "owner": "admin",
                   "treatment": "mitigate", "controls": ["A.8.12"]}),
        ),
        (
            "raise_change_request",
            json!({"title": "Scrub logs", "description": "Add a scrubber", "purpose": "Stop leaks",
                   "consequences": "Slower logging", "type": "normal", "implementation_plan": "Deploy",
                   "rollback_plan": "Revert"}),
        ),
    ];
    let made: Vec<String> = steps
        .into_iter()
        .map(|(method, params)| {
            let result = call(method, params);
            let made = result.get("ref").or_else(|| result.as_object()?.values().find_map(|v| v.get("ref")));
            format!("{method}: {}", made.and_then(Value::as_str).unwrap_or("refused"))
        })
        .collect();
    eprintln!("hostile_input: seeded {made:?}");
}

fn check_rpc_reply(request: &[u8], reply: &Reply) -> Result<(), String> {
    if reply.status >= 500 {
        return Err(format!("HTTP {}: {}", reply.status, preview(&reply.body)));
    }
    if reply.status != 200 {
        return Ok(());
    }
    if reply.body.trim().is_empty() || reply.body.trim() == "null" {
        return if only_notifications(request) {
            Ok(())
        } else {
            Err(format!("HTTP 200 with no JSON-RPC answer ({:?}) to a request that expects one", reply.body))
        };
    }
    let v: Value = serde_json::from_str(&reply.body)
        .map_err(|e| format!("HTTP 200 with a body that is not JSON ({e}): {}", preview(&reply.body)))?;
    match &v {
        Value::Array(items) if items.is_empty() => Err("HTTP 200 with an empty batch answer".into()),
        Value::Array(items) => items.iter().try_for_each(check_message),
        _ => check_message(&v),
    }
}

#[test]
fn json_rpc_over_http_survives_hostile_messages() {
    let db = TestDb::sqlite();
    let mut server = Serve::start(&db.url, &[]);
    let http = Http::new();
    let url = server.url("/rpc");
    let token = server.token.clone();
    let json = [("content-type", "application/json".to_owned())];

    let valid = |http: &Http| -> Result<(), String> {
        let body = json!({"jsonrpc": "2.0", "id": "probe", "method": "query_controls", "params": {"ref": "A.5.1"}});
        let reply = http.post(&url, &token, &json, body.to_string().into_bytes())?;
        let v: Value = serde_json::from_str(&reply.body).map_err(|e| format!("probe reply not JSON: {e}"))?;
        if reply.status == 200 && v["result"]["controls"][0]["ref"] == "A.5.1" {
            Ok(())
        } else {
            Err(format!("a valid request is no longer answered: HTTP {} {}", reply.status, preview(&reply.body)))
        }
    };
    valid(&http).expect("the server answers before the hostile input");
    seed_records(|method, params| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let reply = http.post(&url, &token, &json, body.to_string().into_bytes()).unwrap();
        serde_json::from_str::<Value>(&reply.body).unwrap()["result"].clone()
    });

    let statuses: RefCell<std::collections::BTreeMap<u16, u32>> = RefCell::default();
    let content_types = prop_oneof![
        8 => Just("application/json"),
        1 => prop::sample::select(vec![
            "application/json; charset=utf-8",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json; charset=utf-16",
        ]),
    ];
    let ran = fuzz("JSON-RPC over HTTP (/rpc)", (hostile_message(false), content_types), |(msg, content_type)| {
        let before = server.alarms.count();
        let reply = http.post(&url, &token, &[("content-type", (*content_type).to_owned())], msg.body.clone())?;
        *statuses.borrow_mut().entry(reply.status).or_default() += 1;
        check_rpc_reply(&msg.body, &reply)?;
        server.alarms.check_since(before)
    });
    eprintln!(
        "hostile_input: /rpc statuses: {:?}; resent after the server closed the connection: {}",
        statuses.borrow(),
        http.resent.get()
    );
    server.alive().unwrap();
    valid(&http).unwrap();
    assert_eq!(ran, cases());
}

/// The protocol's own refusals over `/rpc`, pinned with fixed inputs (the generated ones find
/// them too, but these name them).
#[test]
fn json_rpc_over_http_answers_invalid_requests_with_errors() {
    let db = TestDb::sqlite();
    let mut server = Serve::start(&db.url, &[]);
    let http = Http::new();
    let post = |body: &str| {
        http.post(&server.url("/rpc"), &server.token, &[("content-type", "application/json".into())], body.into())
            .unwrap()
    };

    // Notifications ask for no answer: nothing, or jsonrpsee's `null`.
    for body in [
        r#"{"jsonrpc":"2.0","method":"verify_audit_trail"}"#,
        r#"[{"jsonrpc":"2.0","method":"verify_audit_trail"},{"jsonrpc":"2.0","method":"check_awareness"}]"#,
    ] {
        let reply = post(body);
        assert!(matches!(reply.status, 200 | 204), "{body}: HTTP {}", reply.status);
        assert!(matches!(reply.body.trim(), "" | "null"), "{body}: {}", reply.body);
    }

    // A request whose `id` JSON-RPC does not allow (an object, an array, a boolean, a
    // fraction) or that has two is an Invalid Request: the caller must get an error object
    // (with `"id": null`), not a bare `null` it cannot tell from success. A negative or huge
    // integer is a valid id that jsonrpsee cannot represent (it keeps ids as u64): it must
    // be answered too, at least with that error.
    let mut wrong = Vec::new();
    for body in [
        r#"{"jsonrpc":"2.0","id":-1,"method":"verify_audit_trail"}"#,
        r#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"verify_audit_trail"}"#,
        r#"{"jsonrpc":"2.0","id":{"a":1},"method":"verify_audit_trail"}"#,
        r#"{"jsonrpc":"2.0","id":[1],"method":"verify_audit_trail"}"#,
        r#"{"jsonrpc":"2.0","id":true,"method":"verify_audit_trail"}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"verify_audit_trail"}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"verify_audit_trail"}"#,
    ] {
        let reply = post(body);
        assert!(reply.status < 500, "{body}: HTTP {}", reply.status);
        let answer: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        let answered = answer.get("result").is_some() || answer["error"]["code"] == -32600;
        if reply.status == 200 && (!answered || check_message(&answer).is_err()) {
            wrong.push(format!("{body} -> HTTP {} {}", reply.status, reply.body));
        }
    }

    // The event subscription exists on the WebSocket only; over plain HTTP it is the
    // caller's mistake, not an internal error.
    for method in ["subscribe_events", "unsubscribe_events"] {
        let reply = post(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).to_string());
        let answer: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        let message = answer["error"]["message"].as_str().unwrap_or_default().to_lowercase();
        if answer["error"]["code"] == -32603 || !message.contains("websocket") {
            wrong.push(format!("{method} over HTTP -> HTTP {} {}", reply.status, reply.body));
        }
    }
    server.alive().unwrap();
    assert!(wrong.is_empty(), "malformed refusals over /rpc:\n{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// MCP over HTTP

/// How a hostile MCP request is sent: inside the initialized 2025-11-25 session, stateless
/// in the 2026-07-28 era (with `_meta` and the Mcp-Method / Mcp-Name headers), or with
/// hostile headers.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Session,
    Stateless,
    BadHeaders(u8),
}

fn mode() -> BoxedStrategy<Mode> {
    prop_oneof![7 => Just(Mode::Session), 2 => Just(Mode::Stateless), 1 => (0u8..6).prop_map(Mode::BadHeaders)].boxed()
}

struct Mcp<'a> {
    http: &'a Http,
    url: String,
    token: String,
    session: RefCell<Option<String>>,
}

impl Mcp<'_> {
    fn headers(&self, version: &str) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("content-type", "application/json".to_owned()),
            ("accept", "application/json, text/event-stream".to_owned()),
            ("mcp-protocol-version", version.to_owned()),
        ];
        if version == "2025-11-25"
            && let Some(s) = self.session.borrow().as_ref()
        {
            h.push(("mcp-session-id", s.clone()));
        }
        h
    }

    /// The 2025-11-25 handshake; keeps the session id.
    fn initialize(&self) -> Result<(), String> {
        *self.session.borrow_mut() = None;
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}}});
        let reply =
            self.http.post(&self.url, &self.token, &self.headers("2025-11-25"), body.to_string().into_bytes())?;
        if reply.status != 200 {
            return Err(format!("initialize: HTTP {} {}", reply.status, reply.body));
        }
        *self.session.borrow_mut() = reply.session;
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let reply =
            self.http.post(&self.url, &self.token, &self.headers("2025-11-25"), done.to_string().into_bytes())?;
        if reply.status != 202 {
            return Err(format!("notifications/initialized: HTTP {} {}", reply.status, reply.body));
        }
        Ok(())
    }

    /// The JSON-RPC messages of a 200 answer (JSON or SSE).
    fn messages(reply: &Reply) -> Result<Vec<Value>, String> {
        if reply.content_type.starts_with("text/event-stream") {
            sse_messages(&reply.body)
        } else if reply.body.trim().is_empty() {
            Ok(vec![])
        } else {
            let v: Value = serde_json::from_str(&reply.body)
                .map_err(|e| format!("HTTP 200 with a body that is not JSON ({e}): {}", preview(&reply.body)))?;
            Ok(match v {
                Value::Array(items) => items,
                v => vec![v],
            })
        }
    }

    /// Sends a valid request in the session and returns its answer.
    fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": "probe", "method": method, "params": params});
        let reply =
            self.http.post(&self.url, &self.token, &self.headers("2025-11-25"), body.to_string().into_bytes())?;
        if reply.status != 200 {
            return Err(format!("{method}: HTTP {} {}", reply.status, preview(&reply.body)));
        }
        Self::messages(&reply)?
            .into_iter()
            .find(|m| m["id"] == "probe")
            .ok_or_else(|| format!("{method}: no answer in {}", preview(&reply.body)))
    }
}

/// Adds what a stateless 2026-07-28 request carries: `_meta` in the params and the
/// Mcp-Method / Mcp-Name headers.
fn stateless(body: &[u8], headers: &mut Vec<(&'static str, String)>) -> Vec<u8> {
    let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(body) else { return body.to_vec() };
    // Names that cannot be header values (control characters) go without the header.
    let usable = |v: &str| reqwest::header::HeaderValue::from_str(v).is_ok();
    if let Some(Value::String(method)) = m.get("method").filter(|v| v.as_str().is_some_and(usable)) {
        headers.push(("mcp-method", method.clone()));
    }
    if let Some(Value::String(name)) =
        m.get("params").and_then(|p| p.get("name")).filter(|v| v.as_str().is_some_and(usable))
    {
        headers.push(("mcp-name", name.clone()));
    }
    match m.get_mut("params") {
        Some(Value::Object(p)) => {
            p.insert("_meta".into(), common::meta_2026());
        }
        None => {
            m.insert("params".into(), json!({"_meta": common::meta_2026()}));
        }
        Some(_) => {}
    }
    Value::Object(m).to_string().into_bytes()
}

#[test]
fn mcp_over_http_survives_hostile_messages() {
    let db = TestDb::sqlite();
    let mut server = Serve::start(&db.url, &[]);
    let http = Http::new();
    let mcp = Mcp { http: &http, url: server.url("/mcp"), token: server.token.clone(), session: RefCell::default() };
    mcp.initialize().expect("the MCP handshake");
    seed_records(|method, params| {
        let reply = mcp.call("tools/call", json!({"name": method, "arguments": params})).unwrap();
        reply["result"]["structuredContent"].clone()
    });

    let statuses: RefCell<std::collections::BTreeMap<u16, u32>> = RefCell::default();
    let tool_results = Cell::new(0u32);
    let reinitialized = Cell::new(0u32);
    let ran = fuzz("MCP over HTTP (/mcp)", (mode(), hostile_message(true)), |(mode, msg)| {
        let before = server.alarms.count();
        let (headers, body) = match mode {
            Mode::Session => (mcp.headers("2025-11-25"), msg.body.clone()),
            Mode::Stateless => {
                let mut headers = mcp.headers("2026-07-28");
                let body = stateless(&msg.body, &mut headers);
                (headers, body)
            }
            Mode::BadHeaders(which) => {
                // Drop one header, or replace it with a wrong value.
                let (name, value) = [
                    ("accept", None),
                    ("accept", Some("text/html")),
                    ("mcp-session-id", None),
                    ("mcp-session-id", Some("not-a-session~")),
                    ("mcp-protocol-version", Some("1999-01-01")),
                    ("mcp-method", Some("tools/list")),
                ][usize::from(*which)];
                let mut headers = mcp.headers("2025-11-25");
                headers.retain(|(n, _)| *n != name);
                headers.extend(value.map(|v| (name, v.to_owned())));
                (headers, msg.body.clone())
            }
        };
        let reply = http.post(&mcp.url, &mcp.token, &headers, body.clone())?;
        *statuses.borrow_mut().entry(reply.status).or_default() += 1;
        if reply.status >= 500 {
            return Err(format!("HTTP {}: {}", reply.status, preview(&reply.body)));
        }
        if reply.status == 200 {
            let messages = Mcp::messages(&reply)?;
            if messages.is_empty() && !only_notifications(&body) {
                return Err("HTTP 200 without a JSON-RPC message".into());
            }
            for m in &messages {
                check_message(m)?;
                if m["result"]["content"].is_array() {
                    tool_results.set(tool_results.get() + 1);
                }
            }
        }
        server.alarms.check_since(before)?;
        // A session the hostile input ended (it may not, but if it did) is opened again so
        // the following tool calls still reach the tools.
        if matches!(mode, Mode::Session) && reply.status == 404 {
            reinitialized.set(reinitialized.get() + 1);
            mcp.initialize()?;
        }
        Ok(())
    });
    eprintln!(
        "hostile_input: /mcp statuses: {:?}; tool calls answered with a tool result: {}; sessions reopened: {}; \
         resent after the server closed the connection: {}",
        statuses.borrow(),
        tool_results.get(),
        reinitialized.get(),
        http.resent.get()
    );
    server.alive().unwrap();
    assert_eq!(ran, cases());
    assert!(tool_results.get() > ran / 10, "tools/call must be reached, not only refused by the transport");

    // The same session (or a new one, had the hostile input ended it) still serves.
    let list = mcp
        .call("tools/list", json!({}))
        .or_else(|_| mcp.initialize().and_then(|()| mcp.call("tools/list", json!({}))));
    let list = list.expect("tools/list after the hostile input");
    assert_eq!(list["result"]["tools"].as_array().map(Vec::len), Some(tool_names().len()), "{list}");
    let call = mcp.call("tools/call", json!({"name": "query_controls", "arguments": {"ref": "A.8.28"}})).unwrap();
    assert_eq!(call["result"]["structuredContent"]["controls"][0]["title"], "Secure coding", "{call}");
}

// ---------------------------------------------------------------------------------------------
// MCP over stdio

/// `isms stdio`, driven line by line, every stdout line checked as it arrives.
struct StdioServer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    alarms: Alarms,
}

impl StdioServer {
    fn start(db: &str) -> Self {
        let mut child = Command::new(common::binary())
            .args(["stdio", "--actor", "admin"])
            .env("ISMS_DATABASE_URL", db)
            .env("ISMS_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn isms stdio");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Raw bytes, so a line that is not UTF-8 is reported rather than ending the reader.
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                if tx.send(String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_owned()).is_err() {
                    break;
                }
                buf.clear();
            }
        });
        let alarms = Alarms::default();
        let watch = alarms.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                watch.watch(&String::from_utf8_lossy(&buf));
                buf.clear();
            }
        });
        StdioServer { child, stdin, lines, alarms }
    }

    fn send(&mut self, line: &[u8]) -> Result<(), String> {
        self.stdin
            .write_all(line)
            .and_then(|()| self.stdin.write_all(b"\n"))
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("cannot write to isms stdio (has it exited?): {e}"))
    }

    fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("isms stdio exited: {status}")),
            Err(e) => Err(format!("cannot poll isms stdio: {e}")),
        }
    }

    /// Sends a request and reads stdout until its answer, checking every line on the way.
    fn request(&mut self, id: &str, method: &str, params: Value) -> Result<Value, String> {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string().as_bytes())?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .map_err(|_| format!("no answer to `{method}` within {REQUEST_TIMEOUT:?}"))?;
            let v: Value = serde_json::from_str(&line)
                .map_err(|e| format!("a stdout line is not JSON ({e}): {}", preview(&line)))?;
            check_message(&v)?;
            if v["id"] == id {
                return Ok(v);
            }
        }
    }
}

impl Drop for StdioServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line: no newline inside (it would make two lines).
fn stdio_line() -> BoxedStrategy<Wire> {
    hostile_message(true)
        .prop_map(|mut w| {
            for b in &mut w.body {
                if *b == b'\n' {
                    *b = b' ';
                }
            }
            w
        })
        .boxed()
}

#[test]
fn mcp_over_stdio_survives_hostile_lines() {
    let db = TestDb::sqlite();
    let server = RefCell::new(StdioServer::start(&db.url));
    let init = server
        .borrow_mut()
        .request(
            "init",
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}}),
        )
        .expect("initialize");
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    server.borrow_mut().send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();

    // Fixed cases first: 10,000 levels of nesting, a 1 MB title, a line over rmcp's 16 MiB
    // line limit; each is refused and the server carries on.
    {
        let mut s = server.borrow_mut();
        let deep_args = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":"deep","method":"tools/call","params":{{"name":"get_record","arguments":{{"ref":{deep_args}}}}}}}"#
        );
        s.send(line.as_bytes()).unwrap();
        let deep_objects = format!(r#"{}1{}"#, r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        s.send(deep_objects.as_bytes()).unwrap();
        let pong = s.request("after-deep", "ping", json!({})).expect("ping after 10,000-level nesting");
        assert!(pong.get("result").is_some(), "{pong}");

        let title = "x".repeat(1_000_000);
        let r = s
            .request(
                "huge-title",
                "tools/call",
                json!({"name": "log_nonconformity", "arguments": {"title": title, "description": "d", "severity": "minor", "source": "incident"}}),
            )
            .unwrap();
        assert_eq!(r["result"]["isError"], true, "{}", preview(&r.to_string()));
        let text = r["result"]["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.contains("`title`") && text.contains("limit is 200"), "{text}");

        let mut huge = vec![b'x'; 17 << 20];
        huge[0] = b'{';
        s.send(&huge).unwrap();
        let pong = s.request("after-huge-line", "ping", json!({})).expect("ping after a 17 MiB line");
        assert!(pong.get("result").is_some(), "{pong}");
        let listed =
            s.request("listed", "tools/call", json!({"name": "list_nonconformities", "arguments": {}})).unwrap();
        assert_eq!(listed["result"]["structuredContent"]["items"], json!([]), "nothing was stored");
    }

    let probes = Cell::new(0u64);
    let ran = fuzz("MCP over stdio", stdio_line(), |line| {
        let mut s = server.borrow_mut();
        let before = s.alarms.count();
        s.send(&line.body)?;
        // A ping after each line: answered (in order with whatever the line produced, every
        // stdout line checked), so the server neither hung nor died.
        probes.set(probes.get() + 1);
        let id = format!("probe-{}", probes.get());
        let pong = s.request(&id, "ping", json!({}))?;
        if pong.get("result").is_none() {
            return Err(format!("ping answered with {pong}"));
        }
        s.alive()?;
        s.alarms.check_since(before)
    });
    let mut s = server.borrow_mut();
    s.alive().unwrap();
    let tools = s.request("final", "tools/list", json!({})).expect("tools/list after the hostile input");
    assert_eq!(tools["result"]["tools"].as_array().map(Vec::len), Some(tool_names().len()), "{tools}");
    assert_eq!(ran, cases());
}

// ---------------------------------------------------------------------------------------------
// Limits

/// One raw HTTP/1.1 exchange on a fresh connection; returns the status code. `chunked`
/// sends the body with `Transfer-Encoding: chunked` (no Content-Length to check up front).
fn raw_post(server: &Serve, path: &str, body: &[u8], chunked: bool) -> u16 {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
    let framing =
        if chunked { "Transfer-Encoding: chunked".to_owned() } else { format!("Content-Length: {}", body.len()) };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\n{framing}\r\nConnection: close\r\n\r\n",
        server.addr(),
        server.token
    );
    let mut request = head.into_bytes();
    if chunked {
        for chunk in body.chunks(8 << 10) {
            request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            request.extend_from_slice(chunk);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
    } else {
        request.extend_from_slice(body);
    }
    // The server may answer and close before reading everything; the answer is what counts.
    let _ = stream.write_all(&request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    status.unwrap_or_else(|| panic!("{path}: no HTTP status in {:?}", preview(&answer)))
}

#[test]
fn bodies_over_the_size_limit_get_413() {
    let db = TestDb::sqlite();
    // Small enough that an oversized body still fits the socket buffers, so the 413 is read
    // rather than racing the server's close.
    let limit = 64 << 10;
    let mut server = Serve::start(&db.url, &["--max-body-bytes", &limit.to_string()]);
    let padding = |n: usize| {
        let prefix = r#"{"jsonrpc":"2.0","id":1,"method":"log_nonconformity","params":{"title":""#;
        let suffix = r#"","description":"d","severity":"minor","source":"incident"}}"#;
        format!("{prefix}{}{suffix}", "x".repeat(n - prefix.len() - suffix.len())).into_bytes()
    };
    let mut wrong = Vec::new();
    for path in ["/rpc", "/mcp"] {
        for (size, chunked) in [(limit + 1, false), (2 * limit, false), (limit + 1, true), (2 * limit, true)] {
            let status = raw_post(&server, path, &padding(size), chunked);
            if status != 413 {
                let framing = if chunked { "chunked" } else { "Content-Length" };
                wrong.push(format!("{path}: a {size}-byte body ({framing}) over a {limit}-byte limit got {status}"));
            }
        }
        // At the limit the body is read (and refused for what it says, not for its size).
        for chunked in [false, true] {
            let status = raw_post(&server, path, &padding(limit), chunked);
            if status == 413 || status >= 500 {
                wrong.push(format!("{path}: a body of exactly the limit (chunked: {chunked}) got {status}"));
            }
        }
    }
    server.alive().unwrap();
    assert_eq!(server.alarms.count(), 0, "{:?}", server.alarms.0.lock().unwrap());
    let http = Http::new();
    let reply = http
        .post(
            &server.url("/rpc"),
            &server.token,
            &[("content-type", "application/json".into())],
            json!({"jsonrpc": "2.0", "id": 1, "method": "list_nonconformities", "params": {}}).to_string().into_bytes(),
        )
        .unwrap();
    let v: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(v["result"]["items"], json!([]), "nothing oversized was stored: {v}");
    assert!(wrong.is_empty(), "the body limit:\n{}", wrong.join("\n"));
}

/// One JSON-RPC call to `/rpc`: (HTTP status, reply).
fn rpc(http: &Http, server: &Serve, method: &str, params: Value) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string().into_bytes();
    rpc_raw(http, server, body)
}

fn rpc_raw(http: &Http, server: &Serve, body: Vec<u8>) -> (u16, Value) {
    let reply =
        http.post(&server.url("/rpc"), &server.token, &[("content-type", "application/json".into())], body).unwrap();
    let v = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    (reply.status, v)
}

#[test]
fn ten_thousand_levels_of_nesting_are_refused_without_crashing() {
    let db = TestDb::sqlite();
    let mut server = Serve::start(&db.url, &[]);
    let http = Http::new();
    let arrays = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let unclosed = "[".repeat(10_000);
    // A 5xx fails at once; an answer that is not a refusal is collected, so every body is tried.
    let mut wrong = Vec::new();
    for deep in [&arrays, &objects, &unclosed] {
        let bodies = [
            deep.clone(),
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"get_record","params":{deep}}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"get_record","params":{{"ref":{deep}}}}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":{deep},"method":"get_record","params":{{"ref":"NC-1"}}}}"#),
        ];
        for body in bodies {
            let (status, v) = rpc_raw(&http, &server, body.clone().into_bytes());
            assert!(status < 500, "/rpc: HTTP {status} for {}", preview(&body));
            if status == 200 {
                // A top-level array is a batch: its one entry is refused.
                let v = match v {
                    Value::Array(mut entries) if entries.len() == 1 => entries.remove(0),
                    v => v,
                };
                let refused = v.get("error").is_some() && v.get("result").is_none() && v["error"]["code"] != -32603;
                if !refused {
                    wrong.push(format!("/rpc {} -> {}", preview(&body), preview(&v.to_string())));
                }
            }
        }
    }

    let mcp = Mcp { http: &http, url: server.url("/mcp"), token: server.token.clone(), session: RefCell::default() };
    mcp.initialize().unwrap();
    for deep in [&arrays, &objects, &unclosed] {
        let bodies = [
            deep.clone(),
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{deep}}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":{deep},"method":"tools/call","params":{{"name":"get_record"}}}}"#),
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"get_record","arguments":{{"ref":{deep}}}}}}}"#
            ),
        ];
        for body in bodies {
            let reply = http.post(&mcp.url, &mcp.token, &mcp.headers("2025-11-25"), body.clone().into_bytes()).unwrap();
            assert!(reply.status < 500, "/mcp: HTTP {} for {}", reply.status, preview(&body));
            if reply.status == 200 {
                let messages = Mcp::messages(&reply).unwrap_or_default();
                let refused = !messages.is_empty()
                    && messages.iter().all(|m| {
                        check_message(m).is_ok() && (m.get("error").is_some() || m["result"]["isError"] == true)
                    });
                if !refused {
                    wrong.push(format!("/mcp {} -> {}", preview(&body), preview(&reply.body)));
                }
            }
        }
    }
    server.alive().unwrap();
    assert_eq!(server.alarms.count(), 0, "{:?}", server.alarms.0.lock().unwrap());
    let (status, v) = rpc(&http, &server, "verify_audit_trail", json!({}));
    assert_eq!((status, &v["result"]["intact"]), (200, &json!(true)), "{v}");
    let tools = mcp.call("tools/list", json!({})).unwrap();
    assert_eq!(tools["result"]["tools"].as_array().map(Vec::len), Some(tool_names().len()));
    assert!(wrong.is_empty(), "10,000 levels of nesting not refused:\n{}", wrong.join("\n"));
}

#[test]
fn an_over_long_string_argument_is_invalid_params_and_not_stored() {
    let db = TestDb::sqlite();
    let mut server = Serve::start(&db.url, &[]);
    let http = Http::new();
    let base = json!({"title": "t", "description": "d", "severity": "minor", "source": "incident"});
    let with = |field: &str, value: Value| {
        let mut args = base.clone();
        args[field] = value;
        args
    };
    // 1 MB of title (under the default 1 MiB body limit, so the operation sees it).
    let checks = [
        ("title", with("title", json!("x".repeat(1_000_000))), "limit is 200"),
        ("title", with("title", json!("é".repeat(201))), "limit is 200"),
        ("description", with("description", json!("x".repeat(20_001))), "limit is 20000"),
        ("evidence", with("evidence", json!(vec!["e"; 51])), "limit is 50"),
        ("evidence", with("evidence", json!(["x".repeat(1_001)])), "limit is 1000"),
        ("idempotency_key", with("idempotency_key", json!("k".repeat(201))), "limit is 200"),
        ("title", with("title", json!("a\u{0}b")), "NUL"),
        ("title", with("title", json!("   ")), "must not be empty"),
    ];
    for (field, args, needle) in &checks {
        let (status, v) = rpc(&http, &server, "log_nonconformity", args.clone());
        assert_eq!(status, 200);
        assert_eq!(v["error"]["code"], -32602, "{field}: {}", preview(&v.to_string()));
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("`{field}`")) && message.contains(needle), "{field}: {message}");
        assert!(message.len() < 500, "the error names the problem without echoing the input: {}", preview(message));
    }
    // The same over MCP: an isError result an agent can read.
    let mcp = Mcp { http: &http, url: server.url("/mcp"), token: server.token.clone(), session: RefCell::default() };
    mcp.initialize().unwrap();
    let r = mcp.call("tools/call", json!({"name": "log_nonconformity", "arguments": checks[0].1})).unwrap();
    assert_eq!(r["result"]["isError"], true, "{}", preview(&r.to_string()));
    let text = r["result"]["content"][0]["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("invalid_argument") && text.contains("`title`") && text.contains("limit is 200"),
        "{text}"
    );

    let (_, listed) = rpc(&http, &server, "list_nonconformities", json!({}));
    assert_eq!(listed["result"]["items"], json!([]), "nothing was stored: {listed}");
    let (_, trail) = rpc(&http, &server, "verify_audit_trail", json!({}));
    assert_eq!(trail["result"]["intact"], true, "{trail}");
    server.alive().unwrap();
}

#[test]
fn a_page_size_above_the_maximum_is_refused() {
    let db = TestDb::sqlite();
    let server = Serve::start(&db.url, &[]);
    let http = Http::new();
    let (_, logged) = rpc(
        &http,
        &server,
        "log_nonconformity",
        json!({"title": "t", "description": "d", "severity": "minor", "source": "incident"}),
    );
    assert_eq!(logged["result"]["ref"], "NC-1", "{logged}");
    // list_nonconformities refuses (does not clamp) a limit outside 1..=200; so does
    // list_change_requests; query_controls takes 1..=93.
    for (tool, max) in [("list_nonconformities", 200u64), ("list_change_requests", 200), ("query_controls", 93)] {
        let (_, ok) = rpc(&http, &server, tool, json!({"limit": max}));
        assert!(ok.get("result").is_some(), "{tool} limit {max}: {ok}");
        for bad in [json!(max + 1), json!(0), json!(10_000), json!(u64::from(u32::MAX)), json!(u64::from(u32::MAX) + 1)]
        {
            let (status, v) = rpc(&http, &server, tool, json!({"limit": bad}));
            assert_eq!(status, 200);
            assert_eq!(v["error"]["code"], -32602, "{tool} limit {bad}: {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains("`limit`"), "{tool} limit {bad}: {v}");
        }
        for bad in [json!(-1), json!(1.5), json!("10"), json!(1e300), json!(i64::MIN), json!([50])] {
            let (_, v) = rpc(&http, &server, tool, json!({"limit": bad}));
            assert_eq!(v["error"]["code"], -32602, "{tool} limit {bad}: {v}");
        }
    }
    let (_, page) = rpc(&http, &server, "list_nonconformities", json!({"limit": 200}));
    assert_eq!(page["result"]["items"].as_array().map(Vec::len), Some(1), "{page}");
}

#[test]
fn sql_looking_text_is_stored_and_read_back_verbatim() {
    let db = TestDb::sqlite();
    let server = Serve::start(&db.url, &[]);
    let http = Http::new();
    let title = "'); DROP TABLE nonconformities;--";
    let description = "100% of _all_ rows \\ back\\slash 'single' \"double\" `tick` ; -- /* c */ \
                       Ünïcödé 日本語 😀👩‍👩‍👧‍👦 \u{202e}RTL\u{202c} zero\u{200b}width e\u{301} \u{feff}BOM";
    let detected_in = "%_\\%\\_\\\\";
    let evidence = ["'; DELETE FROM audit_log; --", "%", "_", "\\", "Robert'); DROP TABLE students;--"];
    let correction = "SELECT * FROM actors WHERE name LIKE '%' ESCAPE '\\'";
    let hostile = json!({
        "title": title, "description": description, "severity": "major", "source": "self_report",
        "controls": ["A.8.28"], "detected_in": detected_in, "evidence": evidence, "correction": correction,
        "idempotency_key": "'; --%_\\"
    });
    let (_, logged) = rpc(&http, &server, "log_nonconformity", hostile.clone());
    assert_eq!(logged["result"]["ref"], "NC-1", "{logged}");
    let (_, plain) = rpc(
        &http,
        &server,
        "log_nonconformity",
        json!({"title": "Plain title", "description": "plain words only", "severity": "minor", "source": "incident"}),
    );
    assert_eq!(plain["result"]["ref"], "NC-2", "{plain}");

    let (_, record) = rpc(&http, &server, "get_record", json!({"ref": "NC-1"}));
    let r = &record["result"]["record"];
    assert_eq!(r["title"], title, "{record}");
    assert_eq!(r["description"], description);
    assert_eq!(r["detected_in"], detected_in);
    assert_eq!(r["evidence"], json!(evidence));
    assert_eq!(r["correction"], correction);

    // LIKE wildcards are literal in the text filter: `%`, `_` and `\` find only NC-1.
    for needle in ["%", "_", "\\", "'); drop", "100% of _all_", "\\ back\\", "日本語", "😀"] {
        let (_, found) = rpc(&http, &server, "list_nonconformities", json!({"text": needle}));
        let refs: Vec<&str> =
            found["result"]["items"].as_array().unwrap().iter().map(|i| i["ref"].as_str().unwrap()).collect();
        assert_eq!(refs, ["NC-1"], "text {needle:?}: {found}");
    }
    // The idempotency key with the same characters replays, with the same arguments.
    let (_, replay) = rpc(&http, &server, "log_nonconformity", hostile.clone());
    assert_eq!((&replay["result"]["ref"], &replay["result"]["replayed"]), (&json!("NC-1"), &json!(true)), "{replay}");
    let (_, trail) = rpc(&http, &server, "verify_audit_trail", json!({}));
    assert_eq!(trail["result"]["intact"], true, "{trail}");
    let (_, all) = rpc(&http, &server, "list_nonconformities", json!({}));
    assert_eq!(all["result"]["items"].as_array().map(Vec::len), Some(2), "the table is still there: {all}");
}
