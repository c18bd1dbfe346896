//! The prose a model reads about a tool: its description (summary and details without repeats, trimmed to
//! `tools.description_max`) and the pagination rules written into the description and the `page`/`limit`
//! argument schemas.

use http::Method;
use serde_json::{Map, Value, json};

use super::operation::OperationRef;
use super::text::{shorten, tokenize};
use super::tool::{ParamBinding, ParamLocation};

/// Summary and description, without repeating a summary the description already starts with, trimmed to
/// `description_max` with the pagination note (when any) always kept.
/// How a paginated operation pages, for the note its description ends with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pagination {
    /// The upstream's largest page, when the profile knows it.
    pub max_page_size: Option<u64>,
}

pub(super) fn describe_operation(
    operation: &OperationRef<'_>,
    method: &Method,
    summary: Option<&str>,
    pagination: Option<Pagination>,
    description_max: usize,
) -> String {
    let details = operation.text("description");
    let mut text = match (summary, details) {
        (Some(summary), Some(details)) if summary_is_covered(summary, details) => {
            details.to_owned()
        }
        (Some(summary), Some(details)) => {
            format!("{}. {details}", summary.trim_end_matches('.'))
        }
        (Some(only), None) | (None, Some(only)) => only.to_owned(),
        (None, None) => format!("{} {}", method, operation.path),
    };
    if operation.is_deprecated() {
        text = format!("Deprecated. {text}");
    }
    let note = pagination.map_or_else(String::new, |pagination| {
        pagination_note(pagination.max_page_size)
    });
    let budget = description_max.saturating_sub(note.chars().count());
    let mut description = shorten(&text, budget, true);
    description.push_str(&note);
    description
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
pub(super) fn describe_pagination(
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
