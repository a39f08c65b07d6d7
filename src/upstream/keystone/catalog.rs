//! Finding Glance in a token's service catalog: service type `image`, the
//! configured interface and region; the URL keeps any path prefix and loses
//! a version suffix (`/v2`, `/v2.1`), as keystoneauth does.

use serde::Deserialize;
use url::Url;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CatalogEntry {
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CatalogEndpoint {
    pub interface: String,
    pub region_id: Option<String>,
    pub region: Option<String>,
    pub url: String,
}

pub fn image_endpoint(catalog: &[CatalogEntry], interface: &str, region: Option<&str>) -> Option<Url> {
    catalog
        .iter()
        .filter(|entry| entry.service_type == "image")
        .flat_map(|entry| &entry.endpoints)
        .filter(|endpoint| endpoint.interface == interface)
        .find(|endpoint| {
            region.is_none_or(|wanted| {
                endpoint.region_id.as_deref() == Some(wanted) || endpoint.region.as_deref() == Some(wanted)
            })
        })
        .and_then(|endpoint| Url::parse(&endpoint.url).ok())
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .map(without_version)
}

/// `http://h/image/v2/` -> `http://h/image`; `http://h:9292` unchanged.
pub fn without_version(mut url: Url) -> Url {
    let path = url.path().trim_end_matches('/').to_owned();
    let (parent, last) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
    let is_version = last.strip_prefix('v').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    });
    let kept = if is_version { parent } else { path.as_str() };
    url.set_path(kept);
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(interface: &str, region: &str, url: &str) -> CatalogEndpoint {
        CatalogEndpoint {
            interface: interface.into(),
            region_id: Some(region.into()),
            region: Some(region.into()),
            url: url.into(),
        }
    }

    fn catalog() -> Vec<CatalogEntry> {
        vec![
            CatalogEntry {
                service_type: "identity".into(),
                endpoints: vec![endpoint("public", "RegionOne", "http://k:5000/v3")],
            },
            CatalogEntry {
                service_type: "image".into(),
                endpoints: vec![
                    endpoint("public", "RegionOne", "http://one/image/v2/"),
                    endpoint("internal", "RegionOne", "http://10.0.0.1:9292"),
                    endpoint("public", "RegionTwo", "http://two:9292/v2.1"),
                ],
            },
        ]
    }

    #[test]
    fn picks_by_interface_and_region() {
        let catalog = catalog();
        assert_eq!(
            image_endpoint(&catalog, "public", None).unwrap().as_str(),
            "http://one/image"
        );
        assert_eq!(
            image_endpoint(&catalog, "public", Some("RegionTwo")).unwrap().as_str(),
            "http://two:9292/"
        );
        assert_eq!(
            image_endpoint(&catalog, "internal", Some("RegionOne"))
                .unwrap()
                .as_str(),
            "http://10.0.0.1:9292/"
        );
        assert_eq!(image_endpoint(&catalog, "admin", None), None);
        assert_eq!(image_endpoint(&catalog, "public", Some("Elsewhere")), None);
    }

    #[test]
    fn strips_only_version_segments() {
        for (input, output) in [
            ("http://h/image/v2", "http://h/image"),
            ("http://h/image/v2/", "http://h/image"),
            ("http://h:9292/v2.1", "http://h:9292/"),
            ("http://h:9292", "http://h:9292/"),
            ("http://h/images", "http://h/images"),
            ("http://h/v", "http://h/v"),
            ("http://h/v2x", "http://h/v2x"),
        ] {
            assert_eq!(without_version(Url::parse(input).unwrap()).as_str(), output, "{input}");
        }
    }
}
