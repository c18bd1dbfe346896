//! Prose for the model: whitespace normalisation and trimming of descriptions to a budget.
//!
//! Every byte of a description is paid for in the model's context on each `tools/list`, so text is cut at a sentence
//! (or at least a word) boundary and marked with `…` rather than sent whole.

/// Collapses whitespace runs to one space (or one newline where the run held a line break when `keep_lines`), trims
/// the ends, and cuts the result to at most `max_chars` characters.
pub fn shorten(text: &str, max_chars: usize, keep_lines: bool) -> String {
    let normalised = normalise_whitespace(text, keep_lines);
    if normalised.chars().count() <= max_chars {
        return normalised;
    }
    if max_chars == 0 {
        return String::new();
    }
    // Reserve one character for the ellipsis.
    let budget = max_chars - 1;
    let cut_at = normalised
        .char_indices()
        .nth(budget)
        .map_or(normalised.len(), |(index, _)| index);
    let head = &normalised[..cut_at];
    // Prefer ending on a full sentence when that keeps at least half of the budget.
    let sentence_end = head
        .match_indices(". ")
        .chain(head.match_indices(".\n"))
        .map(|(index, _)| index + 1)
        .filter(|&end| !ends_with_abbreviation(&head[..end]))
        .max()
        .filter(|&end| end * 2 >= head.len());
    if let Some(end) = sentence_end {
        return head[..end].to_owned();
    }
    let word_end = head
        .rfind([' ', '\n'])
        .filter(|&end| end * 2 >= head.len())
        .unwrap_or(head.len());
    let mut shortened = head[..word_end]
        .trim_end_matches([' ', ',', ';', ':'])
        .to_owned();
    shortened.push('…');
    shortened
}

/// "e.g." and "i.e." end in a full stop without ending the sentence.
fn ends_with_abbreviation(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["e.g.", "i.e.", "vs."]
        .iter()
        .any(|abbreviation| lower.ends_with(abbreviation))
}

fn normalise_whitespace(text: &str, keep_lines: bool) -> String {
    let mut normalised = String::with_capacity(text.len());
    let mut pending_break: Option<char> = None;
    for character in text.trim().chars() {
        if character.is_whitespace() {
            let separator = if keep_lines && character == '\n' {
                '\n'
            } else {
                ' '
            };
            if pending_break != Some('\n') {
                pending_break = Some(separator);
            }
        } else {
            if let Some(separator) = pending_break.take() {
                normalised.push(separator);
            }
            normalised.push(character);
        }
    }
    normalised
}

/// Compares two labels ignoring case, spaces, underscores and dashes: `Organization Id` equals `organization_id`.
pub fn same_label(first: &str, second: &str) -> bool {
    let simplify = |label: &str| -> String {
        label
            .chars()
            .filter(|character| !matches!(character, ' ' | '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    simplify(first) == simplify(second)
}

/// True when `label` contains `part` once both are simplified like [`same_label`] does: the title `Visibility`
/// adds nothing to the definition name `ProductVisibility`.
pub fn label_contains(label: &str, part: &str) -> bool {
    let simplify = |text: &str| -> String {
        text.chars()
            .filter(|character| !matches!(character, ' ' | '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let part = simplify(part);
    !part.is_empty() && simplify(label).contains(&part)
}

/// Lower-case alphanumeric tokens, with a plural `s` dropped so `products` finds `product`.
pub(crate) fn tokenize(text: &str) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_short_text_alone_apart_from_whitespace() {
        assert_eq!(
            shorten("  List   all\tproducts. ", 100, false),
            "List all products."
        );
    }

    #[test]
    fn keeps_single_line_breaks_when_asked() {
        assert_eq!(
            shorten("First line.\n\n\nSecond   line.", 100, true),
            "First line.\nSecond line."
        );
    }

    #[test]
    fn cuts_at_the_last_sentence_that_fits() {
        let text = "Get a product by ID. The product includes prices and benefits and much more detail here.";

        assert_eq!(shorten(text, 40, false), "Get a product by ID.");
    }

    #[test]
    fn does_not_take_an_abbreviation_for_the_end_of_a_sentence() {
        let text =
            "Count of units per interval, e.g. 1 for monthly billing. More text follows here.";

        assert_eq!(
            shorten(text, 45, false),
            "Count of units per interval, e.g. 1 for…"
        );
    }

    #[test]
    fn cuts_at_a_word_and_adds_an_ellipsis_when_no_sentence_fits() {
        let text = "A very long single sentence without any full stop that keeps going on and on";

        let shortened = shorten(text, 30, false);

        assert_eq!(shortened, "A very long single sentence…");
        assert!(shortened.chars().count() <= 30);
    }

    #[test]
    fn never_splits_a_multibyte_character() {
        let text = "é".repeat(50);

        let shortened = shorten(&text, 10, false);

        assert_eq!(shortened.chars().count(), 10);
    }

    #[test]
    fn compares_labels_loosely() {
        assert!(same_label("Organization Id", "organization_id"));
        assert!(!same_label("Organization", "organization_id"));
        assert!(label_contains("ProductVisibility", "Visibility"));
        assert!(!label_contains("ProductVisibility", "Audience"));
    }
}
