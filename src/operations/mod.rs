//! The operation registry: every operation defined once (typed input and output with JSON
//! Schemas, a description, who may call it, a handler) and served by every front: MCP tool,
//! JSON-RPC method and CLI.

mod audits;
mod awareness;
mod changes;
mod competence;
mod controls;
mod corrective_action;
mod management_review;
mod nonconformities;
mod objectives;
mod records;
pub mod resources;
mod risks;
mod soa;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::domain::access::Access;
use crate::domain::actor::Actor;
use crate::domain::change::ChangePolicy;
use crate::domain::nonconformity::DuePolicy;
use crate::domain::risk::Methodology;
use crate::domain::similarity::SimilarityIndex;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::Store;

/// What the operations work with: the store and the ISMS's configured policies.
#[derive(Debug)]
pub struct App {
    /// The database.
    pub store: Store,
    /// Default due dates of corrective action.
    pub due: DuePolicy,
    /// The risk assessment method (scale, levels, acceptance threshold).
    pub risk: Methodology,
    /// Age after which SoA evidence counts as stale, in days.
    pub evidence_max_age_days: u64,
    /// Time limits of the change process.
    pub change: ChangePolicy,
    /// Call counts and latencies, per operation.
    pub metrics: Metrics,
    /// The recent nonconformities new findings are compared with (10.2 b), kept in memory.
    pub similarity: std::sync::Mutex<SimilarityIndex>,
}

impl App {
    /// An app on `store` with the default policies.
    pub fn new(store: Store) -> Self {
        App {
            store,
            due: DuePolicy::default(),
            risk: Methodology::default(),
            evidence_max_age_days: 365,
            change: ChangePolicy::default(),
            metrics: Metrics::default(),
            similarity: std::sync::Mutex::new(SimilarityIndex::new(nonconformities::SIMILARITY_POOL)),
        }
    }
}

/// What an operation does to the ISMS, shown to agents as MCP tool annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only.
    Read,
    /// Creates a record; an idempotency key makes retries safe.
    Create,
    /// Changes a record read at a given version (a stale version is refused).
    Update,
}

type Handler = Arc<dyn Fn(Arc<App>, Actor, Value) -> BoxFuture<'static, Result<Value>> + Send + Sync>;

