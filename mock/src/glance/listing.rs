//! `GET /v2/images` query parameters: limits, sorting, filters and the `first` /
//! `next` links, validated in the order Glance validates them.

use super::errors::ApiError;
use super::model::{Image, Visibility};
use crate::pyfmt;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Image attributes Glance can sort by, in the order its error message lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SortKey {
    Name,
    Status,
    ContainerFormat,
    DiskFormat,
    Size,
    Id,
    CreatedAt,
    UpdatedAt,
}

impl SortKey {
    const NAMES: [(&'static str, SortKey); 8] = [
        ("name", SortKey::Name),
        ("status", SortKey::Status),
        ("container_format", SortKey::ContainerFormat),
        ("disk_format", SortKey::DiskFormat),
        ("size", SortKey::Size),
        ("id", SortKey::Id),
        ("created_at", SortKey::CreatedAt),
        ("updated_at", SortKey::UpdatedAt),
    ];

    fn parse(key: &str) -> Result<SortKey, ApiError> {
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                let available: Vec<&str> = Self::NAMES.iter().map(|(name, _)| *name).collect();
                ApiError::bad_request(format!(
                    "Invalid sort key: {key}. It must be one of the following: {}.",
                    available.join(", ")
                ))
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortDir {
    Asc,
    Desc,
}

impl SortDir {
    fn parse(dir: &str) -> Result<SortDir, ApiError> {
        match dir {
            "asc" => Ok(SortDir::Asc),
            "desc" => Ok(SortDir::Desc),
            other => Err(ApiError::bad_request(format!("Invalid sort direction: {other}"))),
        }
    }
}

/// A comparison operator of the filtering syntax (`gte:2026-01-01T00:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Cmp::Eq => left == right,
            Cmp::Ne => left != right,
            Cmp::Gt => left > right,
            Cmp::Ge => left >= right,
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
        }
    }
}

/// A string column of the images table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextField {
    Name,
    Id,
    Status,
    ContainerFormat,
    DiskFormat,
    Checksum,
    OsHashValue,
    OsHashAlgo,
    Owner,
}

impl TextField {
    fn get(self, image: &Image) -> Option<&str> {
        match self {
            TextField::Name => image.name.as_deref(),
            TextField::Id => Some(&image.id),
            TextField::Status => Some(image.status.as_str()),
            TextField::ContainerFormat => image.container_format.as_deref(),
            TextField::DiskFormat => image.disk_format.as_deref(),
            TextField::Checksum => image.checksum.as_deref(),
            TextField::OsHashValue => image.os_hash_value.as_deref(),
            TextField::OsHashAlgo => image.os_hash_algo.as_deref(),
            TextField::Owner => image.owner.as_deref(),
        }
    }
}

/// An integer column of the images table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntField {
    Size,
    VirtualSize,
    MinRam,
    MinDisk,
}

impl IntField {
    fn parse(name: &str) -> Option<IntField> {
        match name {
            "size" => Some(IntField::Size),
            "virtual_size" => Some(IntField::VirtualSize),
            "min_ram" => Some(IntField::MinRam),
            "min_disk" => Some(IntField::MinDisk),
            _ => None,
        }
    }

    fn get(self, image: &Image) -> Option<i128> {
        match self {
            IntField::Size => image.size.map(i128::from),
            IntField::VirtualSize => image.virtual_size.map(i128::from),
            IntField::MinRam => Some(i128::from(image.min_ram)),
            IntField::MinDisk => Some(i128::from(image.min_disk)),
        }
    }
}

/// One condition of the list query; all conditions must hold.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    Text {
        field: TextField,
        any_of: Vec<String>,
    },
    Int {
        field: IntField,
        cmp: Cmp,
        value: i128,
    },
    Protected(bool),
    OsHidden(bool),
    Time {
        updated: bool,
        cmp: Cmp,
        value: OffsetDateTime,
    },
    Tag(String),
    Property {
        key: String,
        value: String,
    },
    /// A comparison no row satisfies (e.g. `size=abc`).
    Nothing,
    /// A range bound SQLite cannot hold: the query fails (500) once every
    /// other condition has been built.
    Overflow,
}

