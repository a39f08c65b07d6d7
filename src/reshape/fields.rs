//! The Alliance image's fields, each written once: [`image_fields!`]'s
//! table below. A row says what Glance's image holds under the field's name
//! (its value type), how a client gives it on create and update (its input
//! rule, or read-only), whether it is a Glance core property or a custom
//! one (which decides the JSON-Patch operation), and whether the Alliance
//! image shows it. From the table follow: [`V2Image`] (Glance's image as
//! the facade reads it, borrowed from the answer), the Alliance image's
//! bytes ([`V2Image::write_alliance_json`], in the table's order, which is
//! the document's), and [`FIELDS`], which inbound validation, the create
//! body and the update's JSON-Patch read. A unit test holds README's field
//! table and `docs/openapi.yaml` to it.
//!
//! Adding a field is one row (and its documentation); a new value type or
//! input rule is an arm of the matches the compiler then asks for.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::json::{JsonObject, Text};

/// What Glance's image holds under a field's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// A string or null.
    Text,
    /// A non-negative integer or null.
    Count,
    /// A boolean or null.
    Flag,
    /// A list of strings or null.
    Texts,
    /// The image id: a string, always there.
    Id,
}

/// How a client gives a writable field (inbound checks it so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Not given by clients.
    ReadOnly,
    /// A string of at most 255 characters, none outside the Basic
    /// Multilingual Plane, or null.
    Text,
    /// A non-negative integer that fits Glance's 32-bit column, or such an
    /// integer written as a string of digits.
    Count,
    /// `public`, `private`, `shared` or `community`.
    Visibility,
    /// v1's `is_public`: `true` is `public`, `false` is `private`.
    IsPublic,
    /// `true` or `false`.
    Flag,
    /// A list of non-empty strings of at most 255 characters.
    Tags,
    /// A dashed UUID.
    Uuid,
    /// An absolute http or https URL with a host.
    Url,
}

/// When a client may give a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writable {
    Never,
    /// On create only.
    OnCreate,
    /// On create and update.
    Always,
}

impl Writable {
    /// Whether it may be given on create (`true`) or update (`false`).
    pub fn allows(self, create: bool) -> bool {
        match self {
            Writable::Never => false,
            Writable::OnCreate => create,
            Writable::Always => true,
        }
    }
}

/// The names a client may give on create (`true`) or update: the table's
/// Alliance fields, then the aliases.
pub fn writable_names(create: bool) -> impl Iterator<Item = &'static str> {
    let fields = FIELDS
        .iter()
        .filter(move |field| field.is_alliance() && field.writable_on(create))
        .map(|field| field.name);
    let aliases = ALIASES
        .iter()
        .filter(move |alias| alias.writable.allows(create))
        .map(|alias| alias.name);
    fields.chain(aliases)
}

/// What the field is to Glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    /// A core property, which always exists: JSON-Patch `replace`.
    Core,
    /// A custom property, which exists only once set: JSON-Patch `add` for
    /// a value, `remove` for null (and nothing when it is not there).
    Custom,
}

/// Whether the Alliance image shows the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Always, `null` when Glance leaves it out.
    Always,
    /// Only when the image has it.
    WhenSet,
    /// Never: read for the facade's own use, not an Alliance field.
    Never,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The Alliance name, which is also Glance's.
    pub name: &'static str,
    pub value: ValueType,
    pub input: Input,
    pub writable: Writable,
    pub property: Property,
    pub shown: Shown,
}

impl Field {
    /// Whether a client may give it on create (`true`) or update (`false`).
    pub fn writable_on(&self, create: bool) -> bool {
        self.writable.allows(create)
    }

    /// An Alliance field (shown, so also refused by name when read-only).
    pub fn is_alliance(&self) -> bool {
        self.shown != Shown::Never
    }
}

/// A name clients may use for another field: v1's `is_public` gives `visibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alias {
    pub name: &'static str,
    /// The field it gives.
    pub field: &'static str,
    pub input: Input,
    pub writable: Writable,
}

