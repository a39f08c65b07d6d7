//! List filters a client may add to `GET /images?...`. They are passed to
//! Glance as given; anything else is refused rather than silently ignored, so
//! that a client never mistakes an unfiltered list for a filtered one.

use crate::error::AllianceError;

/// One list filter a client may give, as Glance takes it.
pub struct Filter {
    pub name: &'static str,
    /// May appear more than once (Glance then requires every value).
    pub repeatable: bool,
    /// The values Glance checks, and the only ones it takes; `None`: any.
    /// Glance itself ignores an empty `visibility` and trims spaces; the
    /// facade refuses anything else, so that no filter is silently dropped.
    pub values: Option<&'static [&'static str]>,
    /// Glance reads `op:value` as an operator (`in:a,b`) and refuses an
    /// unknown one: a value with a colon goes as `eq:value`, taken literally.
    pub operators: bool,
}

const fn filter(name: &'static str) -> Filter {
    Filter {
        name,
        repeatable: false,
        values: None,
        operators: false,
    }
}

/// Every list filter, once.
pub const FILTERS: &[Filter] = &[
    Filter {
        operators: true,
        ..filter("name")
    },
    Filter {
        operators: true,
        ..filter("status")
    },
    Filter {
        values: Some(&["public", "private", "shared", "community", "all"]),
        ..filter("visibility")
    },
    filter("owner"),
    Filter {
        repeatable: true,
        ..filter("tag")
    },
    Filter {
        operators: true,
        ..filter("disk_format")
    },
    Filter {
        operators: true,
        ..filter("container_format")
    },
    Filter {
        values: Some(&[
            "name",
            "status",
            "container_format",
            "disk_format",
            "size",
            "id",
            "created_at",
            "updated_at",
        ]),
        ..filter("sort_key")
    },
    Filter {
        values: Some(&["asc", "desc"]),
        ..filter("sort_dir")
    },
];

/// The filter named `name`, if there is one.
pub fn named(name: &str) -> Option<&'static Filter> {
    FILTERS.iter().find(|filter| filter.name == name)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `(name, value)` pairs in the client's order.
    pub filters: Vec<(String, String)>,
}

impl ListQuery {
    pub fn parse(query: Option<&str>) -> Result<Self, AllianceError> {
        let mut filters: Vec<(String, String)> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let Some(filter) = named(&name) else {
                let names: Vec<&str> = FILTERS.iter().map(|filter| filter.name).collect();
                return Err(AllianceError::bad_request(format!(
                    "unknown query parameter \"{name}\"; allowed: {}",
                    names.join(", ")
                )));
            };
            if !filter.repeatable && filters.iter().any(|(seen, _)| *seen == name) {
                return Err(AllianceError::bad_request(format!(
                    "query parameter \"{name}\" must appear once"
                )));
            }
            if let Some(allowed) = filter.values
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

    #[test]
    fn docs_openapi_lists_these_filters() {
        let spec: serde_json::Value = serde_saphyr::from_str(include_str!("../../docs/openapi.yaml")).unwrap();
        let parameters = spec["paths"]["/images"]["get"]["parameters"].as_array().unwrap();
        let documented: Vec<(String, Option<Vec<String>>)> = parameters
            .iter()
            .filter(|parameter| parameter["in"] == "query")
            .map(|parameter| {
                let values = parameter["schema"]["enum"]
                    .as_array()
                    .map(|values| values.iter().map(|value| value.as_str().unwrap().to_owned()).collect());
                (parameter["name"].as_str().unwrap().to_owned(), values)
            })
            .collect();
        let filters: Vec<(String, Option<Vec<String>>)> = FILTERS
            .iter()
            .map(|filter| {
                let values = filter
                    .values
                    .map(|values| values.iter().map(|value| (*value).to_owned()).collect());
                (filter.name.to_owned(), values)
            })
            .collect();
        assert_eq!(documented, filters);
    }
}
