//! Tool names: MCP-valid (`[A-Za-z0-9_.-]`, 1–128 characters), unique, and stable across restarts.
//!
//! A name comes from the `operationId` (`products:list` → `products_list`) or, without one, from method and path
//! (`GET /v1/products/{id}` → `get_v1_products_id`). Names are assigned over *all* operations in document order
//! before any selection is applied, so including or excluding tools never renames the others; a clash gets the
//! suffix `_2`, `_3`, … in document order.

use std::collections::{HashMap, HashSet};

/// The longest tool name MCP allows.
pub const MAX_TOOL_NAME_LEN: usize = 128;

/// True when `name` is a valid MCP tool name.
#[cfg(test)]
pub fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_TOOL_NAME_LEN && name.bytes().all(is_name_byte)
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-')
}

/// Maps every run of characters outside `[A-Za-z0-9_.-]` to one `_`, trims `_` the mapping put at either end, and
/// cuts the result to `max_len`. Returns an empty string when nothing usable is left.
pub fn sanitize_identifier(raw: &str, max_len: usize) -> String {
    let mut cleaned = String::with_capacity(raw.len());
    let mut in_invalid_run = false;
    for character in raw.chars() {
        if character.is_ascii() && is_name_byte(character as u8) {
            cleaned.push(character);
            in_invalid_run = false;
        } else if !in_invalid_run {
            // Never double an underscore the source already put there (`get_/v1` → `get_v1`).
            if !cleaned.ends_with('_') {
                cleaned.push('_');
            }
            in_invalid_run = true;
        }
    }
    let trimmed = cleaned.trim_matches('_');
    // Only ASCII is left, so byte truncation cannot split a character.
    let mut cut = trimmed[..trimmed.len().min(max_len)].to_owned();
    while cut.ends_with('_') {
        cut.pop();
    }
    cut
}

/// The name an operation would get before uniqueness is enforced.
pub fn base_tool_name(operation_id: Option<&str>, method: &str, path: &str) -> String {
    if let Some(from_id) = operation_id
        .map(|id| sanitize_identifier(id, MAX_TOOL_NAME_LEN))
        .filter(|name| !name.is_empty())
    {
        return from_id;
    }
    let from_route = sanitize_identifier(&format!("{method}_{path}"), MAX_TOOL_NAME_LEN);
    if from_route.is_empty() {
        method.to_ascii_lowercase()
    } else {
        from_route
    }
}

/// Hands out unique names in the order operations are offered.
#[derive(Debug, Default)]
pub struct NameAllocator {
    taken: HashSet<String>,
    /// Per clashing base, the suffix to try next. Every smaller one is taken and stays taken (names are never
    /// released), so starting there gives the same name as counting from `_2`, without doing it again for each of
    /// n operations that share a name (which made a document of 20,000 such operations take minutes).
    next_suffix: HashMap<String, usize>,
}

impl NameAllocator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns `base` if it is still free, otherwise `base_2`, `base_3`, … (shortening `base` so the suffix fits
    /// within [`MAX_TOOL_NAME_LEN`]).
    pub fn allocate(&mut self, base: &str) -> String {
        if self.taken.insert(base.to_owned()) {
            return base.to_owned();
        }
        let counter = self.next_suffix.entry(base.to_owned()).or_insert(2);
        loop {
            let suffix = format!("_{counter}");
            *counter += 1;
            let mut keep = base.len().min(MAX_TOOL_NAME_LEN - suffix.len());
            while !base.is_char_boundary(keep) {
                keep -= 1;
            }
            let candidate = format!("{}{suffix}", &base[..keep]);
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_thousands_of_clashing_names_in_order_and_quickly() {
        let mut names = NameAllocator::new();
        names.allocate("x_3");
        let started = std::time::Instant::now();

        let allocated: Vec<String> = (0..20_000).map(|_| names.allocate("x")).collect();

        // Counting from `_2` again for each name took 87 s here (quadratic, debug build); now milliseconds.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(allocated[..4], ["x", "x_2", "x_4", "x_5"]);
        assert_eq!(allocated.last().map(String::as_str), Some("x_20001"));
    }

    #[test]
    fn replaces_the_colon_of_a_polar_operation_id() {
        assert_eq!(
            base_tool_name(Some("products:list"), "get", "/v1/products/"),
            "products_list"
        );
    }

    #[test]
    fn keeps_underscores_dots_and_dashes_that_are_already_valid() {
        assert_eq!(
            base_tool_name(Some("customers.get_state-external"), "get", "/"),
            "customers.get_state-external"
        );
    }

    #[test]
    fn falls_back_to_method_and_path_without_an_operation_id() {
        assert_eq!(
            base_tool_name(None, "get", "/v1/products/{id}"),
            "get_v1_products_id"
        );
    }

    #[test]
    fn falls_back_to_method_and_path_when_the_operation_id_has_no_usable_character() {
        assert_eq!(
            base_tool_name(Some("☃☃"), "delete", "/things/{id}/"),
            "delete_things_id"
        );
    }

    #[test]
    fn collapses_runs_of_invalid_characters_into_one_underscore() {
        assert_eq!(
            sanitize_identifier("List  all::Products (v2)", 128),
            "List_all_Products_v2"
        );
    }

    #[test]
    fn cuts_long_names_to_128_characters() {
        let long_id = "a".repeat(300);

        let name = base_tool_name(Some(&long_id), "get", "/");

        assert_eq!(name.len(), MAX_TOOL_NAME_LEN);
        assert!(is_valid_tool_name(&name));
    }

    #[test]
    fn suffixes_clashing_names_in_the_order_they_are_allocated() {
        let mut names = NameAllocator::new();

        let allocated: Vec<_> = ["a_b", "a_b", "a_b_2", "a_b"]
            .iter()
            .map(|base| names.allocate(base))
            .collect();

        assert_eq!(allocated, ["a_b", "a_b_2", "a_b_2_2", "a_b_3"]);
    }

    #[test]
    fn keeps_a_suffixed_long_name_within_the_limit() {
        let mut names = NameAllocator::new();
        let long = "x".repeat(MAX_TOOL_NAME_LEN);

        names.allocate(&long);
        let second = names.allocate(&long);

        assert_eq!(second.len(), MAX_TOOL_NAME_LEN);
        assert!(second.ends_with("_2"));
    }

    #[test]
    fn recognises_valid_and_invalid_tool_names() {
        assert!(is_valid_tool_name("products_list"));
        assert!(!is_valid_tool_name("products:list"));
        assert!(!is_valid_tool_name(""));
        assert!(!is_valid_tool_name(&"a".repeat(129)));
    }
}
