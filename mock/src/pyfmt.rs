//! Python-compatible text formatting.
//!
//! Glance is a Python service, and its bodies and messages carry Python's formatting:
//! `json.dumps` separators, `repr()` of values inside error texts, `pprint.pformat` in
//! JSON-schema errors and `urllib.parse.urlencode` in pagination links. These helpers
//! reproduce exactly that output so the mock's bytes match the recorded ones.

use serde::Serialize;
use serde_json::Value;
use std::io;
use std::sync::OnceLock;

/// Width used by jsonschema when it pretty-prints schemas and instances.
const PPRINT_WIDTH: usize = 72;

/// `json.dumps(value)` with Python's default separators (`", "` and `": "`).
///
/// `ensure_ascii` mirrors Python's flag: Glance dumps images with `ensure_ascii=False`
/// but most other documents (tasks, errors, info) with the default `True`.
pub(crate) fn dumps(value: &Value, ensure_ascii: bool) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter { ensure_ascii });
    if value.serialize(&mut serializer).is_err() {
        // Serializing a `Value` into a Vec cannot fail; keep a valid document regardless.
        return "null".to_owned();
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

struct PythonFormatter {
    ensure_ascii: bool,
}

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        if !self.ensure_ascii {
            return w.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        for ch in fragment.chars() {
            if ch.is_ascii() {
                w.write_all(&[ch as u8])?;
            } else {
                for unit in ch.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// A JSON string literal as `json.dumps(s, ensure_ascii=False)` writes it.
pub(crate) fn string_literal(s: &str) -> String {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        return serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    }
    let mut literal = String::with_capacity(s.len() + 2);
    literal.push('"');
    literal.push_str(s);
    literal.push('"');
    literal
}

/// Python truthiness of a JSON-decoded value.
pub(crate) fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// Python `str(value)`: strings as they are, everything else as `repr`.
pub(crate) fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python `repr()` of a JSON-decoded value.
pub(crate) fn repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => repr_number(n),
        Value::String(s) => repr_str(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", repr_str(k), repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn repr_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    repr_float(n.as_f64().unwrap_or(0.0))
}

/// Python's float repr: shortest round-trip digits, exponent form outside 1e-4..1e16.
fn repr_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..16).contains(&exponent) {
        let fixed = format!("{f}");
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// Python's `str.title()`: a letter after a cased letter is lowered, any
/// other is raised.
pub(crate) fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_cased = false;
    for c in s.chars() {
        if previous_cased {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        previous_cased = c.is_lowercase() || c.is_uppercase();
    }
    out
}

/// Python `repr()` of a string, including its choice of quotes and escapes.
pub(crate) fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => {
                let code = c as u32;
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02x}"));
                } else if code <= 0xffff {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python 3.11's `str.isprintable()` for one character (Unicode 14, the
/// database of the interpreter the real Glance runs on here).
fn is_printable(c: char) -> bool {
    let code = c as u32;
    let ranges = non_printable_ranges();
    let index = ranges.partition_point(|(_, last)| *last < code);
    ranges.get(index).is_none_or(|(first, _)| *first > code)
}

/// The ranges of `documents/python-nonprintable.txt`, in order.
fn non_printable_ranges() -> &'static [(u32, u32)] {
    static RANGES: OnceLock<Vec<(u32, u32)>> = OnceLock::new();
    RANGES.get_or_init(|| {
        include_str!("documents/python-nonprintable.txt")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (first, last) = line.split_once(' ')?;
                Some((
                    u32::from_str_radix(first, 16).ok()?,
                    u32::from_str_radix(last, 16).ok()?,
                ))
            })
            .collect()
    })
}

/// `pprint.pformat(value, width=72, sort_dicts=False)`.
pub(crate) fn pformat(value: &Value) -> String {
    let mut out = String::new();
    pformat_into(value, &mut out, 0, 0, 0);
    out
}

