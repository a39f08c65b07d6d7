//! Glance's error texts, made plain - for clients, and for logs.
//!
//! Glance (webob) answers errors as an HTML page, or as
//! `{"message": "...<br /><br />\n\n\n", "code": "404 Not Found", ...}` when
//! asked for JSON, with HTML entities and `<br />` in the text, and
//! multi-line schema dumps after the first line. Clients get one plain line.
//!
//! Logs get [`for_log`]: any upstream text, bounded and scrubbed of
//! credentials, since an upstream may echo what it was sent (a password in
//! a token request, a token in a header dump, credentials in a URL).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex_lite::Regex;
use serde_json::Value;

/// Longest message passed on to a client.
const MAX_MESSAGE: usize = 1000;

/// Longest upstream text in a log line, in characters.
pub const MAX_LOG_CHARS: usize = 300;
/// Upstream bytes looked at for a log line: a huge body is never scanned whole.
const MAX_LOG_SCAN: usize = 16 * 1024;
/// What a secret is replaced with.
const MASK: &str = "***";

pub fn glance_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let raw = match serde_json::from_str::<Value>(&text) {
        Ok(document) => json_message(&document).unwrap_or_default(),
        Err(_) => text.into_owned(),
    };
    plain_text(&raw)
}

/// Upstream text - an answer's body, an error chain, a link, an id - as a
/// log field: made plain like [`glance_message`] (the `message` of a JSON
/// error, an HTML page's text), with the values of secret-looking JSON keys
/// and `key=value` pairs, token headers, credentials in URLs and
/// token-shaped strings masked, control characters flattened to spaces
/// (one log line stays one line), and at most [`MAX_LOG_CHARS`] characters.
/// Every WARN or ERROR line that carries upstream text uses it.
pub fn for_log(upstream: impl AsRef<[u8]>) -> String {
    let raw = upstream.as_ref();
    let scanned = &raw[..raw.len().min(MAX_LOG_SCAN)];
    let text = String::from_utf8_lossy(scanned);
    let plain = match serde_json::from_str::<Value>(&text) {
        Ok(mut document) => {
            mask_secret_keys(&mut document);
            match json_message(&document) {
                Some(message) => plain_text(&message),
                None => document.to_string(),
            }
        }
        Err(_) => plain_text(&text),
    };
    let scrubbed = scrub(&plain);
    let mut line: String = scrubbed
        .chars()
        .map(|character| match character {
            // Line breaks of any kind would start a forged log line.
            _ if character.is_control() => ' ',
            '\u{2028}' | '\u{2029}' => ' ',
            _ => character,
        })
        .take(MAX_LOG_CHARS)
        .collect();
    if scrubbed.chars().nth(MAX_LOG_CHARS).is_some() || raw.len() > scanned.len() {
        line.push_str(&format!("... ({} bytes)", raw.len()));
    }
    line
}

/// Names of JSON keys and `key=value` pairs whose values are secrets.
const SECRET_NAME: &str = r"[\w.-]*(?:password|passwd|secret|token|credential|api[_-]?key|access[_-]?key|private[_-]?key|authorization|cookie)[\w.-]*";

fn is_secret_name(name: &str) -> bool {
    static NAME: LazyLock<Regex> = LazyLock::new(|| regex(&format!("(?i)^{SECRET_NAME}$")));
    NAME.is_match(name)
}

/// Replaces the value of every secret-looking key, at any depth.
fn mask_secret_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if is_secret_name(key) {
                    *inner = Value::String(MASK.into());
                } else {
                    mask_secret_keys(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secret_keys),
        _ => {}
    }
}

/// Masks secrets in free text.
fn scrub(text: &str) -> String {
    static RULES: LazyLock<[(Regex, &'static str); 4]> = LazyLock::new(|| {
        [
            // `Authorization: Bearer x`, `X-Auth-Token: x`, `"password": "x"`,
            // `password=x` (a query string, a form); a quoted value may be
            // cut short by the scan limit.
            (
                regex(&format!(
                    r#"(?i)(?P<key>["']?\b{SECRET_NAME}["']?\s*[:=]\s*(?:(?:basic|bearer|negotiate|digest)\s+)?)(?:"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s,;&}}\]"']+)"#
                )),
                "${key}***",
            ),
            // Credentials in a URL: `scheme://user:pass@host`.
            (regex(r"(?i)(?P<key>\b[a-z][a-z0-9+.-]*://)[^/\s@]+@"), "${key}***@"),
            // Fernet tokens and JWTs, wherever they stand.
            (regex(r"\b(?:gAAAAA[\w-]{20,}=*|eyJ[\w-]+\.[\w-]+\.[\w-]*)"), MASK),
            // Any other long base64 run (a PKI token, a key); ids, names
            // and paths are broken up by dashes well before 64 characters.
            (regex(r"[A-Za-z0-9+/]{64,}={0,2}"), MASK),
        ]
    });
    let mut text = Cow::Borrowed(text);
    for (pattern, replacement) in RULES.iter() {
        if let Cow::Owned(replaced) = pattern.replace_all(&text, *replacement) {
            text = Cow::Owned(replaced);
        }
    }
    text.into_owned()
}

