//! The ranked search behind dynamic mode's `search_tools`: token overlap of a free-text query with a tool's
//! name, tags and summary.

use crate::openapi::{ApiTool, tokenize};

/// Ranks tools against a free-text query by token overlap with the name, tags and summary. Deterministic: equal
/// scores keep catalog order. Tools that match nothing are not returned.
pub fn search<'a>(
    tools: impl IntoIterator<Item = &'a ApiTool>,
    query: &str,
    limit: usize,
) -> Vec<(&'a ApiTool, u32)> {
    let query_tokens = tokenize(query);
    if query_tokens.is_empty() || limit == 0 {
        return Vec::new();
    }
    let mut ranked: Vec<(&ApiTool, u32)> = tools
        .into_iter()
        .map(|tool| (tool, search_score(tool, &query_tokens, query)))
        .filter(|(_, score)| *score > 0)
        .collect();
    // A stable sort keeps catalog order between equal scores.
    ranked.sort_by(|(_, first), (_, second)| second.cmp(first));
    ranked.truncate(limit);
    ranked
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
    use crate::openapi::Catalog;
    use crate::openapi::test_fixtures::{petstore, write_enabled};

    #[test]
    fn finds_tools_by_name_tag_and_summary_tokens() {
        let catalog = Catalog::build(&petstore(), &write_enabled()).unwrap();

        let results = search(catalog.tools(), "create pet", 3);

        assert_eq!(results[0].0.name, "pets_create");
        assert!(results.iter().all(|(_, score)| *score > 0));
        assert!(search(catalog.tools(), "zebra", 5).is_empty());
    }

    #[test]
    fn ranks_equal_scores_in_catalog_order() {
        let catalog = Catalog::build(&petstore(), &write_enabled()).unwrap();

        let first = search(catalog.tools(), "pets", 10);
        let second = search(catalog.tools(), "pets", 10);

        let order = |results: &[(&ApiTool, u32)]| {
            results
                .iter()
                .map(|(t, s)| (t.name.clone(), *s))
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&first), order(&second));
        assert_eq!(first[0].0.name, "pets_list");
    }
}