impl Filter {
    pub(crate) fn matches(&self, image: &Image) -> bool {
        match self {
            Filter::Text { field, any_of } => field.get(image).is_some_and(|v| any_of.iter().any(|a| a == v)),
            Filter::Int { field, cmp, value } => field.get(image).is_some_and(|v| cmp.holds(v, *value)),
            Filter::Protected(p) => image.protected == *p,
            Filter::OsHidden(h) => image.os_hidden == *h,
            Filter::Time { updated, cmp, value } => {
                cmp.holds(if *updated { image.updated_at } else { image.created_at }, *value)
            }
            Filter::Tag(tag) => image.tags.iter().any(|t| t == tag),
            Filter::Property { key, value } => image.property(key) == Some(value.as_str()),
            Filter::Nothing | Filter::Overflow => false,
        }
    }
}

/// Membership states of the `member_status` parameter (`None` is `all`).
pub(crate) type MemberStatus = Option<&'static str>;

/// A validated list request.
#[derive(Debug, Clone)]
pub(crate) struct ListQuery {
    /// Sort keys with the `created_at` and `id` tie-breakers Glance appends.
    pub sort: Vec<(SortKey, SortDir)>,
    pub marker: Option<String>,
    pub limit: usize,
    pub member_status: MemberStatus,
    /// `None` (Glance's default view), `Some(None)` for `all`, or one visibility.
    pub visibility: Option<Option<Visibility>>,
    pub filters: Vec<Filter>,
    /// A filter the database layer rejects; reported after the policy check.
    pub filter_error: Option<ApiError>,
    /// The `first` link of the answer.
    pub first: String,
    /// Query pairs of the `next` link, without the marker.
    link_params: Vec<(String, String)>,
}

impl ListQuery {
    /// The `next` link for a page that ended with `marker`.
    pub(crate) fn next_link(&self, marker: &str) -> String {
        let mut pairs = self.link_params.clone();
        pairs.push(("marker".to_owned(), marker.to_owned()));
        format!("/v2/images?{}", pyfmt::urlencode(&pairs))
    }
}

/// webob's `MultiDict` operations on the decoded query.
struct Params(Vec<(String, String)>);

impl Params {
    /// `MultiDict.pop(key)`: removes and returns the first occurrence.
    fn pop(&mut self, key: &str) -> Option<String> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(index).1)
    }

    /// `MultiDict.get(key)`: the last occurrence.
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

/// Python's `int()` on a query parameter.
fn python_int(value: &str) -> Option<i128> {
    let trimmed = value.trim();
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let cleaned: String = trimmed.chars().filter(|c| *c != '_').collect();
    if !cleaned
        .trim_start_matches(['+', '-'])
        .bytes()
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Python ints are unbounded; saturate instead of failing on huge values.
    Some(
        cleaned
            .parse::<i128>()
            .unwrap_or(if cleaned.starts_with('-') { i128::MIN } else { i128::MAX }),
    )
}

