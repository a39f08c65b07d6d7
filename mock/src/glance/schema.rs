//! The image JSON schema: the documents Glance serves, and validation that fails
//! with the messages of Python's `jsonschema` (transcripts 029-032, 092, 093).

use super::errors::ApiError;
use super::pyfmt;
use serde_json::{Map, Value};

/// `GET /v2/schemas/image`, byte for byte as recorded (transcript 006).
pub(crate) const IMAGE_SCHEMA: &str = include_str!("documents/schema-image.json");
/// `GET /v2/schemas/images`, byte for byte as recorded (transcript 007).
pub(crate) const IMAGES_SCHEMA: &str = include_str!("documents/schema-images.json");

/// One property of the image schema, with its `pprint` rendering for error texts.
struct PropertySchema {
    name: &'static str,
    types: &'static [&'static str],
    allowed: Option<&'static [Option<&'static str>]>,
    max_length: Option<usize>,
    uuid_pattern: bool,
    /// `tags`: an array of strings of at most 255 characters.
    string_items: bool,
    pretty: &'static str,
}

const UUID_PATTERN: &str = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";
const TAG_ITEMS_PRETTY: &str = "{'type': 'string', 'maxLength': 255}";
const TAG_MAX_LENGTH: usize = 255;
const ADDITIONAL_PRETTY: &str = "{'type': 'string'}";

