//! The tool catalog: every selected OpenAPI operation turned into an [`ApiTool`], built once at start-up, plus the
//! ranked search behind the dynamic mode's `search_tools`.
//!
//! Selection order: names are assigned over all operations first (so selection never renames a tool), then an
//! operation is kept when (1) its method passes `read_only`, (2) its `security` lists `required_security_scheme`
//! when one is set, (3) it matches an `include` glob (when any are given) by name or tag, and (4) it matches no
//! `exclude` glob by name or tag. Operations that pass but cannot be served faithfully (a required cookie parameter,
//! a required non-JSON body, …) are listed in [`Catalog::skipped`] with the reason, for the operator's log.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use http::Method;
use serde_json::{Map, Value, json};

use super::arguments::ArgumentValidator;
use super::naming::{NameAllocator, base_tool_name};
pub use super::operation::ParamStyle;
use super::operation::{self, DeclaredBody, DeclaredLocation, DeclaredParameter, OperationRef};
use super::schema::{self, BodySchemaInput, ParameterSchemaInput, SchemaOptions};
use super::spec::{self, OpenApiVersion, SpecError};
use super::text::shorten;

/// Headers a tool argument may never set: OpenAPI says `Accept`, `Content-Type` and `Authorization` parameters are
/// ignored, and the rest are either hop-by-hop, framing, or credentials that only configuration may supply.
const RESERVED_HEADERS: [&str; 15] = [
    "accept",
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "cookie",
    "cf-access-jwt-assertion",
    "expect",
    "host",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// How the catalog is selected and described.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// Serve only GET/HEAD operations (the default): write operations need an explicit opt-in.
    pub read_only: bool,
    /// Globs over tool names and OpenAPI tags; when non-empty, only matching operations are served.
    pub include: Vec<String>,
    /// Globs over tool names and OpenAPI tags; matching operations are never served.
    pub exclude: Vec<String>,
    /// Longest tool description, in characters.
    pub description_max: usize,
    /// Keep only operations whose `security` lists this scheme (Polar profile: `oat`).
    pub required_security_scheme: Option<String>,
    /// Describe `page`/`limit` pagination in tool and parameter descriptions.
    pub pagination_hint: bool,
    /// The upstream's largest page (`limit`); added as `maximum` so the model learns it from the schema.
    pub max_page_size: Option<u64>,
    /// How much prose and data the argument schemas carry.
    pub schema: SchemaOptions,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        Self {
            read_only: true,
            include: Vec::new(),
            exclude: Vec::new(),
            description_max: 400,
            required_security_scheme: None,
            pagination_hint: true,
            max_page_size: None,
            schema: SchemaOptions::default(),
        }
    }
}

impl CatalogOptions {
    /// The Polar profile: organization-token operations only, offset pagination with pages of at most 100.
    pub fn polar() -> Self {
        Self {
            required_security_scheme: Some("oat".to_owned()),
            max_page_size: Some(100),
            ..Self::default()
        }
    }
}

/// Where an argument goes in the upstream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamLocation {
    Path,
    Query,
    Header,
}

/// How one tool argument maps onto the upstream request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamBinding {
    /// The property name in `inputSchema`.
    pub arg_name: String,
    /// The name on the wire (path variable, query key, header name).
    pub wire_name: String,
    pub location: ParamLocation,
    pub style: ParamStyle,
    pub explode: bool,
    pub required: bool,
}

/// How the `body` argument is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyBinding {
    pub required: bool,
    pub content_type: String,
}

/// MCP tool annotations (hints for clients, never trusted for security).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolHints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

impl ToolHints {
    fn for_method(method: &Method) -> Self {
        let read_only = matches!(*method, Method::GET | Method::HEAD);
        Self {
            read_only,
            destructive: *method == Method::DELETE,
            // RFC 9110 §9.2.2: PUT and DELETE (and the safe methods) are idempotent.
            idempotent: read_only || matches!(*method, Method::PUT | Method::DELETE),
            open_world: true,
        }
    }

