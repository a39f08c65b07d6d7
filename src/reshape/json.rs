//! JSON as the facade reads and writes it on the hot path: [`Text`], a
//! string borrowed from Glance's answer; [`json_text`]; and [`JsonObject`],
//! the writer of the Alliance image (serde's per-field machinery was a
//! tenth of a `GET /images/{id}`, bench/README.md).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
#[cfg(test)]
use serde::Serialize;

/// A JSON string, borrowed from Glance's answer unless it had escapes.
/// Parsing a page of 1,000 images into owned strings spent more on malloc
/// and free than on the JSON itself (bench/README.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text<'a>(Cow<'a, str>);

impl Text<'_> {
    /// Whether it points into the answer it was read from.
    #[cfg(test)]
    pub fn is_borrowed(&self) -> bool {
        matches!(self.0, Cow::Borrowed(_))
    }

    pub fn into_owned(self) -> Text<'static> {
        Text(Cow::Owned(self.0.into_owned()))
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Self {
        Text(Cow::Borrowed(text))
    }
}

#[cfg(test)]
impl Serialize for Text<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// `#[serde(borrow)]` does not reach through `Option` (serde#1497); this
/// visitor borrows wherever it sits.
impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> serde::de::Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A JSON answer as text, checked as UTF-8 once: parsing from `&str` spares
/// serde_json a check of every string (a fifth of its time on an image).
pub fn json_text(body: &[u8]) -> serde_json::Result<&str> {
    std::str::from_utf8(body).map_err(serde::de::Error::custom)
}

/// A JSON object being written: `{"key":value,...}`, keys as given (plain
/// ASCII names, no escaping needed).
pub struct JsonObject<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> JsonObject<'o> {
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        JsonObject { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    pub fn text(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(text) => write_json_string(self.out, text),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    pub fn texts(&mut self, key: &str, values: Option<&[Text<'_>]>) {
        match values {
            Some(values) => self.strings(key, values.iter().map(|text| &**text)),
            None => {
                self.key(key);
                self.out.extend_from_slice(b"null");
            }
        }
    }

    pub fn number(&mut self, key: &str, value: Option<u64>) {
        self.key(key);
        match value {
            Some(number) => self
                .out
                .extend_from_slice(itoa::Buffer::new().format(number).as_bytes()),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    pub fn boolean(&mut self, key: &str, value: Option<bool>) {
        self.key(key);
        self.out.extend_from_slice(match value {
            Some(true) => b"true",
            Some(false) => b"false",
            None => b"null",
        });
    }

    /// A nested object, written by `fill`.
    pub fn object(&mut self, key: &str, fill: impl FnOnce(&mut JsonObject<'_>)) {
        self.key(key);
        let mut inner = JsonObject::new(self.out);
        fill(&mut inner);
        inner.end();
    }

    /// An array of one object, written by `fill`.
    pub fn one_object_array(&mut self, key: &str, fill: impl FnOnce(&mut JsonObject<'_>)) {
        self.key(key);
        self.out.push(b'[');
        let mut inner = JsonObject::new(self.out);
        fill(&mut inner);
        inner.end();
        self.out.push(b']');
    }

    /// An array of strings.
    pub fn strings<'s>(&mut self, key: &str, values: impl IntoIterator<Item = &'s str>) {
        self.key(key);
        self.out.push(b'[');
        for (index, text) in values.into_iter().enumerate() {
            if index > 0 {
                self.out.push(b',');
            }
            write_json_string(self.out, text);
        }
        self.out.push(b']');
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// The bytes serde_json escapes in a string: control characters, `"`, `\`.
static ESCAPED: [bool; 256] = {
    let mut escaped = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        escaped[byte] = true;
        byte += 1;
    }
    escaped[b'"' as usize] = true;
    escaped[b'\\' as usize] = true;
    escaped
};

/// `text` as a JSON string: as it is when nothing in it needs escaping (the
/// usual case), else escaped by serde_json.
fn write_json_string(out: &mut Vec<u8>, text: &str) {
    if !text.bytes().any(|byte| ESCAPED[usize::from(byte)]) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(out, text);
    }
}
