//! The one pass over an upstream's JSON answer: it checks the syntax exactly as `serde_json`'s
//! syntax check (`IgnoredAny`) does, removes the whitespace between tokens and writes the
//! result escaped as a JSON string, without building a tree and without a second pass.

use serde_json::Value;

/// What the pass found besides the text it wrote.
pub(crate) struct Scan {
    /// The text with the whitespace between tokens removed (strings untouched), or `None`
    /// when there was none to remove.
    pub(super) compacted: Option<Vec<u8>>,
    /// The text holds something `serde_json` checks only when it builds a value, so only a
    /// full parse can say whether rmcp would keep it as `structuredContent`: a number with an
    /// exponent or of 300 digits or more (it may not fit an f64), or a `\u` escape of a UTF-16
    /// surrogate (a lone one is refused).
    needs_value_check: bool,
    /// Nesting deeper than [`DEEPEST_STRUCTURED`].
    too_deep: bool,
}

/// The deepest nesting an answer may have and still travel as `structuredContent`. Clients'
/// JSON parsers stop at about 128 levels (`serde_json` does), and the JSON-RPC answer wraps
/// `structuredContent` in two more: an answer nested 126 deep, which rmcp would embed, makes
/// the whole answer unreadable to such a client. Real APIs nest a handful of levels; the text
/// content carries any answer in full.
const DEEPEST_STRUCTURED: u32 = 100;

/// A run of this many digits or more may not fit an f64 (see [`Scan::needs_value_check`]).
const DIGITS_THAT_MAY_OVERFLOW: usize = 300;

impl Scan {
    /// Whether the compact text may travel as `structuredContent`: only an object may (before
    /// protocol 2026-07-28), only one nested at most [`DEEPEST_STRUCTURED`] levels, and only
    /// one serde_json, and so rmcp, reads as a value. A number beyond f64 (`1e400`) or a lone
    /// surrogate (`"\ud800"`) is valid JSON that it will not read. Any other answer travels as
    /// text only, on both paths.
    pub(super) fn may_be_structured(&self, original: &[u8]) -> bool {
        let compact = self.compacted.as_deref().unwrap_or(original);
        compact.first() == Some(&b'{')
            && !self.too_deep
            && (!self.needs_value_check || serde_json::from_slice::<ValueOnly>(compact).is_ok())
    }
}

/// Parses any JSON value, numbers included (which `IgnoredAny` skips unread), keeping nothing.
struct ValueOnly;

impl<'de> serde::Deserialize<'de> for ValueOnly {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Value is the reference for what rmcp accepts; it is only built for the rare answer
        // with an exponent or a very long number.
        Value::deserialize(deserializer).map(|_| Self)
    }
}

/// What may come next in the text, outside strings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value: at the start, after `:`, after `,` in an array.
    Value,
    /// A value or `]`: just after `[`.
    ValueOrClose,
    /// A member's name or `}`: just after `{`.
    NameOrClose,
    /// A member's name: after `,` in an object.
    Name,
    /// `:` after a member's name.
    Colon,
    /// `,` or the enclosing container's end, after a value inside one.
    CommaOrClose,
    /// Only whitespace, after the top-level value.
    Nothing,
}

impl Expect {
    fn accepts_value(self) -> bool {
        matches!(self, Self::Value | Self::ValueOrClose)
    }
}

/// The containers around the current position, innermost last: one bit per level, set for an
/// object. Unbounded, like `serde_json`'s syntax check: `innermost` holds the levels opened
/// since the last multiple of 64 (1 to 64 of them), `outer` the full 64-level words below.
#[derive(Default)]
struct Nesting {
    depth: u32,
    innermost: u64,
    outer: Vec<u64>,
}

impl Nesting {
    fn open(&mut self, object: bool) {
        if self.depth > 0 && self.depth.is_multiple_of(u64::BITS) {
            self.outer.push(self.innermost);
            self.innermost = 0;
        }
        self.innermost = (self.innermost << 1) | u64::from(object);
        self.depth += 1;
    }