    /// The MCP `annotations` object. `destructiveHint`/`idempotentHint` only mean something for tools that are not
    /// read-only, so read-only tools omit them; write tools state both explicitly, because an absent
    /// `destructiveHint` defaults to true.
    pub fn to_json(&self) -> Value {
        if self.read_only {
            json!({"readOnlyHint": true, "openWorldHint": self.open_world})
        } else {
            json!({
                "readOnlyHint": false,
                "destructiveHint": self.destructive,
                "idempotentHint": self.idempotent,
                "openWorldHint": self.open_world
            })
        }
    }
}

/// One operation served as an MCP tool.
#[derive(Debug, Clone)]
pub struct ApiTool {
    pub name: String,
    /// The operation's `summary`, used as the human-facing title.
    pub title: Option<String>,
    pub description: String,
    pub operation_id: Option<String>,
    pub method: Method,
    /// The OpenAPI path, e.g. `/v1/products/{id}`.
    pub path_template: String,
    pub tags: Vec<String>,
    pub read_only: bool,
    pub input_schema: Arc<Map<String, Value>>,
    pub params: Vec<ParamBinding>,
    pub body: Option<BodyBinding>,
    /// The operation takes `page`/`limit` query parameters.
    pub paginated: bool,
    pub annotations: ToolHints,
    /// Scopes the document lists for the operation (under the required scheme when one is set), for error hints.
    pub scopes: Vec<String>,
    pub(crate) validator: ArgumentValidator,
}

impl ApiTool {
    /// The tool as it appears in an MCP `tools/list` result.
    pub fn to_mcp_json(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "inputSchema": Value::Object(self.input_schema.as_ref().clone()),
            "annotations": self.annotations.to_json(),
        })
    }

    /// The first line of the description, for `tunnelgate tools` and `search_tools` results.
    pub fn summary_line(&self) -> &str {
        self.title
            .as_deref()
            .unwrap_or_else(|| self.description.lines().next().unwrap_or_default())
    }
}

/// An operation that passed selection but is not served, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedOperation {
    pub name: String,
    pub method: String,
    pub path: String,
    pub reason: String,
}

/// The served tools, in document order, with lookup by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tools: Vec<ApiTool>,
    index_by_name: HashMap<String, usize>,
    skipped: Vec<SkippedOperation>,
}

