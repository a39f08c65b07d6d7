//! Strategies for Glance call sequences. Each field gets values a client
//! would send (often drawn from small pools, so names, tags and properties
//! meet again in filters) and values from the whole range of JSON
//! ([`json::value`]): wrong types, nulls, boundary integers, long and odd strings.

use proptest::prelude::*;
use proptest::sample::select;

use super::{Accept, Body, Call, Data, File, Key, Piece, Ref, Step, Text, Who};
use crate::json;

type Json = json::Json<Ref>;

/// Longest sequence generated.
pub const MAX_STEPS: usize = 10;
/// Images a sequence refers to by index.
const IMAGE_REFS: usize = 6;
/// Fresh UUIDs drawn per run (see [`Ref::Fresh`]).
pub const FRESH_IDS: usize = 4;

const DISK_FORMATS: [&str; 11] = [
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
const CONTAINER_FORMATS: [&str; 8] = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"];
const VISIBILITIES: [&str; 4] = ["public", "private", "shared", "community"];
const STATUSES: [&str; 6] = ["queued", "active", "importing", "uploading", "deactivated", "killed"];
/// Names and tags that recur, so that filters find something.
const NAMES: [&str; 6] = ["alpha", "beta", "Alpha", "in:alpha", "a,b", "\u{e9}t\u{e9}"];
/// Custom property names that recur, among them names Glance treats specially.
const PROPERTY_KEYS: [&str; 8] = [
    "copy_from",
    "hw_disk_bus",
    "description",
    "os_glance_import_task",
    "locations",
    "deleted",
    "owner_specified.openstack.md5",
    "x",
];
/// Attributes Glance sets itself.
const READ_ONLY: [&str; 13] = [
    "status",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "created_at",
    "updated_at",
    "direct_url",
    "self",
    "file",
    "schema",
    "stores",
];

fn any_value() -> BoxedStrategy<Json> {
    json::value(2)
}

fn pooled_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(NAMES.to_vec()).prop_map(str::to_owned),
        1 => json::string(),
    ]
}

fn image_ref() -> impl Strategy<Value = Ref> {
    prop_oneof![
        8 => (0..IMAGE_REFS).prop_map(Ref::Image),
        1 => (0..FRESH_IDS).prop_map(Ref::Fresh),
    ]
}

/// The image a call targets: mostly one of the sequence's, sometimes an
/// unknown id or any text at all.
fn image_target() -> impl Strategy<Value = Text> {
    prop_oneof![
        9 => image_ref().prop_map(Text::reference),
        1 => json::string().prop_map(Text::literal),
    ]
}

/// A valid value, or (one draw in seven) any JSON value.
fn or_any(valid: impl Strategy<Value = Json> + 'static) -> BoxedStrategy<Json> {
    prop_oneof![6 => valid, 1 => any_value()].boxed()
}

fn one_of(values: &'static [&'static str]) -> impl Strategy<Value = Json> {
    select(values).prop_map(Json::str)
}

fn tags() -> impl Strategy<Value = Json> {
    proptest::collection::vec(pooled_string().prop_map(Json::Str), 0..4).prop_map(Json::Array)
}

fn owner() -> impl Strategy<Value = Json> {
    prop_oneof![Just(Json::Ref(Ref::Project)), Just(Json::Ref(Ref::OtherProject))]
}

/// The value for an image attribute, by name.
fn attribute_value(name: &str) -> BoxedStrategy<Json> {
    match name {
        "name" => or_any(pooled_string().prop_map(Json::Str)),
        "disk_format" => or_any(one_of(&DISK_FORMATS)),
        "container_format" => or_any(one_of(&CONTAINER_FORMATS)),
        "visibility" => or_any(one_of(&VISIBILITIES)),
        "protected" | "os_hidden" => or_any(any::<bool>().prop_map(Json::Bool)),
        "min_ram" | "min_disk" => or_any(json::integer().prop_map(Json::Int)),
        "tags" => or_any(tags()),
        "owner" => or_any(owner()),
        "id" => or_any((0..FRESH_IDS).prop_map(|n| Json::Ref(Ref::Fresh(n)))),
        _ => or_any(pooled_string().prop_map(Json::Str)),
    }
}

const ATTRIBUTES: [&str; 11] = [
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "protected",
    "os_hidden",
    "min_ram",
    "min_disk",
    "tags",
    "owner",
    "id",
];

