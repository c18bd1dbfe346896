//! `GET /tools/{name}`: a form generated from the tool's input schema. `POST /tools/{name}`:
//! the cross-site checks, then the call as this person through exactly the MCP path
//! (`ToolRegistry::call`: limits, policy, argument validation, upstream, one audit event
//! marked `via: web_page`), and the answer on the same page. A write tool first shows what it
//! is about to do and needs an explicit confirmation.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use rmcp::model::{JsonObject, Tool};
use serde_json::Value;

use super::fields::{self, ARGUMENT_PREFIX, Field, FieldKind, choice_text};
use super::layout;
use super::page::class_badge;
use super::result;
use super::site::Site;
use crate::access::Identity;
use crate::tools::{CallVia, Caller};

/// The form field that carries the cross-site token.
const TOKEN_FIELD: &str = "csrf";
/// The form field a write tool's confirmation step adds.
const CONFIRM_FIELD: &str = "confirm";

/// `/tools/<name>`: the form (GET) or a call (POST); anything else is 404 or 405.
pub async fn dispatch(
    site: web::Data<Site>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(name) = tool_name(&request) else {
        return not_found(&site, request.path());
    };
    match *request.method() {
        actix_web::http::Method::GET => form(site, request, name).await,
        actix_web::http::Method::POST => run(site, request, name, body).await,
        _ => super::respond::with_security_headers(
            HttpResponse::MethodNotAllowed()
                .insert_header((actix_web::http::header::ALLOW, "GET, POST"))
                .finish(),
        ),
    }
}

/// `/tools` without a name: no such tool.
pub async fn no_tool(site: web::Data<Site>) -> HttpResponse {
    not_found(&site, "")
}

/// The one path segment after `/tools/`, percent-decoded as actix-web decodes a `{name}`.
fn tool_name(request: &HttpRequest) -> Option<String> {
    let name = request.match_info().unprocessed().strip_prefix('/')?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    Some(
        percent_encoding::percent_decode_str(name)
            .decode_utf8()
            .ok()?
            .into_owned(),
    )
}

async fn form(site: web::Data<Site>, request: HttpRequest, name: String) -> HttpResponse {
    let Some((identity, _)) = super::site::caller(&request) else {
        return super::respond::html(StatusCode::FORBIDDEN, String::new());
    };
    let Some((tool, read_only)) = find(&site, &identity, &name) else {
        return not_found(&site, &name);
    };
    let token = site.csrf.issue(&identity, super::site::unix_now());
    let body = tool_page(&site, &tool, read_only, &token, &[], None, None);
    super::respond::html(StatusCode::OK, body.into_string())
}

async fn run(
    site: web::Data<Site>,
    request: HttpRequest,
    name: String,
    body: web::Bytes,
) -> HttpResponse {
    let Some((identity, info)) = super::site::caller(&request) else {
        return super::respond::html(StatusCode::FORBIDDEN, String::new());
    };
    let submitted: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if let Some(refusal) = refuse_cross_site(&site, &request, &identity, &submitted) {
        return refusal;
    }
    let Some((tool, read_only)) = find(&site, &identity, &name) else {
        return not_found(&site, &name);
    };
    let token = site.csrf.issue(&identity, super::site::unix_now());
    let listed = fields::fields(&tool.input_schema);
    let arguments = match fields::arguments(&listed, &submitted) {
        Ok(arguments) => arguments,
        Err(error) => {
            let shown = result::Shown::Error(error.to_string());
            let body = tool_page(
                &site,
                &tool,
                read_only,
                &token,
                &submitted,
                Some(&shown),
                None,
            );
            return super::respond::html(StatusCode::UNPROCESSABLE_ENTITY, body.into_string());
        }
    };
    let confirmed = value_of(&submitted, CONFIRM_FIELD) == Some("yes");
    if !read_only && !confirmed {
        let body = tool_page(
            &site,
            &tool,
            read_only,
            &token,
            &submitted,
            None,
            Some(&arguments),
        );
        return super::respond::html(StatusCode::OK, body.into_string());
    }
    // In dynamic mode API tools are reached through `call_tool`, as an assistant reaches them.
    let (name, arguments) = if site.registry.is_dynamic() && tool.name != crate::tools::WHOAMI {
        let mut wrapped = JsonObject::new();
        wrapped.insert("name".into(), Value::String(tool.name.to_string()));
        wrapped.insert("arguments".into(), Value::Object(arguments));
        (crate::tools::CALL_TOOL.to_owned(), wrapped)
    } else {
        (tool.name.to_string(), arguments)
    };
    let caller = Caller {
        identity: &identity,
        request: &info,
        via: CallVia::WebPage,
    };
    let called = site.registry.call(caller, &name, Some(arguments)).await;
    let shown = result::shown(called);
    let body = tool_page(
        &site,
        &tool,
        read_only,
        &token,
        &submitted,
        Some(&shown),
        None,
    );
    super::respond::html(StatusCode::OK, body.into_string())
}

