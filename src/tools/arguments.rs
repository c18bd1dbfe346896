//! Checking a model's tool arguments before any upstream call, with messages the model can act on.
//!
//! Each tool's `inputSchema` is proven to compile at catalog build and compiled again, on the tool's first call,
//! into the JSON Schema 2020-12 validator kept here. `format` is
//! treated as an annotation (the 2020-12 default): the upstream is the authority on what a date or id looks like,
//! and a stricter local check would refuse values it accepts. A violation becomes an [`ArgumentError`] naming the
//! argument path (`body.prices[0].amount`) and what was expected; at most [`MAX_REPORTED_VIOLATIONS`] are listed.

use std::fmt;
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::json::json_type_name;
use crate::openapi::{ApiTool, BODY_ARGUMENT, compile_validator};

/// How many violations one error lists; more only bury the first fix under noise.
pub const MAX_REPORTED_VIOLATIONS: usize = 5;

/// Longest single violation message; the offending value is quoted in it and could be huge.
const MAX_MESSAGE_CHARS: usize = 300;

/// Scalars longer than this are described as "the value" instead of being quoted back.
const MAX_QUOTED_VALUE_CHARS: usize = 80;

/// Why a tool's arguments cannot be sent. The `Display` text is written for the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgumentError {
    #[error("arguments must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("invalid arguments for {tool}: {}", ViolationList { violations, more: *more })]
    Invalid {
        tool: String,
        violations: Vec<Violation>,
        more: usize,
    },
    #[error("unknown argument {argument:?} for {tool}; accepted arguments: {accepted}")]
    UnknownArgument {
        tool: String,
        argument: String,
        accepted: String,
    },
    #[error("missing required argument {0:?}")]
    MissingArgument(String),
    #[error("argument {argument:?} cannot be sent: {reason}")]
    Unsendable { argument: String, reason: String },
}

/// One schema violation: where (an argument path such as `body.items[2].name`) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

struct ViolationList<'a> {
    violations: &'a [Violation],
    more: usize,
}

impl fmt::Display for ViolationList<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, violation) in self.violations.iter().enumerate() {
            if index > 0 {
                formatter.write_str("; ")?;
            }
            write!(formatter, "{}: {}", violation.path, violation.message)?;
        }
        if self.more > 0 {
            write!(formatter, " (and {} more)", self.more)?;
        }
        Ok(())
    }
}

/// A tool's argument validator, compiled on the tool's first call. The catalog proved at start-up that the schema
/// compiles, but the compiled tree (tens of KB per tool) is only kept for tools that are used, so an idle server
/// with a large catalog stays small.
#[derive(Default)]
pub struct ArgumentValidator {
    compiled: OnceLock<Result<Validator, String>>,
}

impl fmt::Debug for ArgumentValidator {
    // The compiled tree is large and says nothing useful in a log line.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ArgumentValidator { .. }")
    }
}

