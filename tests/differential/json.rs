//! Generated JSON documents, over the whole range of each JSON type: full
//! Unicode, empty and long strings, integers at and past every width
//! Glance and its database care about, floats, and nested values. (Not
//! `NaN`, `Infinity` or escaped lone surrogates: Python's parser takes them,
//! the mock - like the facade in front of it - refuses them as malformed
//! JSON; a difference kept, see `docs/mock-vs-real.md`.)
//!
//! A [`Json`] is rendered to text by the test, so it can hold what
//! `serde_json::Value` cannot (integers past `u64`, duplicate keys), and
//! placeholders ([`Ref`]) that each side resolves to its own ids.

use std::fmt;

use proptest::prelude::*;

#[derive(Clone, PartialEq)]
pub enum Json<R> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Array(Vec<Json<R>>),
    /// Keys in order; a key may repeat.
    Object(Vec<(String, Json<R>)>),
    /// A string that each side resolves (an image id, a project, a URL).
    Ref(R),
}

impl<R> Json<R> {
    pub fn object(entries: impl IntoIterator<Item = (&'static str, Json<R>)>) -> Json<R> {
        Json::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn str(text: &str) -> Json<R> {
        Json::Str(text.to_owned())
    }

    /// The JSON text, with placeholders resolved by `resolve`.
    pub fn render(&self, resolve: &dyn Fn(&R) -> String) -> String {
        let mut out = String::new();
        self.write(&mut out, resolve);
        out
    }

    fn write(&self, out: &mut String, resolve: &dyn Fn(&R) -> String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::Float(f) => out.push_str(&format!("{f:?}")),
            Json::Str(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, resolve);
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                    out.push_str(": ");
                    value.write(out, resolve);
                }
                out.push('}');
            }
            Json::Ref(reference) => out.push_str(&serde_json::Value::from(resolve(reference)).to_string()),
        }
    }
}

/// Shown in shrunk reports as the text sent, placeholders by name and long
/// strings shortened.
impl<R: fmt::Debug + Clone> fmt::Debug for Json<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shortened().render(&|reference| format!("<{reference:?}>")))
    }
}

impl<R: Clone> Json<R> {
    fn shortened(&self) -> Json<R> {
        match self {
            Json::Str(s) => Json::Str(abbreviate(s)),
            Json::Array(items) => Json::Array(items.iter().map(Json::shortened).collect()),
            Json::Object(entries) => {
                Json::Object(entries.iter().map(|(k, v)| (abbreviate(k), v.shortened())).collect())
            }
            other => other.clone(),
        }
    }
}

/// A long string as its start and its length, for reports.
pub fn abbreviate(text: &str) -> String {
    let length = text.chars().count();
    if length <= 64 {
        return text.to_owned();
    }
    let start: String = text.chars().take(24).collect();
    format!("{start}...({length} characters)")
}

/// Integers at the edges Glance, Python and SQLite care about, up to the
/// 64-bit limits. (Past them the mock reads a number as a float, like the
/// facade in front of it; a difference kept, see `docs/mock-vs-real.md`.)
const BOUNDARY_INTEGERS: [i128; 15] = [
    0,
    1,
    -1,
    255,
    256,
    i32::MAX as i128,
    i32::MAX as i128 + 1,
    i32::MIN as i128,
    i32::MIN as i128 - 1,
    (1 << 53) + 1,
    i64::MAX as i128,
    i64::MAX as i128 + 1,
    i64::MIN as i128,
    i64::MIN as i128 + 1,
    u64::MAX as i128,
];

pub fn integer() -> impl Strategy<Value = i128> {
    prop_oneof![
        3 => proptest::sample::select(BOUNDARY_INTEGERS.to_vec()),
        1 => any::<i64>().prop_map(i128::from),
        1 => 0i128..10_000,
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        proptest::sample::select(vec![0.0, -0.0, 1.0, 0.5, -1.5, 1e300, 5e-324, 2147483648.0]),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ]
}

/// Characters that break things: NUL and controls, HTML and JSON
/// specials, JSON-pointer and URL specials, combining marks, right-to-left,
/// non-characters, astral planes.
const NASTY_CHARS: [char; 24] = [
    '\0',
    '\n',
    '\t',
    '\u{7f}',
    '<',
    '>',
    '&',
    '"',
    '\'',
    '\\',
    '/',
    '~',
    '%',
    '+',
    ',',
    ':',
    '?',
    '#',
    ' ',
    '\u{301}',
    '\u{202e}',
    '\u{fffe}',
    '\u{1f600}',
    '\u{10ffff}',
];

fn character() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => proptest::char::range('a', 'z'),
        2 => proptest::sample::select(NASTY_CHARS.to_vec()),
        2 => any::<char>(),
    ]
}

/// Any string: empty, short, full Unicode, or long (around the 255-character
/// limits of Glance's schema and database, and far past them).
pub fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        6 => proptest::collection::vec(character(), 1..12).prop_map(|chars| chars.into_iter().collect()),
        2 => (proptest::sample::select(vec![254usize, 255, 256, 1000, 70_000]), character())
            .prop_map(|(length, c)| std::iter::repeat_n(c, length).collect()),
    ]
}

/// Any JSON value, nested up to `depth` levels.
pub fn value<R: Clone + fmt::Debug + 'static>(depth: u32) -> BoxedStrategy<Json<R>> {
    let leaf = prop_oneof![
        2 => Just(Json::Null),
        2 => any::<bool>().prop_map(Json::Bool),
        3 => integer().prop_map(Json::Int),
        1 => float().prop_map(Json::Float),
        4 => string().prop_map(Json::Str),
    ];
    leaf.prop_recursive(depth, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            proptest::collection::vec((string(), inner), 0..4).prop_map(Json::Object),
        ]
    })
    .boxed()
}
