//! Does the cloud offer web-download? Asked once in a while with
//! `GET /v2/info/import` (before an image is made, so that a refusal leaves
//! nothing behind), and checked again in the create reply's
//! `OpenStack-image-import-methods` header.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;
use serde::Deserialize;

use crate::error::AllianceError;
use crate::upstream::status::StatusTable;
use crate::upstream::{Call, Session};

pub const WEB_DOWNLOAD: &str = "web-download";

/// How long the cloud's answer is trusted.
const CACHE_FOR: Duration = Duration::from_secs(300);

pub const INFO_IMPORT: StatusTable = StatusTable {
    call: "GET /v2/info/import",
    success: 200,
    refused: &[403, 404],
};

#[derive(Deserialize)]
struct InfoImport {
    #[serde(rename = "import-methods")]
    import_methods: InfoValue,
}

#[derive(Deserialize)]
struct InfoValue {
    value: Vec<String>,
}

/// The import methods of one cloud, cached.
#[derive(Default)]
pub struct ImportMethods {
    cached: Mutex<Option<(Instant, Option<Vec<String>>)>>,
}

impl ImportMethods {
    /// The methods the cloud offers, or `None` when it does not say (an
    /// older Glance without `/v2/info/import`, or a policy hiding it).
    pub async fn get(&self, session: &Session) -> Result<Option<Vec<String>>, AllianceError> {
        if let Some((at, methods)) = self.cached.lock().ok().and_then(|cached| cached.clone())
            && at.elapsed() < CACHE_FOR
        {
            return Ok(methods);
        }
        let reply = session.send(&Call::get("/v2/info/import")).await?;
        let methods = match INFO_IMPORT.check(&reply) {
            Ok(()) => serde_json::from_slice::<InfoImport>(&reply.body)
                .map(|info| Some(info.import_methods.value))
                .unwrap_or_else(|error| {
                    tracing::warn!(%error, "unusable /v2/info/import answer");
                    None
                }),
            Err(error) if error.status.is_client_error() => None,
            Err(error) => return Err(error),
        };
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((Instant::now(), methods.clone()));
        }
        Ok(methods)
    }
}

/// `OpenStack-image-import-methods: glance-direct,web-download`.
pub fn from_header(headers: &HeaderMap) -> Option<Vec<String>> {
    let value = headers.get("openstack-image-import-methods")?.to_str().ok()?;
    Some(
        value
            .split(',')
            .map(|method| method.trim().to_owned())
            .filter(|method| !method.is_empty())
            .collect(),
    )
}

pub fn offers_web_download(methods: &[String]) -> bool {
    methods.iter().any(|method| method == WEB_DOWNLOAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_create_reply_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(from_header(&headers), None);
        headers.insert(
            "openstack-image-import-methods",
            "glance-direct, web-download".parse().unwrap(),
        );
        let methods = from_header(&headers).unwrap();
        assert_eq!(methods, ["glance-direct", "web-download"]);
        assert!(offers_web_download(&methods));
        assert!(!offers_web_download(&["glance-direct".to_owned()]));
    }
}