fn pformat_into(value: &Value, out: &mut String, indent: usize, allowance: usize, level: usize) {
    let rep = repr(value);
    let max_width = PPRINT_WIDTH as isize - indent as isize - allowance as isize;
    if rep.chars().count() as isize > max_width {
        match value {
            Value::Object(map) if !map.is_empty() => {
                out.push('{');
                pformat_dict_items(map, out, indent, allowance + 1, level + 1);
                out.push('}');
                return;
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('[');
                pformat_list_items(items, out, indent, allowance + 1, level + 1);
                out.push(']');
                return;
            }
            Value::String(s) if !s.is_empty() => {
                pformat_str(s, out, indent, allowance, level + 1);
                return;
            }
            _ => {}
        }
    }
    out.push_str(&rep);
}

fn pformat_dict_items(
    map: &serde_json::Map<String, Value>,
    out: &mut String,
    indent: usize,
    allowance: usize,
    level: usize,
) {
    let indent = indent + 1;
    let last_index = map.len().saturating_sub(1);
    for (i, (key, value)) in map.iter().enumerate() {
        let last = i == last_index;
        let key_rep = repr_str(key);
        out.push_str(&key_rep);
        out.push_str(": ");
        let key_width = key_rep.chars().count() + 2;
        pformat_into(value, out, indent + key_width, if last { allowance } else { 1 }, level);
        if !last {
            out.push_str(",\n");
            out.push_str(&" ".repeat(indent));
        }
    }
}

fn pformat_list_items(items: &[Value], out: &mut String, indent: usize, allowance: usize, level: usize) {
    let indent = indent + 1;
    let last_index = items.len().saturating_sub(1);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
            out.push_str(&" ".repeat(indent));
        }
        let last = i == last_index;
        pformat_into(item, out, indent, if last { allowance } else { 1 }, level);
    }
}

/// pprint's `_pprint_str`: long strings are split at whitespace into adjacent literals.
fn pformat_str(s: &str, out: &mut String, indent: usize, allowance: usize, level: usize) {
    let (indent, allowance) = if level == 1 {
        (indent + 1, allowance + 1)
    } else {
        (indent, allowance)
    };
    let max_width = PPRINT_WIDTH as isize - indent as isize;
    let lines = split_lines_keep_ends(s);
    let mut chunks: Vec<String> = Vec::new();
    let mut last_rep = String::new();
    for (i, line) in lines.iter().enumerate() {
        let rep = repr_str(line);
        let is_last_line = i == lines.len() - 1;
        let max_width1 = if is_last_line {
            max_width - allowance as isize
        } else {
            max_width
        };
        if rep.chars().count() as isize <= max_width1 {
            chunks.push(rep.clone());
        } else {
            let parts = whitespace_parts(line);
            let mut current = String::new();
            for (j, part) in parts.iter().enumerate() {
                let candidate = format!("{current}{part}");
                let limit = if j == parts.len() - 1 && is_last_line {
                    max_width - allowance as isize
                } else {
                    max_width
                };
                if repr_str(&candidate).chars().count() as isize > limit {
                    if !current.is_empty() {
                        chunks.push(repr_str(&current));
                    }
                    current = (*part).to_owned();
                } else {
                    current = candidate;
                }
            }
            if !current.is_empty() {
                chunks.push(repr_str(&current));
            }
        }
        last_rep = rep;
    }
    if chunks.len() == 1 {
        out.push_str(&last_rep);
        return;
    }
    if level == 1 {
        out.push('(');
    }
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(chunk);
    }
    if level == 1 {
        out.push(')');
    }
}

/// `str.splitlines(True)`.
fn split_lines_keep_ends(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_break = matches!(
            c,
            '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        let mut end = i + c.len_utf8();
        if c == '\r' {
            if let Some(&(j, '\n')) = iter.peek() {
                end = j + 1;
                iter.next();
            }
        }
        lines.push(&s[start..end]);
        start = end;
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// `re.findall(r'\S*\s*', line)` without the trailing empty match.
fn whitespace_parts(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            parts.push(&line[start..i]);
            start = i;
            in_space = false;
        }
    }
    if start < line.len() {
        parts.push(&line[start..]);
    }
    parts
}

/// Indents every line by four spaces, as jsonschema does with pretty-printed values.
pub(crate) fn indent4(text: &str) -> String {
    text.lines()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `urllib.parse.quote_plus`.
pub(crate) fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `urllib.parse.urlencode` of ordered pairs.
pub(crate) fn urlencode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `urllib.parse.parse_qsl(query, keep_blank_values=True)`, as webob decodes `request.GET`.
pub(crate) fn parse_qsl(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|field| !field.is_empty())
        .map(|field| {
            let (k, v) = field.split_once('=').unwrap_or((field, ""));
            (unquote_plus(k), unquote_plus(v))
        })
        .collect()
}

