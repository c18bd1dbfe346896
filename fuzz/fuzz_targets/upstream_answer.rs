//! An upstream's JSON answer on its way to the client: the syntax check, the compaction and the escaping that the
//! fast lane does by hand, without building a tree.
//!
//! Properties: no panic; the pass takes as JSON text exactly what `serde_json` does (`IgnoredAny`); the fast
//! lane's bytes are JSON; they equal what rmcp sends for the same answer (which parses the compacted text into a
//! tree); and a valid JSON body's text content parses to the body's own value.
//!
//! Input: the upstream's response body (served as `application/json`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tunnelgate::fuzzing;

fuzz_target!(|body: &[u8]| {
    assert_eq!(
        fuzzing::json_pass_accepts(body),
        serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(),
        "syntax judged unlike serde_json: {:?}",
        String::from_utf8_lossy(body)
    );
    let (fast_lane, rmcp) = fuzzing::upstream_answer_both_ways(body)
        .unwrap_or_else(|| panic!("the fast lane wrote invalid JSON for {:?}", String::from_utf8_lossy(body)));
    assert_eq!(fast_lane, rmcp, "body: {:?}", String::from_utf8_lossy(body));
    if let Ok(original) = serde_json::from_slice::<Value>(body) {
        let text = fast_lane["content"][0]["text"].as_str().expect("a text content");
        let reparsed: Value = serde_json::from_str(text).expect("the text is JSON");
        assert_eq!(reparsed, original);
    }
});
