//! Argument naming: which property name each OpenAPI parameter gets in a tool's `inputSchema` (the rule is in
//! the parent module's documentation).

use std::collections::{HashMap, HashSet};

use super::options::{BODY_ARGUMENT, MAX_ARGUMENT_NAME_LEN};
use crate::openapi::naming::sanitize_identifier;
use crate::openapi::operation::DeclaredLocation;

/// Assigns argument names following the rule in the module documentation.
pub fn assign_argument_names(
    parameters: &[(&str, DeclaredLocation)],
    has_body: bool,
) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::new();
    // Per `base_location`, the number to try next: every smaller one is taken, so many parameters whose names
    // sanitise alike (`a!`, `a#`, … all become `a`) do not each count up from 2 again.
    let mut next_number: HashMap<String, usize> = HashMap::new();
    if has_body {
        taken.insert(BODY_ARGUMENT.to_owned());
    }
    let mut names = vec![String::new(); parameters.len()];
    for claiming in [
        DeclaredLocation::Path,
        DeclaredLocation::Query,
        DeclaredLocation::Header,
        DeclaredLocation::Cookie,
    ] {
        for (index, (wire_name, location)) in parameters.iter().enumerate() {
            if *location != claiming {
                continue;
            }
            let suffix = location_suffix(*location);
            let mut base = sanitize_identifier(wire_name, MAX_ARGUMENT_NAME_LEN);
            if base.is_empty() {
                base = format!("{suffix}_parameter");
            }
            let mut candidate = base.clone();
            if taken.contains(&candidate) {
                candidate = format!("{base}_{suffix}");
            }
            if taken.contains(&candidate) {
                let counter = next_number.entry(candidate.clone()).or_insert(2);
                loop {
                    let numbered = format!("{candidate}_{counter}");
                    *counter += 1;
                    if !taken.contains(&numbered) {
                        candidate = numbered;
                        break;
                    }
                }
            }
            taken.insert(candidate.clone());
            if let Some(slot) = names.get_mut(index) {
                *slot = candidate;
            }
        }
    }
    names
}

fn location_suffix(location: DeclaredLocation) -> &'static str {
    match location {
        DeclaredLocation::Path => "path",
        DeclaredLocation::Query => "query",
        DeclaredLocation::Header => "header",
        DeclaredLocation::Cookie => "cookie",
    }
}