/// Parses and validates the query of `GET /v2/images` (`RequestDeserializer.index`
/// and the checks `ImagesController.index` does before asking the database).
pub(crate) fn parse(query: Option<&str>, limit_default: usize, limit_max: usize) -> Result<ListQuery, ApiError> {
    let original = pyfmt::parse_qsl(query.unwrap_or(""));
    let mut params = Params(original.clone());
    let limit = params.pop("limit");
    let marker = params.pop("marker");
    let member_status = params.pop("member_status").unwrap_or_else(|| "accepted".to_owned());
    let mut tags = Vec::new();
    while let Some(tag) = params.pop("tag") {
        tags.push(tag.trim().to_owned());
    }

    let visibility = match params.get("visibility").filter(|v| !v.is_empty()) {
        None => None,
        Some("all") => Some(None),
        Some(v) => match Visibility::parse(v) {
            Some(vis) => Some(Some(vis)),
            None => {
                return Err(ApiError::bad_request(format!("Invalid visibility value: {v}")));
            }
        },
    };
    if params.get("changes-since").is_some_and(|v| !v.is_empty()) {
        return Err(ApiError::bad_request(
            "The \"changes-since\" filter is no longer available on v2.",
        ));
    }
    let member_status: MemberStatus = match member_status.as_str() {
        "pending" => Some("pending"),
        "accepted" => Some("accepted"),
        "rejected" => Some("rejected"),
        "all" => None,
        other => return Err(ApiError::bad_request(format!("Invalid status: {other}"))),
    };
    let limit = match limit {
        None => limit_default,
        Some(raw) => match python_int(&raw) {
            None => return Err(ApiError::bad_request("limit param must be an integer")),
            Some(n) if n < 0 => return Err(ApiError::bad_request("limit param must be positive")),
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        },
    };
    let sort = sorting(&mut params)?;

    let os_hidden = params.get("os_hidden").unwrap_or("false").to_lowercase();
    if os_hidden != "true" && os_hidden != "false" {
        return Err(ApiError::bad_request(format!(
            "Invalid value '{os_hidden}' for 'os_hidden' filter. Valid values are 'true' or 'false'."
        )));
    }
    let protected = params.get("protected");
    if let Some(protected) = protected {
        if protected != "true" && protected != "false" {
            return Err(ApiError::bad_request(format!(
                "Invalid value '{protected}' for 'protected' filter. Valid values are 'true' or 'false'."
            )));
        }
    }

    let mut filters = vec![Filter::OsHidden(os_hidden == "true")];
    filters.extend(protected.map(|p| Filter::Protected(p == "true")));
    filters.extend(tags.into_iter().map(Filter::Tag));
    // The database layer reads the rest as a dict: one condition per key, at
    // the key's first position, with its last value.
    let mut filter_error = None;
    for (key, value) in &first_position_last_value(params.0.clone()) {
        match column_filter(key, value) {
            Ok(filter) => filters.extend(filter),
            Err(e) => {
                filter_error = Some(e);
                break;
            }
        }
    }

    // `first` and `next` come from `dict(request.params)`.
    let mut link_params = first_position_last_value(original);
    link_params.retain(|(k, _)| k != "marker");
    let first = if link_params.is_empty() {
        "/v2/images".to_owned()
    } else {
        format!("/v2/images?{}", pyfmt::urlencode(&link_params))
    };

    Ok(ListQuery {
        sort,
        marker,
        limit: limit.min(limit_max),
        member_status,
        visibility,
        filters,
        filter_error,
        first,
        link_params,
    })
}

/// Pairs as a Python `dict` built from them holds them: one entry per key,
/// at the key's first position, with its last value.
fn first_position_last_value(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for (key, value) in pairs {
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => entries.push((key, value)),
        }
    }
    entries
}

/// `_get_sorting_params` plus the tie-breakers of the database layer.
fn sorting(params: &mut Params) -> Result<Vec<(SortKey, SortDir)>, ApiError> {
    let mut keys = Vec::new();
    let mut dirs = Vec::new();
    if params.contains("sort") {
        if params.contains("sort_key") || params.contains("sort_dir") {
            return Err(ApiError::bad_request("Old and new sorting syntax cannot be combined"));
        }
        let spec = params.pop("sort").unwrap_or_default();
        for part in spec.trim().split(',') {
            let (key, dir) = part.split_once(':').unwrap_or((part, ""));
            let dir = if dir.is_empty() { "desc" } else { dir };
            keys.push(SortKey::parse(key.trim())?);
            dirs.push(SortDir::parse(dir.trim())?);
        }
    } else {
        while let Some(key) = params.pop("sort_key") {
            keys.push(SortKey::parse(key.trim())?);
        }
        while let Some(dir) = params.pop("sort_dir") {
            dirs.push(SortDir::parse(dir.trim())?);
        }
        if dirs.len() > 1 && dirs.len() != keys.len() {
            return Err(ApiError::bad_request(
                "Number of sort dirs does not match the number of sort keys",
            ));
        }
    }
    if keys.is_empty() {
        keys.push(SortKey::CreatedAt);
    }
    if dirs.is_empty() {
        dirs.push(SortDir::Desc);
    }
    let default_dir = if dirs.len() == 1 { dirs[0] } else { SortDir::Desc };
    let mut sort: Vec<(SortKey, SortDir)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, dirs.get(i).copied().unwrap_or(default_dir)))
        .collect();
    for tie_breaker in [SortKey::CreatedAt, SortKey::Id] {
        if !keys.contains(&tie_breaker) {
            sort.push((tie_breaker, default_dir));
        }
    }
    Ok(sort)
}