impl Catalog {
    /// Validates the document and builds every selected tool, including its compiled argument validator.
    pub fn build(doc: &Value, options: &CatalogOptions) -> Result<Catalog, SpecError> {
        let version = spec::validate_document(doc)?;
        let include = compile_globs(&options.include)?;
        let exclude = compile_globs(&options.exclude)?;
        let mut names = NameAllocator::new();
        let mut catalog = Catalog::default();
        for operation in operation::operations(doc)? {
            let name = names.allocate(&base_tool_name(
                operation.operation_id(),
                operation.method,
                operation.path,
            ));
            let method = http_method(operation.method);
            // TRACE echoes the request back, configured credential included: never a tool.
            if method == Method::TRACE {
                continue;
            }
            if options.read_only && !matches!(method, Method::GET | Method::HEAD) {
                continue;
            }
            let requirements = operation::security_requirements(doc, &operation);
            if let Some(scheme) = &options.required_security_scheme {
                let listed = requirements
                    .iter()
                    .flatten()
                    .any(|(listed, _)| listed == scheme);
                if !listed {
                    continue;
                }
            }
            let tags = operation.tags();
            let matches = |globs: &GlobSet| {
                globs.is_match(&name) || tags.iter().any(|tag| globs.is_match(tag))
            };
            if (!include.is_empty() && !matches(&include)) || matches(&exclude) {
                continue;
            }
            let scopes: Vec<String> = requirements
                .iter()
                .flatten()
                .filter(|(scheme, _)| {
                    options
                        .required_security_scheme
                        .as_deref()
                        .is_none_or(|required| required == *scheme)
                })
                .flat_map(|(_, scopes)| scopes.iter().map(|scope| (*scope).to_owned()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let draft = ToolDraft {
                doc,
                version,
                operation: &operation,
                name,
                method,
                tags,
                scopes,
                options,
            };
            match draft.build()? {
                Ok(tool) => {
                    catalog
                        .index_by_name
                        .insert(tool.name.clone(), catalog.tools.len());
                    catalog.tools.push(tool);
                }
                Err(skipped) => catalog.skipped.push(skipped),
            }
        }
        Ok(catalog)
    }

    pub fn tools(&self) -> &[ApiTool] {
        &self.tools
    }

    pub fn get(&self, name: &str) -> Option<&ApiTool> {
        self.index_by_name
            .get(name)
            .and_then(|&index| self.tools.get(index))
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Operations that were selected but cannot be served, with the reason.
    pub fn skipped(&self) -> &[SkippedOperation] {
        &self.skipped
    }

    /// The body of an MCP `tools/list` result listing every tool.
    pub fn tools_list_json(&self) -> Value {
        json!({"tools": self.tools.iter().map(ApiTool::to_mcp_json).collect::<Vec<_>>()})
    }

    /// Ranks tools against a free-text query by token overlap with the name, tags and summary. Deterministic: equal
    /// scores keep catalog order. Tools that match nothing are not returned.
    pub fn search(&self, query: &str, limit: usize) -> Vec<(&ApiTool, u32)> {
        let query_tokens = tokenize(query);
        if query_tokens.is_empty() || limit == 0 {
            return Vec::new();
        }
        let mut ranked: Vec<(&ApiTool, u32)> = self
            .tools
            .iter()
            .map(|tool| (tool, search_score(tool, &query_tokens, query)))
            .filter(|(_, score)| *score > 0)
            .collect();
        // A stable sort keeps catalog order between equal scores.
        ranked.sort_by(|(_, first), (_, second)| second.cmp(first));
        ranked.truncate(limit);
        ranked
    }
}

/// Everything needed to turn one selected operation into a tool.
struct ToolDraft<'doc, 'op> {
    doc: &'doc Value,
    version: OpenApiVersion,
    operation: &'op OperationRef<'doc>,
    name: String,
    method: Method,
    tags: Vec<String>,
    scopes: Vec<String>,
    options: &'op CatalogOptions,
}

impl ToolDraft<'_, '_> {
    /// `Ok(Err(skipped))` when the operation cannot be served; `Err` only for a broken document.
    fn build(self) -> Result<Result<ApiTool, SkippedOperation>, SpecError> {
        let declared = operation::parameters(self.doc, self.operation)?;
        let mut sendable: Vec<DeclaredParameter<'_>> = Vec::with_capacity(declared.len());
        for parameter in declared {
            match parameter_disposition(&parameter) {
                Disposition::Send => sendable.push(parameter),
                Disposition::Ignore => {}
                Disposition::Refuse(reason) if parameter.required => {
                    return Ok(Err(self.skip(reason)));
                }
                Disposition::Refuse(_) => {}
            }
        }
        let body = match operation::request_body(self.doc, self.operation)? {
            None => None,
            Some(DeclaredBody::Json {
                required,
                content_type,
                description,
                schema,
                schema_pointer,
            }) => Some((
                BodyBinding {
                    required,
                    content_type: content_type.to_owned(),
                },
                description,
                schema,
                schema_pointer,
            )),
            Some(DeclaredBody::Unsupported {
                required: true,
                media_types,
            }) => {
                return Ok(Err(self.skip(format!(
                    "its required request body is {}, and only JSON bodies can be sent",
                    media_types.join(" or ")
                ))));
            }
            Some(DeclaredBody::Unsupported {
                required: false, ..
            }) => None,
        };

        let schema_inputs: Vec<ParameterSchemaInput<'_>> = sendable
            .iter()
            .map(|parameter| ParameterSchemaInput {
                wire_name: parameter.name,
                location: parameter.location,
                required: parameter.required,
                deprecated: parameter.deprecated,
                description: parameter.description,
                schema: parameter.schema,
                schema_pointer: parameter.schema_pointer.clone(),
            })
            .collect();
        let body_input = body
            .as_ref()
            .map(|(binding, description, schema, pointer)| BodySchemaInput {
                required: binding.required,
                description: *description,
                schema: *schema,
                schema_pointer: pointer.clone(),
            });
        let built = schema::build_input_schema(
            self.doc,
            self.version,
            &schema_inputs,
            body_input.as_ref(),
            &self.options.schema,
        )?;
        let mut input_schema = built.schema;

        let params: Vec<ParamBinding> = sendable
            .iter()
            .zip(built.argument_names)
            .filter_map(|(parameter, arg_name)| {
                let location = match parameter.location {
                    DeclaredLocation::Path => ParamLocation::Path,
                    DeclaredLocation::Query => ParamLocation::Query,
                    DeclaredLocation::Header => ParamLocation::Header,
                    DeclaredLocation::Cookie => return None,
                };
                Some(ParamBinding {
                    arg_name,
                    wire_name: parameter.name.to_owned(),
                    location,
                    style: parameter.style,
                    explode: parameter.explode,
                    required: parameter.required,
                })
            })
            .collect();

        let paginated = has_query_argument(&params, "page") && has_query_argument(&params, "limit");
        if paginated && self.options.pagination_hint {
            describe_pagination(&mut input_schema, &params, self.options.max_page_size);
        }
        let validator = match ArgumentValidator::compile(&input_schema) {
            Ok(validator) => validator,
            Err(reason) => {
                return Ok(Err(
                    self.skip(format!("its argument schema does not compile: {reason}"))
                ));
            }
        };
        let title = self
            .operation
            .text("summary")
            .map(|summary| shorten(summary, 120, false));
        let description = self.describe(title.as_deref(), paginated);
        Ok(Ok(ApiTool {
            name: self.name,
            title,
            description,
            operation_id: self.operation.operation_id().map(str::to_owned),
            read_only: matches!(self.method, Method::GET | Method::HEAD),
            annotations: ToolHints::for_method(&self.method),
            method: self.method,
            path_template: self.operation.path.to_owned(),
            tags: self.tags,
            input_schema: Arc::new(input_schema),
            params,
            body: body.map(|(binding, ..)| binding),
            paginated,
            scopes: self.scopes,
            validator,
        }))
    }

    fn skip(&self, reason: String) -> SkippedOperation {
        SkippedOperation {
            name: self.name.clone(),
            method: self.method.to_string(),
            path: self.operation.path.to_owned(),
            reason,
        }
    }

    /// Summary and description, without repeating a summary the description already starts with, trimmed to
    /// `description_max` with the pagination note (when any) always kept.
    fn describe(&self, summary: Option<&str>, paginated: bool) -> String {
        let details = self.operation.text("description");
        let mut text = match (summary, details) {
            (Some(summary), Some(details)) if summary_is_covered(summary, details) => {
                details.to_owned()
            }
            (Some(summary), Some(details)) => {
                format!("{}. {details}", summary.trim_end_matches('.'))
            }
            (Some(only), None) | (None, Some(only)) => only.to_owned(),
            (None, None) => format!("{} {}", self.method, self.operation.path),
        };
        if self.operation.is_deprecated() {
            text = format!("Deprecated. {text}");
        }
        let note = if paginated && self.options.pagination_hint {
            pagination_note(self.options.max_page_size)
        } else {
            String::new()
        };
        let budget = self
            .options
            .description_max
            .saturating_sub(note.chars().count());
        let mut description = shorten(&text, budget, true);
        description.push_str(&note);
        description
    }
}

enum Disposition {
    Send,
    /// Dropped silently, as OpenAPI requires for `Accept`/`Content-Type`/`Authorization` header parameters.
    Ignore,
    /// Cannot be sent; fatal for the operation only when the parameter is required.
    Refuse(String),
}

fn parameter_disposition(parameter: &DeclaredParameter<'_>) -> Disposition {
    match parameter.location {
        DeclaredLocation::Cookie => Disposition::Refuse(format!(
            "it needs the cookie parameter {:?}, and tools never send cookies",
            parameter.name
        )),
        DeclaredLocation::Header => {
            let lower = parameter.name.to_ascii_lowercase();
            if matches!(lower.as_str(), "accept" | "content-type" | "authorization") {
                Disposition::Ignore
            } else if RESERVED_HEADERS.contains(&lower.as_str()) {
                Disposition::Refuse(format!(
                    "its header parameter {:?} is reserved for the server",
                    parameter.name
                ))
            } else if http::HeaderName::from_bytes(parameter.name.as_bytes()).is_err() {
                Disposition::Refuse(format!("{:?} is not a valid header name", parameter.name))
            } else {
                Disposition::Send
            }
        }
        DeclaredLocation::Path | DeclaredLocation::Query => Disposition::Send,
    }
}

fn has_query_argument(params: &[ParamBinding], wire_name: &str) -> bool {
    params
        .iter()
        .any(|p| p.location == ParamLocation::Query && p.wire_name == wire_name)
}

fn pagination_note(max_page_size: Option<u64>) -> String {
    match max_page_size {
        Some(max) => format!(
            "\nPaginated: page starts at 1, limit is at most {max}; request further pages until the last."
        ),
        None => "\nPaginated: page starts at 1; request further pages until the last.".to_owned(),
    }
}

/// Rewrites the `page`/`limit` property descriptions so the model knows the rules, and states the bounds in the
/// schema itself (where validation enforces them) when the document left them to prose.
fn describe_pagination(
    input_schema: &mut Map<String, Value>,
    params: &[ParamBinding],
    max_page_size: Option<u64>,
) {
    let Some(Value::Object(properties)) = input_schema.get_mut("properties") else {
        return;
    };
    let arg_name = |wire: &str| {
        params
            .iter()
            .find(|p| p.location == ParamLocation::Query && p.wire_name == wire)
            .map(|p| p.arg_name.clone())
    };
    if let Some(Value::Object(page)) = arg_name("page").and_then(|name| properties.get_mut(&name)) {
        if !page.contains_key("minimum") && !page.contains_key("exclusiveMinimum") {
            page.insert("minimum".to_owned(), json!(1));
        }
        let default = page
            .get("default")
            .map(|value| format!(" (default {value})"))
            .unwrap_or_default();
        page.insert(
            "description".to_owned(),
            Value::String(format!("Page number, from 1{default}.")),
        );
    }
    if let Some(Value::Object(limit)) = arg_name("limit").and_then(|name| properties.get_mut(&name))
    {
        if let Some(max) = max_page_size
            && !limit.contains_key("maximum")
            && !limit.contains_key("exclusiveMaximum")
        {
            limit.insert("maximum".to_owned(), json!(max));
        }
        let default = limit
            .get("default")
            .map(|value| format!(", default {value}"))
            .unwrap_or_default();
        let bound = max_page_size
            .map(|max| format!(", at most {max}"))
            .unwrap_or_default();
        limit.insert(
            "description".to_owned(),
            Value::String(format!("Items per page{bound}{default}.")),
        );
    }
}

/// True when every word of the summary already appears in the description's first sentence ("Get Benefit" vs
/// "Get a benefit by ID."), so repeating the summary would only cost context.
fn summary_is_covered(summary: &str, details: &str) -> bool {
    let first_sentence = details.split(". ").next().unwrap_or(details);
    let sentence_tokens = tokenize(first_sentence);
    tokenize(summary)
        .iter()
        .all(|token| sentence_tokens.contains(token))
}

fn http_method(method: &str) -> Method {
    match method {
        "get" => Method::GET,
        "put" => Method::PUT,
        "post" => Method::POST,
        "delete" => Method::DELETE,
        "options" => Method::OPTIONS,
        "head" => Method::HEAD,
        "patch" => Method::PATCH,
        _ => Method::TRACE,
    }
}

fn compile_globs(patterns: &[String]) -> Result<GlobSet, SpecError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|error| SpecError::InvalidSelection {
            pattern: pattern.clone(),
            message: error.kind().to_string(),
        })?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|error| SpecError::InvalidSelection {
            pattern: patterns.join(", "),
            message: error.to_string(),
        })
}

