//! Glance's error texts, made plain.
//!
//! Glance (webob) answers errors as an HTML page, or as
//! `{"message": "...<br /><br />\n\n\n", "code": "404 Not Found", ...}` when
//! asked for JSON, with HTML entities and `<br />` in the text, and
//! multi-line schema dumps after the first line. Clients get one plain line.

use serde_json::Value;

/// Longest message passed on to a client.
const MAX_MESSAGE: usize = 1000;

pub fn glance_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let raw = match serde_json::from_str::<Value>(&text) {
        Ok(document) => json_message(&document).unwrap_or_default(),
        Err(_) => text.into_owned(),
    };
    plain_text(&raw)
}

/// `{"message": ...}` (Glance) or `{"error": {"message": ...}}` (Keystone).
fn json_message(document: &Value) -> Option<String> {
    document
        .get("message")
        .or_else(|| document.get("error").and_then(|error| error.get("message")))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// HTML page or fragment -> one line of text.
pub fn plain_text(html: &str) -> String {
    let without_heading = remove_element(&remove_element(html, "title"), "h1");
    let with_breaks = without_heading
        .replace("<br />", "\n")
        .replace("<br/>", "\n")
        .replace("<br>", "\n");
    let unescaped = unescape_entities(&strip_tags(&with_breaks));
    let mut lines = Vec::new();
    for line in unescaped.lines().map(str::trim).filter(|line| !line.is_empty()) {
        // jsonschema's explanation follows its one-line summary.
        if line.starts_with("Failed validating") {
            break;
        }
        lines.push(line);
    }
    let joined = lines.join(" ");
    match joined.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

fn remove_element(html: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    match (html.find(&open), html.find(&close)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{}", &html[..start], &html[end + close.len()..])
        }
        _ => html.to_owned(),
    }
}

fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for character in html.chars() {
        match character {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => text.push(character),
            _ => {}
        }
    }
    text
}

fn unescape_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let decoded = after.find(';').filter(|end| *end <= 10).and_then(|end| {
            let entity = &after[1..end];
            let character = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                    .and_then(char::from_u32),
            };
            character.map(|character| (character, end))
        });
        match decoded {
            Some((character, end)) => {
                out.push(character);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_pages_become_one_line() {
        let page = "<html>\n <head>\n  <title>409 Conflict</title>\n </head>\n <body>\n  <h1>409 Conflict</h1>\n  There was a conflict when trying to complete your request.<br /><br />\nProperty does_not_exist does not exist.\n\n\n </body>\n</html>";
        assert_eq!(
            glance_message(page.as_bytes()),
            "There was a conflict when trying to complete your request. Property does_not_exist does not exist."
        );
    }

    #[test]
    fn json_errors_and_entities() {
        let body = r#"{"message": "No image found with ID x<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}"#;
        assert_eq!(glance_message(body.as_bytes()), "No image found with ID x");
        let body = r#"{"message": "Attribute &#x27;status&#x27; is read-only.<br /><br />\n\n\n"}"#;
        assert_eq!(glance_message(body.as_bytes()), "Attribute 'status' is read-only.");
        let keystone = r#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#;
        assert_eq!(
            glance_message(keystone.as_bytes()),
            "The request you have made requires authentication."
        );
    }

    #[test]
    fn schema_dumps_are_cut_after_the_summary() {
        let body = "{\"message\": \"Provided object does not match schema &#x27;image&#x27;: &#x27;qcow3&#x27; is not one of [None, &#x27;ami&#x27;]\\nFailed validating &#x27;enum&#x27; in schema\\n    {...}<br /><br />\"}";
        assert_eq!(
            glance_message(body.as_bytes()),
            "Provided object does not match schema 'image': 'qcow3' is not one of [None, 'ami']"
        );
    }

    #[test]
    fn odd_input_is_safe() {
        assert_eq!(glance_message(b""), "");
        assert_eq!(
            plain_text("a & b &bogus; &#xZZ; &#99999999; <unclosed"),
            "a & b &bogus; &#xZZ; &#99999999;"
        );
        assert_eq!(glance_message(&[0xff, 0xfe]), "\u{fffd}\u{fffd}");
        assert_eq!(plain_text(&"x".repeat(5000)).chars().count(), MAX_MESSAGE + 3);
        assert_eq!(plain_text("<h1>only</h1>"), "");
    }
}