/// The database condition for one remaining query parameter
/// (`_make_conditions_from_filters`).
fn column_filter(key: &str, value: &str) -> Result<Option<Filter>, ApiError> {
    // Handled by `parse` (Glance replaces them with a single typed condition).
    const HANDLED: [&str; 4] = ["visibility", "os_hidden", "protected", "deleted"];
    if HANDLED.contains(&key) {
        return Ok(None);
    }
    if let Some(column) = key.strip_suffix("_min").or_else(|| key.strip_suffix("_max")) {
        let bound = python_int(value)
            .ok_or_else(|| ApiError::bad_request("Unable to filter on a range with a non-numeric value."))?;
        // A bound past SQLite's 64-bit integers fails when the query runs.
        if i64::try_from(bound).is_err() {
            return Ok(Some(Filter::Overflow));
        }
        let field = IntField::parse(column).ok_or_else(ApiError::internal)?;
        let cmp = if key.ends_with("_min") { Cmp::Ge } else { Cmp::Le };
        return Ok(Some(Filter::Int {
            field,
            cmp,
            value: bound,
        }));
    }
    let text_field = match key {
        "name" => Some(TextField::Name),
        "id" => Some(TextField::Id),
        "status" => Some(TextField::Status),
        "container_format" => Some(TextField::ContainerFormat),
        "disk_format" => Some(TextField::DiskFormat),
        _ => None,
    };
    if let Some(field) = text_field {
        let (op, threshold) = split_filter_op(value);
        let any_of = match op {
            "in" => split_filter_values(threshold)?,
            "eq" => vec![threshold.to_owned()],
            other => {
                return Err(ApiError::bad_request(format!(
                    "Unable to filter by unknown operator '{other}'."
                )));
            }
        };
        return Ok(Some(Filter::Text { field, any_of }));
    }
    if key == "created_at" || key == "updated_at" {
        let (op, threshold) = split_filter_op(value);
        let moment = parse_isotime(threshold).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Bad \"{key}\" query filter format. Use ISO 8601 DateTime notation."
            ))
        })?;
        let cmp = match op {
            "gt" => Cmp::Gt,
            "gte" => Cmp::Ge,
            "lt" => Cmp::Lt,
            "lte" => Cmp::Le,
            "neq" => Cmp::Ne,
            "eq" => Cmp::Eq,
            _ => {
                return Err(ApiError::bad_request("Unable to filter on a unknown operator."));
            }
        };
        return Ok(Some(Filter::Time {
            updated: key == "updated_at",
            cmp,
            value: moment,
        }));
    }
    let filter = match key {
        "checksum" => Filter::Text {
            field: TextField::Checksum,
            any_of: vec![value.to_owned()],
        },
        "os_hash_value" => Filter::Text {
            field: TextField::OsHashValue,
            any_of: vec![value.to_owned()],
        },
        "os_hash_algo" => Filter::Text {
            field: TextField::OsHashAlgo,
            any_of: vec![value.to_owned()],
        },
        "owner" => Filter::Text {
            field: TextField::Owner,
            any_of: vec![value.to_owned()],
        },
        "deleted_at" => Filter::Nothing,
        // Relationship attributes of the model: the generated SQL fails.
        "properties" | "locations" | "tags" | "members" => return Err(ApiError::internal()),
        other => match IntField::parse(other) {
            Some(field) => match python_int(value) {
                Some(number) => Filter::Int {
                    field,
                    cmp: Cmp::Eq,
                    value: number,
                },
                None => Filter::Nothing,
            },
            None => Filter::Property {
                key: other.to_owned(),
                value: value.to_owned(),
            },
        },
    };
    Ok(Some(filter))
}