pub const ALIASES: &[Alias] = &[Alias {
    name: "is_public",
    field: "visibility",
    input: Input::IsPublic,
    writable: Writable::Always,
}];

/// The field named `name`, if there is one.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|field| field.name == name)
}

/// The type of a [`V2Image`] member holding a value of this type.
macro_rules! member_type {
    (Id, $a:lifetime) => { Text<$a> };
    (Text, $a:lifetime) => { Option<Text<$a>> };
    (Texts, $a:lifetime) => { Option<Vec<Text<$a>>> };
    (Count, $a:lifetime) => { Option<u64> };
    (Flag, $a:lifetime) => { Option<bool> };
}

/// A member detached from the answer it borrows from.
macro_rules! owned {
    (Id, $value:expr) => {
        $value.into_owned()
    };
    (Text, $value:expr) => {
        $value.map(Text::into_owned)
    };
    (Texts, $value:expr) => {
        $value.map(|texts| texts.into_iter().map(Text::into_owned).collect())
    };
    (Count, $value:expr) => {
        $value
    };
    (Flag, $value:expr) => {
        $value
    };
}

/// Whether the image has a value for the member.
macro_rules! is_set {
    (Id, $value:expr) => {
        true
    };
    ($other:ident, $value:expr) => {
        $value.is_some()
    };
}

/// Writes a member into the Alliance image, as the field's row says.
macro_rules! write_member {
    ($object:ident, $name:ident, $value:expr, $type:ident, Never) => {};
    ($object:ident, $name:ident, $value:expr, $type:ident, WhenSet) => {
        if is_set!($type, $value) {
            write_member!($object, $name, $value, $type, Always);
        }
    };
    ($object:ident, $name:ident, $value:expr, Id, Always) => {
        $object.text(stringify!($name), Some(&$value))
    };
    ($object:ident, $name:ident, $value:expr, Text, Always) => {
        $object.text(stringify!($name), $value.as_deref())
    };
    ($object:ident, $name:ident, $value:expr, Texts, Always) => {
        $object.texts(stringify!($name), $value.as_deref())
    };
    ($object:ident, $name:ident, $value:expr, Count, Always) => {
        $object.number(stringify!($name), $value)
    };
    ($object:ident, $name:ident, $value:expr, Flag, Always) => {
        $object.boolean(stringify!($name), $value)
    };
}

/// A member in the reference image of the tests (serde_json's own writing).
#[cfg(test)]
macro_rules! reference_member {
    ($object:ident, $name:ident, $value:expr, $type:ident, Never) => {};
    ($object:ident, $name:ident, $value:expr, $type:ident, WhenSet) => {
        if is_set!($type, $value) {
            reference_member!($object, $name, $value, $type, Always);
        }
    };
    ($object:ident, $name:ident, $value:expr, $type:ident, Always) => {
        $object.insert(
            stringify!($name).to_owned(),
            serde_json::to_value(&$value).unwrap_or_default(),
        )
    };
}

