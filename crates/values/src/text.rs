//! Free text fields: what their parsers accept, described for the API document.

/// White_Space characters that are not control characters: what `str::trim` removes besides
/// the controls, as a regular-expression class body.
const SPACES: &str = r"\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Every character `char::is_whitespace` (and so `str::trim`) takes, as a class body: written
/// out because `\s` means other sets in other regular-expression engines.
pub const WHITESPACE: &str = r"\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// The JSON Schema of a text field parsed as trimmed, 1 to `max` characters once trimmed, with
/// no control characters but those in `allowed` (`"\n\t"`): a pattern that needs one character
/// that is neither a space nor a control, and refuses the other controls. Its `maxLength`
/// counts before trimming, so padding past `max` is refused by the document, not the server.
pub fn text_schema(max: usize, allowed: &str) -> serde_json::Value {
    let forbidden: String = (0u32..0x20)
        .chain(0x7f..0xa0)
        .filter_map(char::from_u32)
        .filter(|c| !allowed.contains(*c))
        .map(|c| format!("\\u{:04x}", u32::from(c)))
        .collect();
    serde_json::json!({
        "type": "string",
        "minLength": 1,
        "maxLength": max,
        "pattern": format!("^[^{forbidden}]*[^\\x00-\\x1f\\x7f-\\x9f{SPACES}][^{forbidden}]*$"),
    })
}

/// `schema` that also takes `null` (a patch's "leave it" or "clear it").
pub fn nullable(mut schema: serde_json::Value) -> serde_json::Value {
    schema["type"] = serde_json::json!([schema["type"].take(), "null"]);
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_pattern_admits_text_and_names_the_controls_it_refuses() {
        let schema = text_schema(10, "\n");
        let pattern = schema["pattern"].as_str().unwrap_or_default();
        assert!(pattern.starts_with("^[^\\u0000"), "{pattern}");
        assert!(
            !pattern[..pattern.find(']').unwrap_or(0)].contains("\\u000a"),
            "newline allowed: {pattern}"
        );
        assert!(pattern.contains("\\u0009"), "tab refused: {pattern}");
        assert_eq!(schema["maxLength"], 10);
    }
}
