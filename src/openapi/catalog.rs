//! The tool catalog: every selected OpenAPI operation turned into an [`ApiTool`], built once at start-up.
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
use serde_json::Value;

use super::description::{Pagination, describe_operation, describe_pagination};
use super::document::{self, OpenApiVersion, Problem, SpecError};
use super::naming::{NameAllocator, base_tool_name};
use super::operation::{self, DeclaredBody, DeclaredLocation, DeclaredParameter, OperationRef};
use super::schema::{self, BodySchemaInput, ParameterSchemaInput, SchemaOptions};
use super::text::shorten;
pub use super::tool::{ApiTool, BodyBinding, ParamBinding, ParamLocation, ToolHints};

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
    pub include: Vec<Glob>,
    /// Globs over tool names and OpenAPI tags; matching operations are never served.
    pub exclude: Vec<Glob>,
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
    /// Largest sum of all tools' `inputSchema`s, as compact JSON bytes: a document whose operations each reach a
    /// large shared definition would otherwise cost its size once per operation. Past it the document is refused
    /// ([`Problem::CatalogTooLarge`]).
    ///
    /// [`Problem::CatalogTooLarge`]: super::document::Problem::CatalogTooLarge
    pub max_catalog_schema_bytes: usize,
}

/// The default [`CatalogOptions::max_catalog_schema_bytes`]: 16 MiB. All of Polar's operations together take
/// about 230 KB.
pub const MAX_CATALOG_SCHEMA_BYTES: usize = 16 * 1024 * 1024;

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
            max_catalog_schema_bytes: MAX_CATALOG_SCHEMA_BYTES,
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

/// An operation that passed selection but is not served, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedOperation {
    pub name: String,
    pub method: String,
    pub path: String,
    pub reason: String,
}

/// How many of the document's operations the configuration left out, by the setting that
/// did it (operations that were selected but cannot be served are [`SkippedOperation`]s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// Operations other than GET and HEAD while `tools.read_only` is on.
    pub writes_while_read_only: usize,
    /// Operations that do not accept the profile's security scheme (the upstream token).
    pub other_security: usize,
    /// Operations `tools.include` does not match, or `tools.exclude` does.
    pub by_include_exclude: usize,
    /// TRACE operations, never served: TRACE echoes the request, credential included.
    pub trace: usize,
}

impl LeftOut {
    pub fn total(&self) -> usize {
        self.writes_while_read_only + self.other_security + self.by_include_exclude + self.trace
    }
}

/// The served tools, in document order, with lookup by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tools: Vec<ApiTool>,
    index_by_name: HashMap<String, usize>,
    skipped: Vec<SkippedOperation>,
    left_out: LeftOut,
}

impl Catalog {
    /// Validates the document and builds every selected tool, including its compiled argument validator.
    pub fn build(doc: &Value, options: &CatalogOptions) -> Result<Catalog, SpecError> {
        let version = document::validate_document(doc)?;
        let include = compile_globs(&options.include)?;
        let exclude = compile_globs(&options.exclude)?;
        let mut names = NameAllocator::new();
        let mut catalog = Catalog::default();
        let mut schema_bytes: usize = 0;
        for operation in operation::operations(doc)? {
            let name = names.allocate(&base_tool_name(
                operation.operation_id(),
                operation.method,
                operation.path,
            ));
            let method = http_method(operation.method);
            // TRACE echoes the request back, configured credential included: never a tool.
            if method == Method::TRACE {
                catalog.left_out.trace += 1;
                continue;
            }
            if options.read_only && !matches!(method, Method::GET | Method::HEAD) {
                catalog.left_out.writes_while_read_only += 1;
                continue;
            }
            let requirements = operation::security_requirements(doc, &operation);
            if let Some(scheme) = &options.required_security_scheme {
                let listed = requirements
                    .iter()
                    .flatten()
                    .any(|(listed, _)| listed == scheme);
                if !listed {
                    catalog.left_out.other_security += 1;
                    continue;
                }
            }
            let tags = operation.tags();
            let matches = |globs: &GlobSet| {
                globs.is_match(&name) || tags.iter().any(|tag| globs.is_match(tag))
            };
            if (!include.is_empty() && !matches(&include)) || matches(&exclude) {
                catalog.left_out.by_include_exclude += 1;
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
                Ok((tool, tool_schema_bytes)) => {
                    schema_bytes = schema_bytes.saturating_add(tool_schema_bytes);
                    if schema_bytes > options.max_catalog_schema_bytes {
                        return Err(SpecError::invalid(
                            "/paths",
                            Problem::CatalogTooLarge {
                                limit: options.max_catalog_schema_bytes,
                            },
                        ));
                    }
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

    /// The position of the tool named `name` in [`Catalog::tools`].
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index_by_name.get(name).copied()
    }

    #[cfg(test)]
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

    /// The operations the configuration left out, counted by the setting responsible.
    pub fn left_out(&self) -> LeftOut {
        self.left_out
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
    /// The tool and the size of its input schema; `Ok(Err(skipped))` when the operation cannot be served; `Err`
    /// only for a broken (or too large) document.
    fn build(self) -> Result<Result<(ApiTool, usize), SkippedOperation>, SpecError> {
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
            &self.operation.pointer,
        )?;
        let schema_bytes = built.bytes;
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
        // The runtime compiles the validator on a tool's first call; prove now that it will.
        if let Err(reason) = schema::compile_validator(&input_schema) {
            return Ok(Err(
                self.skip(format!("its argument schema does not compile: {reason}"))
            ));
        }
        let title = self
            .operation
            .text("summary")
            .map(|summary| shorten(summary, 120, false));
        let pagination = (paginated && self.options.pagination_hint).then_some(Pagination {
            max_page_size: self.options.max_page_size,
        });
        let description = describe_operation(
            self.operation,
            &self.method,
            title.as_deref(),
            pagination,
            self.options.description_max,
        );
        let tool = ApiTool {
            name: self.name,
            title,
            description,
            read_only: matches!(self.method, Method::GET | Method::HEAD),
            annotations: ToolHints::for_method(&self.method),
            method: self.method,
            path_template: self.operation.path.to_owned(),
            tags: self.tags,
            input_schema: Arc::new(crate::json::shrunk(input_schema)),
            params,
            body: body.map(|(binding, ..)| binding),
            scopes: self.scopes,
        };
        Ok(Ok((tool, schema_bytes)))
    }

    fn skip(&self, reason: String) -> SkippedOperation {
        SkippedOperation {
            name: self.name.clone(),
            method: self.method.to_string(),
            path: self.operation.path.to_owned(),
            reason,
        }
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

fn compile_globs(globs: &[Glob]) -> Result<GlobSet, SpecError> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        builder.add(glob.clone());
    }
    builder
        .build()
        .map_err(|error| SpecError::InvalidSelection {
            pattern: globs.iter().map(Glob::glob).collect::<Vec<_>>().join(", "),
            message: error.to_string(),
        })
}

#[cfg(test)]
mod tests;