/// The table: declares [`V2Image`], its reading from Glance's answer, its
/// writing as the Alliance image, and [`FIELDS`].
macro_rules! image_fields {
    ($($name:ident: $type:ident, $input:ident, $writable:ident, $property:ident, $shown:ident;)+) => {
        /// Glance's image as the facade reads it: the table's fields, text
        /// borrowed from the answer ([`V2Image::into_owned`] detaches it).
        /// Other keys are ignored; a value of the wrong type, or no `id`,
        /// makes the whole answer unusable (502).
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct V2Image<'a> {
            $(pub $name: member_type!($type, 'a),)+
        }

        /// Every field, in the Alliance image's order.
        pub const FIELDS: &[Field] = &[$(Field {
            name: stringify!($name),
            value: ValueType::$type,
            input: Input::$input,
            writable: Writable::$writable,
            property: Property::$property,
            shown: Shown::$shown,
        },)+];

        impl V2Image<'_> {
            /// The same image, no longer tied to the answer it was parsed from.
            pub fn into_owned(self) -> V2Image<'static> {
                V2Image { $($name: owned!($type, self.$name),)+ }
            }

            /// Whether the image has a value for the field `name`.
            pub fn has(&self, name: &str) -> bool {
                match name {
                    $(stringify!($name) => is_set!($type, self.$name),)+
                    _ => false,
                }
            }

            /// Appends the Alliance image - the shown fields in the table's
            /// order, as compact JSON - to `out` (serde's per-field machinery
            /// was a tenth of a `GET /images/{id}`, bench/README.md).
            pub fn write_alliance_json(&self, out: &mut Vec<u8>) {
                let mut object = JsonObject::new(out);
                $(write_member!(object, $name, self.$name, $type, $shown);)+
                object.end();
            }
        }

        #[cfg(test)]
        impl V2Image<'_> {
            /// The Alliance image as serde_json writes it: the reference
            /// [`V2Image::write_alliance_json`] is held to.
            pub fn alliance_value(&self) -> serde_json::Value {
                let mut object = serde_json::Map::new();
                $(reference_member!(object, $name, self.$name, $type, $shown);)+
                serde_json::Value::Object(object)
            }
        }

        impl<'de: 'a, 'a> Deserialize<'de> for V2Image<'a> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ImageVisitor<'a>(PhantomData<&'a ()>);

                impl<'de: 'a, 'a> Visitor<'de> for ImageVisitor<'a> {
                    type Value = V2Image<'a>;

                    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                        formatter.write_str("an image")
                    }

                    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<V2Image<'a>, M::Error> {
                        let mut image = V2Image::default();
                        let mut id = false;
                        while let Some(key) = map.next_key::<Text<'de>>()? {
                            match &*key {
                                $(stringify!($name) => {
                                    image.$name = map.next_value()?;
                                    id |= ValueType::$type == ValueType::Id;
                                })+
                                _ => {
                                    map.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                        if !id {
                            return Err(de::Error::missing_field("id"));
                        }
                        Ok(image)
                    }
                }

                deserializer.deserialize_map(ImageVisitor(PhantomData))
            }
        }
    };
}