/// `glance.common.utils.split_filter_op`.
fn split_filter_op(expression: &str) -> (&str, &str) {
    match expression.split_once(':') {
        Some(_) if parse_isotime(expression).is_some() => ("eq", expression),
        Some((op, threshold)) => (op, threshold),
        None => ("eq", expression),
    }
}

/// `validate_quotes` and `split_filter_value_for_quotes` for the `in:` operator.
fn split_filter_values(value: &str) -> Result<Vec<String>, ApiError> {
    let chars: Vec<char> = value.chars().collect();
    let mut open = true;
    for i in 0..chars.len() {
        if chars[i] != '"' || (i > 0 && chars[i - 1] == '\\') {
            continue;
        }
        if open && i > 0 && chars[i - 1] != ',' {
            return Err(ApiError::bad_request(format!(
                "Invalid filter value {value}. There is no comma before opening quotation mark."
            )));
        }
        if !open && i + 1 != chars.len() && chars[i + 1] != ',' {
            return Err(ApiError::bad_request(format!(
                "Invalid filter value {value}. There is no comma after closing quotation mark."
            )));
        }
        open = !open;
    }
    if !open {
        return Err(ApiError::bad_request(format!(
            "Invalid filter value {value}. The quote is not closed."
        )));
    }
    let mut values = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '"' {
            let mut j = i + 1;
            let mut item = String::new();
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' && j + 1 < chars.len() {
                    item.push(chars[j]);
                    j += 1;
                }
                item.push(chars[j]);
                j += 1;
            }
            values.push(item);
            i = j + 1;
        } else if chars[i] == ',' {
            values.push(String::new());
        } else {
            let start = i;
            while i < chars.len() && chars[i] != ',' {
                i += 1;
            }
            values.push(chars[start..i].iter().collect());
        }
        if i < chars.len() && chars[i] == ',' {
            i += 1;
        }
    }
    Ok(values)
}

/// `oslo_utils.timeutils.parse_isotime` for the forms clients send.
fn parse_isotime(value: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(t);
    }
    let naive = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    ];
    if let Some(t) = naive.iter().find_map(|f| PrimitiveDateTime::parse(value, f).ok()) {
        return Some(t.assume_utc());
    }
    let date = time::Date::parse(value, format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_order_and_encode_like_python() {
        let q = parse(Some("sort=name:asc&limit=2&marker=abc"), 25, 1000).ok();
        let q = q.as_ref();
        assert_eq!(q.map(|q| q.first.as_str()), Some("/v2/images?sort=name%3Aasc&limit=2"));
        assert_eq!(
            q.map(|q| q.next_link("m1")).as_deref(),
            Some("/v2/images?sort=name%3Aasc&limit=2&marker=m1")
        );
        assert_eq!(
            q.map(|q| q.sort.clone()),
            Some(vec![
                (SortKey::Name, SortDir::Asc),
                (SortKey::CreatedAt, SortDir::Asc),
                (SortKey::Id, SortDir::Asc),
            ])
        );
    }

    #[test]
    fn limits_and_errors() {
        assert_eq!(parse(Some("limit=5000"), 25, 1000).map(|q| q.limit).ok(), Some(1000));
        assert_eq!(parse(None, 25, 1000).map(|q| q.limit).ok(), Some(25));
        assert_eq!(parse(Some("limit=-1"), 25, 1000).err().map(|e| e.status()), Some(400));
        assert_eq!(parse(Some("limit=abc"), 25, 1000).err().map(|e| e.status()), Some(400));
        assert_eq!(
            parse(Some("sort_key=bogus"), 25, 1000).err().map(|e| e.status()),
            Some(400)
        );
        let deferred = |q| {
            parse(Some(q), 25, 1000)
                .ok()
                .and_then(|q| q.filter_error)
                .map(|e| e.status())
        };
        assert_eq!(deferred("size_min=x"), Some(400));
        assert_eq!(deferred("name=foo:bar"), Some(400));
    }

    #[test]
    fn in_operator_values() {
        assert_eq!(
            split_filter_values("a,\"b,c\",d").ok(),
            Some(vec!["a".to_owned(), "b,c".to_owned(), "d".to_owned()])
        );
        assert!(split_filter_values("a\"b\"").is_err());
    }
}