/// Checks the `Origin` and the form token; a refusal is logged, audited and answered with 403.
fn refuse_cross_site(
    site: &Site,
    request: &HttpRequest,
    identity: &Identity,
    submitted: &[(String, String)],
) -> Option<HttpResponse> {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok());
    let host = super::origin::request_host(request).unwrap_or_default();
    let checked = super::csrf::check_origin(origin, &host).and_then(|()| {
        let token = value_of(submitted, TOKEN_FIELD).unwrap_or("");
        site.csrf.verify(identity, token, super::site::unix_now())
    });
    let Err(error) = checked else {
        return None;
    };
    tracing::warn!(
        reason = error.reason(),
        principal = identity.principal(),
        path = request.path(),
        "try-a-tool form refused: {error}"
    );
    crate::audit::record_denied_request(request, error.reason());
    let advice = match error {
        super::csrf::CsrfError::MissingOrigin | super::csrf::CsrfError::ForeignOrigin { .. } => {
            "A tool can be called from this server's own page only, not from another site."
        }
        _ => {
            "The form was missing its token, or it is older than an hour, or the server restarted since it was shown. Reload the tool's page and submit again."
        }
    };
    let body = layout::message(
        &site.title,
        "Refused: not sent from this page",
        &[
            error.to_string(),
            advice.to_owned(),
            "Nothing was called.".into(),
        ],
        Some(("/", "Back to your tools")),
    );
    Some(super::respond::html(
        StatusCode::FORBIDDEN,
        body.into_string(),
    ))
}

fn value_of<'a>(submitted: &'a [(String, String)], name: &str) -> Option<&'a str> {
    submitted
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.as_str())
}

/// The tool `name` if this identity may call it, with its read-only flag.
fn find(site: &Site, identity: &Identity, name: &str) -> Option<(Tool, bool)> {
    let view = site.registry.tool_view(identity);
    view.builtin
        .into_iter()
        .map(|tool| (tool, true))
        .chain(view.api)
        .find(|(tool, _)| tool.name == name)
}

/// Hidden and unknown tools answer alike, as over MCP.
fn not_found(site: &Site, name: &str) -> HttpResponse {
    let body = layout::message(
        &site.title,
        "No such tool",
        &[format!(
            "There is no tool named \"{name}\" that you may call. The list on the main page shows the ones you can."
        )],
        Some(("/#tools", "Your tools")),
    );
    super::respond::html(StatusCode::NOT_FOUND, body.into_string())
}

