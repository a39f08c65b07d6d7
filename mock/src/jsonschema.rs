//! JSON-schema validation as Python's jsonschema 4.26 does it (the version of
//! Glance 33 and Keystone 30): keywords in the schema document's order,
//! that version's messages, `str(ValidationError)`, and its `best_match`.
//! Only the keywords the Glance image schema and Keystone's token request
//! schema use are known.

use crate::pyfmt;
use serde_json::Value;

const UUID_PATTERN: &str = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";

/// One step of an instance path: jsonschema compares paths element by element.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    Index(usize),
    Key(String),
}

impl Step {
    fn to_value(&self) -> Value {
        match self {
            Step::Index(i) => Value::from(*i),
            Step::Key(k) => Value::from(k.as_str()),
        }
    }
}

/// One failed check, in jsonschema's terms.
pub(crate) struct Failure {
    message: String,
    validator: &'static str,
    /// Where the failing keyword's schema is (`['properties', 'name']`).
    schema_path: Vec<Value>,
    schema: &'static Value,
    instance_path: Vec<Step>,
    instance: Value,
}

impl Failure {
    /// The instance path, `/`-joined (`identity/methods/0`).
    pub(crate) fn path(&self) -> String {
        let steps: Vec<String> = self
            .instance_path
            .iter()
            .map(|step| match step {
                Step::Index(i) => i.to_string(),
                Step::Key(k) => k.clone(),
            })
            .collect();
        steps.join("/")
    }

    /// Whether the failure is about the instance itself (an empty path).
    pub(crate) fn at_root(&self) -> bool {
        self.instance_path.is_empty()
    }

    /// `str(jsonschema.ValidationError)`.
    pub(crate) fn render(&self) -> String {
        let index = |container: &str, path: &[Value]| {
            let parts: String = path.iter().map(|p| format!("[{}]", pyfmt::repr(p))).collect();
            format!("{container}{parts}")
        };
        let instance_path: Vec<Value> = self.instance_path.iter().map(Step::to_value).collect();
        format!(
            "{}\n\nFailed validating {} in {}:\n{}\n\nOn {}:\n{}",
            self.message,
            pyfmt::repr_str(self.validator),
            index("schema", &self.schema_path),
            pyfmt::indent4(&pyfmt::pformat(self.schema)),
            index("instance", &instance_path),
            pyfmt::indent4(&pyfmt::pformat(&self.instance)),
        )
    }