/// Lower-case alphanumeric tokens, with a plural `s` dropped so `products` finds `product`.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for character in text.chars() {
        // Split camelCase as well as separators, so `getProductById` yields `get product by id`.
        let boundary = !character.is_alphanumeric() || (character.is_uppercase() && previous_lower);
        if boundary && !current.is_empty() {
            tokens.push(normalize_token(&current));
            current.clear();
        }
        if character.is_alphanumeric() {
            current.extend(character.to_lowercase());
        }
        previous_lower = character.is_lowercase();
    }
    if !current.is_empty() {
        tokens.push(normalize_token(&current));
    }
    tokens
}

fn normalize_token(token: &str) -> String {
    if token.len() > 3 && token.ends_with('s') && !token.ends_with("ss") {
        token[..token.len() - 1].to_owned()
    } else {
        token.to_owned()
    }
}

fn search_score(tool: &ApiTool, query_tokens: &[String], raw_query: &str) -> u32 {
    let name_tokens = tokenize(&tool.name);
    let tag_tokens: Vec<String> = tool.tags.iter().flat_map(|tag| tokenize(tag)).collect();
    let summary_tokens = tokenize(tool.summary_line());
    let mut score = 0;
    if tool.name.eq_ignore_ascii_case(raw_query.trim()) {
        score += 100;
    }
    for token in query_tokens {
        let prefix_of =
            |candidate: &String| token.len() >= 3 && candidate.starts_with(token.as_str());
        if name_tokens.contains(token) {
            score += 10;
        } else if name_tokens.iter().any(prefix_of) {
            score += 4;
        }
        if tag_tokens.contains(token) {
            score += 6;
        }
        if summary_tokens.contains(token) {
            score += 3;
        } else if summary_tokens.iter().any(prefix_of) {
            score += 1;
        }
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    fn petstore() -> Value {
        json!({
            "openapi": "3.0.3",
            "info": {"title": "pets", "version": "1"},
            "security": [{"key": []}],
            "paths": {
                "/pets": {
                    "get": {"operationId": "pets:list", "tags": ["pets"], "summary": "List pets",
                            "description": "List pets.\n\nReturns every pet.",
                            "parameters": [
                                {"name": "page", "in": "query", "schema": {"type": "integer", "default": 1}},
                                {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 10}},
                                {"name": "session", "in": "cookie", "schema": {"type": "string"}}]},
                    "post": {"operationId": "pets:create", "tags": ["pets"], "summary": "Create a pet",
                             "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}}}
                },
                "/pets/{id}": {
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "get": {"tags": ["pets"], "summary": "Get a pet",
                            "parameters": [{"name": "Authorization", "in": "header", "schema": {"type": "string"}},
                                           {"name": "X-Trace", "in": "header", "schema": {"type": "string"}}]},
                    "put": {"operationId": "pets:replace", "tags": ["pets"]},
                    "delete": {"operationId": "pets:delete", "tags": ["pets", "danger"]}
                },
                "/uploads": {
                    "post": {"operationId": "uploads:create", "tags": ["files"],
                             "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {}}}}}
                },
                "/admin/stats": {
                    "get": {"operationId": "admin:stats", "tags": ["admin"], "security": [{"admin_key": []}]}
                }
            }
        })
    }

    fn names(catalog: &Catalog) -> Vec<&str> {
        catalog
            .tools()
            .iter()
            .map(|tool| tool.name.as_str())
            .collect()
    }

    fn write_enabled() -> CatalogOptions {
        CatalogOptions {
            read_only: false,
            ..CatalogOptions::default()
        }
    }

    #[test]
    fn serves_only_get_and_head_operations_by_default() {
        let catalog = Catalog::build(&petstore(), &CatalogOptions::default()).unwrap();

        assert_eq!(names(&catalog), ["pets_list", "get_pets_id", "admin_stats"]);
    }

    #[test]
    fn serves_write_operations_when_read_only_is_off_and_skips_what_it_cannot_send() {
        let catalog = Catalog::build(&petstore(), &write_enabled()).unwrap();

        assert_eq!(
            names(&catalog),
            [
                "pets_list",
                "pets_create",
                "get_pets_id",
                "pets_replace",
                "pets_delete",
                "admin_stats"
            ]
        );
        assert_eq!(catalog.skipped().len(), 1);
        assert_eq!(catalog.skipped()[0].name, "uploads_create");
        assert!(
            catalog.skipped()[0].reason.contains("multipart/form-data"),
            "{:?}",
            catalog.skipped()
        );
    }

    #[test]
    fn never_serves_trace_because_it_would_echo_the_credential() {
        let doc =
            json!({"openapi": "3.1.0", "paths": {"/debug": {"trace": {"operationId": "debug"}}}});

        let catalog = Catalog::build(&doc, &write_enabled()).unwrap();

        assert!(catalog.is_empty());
    }

    #[test]
    fn keeps_only_operations_that_list_the_required_security_scheme() {
        let options = CatalogOptions {
            required_security_scheme: Some("admin_key".to_owned()),
            ..write_enabled()
        };

        let catalog = Catalog::build(&petstore(), &options).unwrap();

        assert_eq!(names(&catalog), ["admin_stats"]);
    }

    #[test]
    fn applies_include_and_exclude_globs_to_names_and_tags() {
        let options = CatalogOptions {
            include: vec!["pets".to_owned()],
            exclude: vec!["danger".to_owned(), "*_replace".to_owned()],
            ..write_enabled()
        };

        let catalog = Catalog::build(&petstore(), &options).unwrap();

        assert_eq!(names(&catalog), ["pets_list", "pets_create", "get_pets_id"]);
    }

    #[test]
    fn keeps_names_stable_whatever_the_selection() {
        let everything = Catalog::build(&petstore(), &write_enabled()).unwrap();
        let options = CatalogOptions {
            include: vec!["get_pets_id".to_owned()],
            ..write_enabled()
        };

        let one = Catalog::build(&petstore(), &options).unwrap();

        assert_eq!(names(&one), ["get_pets_id"]);
        assert!(everything.get("get_pets_id").is_some());
    }

    #[test]
    fn reports_a_bad_glob_with_the_pattern() {
        let options = CatalogOptions {
            include: vec!["pets[".to_owned()],
            ..CatalogOptions::default()
        };

        let error = Catalog::build(&petstore(), &options).unwrap_err();

        assert!(error.to_string().contains("\"pets[\""), "{error}");
    }

    #[test]
    fn sets_annotations_from_the_http_method() {
        let catalog = Catalog::build(&petstore(), &write_enabled()).unwrap();
        let hints = |name: &str| catalog.get(name).unwrap().annotations;

        assert_eq!(
            hints("pets_list"),
            ToolHints {
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: true
            }
        );
        assert_eq!(
            hints("pets_create"),
            ToolHints {
                read_only: false,
                destructive: false,
                idempotent: false,
                open_world: true
            }
        );
        assert_eq!(
            hints("pets_replace"),
            ToolHints {
                read_only: false,
                destructive: false,
                idempotent: true,
                open_world: true
            }
        );
        assert!(hints("pets_delete").destructive);
        assert_eq!(
            catalog.get("pets_create").unwrap().to_mcp_json()["annotations"]["destructiveHint"],
            false
        );
    }

    #[test]
    fn describes_pagination_in_the_tool_and_its_parameters() {
        let options = CatalogOptions {
            max_page_size: Some(100),
            ..CatalogOptions::default()
        };

        let catalog = Catalog::build(&petstore(), &options).unwrap();

        let tool = catalog.get("pets_list").unwrap();
        assert!(tool.paginated);
        assert!(
            tool.description
                .starts_with("List pets.\nReturns every pet."),
            "{}",
            tool.description
        );
        assert_eq!(catalog.get("get_pets_id").unwrap().description, "Get a pet");
        assert!(
            tool.description.contains("limit is at most 100"),
            "{}",
            tool.description
        );
        let properties = &tool.input_schema["properties"];
        assert_eq!(properties["limit"]["maximum"], 100);
        assert_eq!(
            properties["limit"]["description"],
            "Items per page, at most 100, default 10."
        );
        assert_eq!(properties["page"]["minimum"], 1);
        assert_eq!(
            properties["page"]["description"],
            "Page number, from 1 (default 1)."
        );
    }

    #[test]
    fn does_not_repeat_a_summary_that_the_description_already_says() {
        let doc = json!({"openapi": "3.1.0", "paths": {
            "/a": {"get": {"operationId": "a", "summary": "Get Benefit", "description": "Get a benefit by ID."}},
            "/b": {"get": {"operationId": "b", "summary": "Export", "description": "Download subscriptions as CSV."}}}});

        let catalog = Catalog::build(&doc, &CatalogOptions::default()).unwrap();

        assert_eq!(
            catalog.get("a").unwrap().description,
            "Get a benefit by ID."
        );
        assert_eq!(
            catalog.get("b").unwrap().description,
            "Export. Download subscriptions as CSV."
        );
    }

    #[test]
    fn keeps_the_pagination_note_when_the_description_is_trimmed() {
        let options = CatalogOptions {
            description_max: 100,
            ..CatalogOptions::default()
        };

        let catalog = Catalog::build(&petstore(), &options).unwrap();

        let description = &catalog.get("pets_list").unwrap().description;
        assert!(description.chars().count() <= 100, "{description}");
        assert!(description.contains("Paginated"), "{description}");
    }

    #[test]
    fn never_exposes_authorization_or_cookie_parameters() {
        let catalog = Catalog::build(&petstore(), &CatalogOptions::default()).unwrap();

        let get = catalog.get("get_pets_id").unwrap();
        let wire: Vec<_> = get.params.iter().map(|p| p.wire_name.as_str()).collect();
        assert_eq!(wire, ["id", "X-Trace"]);
        let list_args: Vec<_> = catalog
            .get("pets_list")
            .unwrap()
            .params
            .iter()
            .map(|p| p.arg_name.as_str())
            .collect();
        assert_eq!(list_args, ["page", "limit"]);
    }

    #[test]
    fn binds_the_json_body() {
        let catalog = Catalog::build(&petstore(), &write_enabled()).unwrap();

        let create = catalog.get("pets_create").unwrap();

        assert_eq!(
            create.body,
            Some(BodyBinding {
                required: true,
                content_type: "application/json".to_owned()
            })
        );
        assert_eq!(create.input_schema["required"], json!(["body"]));
    }

    #[test]
    fn finds_tools_by_name_tag_and_summary_tokens() {
        let catalog = Catalog::build(&petstore(), &write_enabled()).unwrap();

        let results = catalog.search("create pet", 3);

        assert_eq!(results[0].0.name, "pets_create");
        assert!(results.iter().all(|(_, score)| *score > 0));
        assert!(catalog.search("zebra", 5).is_empty());
    }

    #[test]
    fn ranks_equal_scores_in_catalog_order() {
        let catalog = Catalog::build(&petstore(), &write_enabled()).unwrap();

        let first = catalog.search("pets", 10);
        let second = catalog.search("pets", 10);

        let order = |results: &[(&ApiTool, u32)]| {
            results
                .iter()
                .map(|(t, s)| (t.name.clone(), *s))
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&first), order(&second));
        assert_eq!(first[0].0.name, "pets_list");
    }

    #[test]
    fn lists_tools_in_the_mcp_shape() {
        let catalog = Catalog::build(&petstore(), &CatalogOptions::default()).unwrap();

        let listed = catalog.tools_list_json();

        let first = &listed["tools"][0];
        assert_eq!(first["name"], "pets_list");
        assert_eq!(first["inputSchema"]["type"], "object");
        assert_eq!(
            first["annotations"],
            json!({"readOnlyHint": true, "openWorldHint": true})
        );
    }
}