/// One operation of the ISMS.
pub struct Operation {
    /// Tool and method name (the contract).
    pub name: &'static str,
    /// What it does, from the input type's doc comment.
    pub description: String,
    /// JSON Schema of the arguments.
    pub input_schema: Arc<Map<String, Value>>,
    /// JSON Schema of the result.
    pub output_schema: Arc<Map<String, Value>>,
    /// Read or write.
    pub effect: Effect,
    /// Who may call it.
    pub access: Access,
    handler: Handler,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Makes an input schema cheap for an agent's context without losing what a caller needs:
/// a `oneOf` of string constants becomes one `enum`; `null` alternatives of optional fields go
/// (an `anyOf` of a type and `null` becomes that type, keeping the field's own description
/// rather than the type's); empty, null or `false` defaults, integer formats and the `minimum`
/// of 0 that unsigned integers carry go (descriptions give the real range); nested objects lose
/// `additionalProperties` (the server refuses unknown fields anyway) and array items their
/// description (the property's own description says what they are).
fn compact_input(value: &mut Value, top_level: bool) {
    match value {
        Value::Object(map) => {
            let non_null: Option<Vec<&Value>> = map
                .get("anyOf")
                .and_then(Value::as_array)
                .filter(|alternatives| alternatives.iter().any(|a| a.get("type").is_some_and(|t| t == "null")))
                .map(|alternatives| {
                    alternatives.iter().filter(|a| a.get("type").is_none_or(|t| t != "null")).collect()
                });
            if let Some([Value::Object(only)]) = non_null.as_deref() {
                let only = only.clone();
                map.remove("anyOf");
                for (key, schema) in only {
                    map.entry(key).or_insert(schema);
                }
            }
            let constants: Option<Vec<Value>> = map.get("oneOf").and_then(Value::as_array).and_then(|variants| {
                variants.iter().map(|v| v.get("const").filter(|c| c.is_string()).cloned()).collect()
            });
            if let Some(constants) = constants {
                map.remove("oneOf");
                map.insert("type".into(), Value::String("string".into()));
                map.insert("enum".into(), Value::Array(constants));
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if map.get("default").is_some_and(|d| d.is_null() || *d == false || d.as_array().is_some_and(Vec::is_empty))
            {
                map.remove("default");
            }
            if map.get("minimum").is_some_and(|m| m == 0) && map.get("type").is_some_and(|t| t == "integer") {
                map.remove("minimum");
            }
            map.remove("format");
            if !top_level {
                map.remove("additionalProperties");
            }
            if let Some(Value::Object(items)) = map.get_mut("items") {
                items.remove("description");
            }
            for (key, child) in map.iter_mut() {
                // `properties` maps names to schemas; a property named "description" is not one.
                if key == "properties" {
                    if let Value::Object(props) = child {
                        props.values_mut().for_each(|p| compact_input(p, false));
                    }
                } else {
                    compact_input(child, false);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| compact_input(i, false)),
        _ => {}
    }
}

/// Cuts an output schema to the names of its top-level fields: `required` lists those always
/// present, `properties` names the others (with no constraint). Any result is an object of
/// these fields, so clients can still validate against it; the types and nested shapes are
/// self-describing in the results, and spelling them out would cost every agent thousands of
/// tokens of context for little use.
fn compact_output(map: &mut Map<String, Value>) {
    map.retain(|k, _| matches!(k.as_str(), "type" | "properties" | "required"));
    let required: Vec<Value> = map.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        props.retain(|name, _| !required.iter().any(|r| r == name.as_str()));
        props.values_mut().for_each(|p| *p = Value::Object(Map::new()));
    }
    if map.get("properties").and_then(Value::as_object).is_some_and(Map::is_empty) {
        map.remove("properties");
    }
}

/// The JSON Schema of `T`, inlined (no `$ref`), without `$schema` and `title`; the
/// description is taken out and returned apart.
fn schema_of<T: JsonSchema>() -> (Map<String, Value>, String) {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut map = match schema.to_value() {
        Value::Object(m) => m,
        other => panic!("schema of {} is not an object: {other}", std::any::type_name::<T>()),
    };
    map.remove("$schema");
    map.remove("title");
    let description = match map.remove("description") {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    (map, description)
}

impl Operation {
    /// Defines an operation from its handler; input and output schemas come from the types.
    pub fn new<I, O, F, Fut>(name: &'static str, effect: Effect, access: Access, handler: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + Send + 'static,
        O: Serialize + JsonSchema + 'static,
        F: Fn(Arc<App>, Actor, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O>> + Send + 'static,
    {
        let (input_schema, description) = schema_of::<I>();
        let mut input_schema = Value::Object(input_schema);
        compact_input(&mut input_schema, true);
        let Value::Object(input_schema) = input_schema else { unreachable!("compacting keeps an object an object") };
        let (mut output_schema, _) = schema_of::<O>();
        compact_output(&mut output_schema);
        let handler = Arc::new(handler);
        Operation {
            name,
            description,
            input_schema: Arc::new(input_schema),
            output_schema: Arc::new(output_schema),
            effect,
            access,
            handler: Arc::new(move |app, actor, args| {
                let handler = handler.clone();
                Box::pin(async move {
                    let input: I = parse_arguments(args)?;
                    let output = handler(app, actor, input).await?;
                    serde_json::to_value(output).map_err(|e| Error::Internal(format!("output of {name}: {e}")))
                })
            }),
        }
    }

    /// Runs the operation for `actor`, after checking the actor's role may call it.
    pub async fn call(&self, app: Arc<App>, actor: Actor, args: Value) -> Result<Value> {
        let started = std::time::Instant::now();
        let metrics = app.metrics.clone();
        let result = if self.access.permits(actor.role) {
            (self.handler)(app, actor, args).await
        } else {
            Err(Error::Forbidden {
                role: actor.role.to_string(),
                operation: self.name.to_owned(),
                allowed: self.access.roles().iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
            })
        };
        let outcome = result.as_ref().map_or_else(Error::code, |_| "ok");
        metrics.observe(self.name, outcome, started.elapsed());
        result
    }
}

/// Deserialises arguments, naming the field at fault.
fn parse_arguments<I: DeserializeOwned>(args: Value) -> Result<I> {
    let args = if args.is_null() { Value::Object(Map::new()) } else { args };
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "arguments".to_owned() } else { path };
        Error::invalid(field, e.into_inner().to_string())
    })
}

/// Every operation, by name.
#[derive(Debug)]
pub struct Registry {
    operations: Vec<Operation>,
    by_name: HashMap<&'static str, usize>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// The registry of all operations, in catalogue order.
    pub fn new() -> Self {
        let operations: Vec<Operation> = [
            records::operations(),
            nonconformities::operations(),
            corrective_action::operations(),
            controls::operations(),
            soa::operations(),
            risks::operations(),
            competence::operations(),
            awareness::operations(),
            changes::operations(),
            objectives::operations(),
            audits::operations(),
            management_review::operations(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let by_name = operations.iter().enumerate().map(|(i, op)| (op.name, i)).collect();
        Registry { operations, by_name }
    }

    /// All operations.
    pub fn all(&self) -> &[Operation] {
        &self.operations
    }

    /// The operation with this name.
    pub fn get(&self, name: &str) -> Option<&Operation> {
        self.by_name.get(name).map(|&i| &self.operations[i])
    }
}

/// `value` as JSON; a value that cannot be (which no record type makes) is an internal error.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Internal(e.to_string()))
}

/// SHA-256 of a request's arguments, to tell a retry from a different call under the same
/// idempotency key.
pub(crate) fn request_hash<T: Serialize>(input: &T) -> Result<String> {
    use sha2::{Digest, Sha256};
    let canonical = serde_json::to_vec(input).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(hex::encode(Sha256::digest(&canonical)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_flat_objects_with_descriptions() {
        let registry = Registry::new();
        for op in registry.all() {
            assert_eq!(op.input_schema.get("type"), Some(&Value::String("object".into())), "{}", op.name);
            assert_eq!(op.output_schema.get("type"), Some(&Value::String("object".into())), "{}", op.name);
            assert_eq!(op.input_schema.get("additionalProperties"), Some(&Value::Bool(false)), "{}", op.name);
            for key in ["oneOf", "anyOf", "allOf", "$ref", "$defs"] {
                assert!(!op.input_schema.contains_key(key), "{} has top-level {key}", op.name);
            }
            assert!(!op.description.is_empty(), "{} has no description", op.name);
        }
    }

    #[test]
    fn input_schemas_are_compact_and_output_schemas_shallow() {
        let registry = Registry::new();
        let op = registry.get("log_nonconformity").unwrap();
        let severity = &op.input_schema["properties"]["severity"];
        assert_eq!(severity["enum"], serde_json::json!(["major", "minor", "observation"]));
        assert!(severity.get("oneOf").is_none());
        assert!(severity.get("description").is_some(), "input fields keep their descriptions");
        let optional = &op.input_schema["properties"]["due_date"];
        assert_eq!(optional["type"], "string", "no null alternative: {optional}");
        assert!(op.input_schema["properties"]["controls"].get("default").is_none(), "no empty default");
        let list = &registry.get("list_nonconformities").unwrap().input_schema["properties"];
        assert_eq!(list["status"]["type"], "string", "an optional enum is the enum, no null alternative");
        assert!(list["status"].get("anyOf").is_none(), "{}", list["status"]);
        assert!(list["status"]["description"].as_str().is_some_and(|d| d.starts_with("Only")), "the field's own");
        assert!(list["overdue"].get("default").is_none(), "no false default");
        assert!(list["limit"].get("minimum").is_none(), "no unsigned minimum");
        let output = serde_json::Value::Object((*op.output_schema).clone());
        assert_eq!(
            output,
            serde_json::json!({
                "type": "object",
                "required": ["ref", "status", "version", "similar", "recurrence_of", "replayed"],
                "properties": {"due_date": {}, "next_step": {}},
            }),
            "output schemas name the fields: those always present as required, the others as properties"
        );
        let always = registry.get("get_record").unwrap();
        assert!(always.output_schema.get("properties").is_none(), "no empty properties");
    }

    #[test]
    fn argument_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct In {
            a: u32,
        }
        let e = parse_arguments::<In>(serde_json::json!({"a": "x"})).unwrap_err();
        assert!(matches!(&e, Error::Invalid { field, .. } if field == "a"), "{e}");
        let e = parse_arguments::<In>(serde_json::json!({"a": 1, "b": 2})).unwrap_err().to_string();
        assert!(e.contains("unknown field `b`"), "{e}");
        let e = parse_arguments::<In>(Value::Null).unwrap_err().to_string();
        assert!(e.contains("missing field `a`"), "{e}");
    }
}
