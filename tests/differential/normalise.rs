//! What the two sides' answers are compared as: the status, the headers that
//! matter, and the body with what must differ replaced by names (ids, times,
//! request ids, addresses) and unordered parts put in order. Error bodies
//! are compared as the facade shows them (`reshape::message::glance_message`).

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

/// An answer as read from the wire.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        Answer { status, headers, body }
    }

    /// No answer: status 0, the error as the body.
    pub fn failed(error: &reqwest::Error) -> Answer {
        let mut source: Option<&dyn std::error::Error> = Some(error);
        let mut chain = Vec::new();
        while let Some(error) = source {
            chain.push(error.to_string());
            source = error.source();
        }
        Answer {
            status: 0,
            headers: reqwest::header::HeaderMap::new(),
            body: chain.join(": ").into_bytes(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// An answer in comparable form.
#[derive(PartialEq)]
pub struct Seen {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: SeenBody,
}

#[derive(PartialEq)]
pub enum SeenBody {
    Empty,
    /// A JSON document, normalised, pretty-printed (key order kept).
    Json(String),
    /// An error's message as the facade would show it.
    Message(String),
    /// Image data.
    Bytes {
        length: usize,
        md5: String,
    },
    Text(String),
}

impl fmt::Debug for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "status {}", self.status)?;
        for (name, value) in &self.headers {
            writeln!(f, "{name}: {}", shorten(value))?;
        }
        match &self.body {
            SeenBody::Empty => writeln!(f, "(no body)"),
            SeenBody::Json(text) => writeln!(f, "{}", shorten(text)),
            SeenBody::Message(message) => writeln!(f, "message: {}", shorten(message)),
            SeenBody::Bytes { length, md5 } => writeln!(f, "{length} bytes, md5 {md5}"),
            SeenBody::Text(text) => writeln!(f, "text: {}", shorten(text)),
        }
    }
}

/// Lines of a report cut to a readable length.
fn shorten(text: &str) -> String {
    text.lines()
        .map(|line| match line.char_indices().nth(300) {
            Some((cut, _)) => format!("{}...({} characters)", &line[..cut], line.chars().count()),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names for what differs between the sides: values known to the test
/// (projects, UUIDs it chose, base URLs) by their role, UUIDs the service
/// chose (image and task ids) by order of first appearance, which is the
/// same on both sides as long as they behave alike.
pub struct Symbols {
    known: Vec<(String, String)>,
    chosen: HashMap<String, String>,
}

impl Symbols {
    pub fn new(known: Vec<(String, String)>) -> Self {
        let mut known = known;
        // Longest first, so that a URL is replaced before the id inside it.
        known.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        Symbols {
            known,
            chosen: HashMap::new(),
        }
    }

    /// The name of a UUID the service chose.
    pub fn name_of(&mut self, uuid: &str) -> String {
        let next = self.chosen.len();
        self.chosen
            .entry(uuid.to_owned())
            .or_insert_with(|| format!("<id-{next}>"))
            .clone()
    }

    /// `text` with every known value and UUID replaced by its name, and
    /// generated request ids by `req-<uuid>`.
    pub fn replace(&mut self, text: &str) -> String {
        let mut out = text.to_owned();
        for (value, name) in &self.known {
            if !value.is_empty() && out.contains(value.as_str()) {
                out = out.replace(value.as_str(), name);
            }
        }
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(start) = find_uuid(rest) {
            let (before, uuid) = (&rest[..start], &rest[start..start + 36]);
            result.push_str(before);
            if before.ends_with("req-") {
                result.push_str("<uuid>");
            } else {
                result.push_str(&self.name_of(uuid));
            }
            rest = &rest[start + 36..];
        }
        result.push_str(rest);
        result
    }

    /// A JSON value with every string replaced as by [`Symbols::replace`],
    /// times reduced to their format, and `tags` sorted.
    pub fn json(&mut self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(time_format(text).unwrap_or_else(|| self.replace(text))),
            Value::Array(items) => Value::Array(items.iter().map(|item| self.json(item)).collect()),
            Value::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| {
                        let mut value = self.json(value);
                        if key == "tags" {
                            if let Value::Array(tags) = &mut value {
                                tags.sort_by_key(Value::to_string);
                            }
                        }
                        (self.replace(key), value)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Byte offset of the first dashed UUID in `text`.
fn find_uuid(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(35)).find(|&start| {
        bytes[start..start + 36].iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        }) && text.is_char_boundary(start)
    })
}

/// `2026-12-01T15:16:29Z` -> `DDDD-DD-DDTDD:DD:DDZ`: the format, not the moment.
fn time_format(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let looks_like_time = bytes.len() >= 19
        && bytes.len() <= 32
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[..4].iter().all(u8::is_ascii_digit);
    looks_like_time.then(|| text.chars().map(|c| if c.is_ascii_digit() { 'D' } else { c }).collect())
}

/// The request id header: the one sent, a generated `req-<uuid>`, or as is.
pub fn request_id(value: &str, sent: Option<&str>) -> String {
    if Some(value) == sent {
        return "<as sent>".to_owned();
    }
    match value.strip_prefix("req-") {
        Some(uuid) if uuid.len() == 36 && find_uuid(uuid) == Some(0) => "req-<uuid>".to_owned(),
        _ => value.to_owned(),
    }
}

/// The body: JSON normalised, an error's message as the facade shows it,
/// or data by length and digest.
pub fn body(answer: &Answer, symbols: &mut Symbols) -> SeenBody {
    if answer.body.is_empty() {
        return SeenBody::Empty;
    }
    let content_type = answer.header("content-type").unwrap_or_default();
    if answer.status >= 400 {
        let message = alliance_glance::reshape::message::glance_message(&answer.body);
        return SeenBody::Message(symbols.replace(&message));
    }
    if content_type.starts_with("application/json") {
        if let Some(document) = answer.json() {
            let normal = symbols.json(&document);
            return SeenBody::Json(serde_json::to_string_pretty(&normal).unwrap_or_default());
        }
    }
    if content_type.starts_with("application/octet-stream") {
        use md5::Digest;
        let digest = md5::Md5::digest(&answer.body);
        return SeenBody::Bytes {
            length: answer.body.len(),
            md5: digest.iter().map(|b| format!("{b:02x}")).collect(),
        };
    }
    SeenBody::Text(symbols.replace(&String::from_utf8_lossy(&answer.body)))
}