    /// Leaves the innermost container if it is an object (`object`) or an array (not
    /// `object`); false when the text has no such container open.
    fn close(&mut self, object: bool) -> bool {
        if self.depth == 0 || self.in_object() != object {
            return false;
        }
        self.innermost >>= 1;
        self.depth -= 1;
        if self.depth > 0 && self.depth.is_multiple_of(u64::BITS) {
            // Never empty here: a word was pushed when this depth was passed on the way in.
            self.innermost = self.outer.pop().unwrap_or_default();
        }
        true
    }

    fn in_object(&self) -> bool {
        self.innermost & 1 == 1
    }

    /// What may follow a complete value.
    fn after_value(&self) -> Expect {
        if self.depth == 0 {
            Expect::Nothing
        } else {
            Expect::CommaOrClose
        }
    }
}

/// Checks that `json` is JSON text as `serde_json` reads it (`from_slice::<IgnoredAny>`: one
/// value, whitespace around it, any depth; UTF-8 is the caller's check) and writes it,
/// compacted, to `out` as a JSON string — byte for byte what `serde_json` writes for the
/// compact text. Returns `None` for text that is not JSON, leaving a partial write in `out`.
///
/// Most of an answer is inside strings, which are copied as runs between the bytes that need
/// a look (`"`, `\`, control characters), found eight at a time; between strings the pass
/// steps through the grammar one token at a time and drops whitespace. Inside a valid string
/// `"` and `\` are the only bytes to escape once more.
pub(crate) fn write_compacted_as_string(json: &[u8], out: &mut Vec<u8>) -> Option<Scan> {
    out.reserve(json.len() + json.len() / 8 + 2);
    out.push(b'"');
    let mut compacted: Option<Vec<u8>> = None;
    let mut needs_value_check = false;
    let mut nesting = Nesting::default();
    let mut deepest = 0u32;
    let mut expect = Expect::Value;
    let mut at = 0;
    while let Some(&byte) = json.get(at) {
        let end = match byte {
            b' ' | b'\n' | b'\r' | b'\t' => {
                compacted.get_or_insert_with(|| {
                    let mut copy = Vec::with_capacity(json.len());
                    copy.extend_from_slice(json.get(..at).unwrap_or_default());
                    copy
                });
                at += 1;
                continue;
            }
            b'"' => {
                expect = match expect {
                    Expect::Value | Expect::ValueOrClose => nesting.after_value(),
                    Expect::Name | Expect::NameOrClose => Expect::Colon,
                    _ => return None,
                };
                let (end, has_surrogate) = copy_string(json, at, out, compacted.as_mut())?;
                needs_value_check |= has_surrogate;
                at = end;
                continue;
            }
            b'{' | b'[' if expect.accepts_value() => {
                let object = byte == b'{';
                nesting.open(object);
                deepest = deepest.max(nesting.depth);
                expect = if object {
                    Expect::NameOrClose
                } else {
                    Expect::ValueOrClose
                };
                at + 1
            }
            b'}' | b']' => {
                let object = byte == b'}';
                // Whether the closer matches the open container is `Nesting::close`'s check.
                let may_close = matches!(
                    expect,
                    Expect::CommaOrClose | Expect::NameOrClose | Expect::ValueOrClose
                );
                if !may_close || !nesting.close(object) {
                    return None;
                }
                expect = nesting.after_value();
                at + 1
            }
            b',' if expect == Expect::CommaOrClose => {
                expect = if nesting.in_object() {
                    Expect::Name
                } else {
                    Expect::Value
                };
                at + 1
            }
            b':' if expect == Expect::Colon => {
                expect = Expect::Value;
                at + 1
            }
            b'-' | b'0'..=b'9' if expect.accepts_value() => {
                let (end, needs_check) = number_end(json, at)?;
                needs_value_check |= needs_check;
                expect = nesting.after_value();
                end
            }
            b't' | b'f' | b'n' if expect.accepts_value() => {
                let literal: &[u8] = match byte {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                if !json.get(at..)?.starts_with(literal) {
                    return None;
                }
                expect = nesting.after_value();
                at + literal.len()
            }
            _ => return None,
        };
        // Most tokens here are one byte (`{`, `,`, `:`...): a push is cheaper than a copy.
        if end == at + 1 {
            out.push(byte);
            if let Some(compacted) = &mut compacted {
                compacted.push(byte);
            }
        } else {
            // In bounds: `end` is just past a token found in `json`.
            let token = json.get(at..end)?;
            out.extend_from_slice(token);
            if let Some(compacted) = &mut compacted {
                compacted.extend_from_slice(token);
            }
        }
        at = end;
    }
    if expect != Expect::Nothing {
        return None;
    }
    out.push(b'"');
    Some(Scan {
        compacted,
        needs_value_check,
        too_deep: deepest > DEEPEST_STRUCTURED,
    })
}

/// The end of the number that starts at `at`, by JSON's grammar (`-`, no leading zero, a
/// fraction and an exponent each with at least one digit), and whether `serde_json` may
/// refuse to read it as a value (an exponent, or a run of digits that may overflow an f64).
fn number_end(json: &[u8], at: usize) -> Option<(usize, bool)> {
    let digits_from = |from: usize| {
        json.get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count()
    };
    let mut end = at + usize::from(json.get(at) == Some(&b'-'));
    let whole = match json.get(end) {
        Some(b'0') => 1,
        Some(b'1'..=b'9') => digits_from(end),
        _ => return None,
    };
    end += whole;
    if json.get(end).is_some_and(u8::is_ascii_digit) {
        return None; // a leading zero
    }
    let mut longest = whole;
    if json.get(end) == Some(&b'.') {
        let fraction = digits_from(end + 1);
        if fraction == 0 {
            return None;
        }
        longest = longest.max(fraction);
        end += 1 + fraction;
    }
    let has_exponent = matches!(json.get(end), Some(b'e' | b'E'));
    if has_exponent {
        end += 1 + usize::from(matches!(json.get(end + 1), Some(b'+' | b'-')));
        let exponent = digits_from(end);
        if exponent == 0 {
            return None;
        }
        end += exponent;
    }
    Some((end, has_exponent || longest >= DIGITS_THAT_MAY_OVERFLOW))
}

/// Copies the string whose opening quote is at `at` to `out` escaped and to `compacted` as
/// it is, checking it as `serde_json` does (no control characters; escapes `\"\\/bfnrt` and
/// `\u` with four hex digits). Returns the index just past its closing quote and whether it
/// holds a `\u` escape of a UTF-16 surrogate (`\uD800`-`\uDFFF`), or `None` if it is not a
/// valid string.
fn copy_string(
    json: &[u8],
    at: usize,
    out: &mut Vec<u8>,
    compacted: Option<&mut Vec<u8>>,
) -> Option<(usize, bool)> {
    out.extend_from_slice(br#"\""#);
    let mut from = at + 1;
    let mut has_surrogate = false;
    loop {
        let rest = json.get(from..)?;
        let offset = find_quote_backslash_or_control(rest)?;
        out.extend_from_slice(rest.get(..offset)?);
        from += offset + 1;
        match rest.get(offset)? {
            b'"' => break,
            b'\\' => {}
            _ => return None, // a control character
        }
        out.extend_from_slice(br"\\");
        let escaped = *json.get(from)?;
        match escaped {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', escaped]),
            b'/' | b'b' | b'f' | b'n' | b'r' | b't' => out.push(escaped),
            b'u' => {
                let hex = json.get(from + 1..from + 5)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                has_surrogate |= matches!(
                    hex,
                    [b'd' | b'D', b'8' | b'9' | b'a'..=b'f' | b'A'..=b'F', ..]
                );
                out.push(b'u');
                out.extend_from_slice(hex);
                from += 4;
            }
            _ => return None,
        }
        from += 1;
    }
    out.extend_from_slice(br#"\""#);
    if let Some(compacted) = compacted {
        compacted.extend_from_slice(json.get(at..from)?);
    }
    Some((from, has_surrogate))
}

/// The index of the first `"`, `\` or control character (below 0x20) in `bytes`: eight bytes
/// at a time with word arithmetic, as `serde_json` scans strings (the lowest flagged byte of a
/// word is always a true match; a false flag can only sit above a true one).
fn find_quote_backslash_or_control(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH_BITS: u64 = ONES << 7;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        // `chunks_exact(8)` yields eight bytes, so the conversion cannot fail.
        let chunk = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let quote = chunk ^ (ONES * u64::from(b'"'));
        let backslash = chunk ^ (ONES * u64::from(b'\\'));
        let flagged = (chunk.wrapping_sub(ONES * 0x20) & !chunk)
            | (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash);
        let flagged = flagged & HIGH_BITS;
        if flagged != 0 {
            return Some(offset + flagged.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
        .map(|position| offset + position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IgnoredAny;

    fn serde_json_reads(text: &[u8]) -> bool {
        serde_json::from_slice::<IgnoredAny>(text).is_ok()
    }

    fn pass_accepts(text: &[u8]) -> bool {
        write_compacted_as_string(text, &mut Vec::new()).is_some()
    }

    #[test]
    fn accepts_and_refuses_exactly_what_serde_json_does() {
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        // Objects and arrays alternating 200 deep, so the record of which is which crosses
        // its 64-level words; then the same with each pair of closers swapped once.
        let mixed = format!("{}1{}", r#"[{"a":"#.repeat(100), "}]".repeat(100));
        let mixed_misclosed: Vec<String> = [31, 32, 33, 64]
            .iter()
            .map(|pair| {
                let closers = "}]".repeat(100);
                let at = pair * 2;
                format!(
                    "{}1{}]}}{}",
                    r#"[{"a":"#.repeat(100),
                    &closers[..at],
                    &closers[at + 2..]
                )
            })
            .collect();
        let texts: &[&str] = &[
            // Accepted.
            "0",
            "-0",
            "-0.0e+0",
            "12.5E-3",
            "1e9",
            " \t\r\n{}\n ",
            "[]",
            r#"{"a":[1,{"b":null}],"c":true,"d":false}"#,
            r#""\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00""#,
            r#"["\ud800"]"#,
            r#"{"a":1,"a":2}"#,
            &deep,
            &deep_objects,
            &mixed,
            // Refused.
            &mixed_misclosed[0],
            &mixed_misclosed[1],
            &mixed_misclosed[2],
            &mixed_misclosed[3],
            "",
            "   ",
            "01",
            "-",
            "-a",
            "1.",
            "1.e5",
            ".5",
            "+1",
            "1e",
            "1e+",
            "0x10",
            "tru",
            "truex",
            "nul",
            "True",
            "NaN",
            "[1,]",
            "[,1]",
            "[1 2]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            r#"{a:1}"#,
            r#"{1:1}"#,
            "{]",
            "[}",
            "[[]",
            "[]]",
            "{}{}",
            "1 2",
            "\"unterminated",
            "\"bad \\x escape\"",
            "\"short \\u12\"",
            "\"not hex \\u12g4\"",
            "\"raw\ttab\"",
            "\"raw \u{1} control\"",
            "[1]\u{0}",
            "\u{feff}{}",
            "'single'",
            "[\"a\"\"b\"]",
        ];
        for text in texts {
            assert_eq!(
                pass_accepts(text.as_bytes()),
                serde_json_reads(text.as_bytes()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn judges_every_one_byte_edit_of_a_document_as_serde_json_does() {
        let documents = [
            r#"{"a": [1, -2.5e+3, 0.5E7, true, false, null], "b": {"c": "d\"\\\/\b\f\n\r\t\u00e9x"}, "e": 0}"#,
            r#"[[], {}, "", -0, [{"k": [null]}]]"#,
        ];
        let bytes = b" \t\n\r\"\\/,:[]{}-+.0159aeEtfnulrsbux\x00\x1f\x7f";
        let mut edits = 0;
        for document in documents {
            let document = document.as_bytes();
            for at in 0..=document.len() {
                let mut variants = Vec::new();
                if at < document.len() {
                    let mut removed = document.to_vec();
                    removed.remove(at);
                    variants.push(removed);
                }
                for &byte in bytes {
                    let mut inserted = document.to_vec();
                    inserted.insert(at, byte);
                    variants.push(inserted);
                    if at < document.len() {
                        let mut replaced = document.to_vec();
                        replaced[at] = byte;
                        variants.push(replaced);
                    }
                }
                for variant in variants {
                    edits += 1;
                    assert_eq!(
                        pass_accepts(&variant),
                        serde_json_reads(&variant),
                        "{:?}",
                        String::from_utf8_lossy(&variant)
                    );
                }
            }
        }
        assert!(edits > 9_000, "only {edits} edits");
    }

    #[test]
    fn finds_the_first_byte_needing_a_look_at_every_position() {
        for special in [b'"', b'\\', 0x00, 0x1f] {
            for at in 0..20 {
                let mut bytes = vec![b'a'; 20];
                bytes[at] = special;
                if at + 3 < 20 {
                    bytes[at + 3] = b'"';
                }

                assert_eq!(
                    find_quote_backslash_or_control(&bytes),
                    Some(at),
                    "{special} at {at}"
                );
            }
        }
        assert_eq!(
            find_quote_backslash_or_control(b"no special bytes here, \x7f or \xc3\xa9"),
            None
        );
        assert_eq!(find_quote_backslash_or_control(b" !#[]~"), None);
    }

    #[test]
    fn compacts_json_without_touching_strings() {
        let pretty = br#"{
            "name": "a b",
            "quote": "say \"hi\" \\",
            "list": [ 1, 2 ]
        }"#;

        let compact = write_compacted_as_string(pretty, &mut Vec::new())
            .and_then(|scan| scan.compacted)
            .unwrap();

        assert_eq!(
            std::str::from_utf8(&compact).unwrap(),
            r#"{"name":"a b","quote":"say \"hi\" \\","list":[1,2]}"#
        );
        let reparsed: Value = serde_json::from_slice(&compact).unwrap();
        let original: Value = serde_json::from_slice(pretty).unwrap();
        assert_eq!(reparsed, original);
    }

    #[test]
    fn escapes_compact_json_exactly_as_serde_json_does() {
        let documents = [
            r#"{"a":"plain"}"#,
            r#"{"quote":"say \"hi\"","slash":"a\/b","backslash":"c:\\d"}"#,
            r#"{"controls":"\n\t\r\b\f\u0001\u001f","unicode":"é ✓ 😀 \u00e9"}"#,
            r#"[1,-2.5e10,true,false,null,"",{},[]]"#,
            r#""just a string with a \" and a \\""#,
            "{\"raw\":\"é✓😀\u{7f}\"}",
        ];
        for document in documents {
            let mut written = Vec::new();

            let scan = write_compacted_as_string(document.as_bytes(), &mut written).unwrap();

            assert!(scan.compacted.is_none(), "{document}");
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(document).unwrap(),
                "{document}"
            );
        }
    }

    #[test]
    fn compacts_and_escapes_in_one_pass_as_serde_json_would_in_two() {
        let documents = [
            (
                "{ \"a\" : \"x y\" ,\n\t\"b\":[ 1 , 2.5e3 , true ] }",
                r#"{"a":"x y","b":[1,2.5e3,true]}"#,
            ),
            (
                r#"  {"ends in a backslash": "c:\\", "then": "a \"quoted\" word" }  "#,
                r#"{"ends in a backslash":"c:\\","then":"a \"quoted\" word"}"#,
            ),
            (
                r#"[ "\\\"", "\u0022 \/", { } , [ ] , null ]"#,
                r#"["\\\"","\u0022 \/",{},[],null]"#,
            ),
            ("\r\n\"é ✓ 😀\"\r\n", "\"é ✓ 😀\""),
        ];
        for (document, compact) in documents {
            let mut written = Vec::new();

            let scan = write_compacted_as_string(document.as_bytes(), &mut written).unwrap();

            let compacted = String::from_utf8(scan.compacted.unwrap()).unwrap();
            assert_eq!(compacted, compact, "{document}");
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(compact).unwrap(),
                "{document}"
            );
        }
    }

    #[test]
    fn compacts_and_escapes_strings_that_end_in_escapes() {
        for (body, compact) in [
            (r#""a\"""#, r#""a\"""#),
            (r#"[ "a\\" , "\"" ]"#, r#"["a\\","\""]"#),
            (r#"{ "k\"" : "\\\"" }"#, r#"{"k\"":"\\\""}"#),
        ] {
            let mut written = Vec::new();

            let scan = write_compacted_as_string(body.as_bytes(), &mut written).unwrap();

            let compacted = scan.compacted.as_deref().unwrap_or(body.as_bytes());
            assert_eq!(std::str::from_utf8(compacted).unwrap(), compact, "{body}");
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(compact).unwrap(),
                "{body}"
            );
        }
    }
}