/// `urllib.parse.unquote_plus`: `+` is a space, malformed escapes stay as they are.
pub(crate) fn unquote_plus(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// Percent-decoding as Python's `unquote` does it (invalid UTF-8 is replaced).
pub(crate) fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(s)).into_owned()
}

/// A request path as a WSGI server hands it to the application: percent
/// escapes decoded, each byte one Latin-1 character (PEP 3333's
/// "bytes-as-unicode"), so UTF-8 text shows up as mojibake.
pub(crate) fn wsgi_path(path: &str) -> String {
    percent_decode_bytes(path).into_iter().map(char::from).collect()
}

fn percent_decode_bytes(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dumps_uses_python_separators() {
        assert_eq!(
            dumps(&json!({"a": [1, null], "b": "é"}), false),
            r#"{"a": [1, null], "b": "é"}"#
        );
        assert_eq!(dumps(&json!({"b": "é"}), true), r#"{"b": "\u00e9"}"#);
    }

    #[test]
    fn repr_matches_python() {
        assert_eq!(repr(&json!("it's")), r#""it's""#);
        assert_eq!(repr(&json!("a\nb")), r"'a\nb'");
        assert_eq!(repr(&json!([null, true, 1.5, 1e20])), "[None, True, 1.5, 1e+20]");
        assert_eq!(repr(&json!(0.0001)), "0.0001");
        assert_eq!(repr(&json!(0.00001)), "1e-05");
    }

    #[test]
    fn paths_decode_like_wsgi() {
        assert_eq!(wsgi_path("/v2/images/%C2%A1x%2Fy"), "/v2/images/\u{c2}\u{a1}x/y");
    }

    #[test]
    fn title_matches_python() {
        assert_eq!(title("copy_from"), "Copy_From");
        assert_eq!(title("hw_disk_bus2x"), "Hw_Disk_Bus2X");
        assert_eq!(title("\u{e9}T\u{e9}"), "\u{c9}t\u{e9}");
    }

    #[test]
    fn repr_escapes_what_python_311_cannot_print() {
        // U+30000 is the first ideograph of CJK Extension G (Unicode 13),
        // U+3134B the first code point after it, unassigned in Unicode 14.
        assert_eq!(repr_str("\u{30000}\u{3134b}"), "'\u{30000}\\U0003134b'");
        assert_eq!(
            repr_str("\u{ad}\u{202e}\u{1f600}\u{e9}"),
            "'\\xad\\u202e\u{1f600}\u{e9}'"
        );
        assert_eq!(repr_str("\u{10ffff}\u{fffe}"), "'\\U0010ffff\\ufffe'");
    }

    #[test]
    fn pformat_wraps_long_values() {
        let words = "word ".repeat(20);
        let formatted = pformat(&json!(words));
        assert!(formatted.starts_with("('word"));
        assert!(formatted.contains("'\n 'word"));
        let list = json!([
            "aaaaaaaaaaaaaaaaaaaa",
            "bbbbbbbbbbbbbbbbbbbbbbb",
            "cccccccccccccccccccccccccc"
        ]);
        assert_eq!(
            pformat(&list),
            "['aaaaaaaaaaaaaaaaaaaa',\n 'bbbbbbbbbbbbbbbbbbbbbbb',\n 'cccccccccccccccccccccccccc']"
        );
    }

    #[test]
    fn urlencode_matches_python() {
        let pairs = vec![
            ("sort".to_owned(), "name:asc".to_owned()),
            ("q".to_owned(), "a b/é".to_owned()),
        ];
        assert_eq!(urlencode(&pairs), "sort=name%3Aasc&q=a+b%2F%C3%A9");
        assert_eq!(
            parse_qsl("a=1&b&c=x+y%21&&d=%zz"),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), String::new()),
                ("c".to_owned(), "x y!".to_owned()),
                ("d".to_owned(), "%zz".to_owned()),
            ]
        );
    }
}