/// A key of an image document: an attribute, a read-only or reserved one,
/// a recurring custom property, or any string.
fn image_key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(ATTRIBUTES.to_vec()).prop_map(str::to_owned),
        1 => select(READ_ONLY.to_vec()).prop_map(str::to_owned),
        3 => select(PROPERTY_KEYS.to_vec()).prop_map(str::to_owned),
        2 => json::string(),
    ]
}

fn entry() -> impl Strategy<Value = (String, Json)> {
    image_key().prop_flat_map(|key| {
        let value = attribute_value(&key);
        (Just(key), value)
    })
}

/// A body that is not a JSON object: other JSON, broken JSON, nothing.
fn odd_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        3 => json::value(1).prop_map(Body::Json),
        1 => select(vec!["{", "", "{\"name\": \"a\"} x", "[1,", "{'name': 'a'}"]).prop_map(|t| Body::Raw(t.to_owned())),
        1 => Just(Body::Empty),
    ]
}

/// An attribute present in most documents, with its value.
fn usual(key: &'static str) -> impl Strategy<Value = Option<(String, Json)>> {
    proptest::option::weighted(0.7, attribute_value(key).prop_map(move |value| (key.to_owned(), value)))
}

/// What clients usually send (name and formats), then anything.
fn create_body() -> impl Strategy<Value = Body> {
    let document = (
        usual("name"),
        usual("disk_format"),
        usual("container_format"),
        proptest::collection::vec(entry(), 0..3),
    )
        .prop_map(|(name, disk, container, more)| {
            let entries = [name, disk, container].into_iter().flatten().chain(more).collect();
            Body::Json(Json::Object(entries))
        });
    prop_oneof![8 => document, 1 => odd_body()]
}

/// One JSON-patch operation (v2.1 style, or v2.0 `{"replace": "/name"}`),
/// sometimes with a member missing.
fn patch_operation() -> impl Strategy<Value = Json> {
    image_key()
        .prop_flat_map(|key| {
            let pointer = format!("/{}", key.replace('~', "~0").replace('/', "~1"));
            let path = prop_oneof![
                10 => Just(Json::Str(pointer)),
                1 => one_of(&["/tags/-", "/locations/0", "/", "name", "/a//b", "/a~2"]),
                1 => any_value(),
            ];
            let op = prop_oneof![
                8 => one_of(&["add", "remove", "replace"]),
                1 => or_any(one_of(&["move", "copy", "test"])),
            ];
            (op, path, attribute_value(&key), 0u8..10)
        })
        .prop_map(|(op, path, value, shape)| match (shape, &op) {
            // v2.0 style: the operation is the name of the member holding the path.
            (0, Json::Str(name)) => Json::Object(vec![(name.clone(), path), ("value".to_owned(), value)]),
            (1, _) => Json::object([("op", op), ("path", path)]),
            (2, _) => Json::object([("op", op), ("value", value)]),
            (3, _) => Json::object([("path", path), ("value", value)]),
            _ => Json::object([("op", op), ("path", path), ("value", value)]),
        })
}

fn update_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        8 => proptest::collection::vec(patch_operation(), 0..4).prop_map(|ops| Body::Json(Json::Array(ops))),
        1 => odd_body(),
    ]
}

const V21_PATCH: &str = "application/openstack-images-v2.1-json-patch";

fn patch_media_type() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        8 => Just(Some(V21_PATCH)),
        1 => Just(Some("application/openstack-images-v2.0-json-patch")),
        1 => Just(Some("application/json")),
        1 => Just(None),
    ]
}

fn text_of(strategy: impl Strategy<Value = String>) -> impl Strategy<Value = Text> {
    strategy.prop_map(Text::literal)
}

fn number_text() -> impl Strategy<Value = Text> {
    prop_oneof![
        3 => json::integer().prop_map(|n| Text::literal(n.to_string())),
        1 => text_of(json::string()),
    ]
}

fn strings(values: &'static [&'static str]) -> impl Strategy<Value = Text> {
    prop_oneof![
        6 => select(values).prop_map(Text::literal),
        1 => text_of(json::string()),
    ]
}

/// `in:` with ids of the sequence.
fn id_list() -> impl Strategy<Value = Text> {
    proptest::collection::vec(image_ref(), 1..3).prop_map(|refs| {
        let mut pieces = vec![Piece::Literal("in:".to_owned())];
        for (i, reference) in refs.into_iter().enumerate() {
            if i > 0 {
                pieces.push(Piece::Literal(",".to_owned()));
            }
            pieces.push(Piece::Ref(reference));
        }
        Text(pieces)
    })
}

