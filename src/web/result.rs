//! A tool's answer made readable: JSON pretty-printed in a collapsible block, errors in the
//! words an assistant would get, anything else as text.

use maud::{Markup, html};
use rmcp::model::CallToolResult;
use serde_json::Value;

use crate::tools::{CallError, ToolOutput};

/// What the page shows of one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    Json(String),
    Text(String),
    Error(String),
}

pub fn shown(called: Result<ToolOutput, CallError>) -> Shown {
    match called {
        Ok(output) => from_result(output.into_call_tool_result()),
        Err(error) => Shown::Error(error.to_string()),
    }
}

fn from_result(result: CallToolResult) -> Shown {
    let text: Vec<&str> = result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.as_str()))
        .collect();
    let text = text.join("\n");
    if result.is_error == Some(true) {
        return Shown::Error(text);
    }
    let value = result
        .structured_content
        .clone()
        .or_else(|| serde_json::from_str::<Value>(&text).ok());
    match value.and_then(|value| serde_json::to_string_pretty(&value).ok()) {
        Some(pretty) => Shown::Json(pretty),
        None => Shown::Text(text),
    }
}

pub fn render(tool: &str, shown: &Shown) -> Markup {
    html! {
        section id="result" class="result" aria-labelledby="result-heading" {
            @match shown {
                Shown::Error(message) => {
                    h2 id="result-heading" { "The call failed" }
                    div class="error" role="alert" {
                        p { "What " (tool) " answered (an assistant gets the same words):" }
                        p class="error-text" { (message) }
                    }
                }
                Shown::Json(pretty) => {
                    h2 id="result-heading" { "Result" }
                    details open {
                        summary { "JSON, " (pretty.lines().count()) " lines" }
                        pre tabindex="0" data-copy="the result" { code { (pretty) } }
                    }
                }
                Shown::Text(text) => {
                    h2 id="result-heading" { "Result" }
                    pre tabindex="0" data-copy="the result" { code { (text) } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::ContentBlock;
    use serde_json::json;

    use super::*;

    #[test]
    fn pretty_prints_structured_content() {
        let mut result = CallToolResult::success(vec![ContentBlock::text("{\"a\":1}")]);
        result.structured_content = Some(json!({"a": 1}));

        assert_eq!(from_result(result), Shown::Json("{\n  \"a\": 1\n}".into()));
    }

    #[test]
    fn shows_an_error_in_the_tools_own_words() {
        let result = CallToolResult::error(vec![ContentBlock::text(
            "limit: 500 is greater than the maximum of 100",
        )]);

        assert_eq!(
            from_result(result),
            Shown::Error("limit: 500 is greater than the maximum of 100".into())
        );
    }

    #[test]
    fn shows_plain_text_as_text() {
        let result = CallToolResult::success(vec![ContentBlock::text("done")]);

        assert_eq!(from_result(result), Shown::Text("done".into()));
    }
}
