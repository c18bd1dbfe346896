//! Tool arguments → validation → upstream request building, over a fixed catalog built from a small document with
//! every parameter style (`fuzz/fixtures/every_parameter_style.json`), and the upstream client's assembly of the
//! request it would send (configured credential included), without sending it.
//!
//! Properties: no panic; no control byte (CR, LF, NUL, …; tab aside) in any header value; the credential header is
//! the configured one, once; the path never escapes its template (same segment count, every literal segment
//! unchanged, no `.`/`..` segment made from an argument, and the URL the client would send keeps exactly that
//! path); no part of the upstream token in any error text (or in the URL) unless the caller supplied it.
//!
//! Input: a tool name (an unknown name picks a tool by its bytes), a newline, then the arguments as JSON.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tunnelgate::fuzzing::{BuiltRequest, ToolRequestHarness};

const DOCUMENT: &[u8] = include_bytes!("../fixtures/every_parameter_style.json");
const BASE_URL: &str = "https://upstream.invalid/base";
const BASE_PATH: &str = "/base";
/// Recognisable, and made of pieces no argument or schema of the fixture contains.
const TOKEN: &str = "tgfuzzSECRET7q4Zk9Wv2Xp8Lm3Rb6";
/// A leak is any run of this many consecutive token characters.
const LEAK_WINDOW: usize = 6;

static HARNESS: LazyLock<ToolRequestHarness> = LazyLock::new(|| {
    let harness = ToolRequestHarness::new(DOCUMENT, BASE_URL, TOKEN).expect("the fixture's catalog");
    assert!(harness.tool_count() >= 10, "the fixture lost tools");
    harness
});

fn is_control(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t') || byte == 0x7f
}

/// Token pieces in `text` that `input` did not bring.
fn leaked(text: &str, input: &str) -> Option<String> {
    TOKEN
        .as_bytes()
        .windows(LEAK_WINDOW)
        .filter_map(|window| std::str::from_utf8(window).ok())
        .find(|window| text.contains(window) && !input.contains(window))
        .map(str::to_owned)
}

fn assert_no_leak(what: &str, text: &str, input: &str) {
    if let Some(piece) = leaked(text, input) {
        panic!("{what} holds {piece:?} of the upstream token: {text:?}");
    }
}

/// The rendered path against its template: one segment per template segment, literal segments untouched, no
/// dot-segment an argument made.
fn check_path(template: &str, path: &str) {
    let template_segments: Vec<&str> = template.split('/').collect();
    let segments: Vec<&str> = path.split('/').collect();
    assert_eq!(
        segments.len(),
        template_segments.len(),
        "the path {path:?} does not have the segments of {template:?}"
    );
    for (segment, template_segment) in segments.iter().zip(&template_segments) {
        if !template_segment.contains('{') {
            assert_eq!(segment, template_segment, "a literal segment changed in {path:?}");
        } else {
            assert!(
                !matches!(*segment, "" | "." | ".."),
                "an argument made the segment {segment:?} in {path:?}"
            );
            let lower = segment.to_ascii_lowercase();
            assert!(
                !matches!(lower.as_str(), "%2e" | "%2e%2e" | ".%2e" | "%2e."),
                "an argument made an encoded dot-segment {segment:?} in {path:?}"
            );
        }
    }
}

fn check_built(template: &str, built: &BuiltRequest, input: &str) {
    let (path, query) = built
        .path_and_query
        .split_once('?')
        .unwrap_or((built.path_and_query.as_str(), ""));
    assert!(!path.contains('#') && !query.contains('#'), "{:?}", built.path_and_query);
    check_path(template, path);
    assert_no_leak("the path and query", &built.path_and_query, input);
    for (name, value) in &built.argument_headers {
        assert!(!value.bytes().any(is_control), "control byte in header {name}: {value:?}");
        assert!(!name.eq_ignore_ascii_case("authorization"), "an argument set {name}");
    }
    match &built.sent {
        Ok(sent) => {
            let url = url::Url::parse(&sent.url).expect("the client's URL parses");
            assert_eq!(url.host_str(), Some("upstream.invalid"), "{}", sent.url);
            assert_eq!(url.fragment(), None, "{}", sent.url);
            let sent_path = url
                .path()
                .strip_prefix(BASE_PATH)
                .unwrap_or_else(|| panic!("the URL left the base path: {}", sent.url));
            // What the URL parser made of the path must be the path built: no normalisation happened.
            assert_eq!(sent_path, path, "the URL parser changed the path: {}", sent.url);
            assert_eq!(url.query().unwrap_or(""), query, "the URL parser changed the query: {}", sent.url);
            let mut credentials = 0;
            for (name, value) in &sent.headers {
                assert!(!value.iter().any(|&byte| is_control(byte)), "control byte in header {name}: {value:?}");
                if name.eq_ignore_ascii_case("authorization") {
                    credentials += 1;
                    assert_eq!(value.as_slice(), format!("Bearer {TOKEN}").as_bytes());
                }
            }
            assert_eq!(credentials, 1, "the credential header is not there exactly once: {:?}", sent.headers);
        }
        Err(error) => assert_no_leak("the client's error", error, input),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (name, arguments) = input.split_once('\n').unwrap_or((input, "{}"));
    let Ok(arguments) = serde_json::from_str::<Value>(arguments) else {
        return;
    };
    let harness = &*HARNESS;
    let index = harness.tool_index(name).unwrap_or_else(|| {
        name.bytes().map(usize::from).sum::<usize>() % harness.tool_count()
    });
    let run = harness.run(index, &arguments).expect("an index below tool_count");
    if let Err(error) = &run.validation {
        assert_no_leak("the validation error", error, input);
    }
    match &run.built {
        Ok(built) => check_built(&run.path_template, built, input),
        Err(error) => assert_no_leak("the request building error", error, input),
    }
});