    /// `by_relevance()`: shallow errors first, then the greatest path, then
    /// errors whose instance is not even of the schema's type.
    fn relevance(&self) -> (std::cmp::Reverse<usize>, &[Step], bool) {
        let matches_type = self
            .schema
            .get("type")
            .is_some_and(|types| type_matches(&self.instance, types));
        (
            std::cmp::Reverse(self.instance_path.len()),
            &self.instance_path,
            !matches_type,
        )
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

/// The `type` keyword: one type name or a list of them.
fn type_matches(value: &Value, types: &Value) -> bool {
    match types {
        Value::String(name) => json_type_matches(value, name),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .any(|name| json_type_matches(value, name)),
        _ => true,
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

/// jsonschema's `equal` for `enum`: booleans are not numbers.
fn enum_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Where validation is in the instance and in the schema.
struct Place<'a> {
    instance: &'a Value,
    schema: &'static Value,
    instance_path: Vec<Step>,
    schema_path: Vec<Value>,
}

impl Place<'_> {
    fn fail(&self, validator: &'static str, message: String) -> Failure {
        Failure {
            message,
            validator,
            schema_path: self.schema_path.clone(),
            schema: self.schema,
            instance_path: self.instance_path.clone(),
            instance: self.instance.clone(),
        }
    }

    fn descend<'b>(&self, instance: &'b Value, schema: &'static Value, step: Step, keyword: &[&str]) -> Place<'b> {
        let mut instance_path = self.instance_path.clone();
        instance_path.push(step);
        let mut schema_path = self.schema_path.clone();
        schema_path.extend(keyword.iter().map(|k| Value::from(*k)));
        Place {
            instance,
            schema,
            instance_path,
            schema_path,
        }
    }
}

/// Every failure of `instance` against `schema`, in jsonschema's order
/// (`iter_errors`: the keywords of each schema in document order).
pub(crate) fn failures(instance: &Value, schema: &'static Value) -> Vec<Failure> {
    let place = Place {
        instance,
        schema,
        instance_path: Vec::new(),
        schema_path: Vec::new(),
    };
    let mut failures = Vec::new();
    check(&place, &mut failures);
    failures
}

/// `best_match`: the first of the most relevant failures.
pub(crate) fn best_match(failures: &[Failure]) -> Option<&Failure> {
    let mut best: Option<&Failure> = None;
    for failure in failures {
        if best.is_none_or(|b| failure.relevance() > b.relevance()) {
            best = Some(failure);
        }
    }
    best
}

fn check(place: &Place, failures: &mut Vec<Failure>) {
    let Some(schema) = place.schema.as_object() else {
        return;
    };
    let value = place.instance;
    let repr = || pyfmt::repr(value);
    for (keyword, argument) in schema {
        match keyword.as_str() {
            "type" if !type_matches(value, argument) => {
                let names: Vec<String> = match argument {
                    Value::Array(names) => names.iter().map(pyfmt::repr).collect(),
                    other => vec![pyfmt::repr(other)],
                };
                failures.push(place.fail("type", format!("{} is not of type {}", repr(), names.join(", "))));
            }
            "enum" => {
                let allowed = argument.as_array().map(Vec::as_slice).unwrap_or_default();
                if !allowed.iter().any(|a| enum_equal(a, value)) {
                    failures.push(place.fail("enum", format!("{} is not one of {}", repr(), pyfmt::repr(argument))));
                }
            }
            "maxLength" | "minLength" => {
                let (Some(text), Some(limit)) = (value.as_str(), argument.as_u64()) else {
                    continue;
                };
                let length = text.chars().count() as u64;
                if keyword == "maxLength" && length > limit {
                    let verdict = if limit == 0 {
                        "is expected to be empty"
                    } else {
                        "is too long"
                    };
                    failures.push(place.fail("maxLength", format!("{} {verdict}", repr())));
                } else if keyword == "minLength" && length < limit {
                    let verdict = if limit == 1 {
                        "should be non-empty"
                    } else {
                        "is too short"
                    };
                    failures.push(place.fail("minLength", format!("{} {verdict}", repr())));
                }
            }
            // The only pattern of the image schema is the UUID one of `id`.
            "pattern" => {
                if let (Some(text), Some(UUID_PATTERN)) = (value.as_str(), argument.as_str()) {
                    if !is_uuid_like(text) {
                        let message = format!("{} does not match {}", repr(), pyfmt::repr(argument));
                        failures.push(place.fail("pattern", message));
                    }
                }
            }
            "properties" => {
                let (Some(object), Some(properties)) = (value.as_object(), argument.as_object()) else {
                    continue;
                };
                for (name, subschema) in properties {
                    if let Some(item) = object.get(name) {
                        let inner = place.descend(item, subschema, Step::Key(name.clone()), &["properties", name]);
                        check(&inner, failures);
                    }
                }
            }
            "additionalProperties" => {
                let Some(object) = value.as_object() else { continue };
                let known = schema.get("properties").and_then(Value::as_object);
                let extras: Vec<&String> = object
                    .keys()
                    .filter(|k| known.is_none_or(|p| !p.contains_key(*k)))
                    .collect();
                if argument.is_object() {
                    for extra in extras {
                        let inner = place.descend(
                            &object[extra],
                            argument,
                            Step::Key(extra.clone()),
                            &["additionalProperties"],
                        );
                        check(&inner, failures);
                    }
                } else if argument == &Value::Bool(false) && !extras.is_empty() {
                    let mut names: Vec<String> = extras.iter().map(|k| pyfmt::repr_str(k)).collect();
                    names.sort();
                    let verb = if names.len() == 1 { "was" } else { "were" };
                    let message = format!(
                        "Additional properties are not allowed ({} {verb} unexpected)",
                        names.join(", ")
                    );
                    failures.push(place.fail("additionalProperties", message));
                }
            }
            "items" => {
                let Some(items) = value.as_array() else { continue };
                for (index, item) in items.iter().enumerate() {
                    check(&place.descend(item, argument, Step::Index(index), &["items"]), failures);
                }
            }
            "required" => {
                let Some(object) = value.as_object() else { continue };
                for name in argument.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        failures
                            .push(place.fail("required", format!("{} is a required property", pyfmt::repr_str(name))));
                    }
                }
            }
            _ => {}
        }
    }
}
