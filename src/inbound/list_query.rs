//! List filters a client may add to `GET /images?...`. They are passed to
//! Glance as given; anything else is refused rather than silently ignored, so
//! that a client never mistakes an unfiltered list for a filtered one.

use crate::error::AllianceError;

const FILTERS: &[&str] = &[
    "name",
    "status",
    "visibility",
    "owner",
    "tag",
    "disk_format",
    "container_format",
    "sort_key",
    "sort_dir",
];

/// Only `tag` may repeat (Glance then requires every tag).
const REPEATABLE: &[&str] = &["tag"];

/// The filters whose values Glance checks, and the values it takes. Glance
/// itself ignores an empty `visibility` and trims spaces; the facade
/// refuses anything else, so that no filter is silently dropped.
const CLOSED_VALUES: &[(&str, &[&str])] = &[
    ("visibility", &["public", "private", "shared", "community", "all"]),
    (
        "sort_key",
        &[
            "name",
            "status",
            "container_format",
            "disk_format",
            "size",
            "id",
            "created_at",
            "updated_at",
        ],
    ),
    ("sort_dir", &["asc", "desc"]),
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `(name, value)` pairs in the client's order.
    pub filters: Vec<(String, String)>,
}

impl ListQuery {
    pub fn parse(query: Option<&str>) -> Result<Self, AllianceError> {
        let mut filters: Vec<(String, String)> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if !FILTERS.contains(&name.as_ref()) {
                return Err(AllianceError::bad_request(format!(
                    "unknown query parameter \"{name}\"; allowed: {}",
                    FILTERS.join(", ")
                )));
            }
            if !REPEATABLE.contains(&name.as_ref()) && filters.iter().any(|(seen, _)| *seen == name) {
                return Err(AllianceError::bad_request(format!(
                    "query parameter \"{name}\" must appear once"
                )));
            }
            if let Some((_, allowed)) = CLOSED_VALUES.iter().find(|(filter, _)| *filter == name)
                && !allowed.contains(&value.as_ref())
            {
                return Err(AllianceError::bad_request(format!(
                    "query parameter \"{name}\" must be one of {}",
                    allowed.join(", ")
                )));
            }
            filters.push((name.into_owned(), value.into_owned()));
        }
        Ok(ListQuery { filters })
    }

    /// A lookup of every image with exactly this name.
    pub fn by_name(name: &str) -> Self {
        ListQuery {
            filters: vec![("name".to_owned(), name.to_owned())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_filters_in_order() {
        let query = ListQuery::parse(Some("status=active&tag=a&tag=b&name=cirros%20x")).unwrap();
        assert_eq!(
            query.filters,
            [("status", "active"), ("tag", "a"), ("tag", "b"), ("name", "cirros x")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(ListQuery::parse(None).unwrap(), ListQuery::default());
        assert_eq!(ListQuery::parse(Some("")).unwrap(), ListQuery::default());
    }

    #[test]
    fn refuses_unknown_and_repeated_parameters() {
        let error = ListQuery::parse(Some("limit=5")).unwrap_err();
        assert!(error.message.contains("unknown query parameter \"limit\""));
        let error = ListQuery::parse(Some("name=a&name=b")).unwrap_err();
        assert!(error.message.contains("must appear once"));
    }

    #[test]
    fn closed_filters_take_only_their_values() {
        for bad in ["visibility=", "visibility=Public", "sort_key=owner", "sort_dir=%20asc"] {
            let error = ListQuery::parse(Some(bad)).unwrap_err();
            assert!(error.message.contains("must be one of"), "{bad}: {}", error.message);
        }
        for good in ["visibility=all", "sort_key=size&sort_dir=asc"] {
            assert!(ListQuery::parse(Some(good)).is_ok(), "{good}");
        }
    }
}