const PROPERTIES: &[PropertySchema] = &[
    PropertySchema {
        name: "id",
        types: &["string"],
        allowed: None,
        max_length: None,
        uuid_pattern: true,
        string_items: false,
        pretty: "{'type': 'string',\n 'description': 'An identifier for the image',\n 'pattern': '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$'}",
    },
    PropertySchema {
        name: "name",
        types: &["null", "string"],
        allowed: None,
        max_length: Some(255),
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': ['null', 'string'],\n 'description': 'Descriptive name for the image',\n 'maxLength': 255}",
    },
    PropertySchema {
        name: "status",
        types: &["string"],
        allowed: Some(&[
            Some("queued"),
            Some("saving"),
            Some("active"),
            Some("killed"),
            Some("deleted"),
            Some("uploading"),
            Some("importing"),
            Some("pending_delete"),
            Some("deactivated"),
        ]),
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'string',\n 'readOnly': True,\n 'description': 'Status of the image',\n 'enum': ['queued',\n          'saving',\n          'active',\n          'killed',\n          'deleted',\n          'uploading',\n          'importing',\n          'pending_delete',\n          'deactivated']}",
    },
    PropertySchema {
        name: "visibility",
        types: &["string"],
        allowed: Some(&[Some("community"), Some("public"), Some("private"), Some("shared")]),
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'string',\n 'description': 'Scope of image accessibility',\n 'enum': ['community', 'public', 'private', 'shared']}",
    },
    PropertySchema {
        name: "protected",
        types: &["boolean"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'boolean',\n 'description': 'If true, image will not be deletable.'}",
    },
    PropertySchema {
        name: "os_hidden",
        types: &["boolean"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'boolean',\n 'description': 'If true, image will not appear in default image list '\n                'response.'}",
    },
    PropertySchema {
        name: "checksum",
        types: &["null", "string"],
        allowed: None,
        max_length: Some(32),
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': ['null', 'string'],\n 'readOnly': True,\n 'description': 'md5 hash of image contents.',\n 'maxLength': 32}",
    },
    PropertySchema {
        name: "os_hash_algo",
        types: &["null", "string"],
        allowed: None,
        max_length: Some(64),
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': ['null', 'string'],\n 'readOnly': True,\n 'description': 'Algorithm to calculate the os_hash_value',\n 'maxLength': 64}",
    },
    PropertySchema {
        name: "os_hash_value",
        types: &["null", "string"],
        allowed: None,
        max_length: Some(128),
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': ['null', 'string'],\n 'readOnly': True,\n 'description': 'Hexdigest of the image contents using the algorithm '\n                'specified by the os_hash_algo',\n 'maxLength': 128}",
    },
    PropertySchema {
        name: "owner",
        types: &["null", "string"],
        allowed: None,
        max_length: Some(255),
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': ['null', 'string'],\n 'description': 'Owner of the image',\n 'maxLength': 255}",
    },
    PropertySchema {
        name: "size",
        types: &["null", "integer"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': ['null', 'integer'],\n 'readOnly': True,\n 'description': 'Size of image file in bytes'}",
    },
    PropertySchema {
        name: "virtual_size",
        types: &["null", "integer"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': ['null', 'integer'],\n 'readOnly': True,\n 'description': 'Virtual size of image in bytes'}",
    },
    PropertySchema {
        name: "container_format",
        types: &["null", "string"],
        allowed: Some(&[
            None,
            Some("ami"),
            Some("ari"),
            Some("aki"),
            Some("bare"),
            Some("ovf"),
            Some("ova"),
            Some("docker"),
            Some("compressed"),
        ]),
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': ['null', 'string'],\n 'description': 'Format of the container',\n 'enum': [None,\n          'ami',\n          'ari',\n          'aki',\n          'bare',\n          'ovf',\n          'ova',\n          'docker',\n          'compressed']}",
    },
    PropertySchema {
        name: "disk_format",
        types: &["null", "string"],
        allowed: Some(&[
            None,
            Some("ami"),
            Some("ari"),
            Some("aki"),
            Some("vhd"),
            Some("vhdx"),
            Some("vmdk"),
            Some("raw"),
            Some("qcow2"),
            Some("vdi"),
            Some("iso"),
            Some("ploop"),
        ]),
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': ['null', 'string'],\n 'description': 'Format of the disk',\n 'enum': [None,\n          'ami',\n          'ari',\n          'aki',\n          'vhd',\n          'vhdx',\n          'vmdk',\n          'raw',\n          'qcow2',\n          'vdi',\n          'iso',\n          'ploop']}",
    },
    PropertySchema {
        name: "created_at",
        types: &["string"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'string',\n 'readOnly': True,\n 'description': 'Date and time of image registration'}",
    },
    PropertySchema {
        name: "updated_at",
        types: &["string"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'string',\n 'readOnly': True,\n 'description': 'Date and time of the last image modification'}",
    },
    PropertySchema {
        name: "tags",
        types: &["array"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: true,
        pretty: "{'type': 'array',\n 'description': 'List of strings related to the image',\n 'items': {'type': 'string', 'maxLength': 255}}",
    },
    PropertySchema {
        name: "direct_url",
        types: &["string"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'string',\n 'readOnly': True,\n 'description': 'URL to access the image file kept in external store'}",
    },
    PropertySchema {
        name: "min_ram",
        types: &["integer"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'integer',\n 'description': 'Amount of ram (in MB) required to boot image.'}",
    },
    PropertySchema {
        name: "min_disk",
        types: &["integer"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'integer',\n 'description': 'Amount of disk space (in GB) required to boot image.'}",
    },
    PropertySchema {
        name: "self",
        types: &["string"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'string', 'readOnly': True, 'description': 'An image self url'}",
    },
    PropertySchema {
        name: "file",
        types: &["string"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'string', 'readOnly': True, 'description': 'An image file url'}",
    },
    PropertySchema {
        name: "stores",
        types: &["string"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'string',\n 'readOnly': True,\n 'description': 'Store in which image data resides.  Only present when '\n                'the operator has enabled multiple stores.  May be a '\n                'comma-separated list of store identifiers.'}",
    },
    PropertySchema {
        name: "schema",
        types: &["string"],
        allowed: None,
        max_length: None,
        uuid_pattern: false,
        string_items: false,
        pretty: "{'type': 'string',\n 'readOnly': True,\n 'description': 'An image schema url'}",
    },
];

/// Whether `key` is a property of the image schema (anything else is "additional").
pub(crate) fn is_schema_property(key: &str) -> bool {
    key == "locations" || PROPERTIES.iter().any(|p| p.name == key)
}

/// One failed check, in jsonschema's terms.
struct Failure {
    message: String,
    validator: &'static str,
    schema_path: Vec<Value>,
    schema_pretty: &'static str,
    instance_path: Vec<Value>,
    instance: Value,
}

impl Failure {
    /// `str(jsonschema.ValidationError)`.
    fn render(&self) -> String {
        let index = |container: &str, path: &[Value]| {
            let parts: String = path.iter().map(|p| format!("[{}]", pyfmt::repr(p))).collect();
            format!("{container}{parts}")
        };
        format!(
            "{}\n\nFailed validating {} in {}:\n{}\n\nOn {}:\n{}",
            self.message,
            pyfmt::repr_str(self.validator),
            index("schema", &self.schema_path),
            pyfmt::indent4(self.schema_pretty),
            index("instance", &self.instance_path),
            pyfmt::indent4(&pyfmt::pformat(&self.instance)),
        )
    }

    /// jsonschema's `best_match` relevance: shallow errors first, then type errors.
    fn relevance(&self) -> (usize, bool) {
        (usize::MAX - self.instance_path.len(), self.validator == "type")
    }
}

fn json_type_matches(value: &Value, json_type: &str) -> bool {
    match json_type {
        "null" => value.is_null(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        // Drafts after 4 accept floats with no fractional part as integers.
        "integer" => {
            value.as_i64().is_some() || value.as_u64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn is_uuid_like(s: &str) -> bool {
    // Python's `$` also matches before a final newline.
    let s = s.strip_suffix('\n').unwrap_or(s);
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn type_message(value: &Value, types: &[&str]) -> String {
    let names: Vec<String> = types.iter().map(|t| pyfmt::repr_str(t)).collect();
    format!("{} is not of type {}", pyfmt::repr(value), names.join(", "))
}

fn check_property(schema: &PropertySchema, value: &Value, failures: &mut Vec<Failure>) {
    let path = || vec![Value::from("properties"), Value::from(schema.name)];
    let fail = |validator: &'static str, message: String| Failure {
        message,
        validator,
        schema_path: path(),
        schema_pretty: schema.pretty,
        instance_path: vec![Value::from(schema.name)],
        instance: value.clone(),
    };
    if !schema.types.iter().any(|t| json_type_matches(value, t)) {
        failures.push(fail("type", type_message(value, schema.types)));
    }
    if let Some(allowed) = schema.allowed {
        if !allowed.iter().any(|a| match a {
            None => value.is_null(),
            Some(s) => value.as_str() == Some(*s),
        }) {
            let listed: Vec<Value> = allowed.iter().map(|a| a.map_or(Value::Null, Value::from)).collect();
            let message = format!(
                "{} is not one of {}",
                pyfmt::repr(value),
                pyfmt::repr(&Value::Array(listed))
            );
            failures.push(fail("enum", message));
        }
    }
    if let (Some(max), Some(s)) = (schema.max_length, value.as_str()) {
        if s.chars().count() > max {
            failures.push(fail("maxLength", format!("{} is too long", pyfmt::repr(value))));
        }
    }
    if let (true, Some(s)) = (schema.uuid_pattern, value.as_str()) {
        if !is_uuid_like(s) {
            let message = format!(
                "{} does not match {}",
                pyfmt::repr(value),
                pyfmt::repr_str(UUID_PATTERN)
            );
            failures.push(fail("pattern", message));
        }
    }
    if let (true, Some(items)) = (schema.string_items, value.as_array()) {
        for (i, item) in items.iter().enumerate() {
            let item_fail = |validator: &'static str, message: String| Failure {
                message,
                validator,
                schema_path: vec![
                    Value::from("properties"),
                    Value::from(schema.name),
                    Value::from("items"),
                ],
                schema_pretty: TAG_ITEMS_PRETTY,
                instance_path: vec![Value::from(schema.name), Value::from(i)],
                instance: item.clone(),
            };
            match item.as_str() {
                None => failures.push(item_fail("type", type_message(item, &["string"]))),
                Some(s) if s.chars().count() > TAG_MAX_LENGTH => {
                    failures.push(item_fail("maxLength", format!("{} is too long", pyfmt::repr(item))))
                }
                Some(_) => {}
            }
        }
    }
}

/// Validates an image document (or a PATCH's one-key partial document) against the
/// image schema; the error text is Glance's `Provided object does not match schema`.
pub(crate) fn validate_image(object: &Map<String, Value>) -> Result<(), ApiError> {
    let mut failures = Vec::new();
    for schema in PROPERTIES {
        if let Some(value) = object.get(schema.name) {
            check_property(schema, value, &mut failures);
        }
    }
    for (key, value) in object {
        if !is_schema_property(key) && !value.is_string() {
            failures.push(Failure {
                message: type_message(value, &["string"]),
                validator: "type",
                schema_path: vec![Value::from("additionalProperties")],
                schema_pretty: ADDITIONAL_PRETTY,
                instance_path: vec![Value::from(key.as_str())],
                instance: value.clone(),
            });
        }
    }
    // `max_by_key` keeps the last maximum; jsonschema keeps the first one.
    let best = failures.iter().rev().max_by_key(|f| f.relevance());
    match best {
        None => Ok(()),
        Some(failure) => Err(ApiError::bad_request(format!(
            "Provided object does not match schema 'image': {}",
            failure.render()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Length of the rendered HTML error body, to compare with recorded Content-Length.
    fn html_length(value: Value) -> usize {
        let Value::Object(map) = value else { return 0 };
        match validate_image(&map) {
            Ok(()) => 0,
            Err(e) => e.into_reply(None).body().len(),
        }
    }

    #[test]
    fn messages_match_transcript_lengths() {
        assert_eq!(
            html_length(json!({"name": "x", "disk_format": "qcow3", "container_format": "bare"})),
            1074
        );
        assert_eq!(html_length(json!({"name": "x", "min_ram": "512"})), 513);
        assert_eq!(html_length(json!({"name": "x", "my_int": 5})), 382);
        assert_eq!(
            html_length(json!({"name": null, "tags": ["a"], "id": "11111111-2222-4333-8444-555555555555"})),
            0
        );
    }
}
