//! The ways in: MCP (stdio and Streamable HTTP), JSON-RPC at `/rpc`, the HTTP plumbing that
//! hosts both (bearer tokens, Origin checks, body limits) and the CLI. Fronts translate; the
//! rules live in `domain` and run through `operations`.

pub mod cli;
pub mod http;
pub mod mcp;
pub mod report;
pub mod rpc;

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::{Tool, ToolAnnotations};

use crate::domain::actor::{Actor, Role};
use crate::operations::{App, Effect, Operation, Registry};

/// What every front shares: the operations, the app they run against, and the MCP tool
/// descriptions built once from the registry.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Store and policies.
    pub app: Arc<App>,
    /// Every operation.
    pub registry: Arc<Registry>,
    tools: Arc<HashMap<Role, Vec<Tool>>>,
}

/// The MCP tool description of an operation, as agents see it.
pub fn tool_of(op: &Operation) -> Tool {
    // Only the hints that differ from MCP's defaults (not read-only, destructive, not
    // idempotent, open world): every byte here is paid in each agent's context.
    let annotations = match op.effect {
        Effect::Read => ToolAnnotations::new().read_only(true).open_world(false),
        Effect::Create => ToolAnnotations::new().destructive(false).open_world(false),
        Effect::Update => ToolAnnotations::new().open_world(false),
    };
    Tool::new_with_raw(op.name, Some(op.description.clone().into()), op.input_schema.clone())
        .with_raw_output_schema(op.output_schema.clone())
        .with_annotations(annotations)
}

impl Shared {
    /// Builds the shared state and each role's tool list.
    pub fn new(app: Arc<App>, registry: Arc<Registry>) -> Self {
        let tools = Role::ALL
            .into_iter()
            .map(|role| {
                let list = registry.all().iter().filter(|op| op.access.permits(role)).map(tool_of).collect();
                (role, list)
            })
            .collect();
        Shared { app, registry, tools: Arc::new(tools) }
    }

    /// The tools `actor` may call.
    pub fn tools_for(&self, actor: &Actor) -> &[Tool] {
        self.tools.get(&actor.role).map(Vec::as_slice).unwrap_or_default()
    }
}