image_fields! {
    // name                   Glance value  client gives  when       property  shown
    status:                   Text,         ReadOnly,     Never,     Core,     Always;
    created_at:               Text,         ReadOnly,     Never,     Core,     Always;
    name:                     Text,         Text,         Always,    Core,     Always;
    tags:                     Texts,        Tags,         Always,    Core,     Always;
    container_format:         Text,         Text,         Always,    Core,     Always;
    min_ram:                  Count,        Count,        Always,    Core,     Always;
    disk_format:              Text,         Text,         Always,    Core,     Always;
    updated_at:               Text,         ReadOnly,     Never,     Core,     Always;
    visibility:               Text,         Visibility,   Always,    Core,     Always;
    // Kept on the image as a custom property, so that show and list return
    // it with no state in the facade.
    copy_from:                Text,         Url,          OnCreate,  Custom,   WhenSet;
    owner:                    Text,         ReadOnly,     Never,     Core,     Always;
    schema:                   Text,         ReadOnly,     Never,     Core,     Always;
    protected:                Flag,         Flag,         Always,    Core,     Always;
    file:                     Text,         ReadOnly,     Never,     Core,     Always;
    checksum:                 Text,         ReadOnly,     Never,     Core,     Always;
    min_disk:                 Count,        Count,        Always,    Core,     Always;
    virtual_size:             Count,        ReadOnly,     Never,     Core,     Always;
    // A client-chosen id makes a retried create a 409, not a second image.
    id:                       Id,           Uuid,         OnCreate,  Core,     Always;
    size:                     Count,        ReadOnly,     Never,     Core,     Always;
    // Set by Glance while an import runs.
    os_glance_import_task:    Text,         ReadOnly,     Never,     Core,     Never;
    // Set by the facade when its own copy_from transfer failed.
    alliance_copy_from_error: Text,         ReadOnly,     Never,     Custom,   Never;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn rows_agree_with_themselves() {
        for field in FIELDS {
            assert_eq!(
                field.input == Input::ReadOnly,
                field.writable == Writable::Never,
                "{}: read-only fields are never writable, and only they",
                field.name
            );
            assert_eq!(field.value == ValueType::Id, field.name == "id", "one id, always there");
        }
        for alias in ALIASES {
            assert!(field(alias.field).is_some_and(|field| field.writable != Writable::Never));
            assert!(field(alias.name).is_none());
        }
        let names: BTreeSet<&str> = FIELDS.iter().map(|field| field.name).collect();
        assert_eq!(names.len(), FIELDS.len());
    }

    /// A section of README.md from its heading to the next heading.
    fn readme_section(heading: &str) -> &'static str {
        let readme = include_str!("../../README.md");
        let start = readme.find(heading).unwrap_or_else(|| panic!("README has {heading}"));
        let rest = &readme[start + heading.len()..];
        &rest[..rest.find("\n#").unwrap_or(rest.len())]
    }

    /// `a`, `b, c` -> the names between backticks.
    fn backticked(text: &str) -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .flat_map(|inside| inside.split(','))
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .collect()
    }

    fn writable(create: bool) -> BTreeSet<String> {
        writable_names(create).map(str::to_owned).collect()
    }

    #[test]
    fn the_readme_field_table_is_this_table() {
        let section = readme_section("### Create and update fields");
        let (mut create, mut update) = (BTreeSet::new(), BTreeSet::new());
        for row in section.lines().filter(|line| line.starts_with("| `")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            for name in backticked(cells[1]) {
                if cells[2] == "yes" {
                    create.insert(name.clone());
                }
                if cells[3] == "yes" {
                    update.insert(name);
                }
            }
        }
        assert_eq!(create, writable(true), "README's create column");
        assert_eq!(update, writable(false), "README's update column");
        let read_only = section
            .split("Read-only fields (")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .map(backticked)
            .expect("README names the read-only fields");
        let expected: BTreeSet<String> = FIELDS
            .iter()
            .filter(|field| field.is_alliance() && field.writable == Writable::Never)
            .map(|field| field.name.to_owned())
            .collect();
        assert_eq!(read_only.into_iter().collect::<BTreeSet<_>>(), expected);
    }

    #[test]
    fn docs_openapi_is_this_table() {
        let spec: serde_json::Value = serde_saphyr::from_str(include_str!("../../docs/openapi.yaml")).unwrap();
        let schemas = &spec["components"]["schemas"];
        let keys = |value: &serde_json::Value| -> Vec<String> {
            value
                .as_object()
                .map(|object| object.keys().cloned().collect())
                .unwrap_or_default()
        };
        let body = |request: &str| -> BTreeSet<String> {
            keys(&schemas[request]["properties"]["image"]["properties"])
                .into_iter()
                .collect()
        };
        assert_eq!(body("CreateRequest"), writable(true));
        assert_eq!(body("UpdateRequest"), writable(false));
        let image = &schemas["Image"];
        let shown: Vec<&str> = FIELDS
            .iter()
            .filter(|field| field.is_alliance())
            .map(|field| field.name)
            .collect();
        assert_eq!(
            keys(&image["properties"]),
            shown,
            "the Image schema's properties, in order"
        );
        let always: Vec<&str> = FIELDS
            .iter()
            .filter(|field| field.shown == Shown::Always)
            .map(|field| field.name)
            .collect();
        assert_eq!(image["required"], serde_json::json!(always));
        for field in FIELDS.iter().filter(|field| field.is_alliance()) {
            let schema = &image["properties"][field.name];
            let expected = match field.value {
                ValueType::Text | ValueType::Id => "string",
                ValueType::Count => "integer",
                ValueType::Flag => "boolean",
                ValueType::Texts => "array",
            };
            assert_eq!(schema["type"], expected, "{}", field.name);
            assert_eq!(
                schema["nullable"].as_bool().unwrap_or(false),
                field.value != ValueType::Id,
                "{}: null when Glance leaves it out",
                field.name
            );
        }
    }
}