fn tool_page(
    site: &Site,
    tool: &Tool,
    read_only: bool,
    token: &str,
    submitted: &[(String, String)],
    shown: Option<&result::Shown>,
    confirming: Option<&JsonObject>,
) -> Markup {
    let listed = fields::fields(&tool.input_schema);
    let action = format!("/tools/{}", tool.name);
    let heading = format!("Try {}", tool.name);
    layout::page(
        &site.title,
        &heading,
        html! {
            p { a href="/#tools" { "← Your tools" } }
            div class="tool-head" {
                h1 { (heading) }
                (class_badge(read_only))
            }
            p class="tool-description" { (tool.description.as_deref().unwrap_or("")) }
            @if let Some(arguments) = confirming {
                section class="confirm" aria-labelledby="confirm-heading" {
                    h2 id="confirm-heading" { "Confirm: this tool changes data" }
                    p { (tool.name) " will run as you, with these arguments:" }
                    pre tabindex="0" { code { (serde_json::to_string_pretty(arguments).unwrap_or_default()) } }
                    form method="post" action=(action) {
                        input type="hidden" name=(TOKEN_FIELD) value=(token);
                        input type="hidden" name=(CONFIRM_FIELD) value="yes";
                        @for (name, value) in submitted.iter().filter(|(name, _)| name.starts_with(ARGUMENT_PREFIX)) {
                            input type="hidden" name=(name) value=(value);
                        }
                        div class="actions" {
                            button type="submit" class="danger" { "Yes, call " (tool.name) }
                            a href=(action) { "Cancel" }
                        }
                    }
                }
            } @else {
                @if let Some(shown) = shown {
                    (result::render(&tool.name, shown))
                }
                (tool_form(tool, read_only, &listed, &action, token, submitted))
            }
        },
    )
}

fn tool_form(
    tool: &Tool,
    read_only: bool,
    listed: &[Field],
    action: &str,
    token: &str,
    submitted: &[(String, String)],
) -> Markup {
    html! {
        form class="try-form" method="post" action=(action) {
            input type="hidden" name=(TOKEN_FIELD) value=(token);
            @if listed.is_empty() {
                p class="muted" { "This tool takes no arguments." }
            }
            @for field in listed {
                (control(field, submitted))
            }
            @if !read_only {
                p class="muted" { "This tool changes data: you will see the arguments and confirm before anything is called." }
            }
            div class="actions" {
                button type="submit" {
                    @if read_only { "Call " (tool.name) } @else { "Review the call" }
                }
            }
        }
    }
}

fn control(field: &Field, submitted: &[(String, String)]) -> Markup {
    let name = format!("{ARGUMENT_PREFIX}{}", field.name);
    let id = format!(
        "f-{}",
        field
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    let hint_id = format!("{id}-hint");
    let value = value_of(submitted, &name).unwrap_or("");
    let placeholder = field.default.clone().unwrap_or_default();
    html! {
        div class="field" {
            label for=(id) {
                code { (field.name) }
                " "
                span class="muted" { (field.type_label) }
                @if field.required { " " span class="required" { "(required)" } }
            }
            @if let Some(description) = &field.description {
                p id=(hint_id) class="hint" { (description) }
            }
            @match &field.kind {
                FieldKind::Text => {
                    input id=(id) type="text" name=(name) value=(value) placeholder=(placeholder) aria-describedby=[field.description.as_ref().map(|_| &hint_id)];
                }
                FieldKind::Integer | FieldKind::Number => {
                    input id=(id) type="text" inputmode=(if field.kind == FieldKind::Integer { "numeric" } else { "decimal" }) name=(name) value=(value) placeholder=(placeholder) aria-describedby=[field.description.as_ref().map(|_| &hint_id)];
                }
                FieldKind::Boolean => {
                    select id=(id) name=(name) aria-describedby=[field.description.as_ref().map(|_| &hint_id)] {
                        option value="" selected[value.is_empty()] { "(not set)" }
                        option value="true" selected[value == "true"] { "true" }
                        option value="false" selected[value == "false"] { "false" }
                    }
                }
                FieldKind::Choice(values) => {
                    select id=(id) name=(name) aria-describedby=[field.description.as_ref().map(|_| &hint_id)] {
                        option value="" selected[value.is_empty()] { "(not set)" }
                        @for choice in values {
                            @let text = choice_text(choice);
                            option value=(text) selected[value == text] { (text) }
                        }
                    }
                }
                FieldKind::Json { or_text } => {
                    // Text that is not JSON is a string where the schema takes one: no JSON check.
                    textarea id=(id) name=(name) rows="3" spellcheck="false"
                        data-json=[(!or_text).then_some("true")]
                        placeholder=(fields::json_skeleton(field).unwrap_or(placeholder))
                        aria-describedby=[field.description.as_ref().map(|_| &hint_id)] { (value) }
                }
            }
        }
    }
}
