//! Does the cloud offer web-download? Asked once in a while with
//! `GET /v2/info/import` (before an image is made, so that a refusal leaves
//! nothing behind), and checked again in the create reply's
//! `OpenStack-image-import-methods` header.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::AllianceError;
use crate::upstream::{Session, glance};

pub const WEB_DOWNLOAD: &str = "web-download";

/// How long the cloud's answer is trusted.
const CACHE_FOR: Duration = Duration::from_secs(300);

/// The import methods of one cloud, cached.
#[derive(Default)]
pub struct ImportMethods {
    cached: Mutex<Option<(Instant, Option<Vec<String>>)>>,
}

impl ImportMethods {
    /// The methods the cloud offers, or `None` when it does not say.
    pub async fn get(&self, session: &Session) -> Result<Option<Vec<String>>, AllianceError> {
        if let Some((at, methods)) = self.cached.lock().ok().and_then(|cached| cached.clone())
            && at.elapsed() < CACHE_FOR
        {
            return Ok(methods);
        }
        let methods = glance::import_methods(session).await?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((Instant::now(), methods.clone()));
        }
        Ok(methods)
    }
}

pub fn offers_web_download(methods: &[String]) -> bool {
    methods.iter().any(|method| method == WEB_DOWNLOAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_download_must_be_named() {
        assert!(offers_web_download(&[
            "glance-direct".to_owned(),
            "web-download".to_owned()
        ]));
        assert!(!offers_web_download(&["glance-direct".to_owned()]));
        assert!(!offers_web_download(&[]));
    }
}