impl ArgumentValidator {
    /// Validates `arguments` (the MCP `tools/call` `arguments`; pass `{}` when the client sent none) for `tool`,
    /// whose input schema this validator belongs to.
    pub fn validate(&self, tool: &ApiTool, arguments: &Value) -> Result<(), ArgumentError> {
        if !arguments.is_object() {
            return Err(ArgumentError::NotAnObject(json_type_name(arguments)));
        }
        let validator = match self
            .compiled
            .get_or_init(|| compile_validator(&tool.input_schema))
        {
            Ok(validator) => validator,
            // Unreachable: the same schema compiled at start-up. Refuse rather than skip checks.
            Err(reason) => {
                return Err(ArgumentError::Invalid {
                    tool: tool.name.clone(),
                    violations: vec![Violation {
                        path: String::new(),
                        message: format!("the tool's schema cannot be compiled: {reason}"),
                    }],
                    more: 0,
                });
            }
        };
        let mut violations = Vec::new();
        let mut more = 0;
        for error in validator.iter_errors(arguments) {
            if violations.len() < MAX_REPORTED_VIOLATIONS {
                violations.push(describe_violation(tool, &error));
            } else {
                more += 1;
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(ArgumentError::Invalid {
                tool: tool.name.clone(),
                violations,
                more,
            })
        }
    }
}

/// The names a tool accepts, for messages about unknown arguments.
pub fn accepted_arguments(tool: &ApiTool) -> String {
    let mut names: Vec<&str> = tool
        .params
        .iter()
        .map(|param| param.arg_name.as_str())
        .collect();
    if tool.body.is_some() {
        names.push(BODY_ARGUMENT);
    }
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn describe_violation(tool: &ApiTool, error: &ValidationError<'_>) -> Violation {
    let path = argument_path(error);
    let mut message = error_text(error);
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { .. } if error.instance_path().is_empty() => {
            message.push_str(&format!(
                "; accepted arguments: {}",
                accepted_arguments(tool)
            ));
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // The branch with the fewest errors is almost always the one the model meant.
            if let Some(closest) = context
                .iter()
                .filter(|branch| !branch.is_empty())
                .min_by_key(|branch| branch.len())
                && let Some(first) = closest.first()
            {
                message.push_str(&format!(
                    "; closest alternative fails at {}: {}",
                    argument_path(first),
                    error_text(first)
                ));
            }
        }
        _ => {}
    }
    Violation {
        path,
        message: truncate(&message, MAX_MESSAGE_CHARS),
    }
}

/// The error text, quoting the offending value only when it is short: a megabyte string must not be echoed back.
fn error_text(error: &ValidationError<'_>) -> String {
    let quotable = match error.instance().as_ref() {
        Value::String(text) => text.chars().count() <= MAX_QUOTED_VALUE_CHARS,
        Value::Array(_) | Value::Object(_) => false,
        _ => true,
    };
    let is_container_message = matches!(
        error.kind(),
        ValidationErrorKind::AdditionalProperties { .. } | ValidationErrorKind::Required { .. }
    );
    if quotable || is_container_message {
        error.to_string()
    } else {
        error.masked_with("the value").to_string()
    }
}

/// `/body/prices/0/amount` → `body.prices[0].amount`; the root is `arguments`.
fn argument_path(error: &ValidationError<'_>) -> String {
    let mut path = String::new();
    for segment in error.instance_path().segments() {
        match segment {
            LocationSegment::Property(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name);
            }
            LocationSegment::Index(index) => path.push_str(&format!("[{index}]")),
        }
    }
    if path.is_empty() {
        "arguments".to_owned()
    } else {
        path
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::{Catalog, CatalogOptions};
    use serde_json::json;

    fn validate(tool: &ApiTool, arguments: &Value) -> Result<(), ArgumentError> {
        ArgumentValidator::default().validate(tool, arguments)
    }

    fn catalog() -> Catalog {
        let doc = json!({"openapi": "3.1.0", "paths": {
            "/v1/products/": {"get": {"operationId": "products:list", "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}},
                {"name": "is_archived", "in": "query", "schema": {"type": "boolean"}},
                {"name": "sorting", "in": "query", "schema": {"type": "array", "items": {"enum": ["name", "-name"]}}}
            ]}},
            "/v1/products/{id}": {"patch": {"operationId": "products:update",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["price_amount"],
                    "properties": {"price_amount": {"type": "integer", "exclusiveMinimum": 0},
                                   "prices": {"type": "array", "items": {"anyOf": [
                                       {"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]},
                                       {"type": "object", "properties": {"free": {"const": true}}, "required": ["free"]}]}}}}}}}}}
        }});
        Catalog::build(
            &doc,
            &CatalogOptions {
                read_only: false,
                ..CatalogOptions::default()
            },
        )
        .unwrap()
    }

    fn violations(error: ArgumentError) -> Vec<Violation> {
        match error {
            ArgumentError::Invalid { violations, .. } => violations,
            other => panic!("expected schema violations, got {other}"),
        }
    }

    #[test]
    fn accepts_valid_arguments() {
        let catalog = catalog();

        let result = validate(
            catalog.get("products_list").unwrap(),
            &json!({"limit": 5, "sorting": ["-name"]}),
        );

        assert_eq!(result, Ok(()));
    }

    #[test]
    fn names_the_argument_and_the_bound_it_broke() {
        let catalog = catalog();

        let error = validate(
            catalog.get("products_list").unwrap(),
            &json!({"limit": 500}),
        )
        .unwrap_err();

        assert_eq!(
            error.to_string(),
            "invalid arguments for products_list: limit: 500 is greater than the maximum of 100"
        );
    }

    #[test]
    fn reports_a_wrong_type_with_the_expected_type() {
        let catalog = catalog();

        let found = violations(
            validate(
                catalog.get("products_list").unwrap(),
                &json!({"is_archived": "yes"}),
            )
            .unwrap_err(),
        );

        assert_eq!(
            found,
            [Violation {
                path: "is_archived".to_owned(),
                message: "\"yes\" is not of type \"boolean\"".to_owned()
            }]
        );
    }

    #[test]
    fn rejects_unknown_arguments_and_lists_the_accepted_ones() {
        let catalog = catalog();

        let error =
            validate(catalog.get("products_list").unwrap(), &json!({"limt": 5})).unwrap_err();

        let text = error.to_string();
        assert!(text.contains("'limt' was unexpected"), "{text}");
        assert!(
            text.contains("accepted arguments: limit, is_archived, sorting"),
            "{text}"
        );
    }

    #[test]
    fn points_into_the_body_with_a_dotted_path() {
        let catalog = catalog();

        let found = violations(
            validate(
                catalog.get("products_update").unwrap(),
                &json!({"id": "p1", "body": {"price_amount": 0}}),
            )
            .unwrap_err(),
        );

        assert_eq!(found[0].path, "body.price_amount");
        assert!(
            found[0]
                .message
                .contains("less than or equal to the minimum of 0"),
            "{:?}",
            found
        );
    }

    #[test]
    fn explains_which_alternative_came_closest() {
        let catalog = catalog();

        let found = violations(
            validate(
                catalog.get("products_update").unwrap(),
                &json!({"id": "p", "body": {"price_amount": 1, "prices": [{"amount": "ten"}]}}),
            )
            .unwrap_err(),
        );

        assert_eq!(found[0].path, "body.prices[0]");
        assert!(
            found[0]
                .message
                .contains("closest alternative fails at body.prices[0].amount"),
            "{:?}",
            found
        );
    }

    #[test]
    fn reports_missing_required_arguments() {
        let catalog = catalog();

        let found =
            violations(validate(catalog.get("products_update").unwrap(), &json!({})).unwrap_err());

        let messages: Vec<_> = found.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "\"id\" is a required property",
                "\"body\" is a required property"
            ]
        );
    }

    #[test]
    fn does_not_echo_a_huge_value_back() {
        let catalog = catalog();
        let huge = "x".repeat(1_000_000);

        let error = validate(
            catalog.get("products_list").unwrap(),
            &json!({"limit": huge}),
        )
        .unwrap_err();

        let text = error.to_string();
        assert!(text.len() < 400, "{} bytes", text.len());
        assert!(
            text.contains("limit: the value is not of type \"integer\""),
            "{text}"
        );
    }

    #[test]
    fn lists_at_most_five_violations_and_counts_the_rest() {
        let catalog = catalog();
        let sorting: Vec<Value> = (0..8).map(|n| json!(n)).collect();

        let error = validate(
            catalog.get("products_list").unwrap(),
            &json!({"sorting": sorting}),
        )
        .unwrap_err();

        let ArgumentError::Invalid {
            violations, more, ..
        } = &error
        else {
            panic!("{error}")
        };
        assert_eq!(violations.len(), MAX_REPORTED_VIOLATIONS);
        assert_eq!(*more, 3);
        assert!(error.to_string().ends_with("(and 3 more)"), "{error}");
    }

    #[test]
    fn refuses_arguments_that_are_not_an_object() {
        let catalog = catalog();

        let error = validate(catalog.get("products_list").unwrap(), &json!([1, 2])).unwrap_err();

        assert_eq!(error, ArgumentError::NotAnObject("an array"));
    }
}
