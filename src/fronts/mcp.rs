//! MCP through rmcp: tools come from the registry; results carry `structuredContent`
//! (matching `outputSchema`) and the same JSON as text. Argument and rule failures are
//! `isError` results an agent can read; an unknown tool is a protocol error.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role as MessageRole,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;

use super::Shared;
use crate::domain::actor::Actor;
use crate::error::Error;
use crate::operations::resources;

const INSTRUCTIONS: &str = "System of record of an ISO/IEC 27001:2022 ISMS. Log what breaks a requirement with \
log_nonconformity; look records up with get_record; find the Annex A controls that bear on your work with \
query_controls. Errors say what to fix.";

/// The MCP server: one per stdio connection, or one per HTTP request (cheap to clone).
#[derive(Debug, Clone)]
pub struct McpServer {
    shared: Shared,
    /// The actor of a stdio session, set at launch; over HTTP the bearer token decides.
    stdio_actor: Option<Actor>,
}

impl McpServer {
    /// A server for the stdio transport, acting as `actor`.
    pub fn stdio(shared: Shared, actor: Actor) -> Self {
        McpServer { shared, stdio_actor: Some(actor) }
    }

    /// A server for the HTTP transport; the actor comes from each request.
    pub fn http(shared: Shared) -> Self {
        McpServer { shared, stdio_actor: None }
    }

    fn actor(&self, ctx: &RequestContext<RoleServer>) -> Result<Actor, McpError> {
        if let Some(a) = &self.stdio_actor {
            return Ok(a.clone());
        }
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Actor>())
            .cloned()
            .ok_or_else(|| McpError::invalid_request("no authenticated actor for this request", None))
    }
}

/// A domain error where the protocol has no `isError` (resources, prompts): bad input is
/// "invalid params", a missing record "resource not found", anything else internal.
fn protocol_error(e: &Error) -> McpError {
    match e {
        Error::Invalid { .. } => McpError::invalid_params(e.to_string(), None),
        Error::NotFound { .. } => McpError::resource_not_found(e.to_string(), None),
        Error::Internal(detail) => {
            tracing::error!(%detail, "internal error reading a resource or prompt");
            McpError::internal_error("internal error: the server logged the details", None)
        }
        other => McpError::invalid_request(other.to_string(), None),
    }
}

/// The `isError` result for a failed operation; internal details stay in the log.
pub fn error_result(e: &Error) -> CallToolResult {
    let message = match e {
        Error::Internal(detail) => {
            tracing::error!(%detail, "internal error in a tool call");
            "internal error: the server logged the details; retry, and report it if it persists".to_owned()
        }
        other => other.to_string(),
    };
    CallToolResult::error(vec![ContentBlock::text(format!("{}: {message}", e.code()))])
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().enable_prompts().build())
            .with_server_info(Implementation::new("isms", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let actor = self.actor(&ctx)?;
        Ok(ListToolsResult::with_all_items(self.shared.tools_for(&actor).to_vec()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        self.actor(&ctx)?;
        let templates = vec![
            ResourceTemplate::new(resources::RECORD_TEMPLATE, "record")
                .with_description("Any record (NC-12, CA-7, RISK-4, SOA-2) with its history, as JSON")
                .with_mime_type("application/json"),
            ResourceTemplate::new(resources::CONTROL_TEMPLATE, "control")
                .with_description("An Annex A control (A.8.28) with its SoA entry and history, as JSON")
                .with_mime_type("application/json"),
            ResourceTemplate::new(resources::POLICY_TEMPLATE, "policy")
                .with_description("The current text of a policy, exactly as published: its SHA-256 is what acknowledge_policy expects")
                .with_mime_type("text/markdown"),
        ];
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.actor(&ctx)?;
        let soa = Resource::new(resources::SOA_URI, "soa")
            .with_description("The Statement of Applicability as it stands, with its approval header (Markdown)")
            .with_mime_type("text/markdown");
        Ok(ListResourcesResult::with_all_items(vec![soa]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.actor(&ctx)?;
        let (text, mime) = resources::read(&self.shared.app, &request.uri).await.map_err(|e| {
            let mut error = protocol_error(&e);
            if matches!(e, Error::Invalid { .. } | Error::NotFound { .. }) {
                // SEP-2164: a resource that cannot be read names the URI asked for.
                error.data = Some(serde_json::json!({ "uri": request.uri }));
            }
            error
        })?;
        let contents = ResourceContents::text(text, request.uri).with_mime_type(mime);
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.actor(&ctx)?;
        let prompt = Prompt::new(
            resources::ROOT_CAUSE_PROMPT,
            Some(
                "Walks through the 10.2 b) root-cause analysis of a nonconformity, ending in record_nonconformity_analysis",
            ),
            Some(vec![PromptArgument::new("ref").with_description("Nonconformity, e.g. NC-12").with_required(true)]),
        );
        Ok(ListPromptsResult::with_all_items(vec![prompt]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.actor(&ctx)?;
        if request.name != resources::ROOT_CAUSE_PROMPT {
            return Err(McpError::invalid_params(format!("unknown prompt `{}`", request.name), None));
        }
        let reference = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("ref"))
            .and_then(Value::as_str)
            .ok_or_else(|| McpError::invalid_params("argument `ref` (e.g. NC-12) is required", None))?;
        let text = resources::root_cause_prompt(&self.shared.app, reference).await.map_err(|e| protocol_error(&e))?;
        let result = GetPromptResult::new(vec![PromptMessage::new_text(MessageRole::User, text)])
            .with_description(format!("Root-cause analysis of {reference}"));
        Ok(result.into())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.shared.registry.get(name).map(super::tool_of)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let op = self.shared.registry.get(&request.name).ok_or_else(|| {
            McpError::invalid_params(
                format!("unknown tool `{}`; tools/list shows the tools you may call", request.name),
                None,
            )
        })?;
        let actor = self.actor(&ctx)?;
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let result = match op.call(self.shared.app.clone(), actor, args).await {
            Ok(value) => CallToolResult::structured(value),
            Err(e) => error_result(&e),
        };
        Ok(result.into())
    }
}
