//! Tool arguments → validation → upstream request building, over a fixed catalog built from a small document with
//! every parameter style (`fuzz/fixtures/every_parameter_style.json`), and the upstream client's assembly of the
//! request it would send (configured credential included), without sending it.
//!
//! Properties: no panic; no control byte (CR, LF, NUL, …; tab aside) in any header value; the credential header is
//! the configured one, once; the path never escapes its template (same segment count, every literal segment
//! unchanged, no `.`/`..` segment made from an argument, and the URL the client would send keeps exactly that
//! path); and the upstream token shows nowhere else. That last one is checked by difference: the same call is
//! made through two clients holding different tokens, and every error text, the path and query, and every header
//! but the credential must come out the same (a check for token substrings in the output gave false alarms:
//! percent-encoding `4$Zk9Wv` as `4%24Zk9Wv` makes `4Zk9Wv` out of bytes the caller sent).
//!
//! Input: a tool name (an unknown name picks a tool by its bytes), a newline, then the arguments as JSON.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tunnelgate::fuzzing::{BuiltRequest, ToolRequestHarness, ToolRun};

const DOCUMENT: &[u8] = include_bytes!("../fixtures/every_parameter_style.json");
const BASE_URL: &str = "https://upstream.invalid/base";
const BASE_PATH: &str = "/base";
/// Two recognisable credentials: the outputs of a call may differ only in the credential header.
const TOKENS: [&str; 2] = [
    "tgfuzzSECRET7q4Zk9Wv2Xp8Lm3Rb6",
    "tgfuzzOTHER0j5Hn1Yc6Ts9Ge2Nd4",
];

static HARNESSES: LazyLock<[ToolRequestHarness; 2]> = LazyLock::new(|| {
    TOKENS.map(|token| {
        let harness =
            ToolRequestHarness::new(DOCUMENT, BASE_URL, token).expect("the fixture's catalog");
        assert!(harness.tool_count() >= 10, "the fixture lost tools");
        harness
    })
});

fn is_control(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t') || byte == 0x7f
}

/// The whole token, where the caller did not send it.
fn assert_no_token(what: &str, text: &str, token: &str, input: &str) {
    assert!(
        !text.contains(token) || input.contains(token),
        "{what} holds the upstream token: {text:?}"
    );
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
            assert_eq!(
                segment, template_segment,
                "a literal segment changed in {path:?}"
            );
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

fn check_built(template: &str, built: &BuiltRequest, token: &str, input: &str) {
    let (path, query) = built
        .path_and_query
        .split_once('?')
        .unwrap_or((built.path_and_query.as_str(), ""));
    assert!(
        !path.contains('#') && !query.contains('#'),
        "{:?}",
        built.path_and_query
    );
    check_path(template, path);
    assert_no_token("the path and query", &built.path_and_query, token, input);
    for (name, value) in &built.argument_headers {
        assert!(
            !value.bytes().any(is_control),
            "control byte in header {name}: {value:?}"
        );
        assert!(
            !name.eq_ignore_ascii_case("authorization"),
            "an argument set {name}"
        );
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
            assert_eq!(
                sent_path, path,
                "the URL parser changed the path: {}",
                sent.url
            );
            assert_eq!(
                url.query().unwrap_or(""),
                query,
                "the URL parser changed the query: {}",
                sent.url
            );
            let mut credentials = 0;
            for (name, value) in &sent.headers {
                assert!(
                    !value.iter().any(|&byte| is_control(byte)),
                    "control byte in header {name}: {value:?}"
                );
                if name.eq_ignore_ascii_case("authorization") {
                    credentials += 1;
                    assert_eq!(value.as_slice(), format!("Bearer {token}").as_bytes());
                }
            }
            assert_eq!(
                credentials, 1,
                "the credential header is not there exactly once: {:?}",
                sent.headers
            );
        }
        Err(error) => assert_no_token("the client's error", error, token, input),
    }
}

/// Everything a call produced but the credential header: what must not depend on the token.
fn without_credential(run: &ToolRun) -> String {
    let built = run.built.as_ref().map(|built| {
        let sent = built.sent.as_ref().map(|sent| {
            let headers: Vec<_> = sent
                .headers
                .iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case("authorization"))
                .collect();
            (&sent.url, headers)
        });
        (&built.path_and_query, &built.argument_headers, sent)
    });
    format!("{:?} {:?} {:?}", run.tool, run.validation, built)
}

fuzz_target!(
    init: {
        LazyLock::force(&HARNESSES);
    },
    |data: &[u8]| run(data)
);

fn run(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (name, arguments) = input.split_once('\n').unwrap_or((input, "{}"));
    let Ok(arguments) = serde_json::from_str::<Value>(arguments) else {
        return;
    };
    let [harness, other] = &*HARNESSES;
    let index = harness
        .tool_index(name)
        .unwrap_or_else(|| name.bytes().map(usize::from).sum::<usize>() % harness.tool_count());
    let run = harness
        .run(index, &arguments)
        .expect("an index below tool_count");
    let token = TOKENS[0];
    if let Err(error) = &run.validation {
        assert_no_token("the validation error", error, token, input);
    }
    match &run.built {
        Ok(built) => check_built(&run.path_template, built, token, input),
        Err(error) => assert_no_token("the request building error", error, token, input),
    }
    let other_run = other.run(index, &arguments).expect("the same catalog");
    assert_eq!(
        without_credential(&run),
        without_credential(&other_run),
        "the output depends on the upstream token"
    );
}