/// One parameter of `GET /v2/images`.
fn list_parameter() -> impl Strategy<Value = (String, Text)> {
    let parameter = |key: &'static str, value: BoxedStrategy<Text>| (Just(key.to_owned()), value);
    prop_oneof![
        3 => parameter("limit", number_text().boxed()),
        2 => parameter("marker", prop_oneof![4 => image_ref().prop_map(Text::reference), 1 => text_of(json::string())].boxed()),
        // Not by id: each side chose its own ids, so their orders differ.
        2 => parameter("sort_key", strings(&["name", "status", "container_format", "disk_format", "size", "created_at", "updated_at", "owner"]).boxed()),
        2 => parameter("sort_dir", strings(&["asc", "desc"]).boxed()),
        1 => parameter("sort", strings(&["name:asc", "name,created_at:desc", "size:desc,name:asc", "status:up", "name:"]).boxed()),
        2 => parameter("name", prop_oneof![3 => pooled_string().prop_map(Text::literal), 1 => pooled_string().prop_map(|n| Text::literal(format!("in:{n},alpha")))].boxed()),
        1 => parameter("id", id_list().boxed()),
        1 => parameter("status", strings(&STATUSES).boxed()),
        2 => parameter("visibility", strings(&["public", "private", "shared", "community", "all"]).boxed()),
        2 => parameter("tag", pooled_string().prop_map(Text::literal).boxed()),
        1 => parameter("disk_format", strings(&DISK_FORMATS).boxed()),
        1 => parameter("container_format", strings(&CONTAINER_FORMATS).boxed()),
        1 => parameter("owner", prop_oneof![Just(Text::reference(Ref::Project)), Just(Text::reference(Ref::OtherProject)), text_of(json::string())].boxed()),
        1 => parameter("protected", strings(&["true", "false", "True"]).boxed()),
        1 => parameter("os_hidden", strings(&["true", "false", "TRUE"]).boxed()),
        1 => parameter("member_status", strings(&["accepted", "pending", "rejected", "all"]).boxed()),
        1 => parameter("size_min", number_text().boxed()),
        1 => parameter("min_ram", number_text().boxed()),
        1 => parameter("created_at", strings(&["gte:2020-01-01T00:00:00Z", "lt:2999-01-01T00:00:00Z", "2020-01-01", "gt:yesterday"]).boxed()),
        2 => (select(PROPERTY_KEYS.to_vec()).prop_map(str::to_owned), pooled_string().prop_map(Text::literal)),
        1 => (json::string(), text_of(json::string())),
    ]
}

fn import_method() -> impl Strategy<Value = Json> {
    let name = prop_oneof![
        6 => Just(Json::str("web-download")),
        2 => or_any(one_of(&["glance-direct", "copy-image", "glance-download", "web_download"])),
    ];
    let uri = prop_oneof![
        6 => select(vec![File::Qcow2, File::Raw, File::Garbage, File::Missing, File::RefusedPort])
            .prop_map(|file| Json::Ref(Ref::File(file))),
        1 => one_of(&["file:///etc/passwd", "http://localhost/x", "http://127.0.0.1:abc/x", ""]),
        1 => any_value(),
    ];
    (name, proptest::option::weighted(0.9, uri)).prop_map(|(name, uri)| {
        let mut members = vec![("name".to_owned(), name)];
        members.extend(uri.map(|uri| ("uri".to_owned(), uri)));
        Json::Object(members)
    })
}

fn import_body() -> impl Strategy<Value = Body> {
    let flag = |key: &'static str| {
        proptest::option::weighted(0.15, or_any(any::<bool>().prop_map(Json::Bool)))
            .prop_map(move |v| v.map(|v| (key.to_owned(), v)))
    };
    let stores = proptest::option::weighted(
        0.15,
        or_any(prop_oneof![
            Just(Json::Array(vec![Json::str("fs1")])),
            Just(Json::Array(vec![Json::str("s3")]))
        ]),
    )
    .prop_map(|v| v.map(|v| ("stores".to_owned(), v)));
    prop_oneof![
        8 => (import_method(), flag("all_stores"), flag("all_stores_must_succeed"), stores).prop_map(
            |(method, all, must, stores)| {
                let mut members = vec![("method".to_owned(), method)];
                members.extend([all, must, stores].into_iter().flatten());
                Body::Json(Json::Object(members))
            }
        ),
        1 => any_value().prop_map(|method| Body::Json(Json::object([("method", method)]))),
        1 => odd_body(),
    ]
}