fn regex(pattern: &str) -> Regex {
    // The patterns are constants: covered by the tests below.
    Regex::new(pattern).unwrap_or_else(|error| panic!("invalid scrub pattern {pattern}: {error}"))
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
    fn logged_upstream_text_is_scrubbed() {
        // A Keystone-like error echoing the request's password, as JSON.
        let echoed = br#"{"error": {"code": 400, "message": "Invalid input for field identity/password/user/password: 'Hunter2!'", "title": "Bad Request"}, "auth": {"identity": {"password": {"user": {"name": "alliance", "password": "Hunter2!"}}}}}"#;
        let logged = for_log(echoed);
        assert!(!logged.contains("Hunter2"), "{logged}");
        // Without a message, the whole document with its secrets masked.
        let logged = for_log(
            br#"{"auth": {"password": "Hunter2!", "token": {"id": "abc"}, "user": "alliance"}, "X-Auth-Token": "tok"}"#,
        );
        assert_eq!(
            logged,
            r#"{"auth":{"password":***,"token":***,"user":"alliance"},"X-Auth-Token":***}"#
        );
        // Free text: headers, key=value pairs, URL credentials, tokens.
        let fernet = format!("gAAAAA{}", "x".repeat(177));
        for (hostile, secret) in [
            ("X-Auth-Token: s3cr3t-token-value\nX-Subject-Token: other", "s3cr3t"),
            ("x-subject-token=zzsecretzz; next", "zzsecretzz"),
            ("Authorization: Bearer abc.def.ghi", "abc.def"),
            ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
            ("GET /v3?password=hunter2&user=u failed", "hunter2"),
            ("connect to http://admin:hunter2@10.0.0.1:5000/v3 refused", "hunter2"),
            ("'client_secret': 'hunter2'", "hunter2"),
            ("<p>application_credential_secret = hunter2</p>", "hunter2"),
            (&format!("token {fernet} expired"), "xxxxxxxxxx"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl here",
                "c2lnbmF0dXJl",
            ),
            (&format!("key {} end", "QUJD".repeat(30)), "QUJDQUJD"),
            // A quoted value cut short by the scan limit.
            (
                &format!("{}\"password\": \"hunter2", " ".repeat(MAX_LOG_SCAN - 20)),
                "hunter2",
            ),
        ] {
            let logged = for_log(hostile.as_bytes());
            assert!(!logged.contains(secret), "{hostile:?} logged as {logged:?}");
        }
        assert_eq!(
            for_log(b"X-Auth-Token: abc, then"),
            "X-Auth-Token: ***, then",
            "the key stays, so the line still says what went wrong"
        );
        // What is not a secret stays readable.
        let plain = "No image found with ID 0b0b0b0b-0000-4000-8000-000000000001 (project a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1): token expired";
        assert_eq!(for_log(plain.as_bytes()), plain);
        assert_eq!(
            for_log(b"/image/v2/images/0b0b0b0b-0000-4000-8000-000000000001/members/a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1"),
            "/image/v2/images/0b0b0b0b-0000-4000-8000-000000000001/members/a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1"
        );
    }

    #[test]
    fn logged_upstream_text_is_one_bounded_line() {
        // Huge: bounded, with the size said, and never scanned whole.
        let huge = format!("{{\"message\": \"{}\"}}", "y".repeat(40 * 1024 * 1024));
        let logged = for_log(huge.as_bytes());
        assert!(logged.chars().count() <= MAX_LOG_CHARS + 30, "{}", logged.len());
        assert!(logged.ends_with(&format!("... ({} bytes)", huge.len())), "{logged}");
        // Multi-line: a forged second log line stays on the first.
        let forged = "oops\r\n2026-01-01T00:00:00Z  INFO request status=200\u{2028}more\u{1b}[31m";
        let logged = for_log(forged.as_bytes());
        assert!(!logged.contains(['\n', '\r', '\u{2028}', '\u{1b}']), "{logged:?}");
        // HTML: its text, as a client would get it.
        let page = "<html><head><title>500 Internal Server Error</title></head><body><h1>500</h1>Traceback: db password=hunter2<br />line 2</body></html>";
        assert_eq!(for_log(page.as_bytes()), "Traceback: db password=*** line 2");
        // Bytes that are not UTF-8, and nothing at all.
        assert_eq!(for_log([0xff, 0xfe]), "\u{fffd}\u{fffd}");
        assert_eq!(for_log(""), "");
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