fn data() -> impl Strategy<Value = Data> {
    prop_oneof![
        1 => Just(Data::Empty),
        3 => proptest::collection::vec(any::<u8>(), 1..2048).prop_map(Data::Random),
        3 => select(vec![0u64, 1 << 20, 1 << 40]).prop_map(Data::Qcow2),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        5 => create_body().prop_map(|body| Call::Create { body }),
        2 => image_target().prop_map(|image| Call::Show { image }),
        4 => (image_target(), patch_media_type(), update_body())
            .prop_map(|(image, media_type, body)| Call::Update { image, media_type, body }),
        1 => image_target().prop_map(|image| Call::Delete { image }),
        4 => proptest::collection::vec(list_parameter(), 0..4).prop_map(|query| Call::List {
            query: query.into_iter().map(|(key, value)| (Key(key), value)).collect()
        }),
        3 => (image_target(), import_body()).prop_map(|(image, body)| Call::Import { image, body }),
        1 => (
            image_target(),
            any::<bool>(),
            prop_oneof![8 => Just(Some("application/octet-stream")), 1 => Just(None), 1 => Just(Some("application/json"))],
            data()
        )
            .prop_map(|(image, stage, content_type, data)| Call::Upload { image, stage, content_type, data }),
        1 => image_target().prop_map(|image| Call::Tasks { image }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let who = prop_oneof![12 => Just(Who::Member), 1 => Just(Who::Reader), 1 => Just(Who::Stranger)];
    let accept = prop_oneof![
        12 => Just(Accept::Json),
        1 => select(vec![Accept::Missing, Accept::Html, Accept::Anything, Accept::PlainText]),
    ];
    let request_id = proptest::option::weighted(
        0.05,
        prop_oneof![
            Just("req-7d5a0f4e-9c1b-4d2e-8f3a-6b7c8d9e0f1a".to_owned()),
            // At most 64 characters: past that the mock answers 500 at once, Glance
            // only once its controller runs (a difference kept, docs/mock-vs-real.md).
            proptest::collection::vec(proptest::char::range(' ', '~'), 0..=64).prop_map(|c| c.into_iter().collect()),
        ],
    );
    (who, accept, request_id, call()).prop_map(|(who, accept, request_id, call)| Step {
        who,
        accept,
        request_id,
        call,
    })
}

/// A create as a client means it: valid values only.
fn plausible_create() -> impl Strategy<Value = Step> {
    let optional = |key: &'static str, value: BoxedStrategy<Json>| {
        proptest::option::weighted(0.3, value.prop_map(move |value| (key.to_owned(), value)))
    };
    let text = |values: &'static [&'static str]| one_of(values).boxed();
    (
        pooled_string().prop_map(Json::Str),
        text(&DISK_FORMATS),
        text(&CONTAINER_FORMATS),
        optional("visibility", text(&["private", "shared", "community"])),
        optional("tags", tags().boxed()),
        optional("min_ram", (0i128..4096).prop_map(Json::Int).boxed()),
        optional("protected", any::<bool>().prop_map(Json::Bool).boxed()),
        optional("description", pooled_string().prop_map(Json::Str).boxed()),
    )
        .prop_map(
            |(name, disk, container, visibility, tags, min_ram, protected, description)| {
                let mut members = vec![
                    ("name".to_owned(), name),
                    ("disk_format".to_owned(), disk),
                    ("container_format".to_owned(), container),
                ];
                members.extend(
                    [visibility, tags, min_ram, protected, description]
                        .into_iter()
                        .flatten(),
                );
                Step {
                    who: Who::Member,
                    accept: Accept::Json,
                    request_id: None,
                    call: Call::Create {
                        body: Body::Json(Json::Object(members)),
                    },
                }
            },
        )
}

/// A sequence of calls: a few images made as clients make them, then
/// anything.
pub fn sequence() -> impl Strategy<Value = Vec<Step>> {
    (
        proptest::collection::vec(plausible_create(), 0..=3),
        proptest::collection::vec(step(), 1..=MAX_STEPS),
    )
        .prop_map(|(setup, steps)| setup.into_iter().chain(steps).collect())
}
