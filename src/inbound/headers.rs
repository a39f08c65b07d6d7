//! The two Alliance headers and the body media type.

use http::{HeaderMap, header};

use crate::config::EnvironmentIdFormat;
use crate::error::AllianceError;

pub const TARGET_NS: &str = "x-target-ns";
pub const ENVIRONMENT_ID: &str = "x-environment-id";

pub fn target_namespace(headers: &HeaderMap) -> Result<String, AllianceError> {
    single_text(headers, TARGET_NS)?
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| AllianceError::bad_request("X-Target-Ns header is required"))
}

/// The project id, normalised by the namespace's rule.
pub fn environment_id(headers: &HeaderMap, format: EnvironmentIdFormat) -> Result<String, AllianceError> {
    let value = single_text(headers, ENVIRONMENT_ID)?
        .filter(|value| !value.is_empty())
        .ok_or_else(|| AllianceError::bad_request("X-Environment-Id header is required"))?;
    format.normalise(value).ok_or_else(|| {
        AllianceError::bad_request(format!(
            "X-Environment-Id must be {}",
            match format {
                EnvironmentIdFormat::Hex32 => "32 hexadecimal digits",
                EnvironmentIdFormat::Uuid => "a dashed UUID",
                EnvironmentIdFormat::Hex32OrUuid => "32 hexadecimal digits or a dashed UUID",
                EnvironmentIdFormat::KeystoneId => "1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
            }
        ))
    })
}

/// POST, PATCH and PUT carry JSON: `application/json`, parameters such as
/// `charset` allowed.
pub fn require_json_content_type(headers: &HeaderMap) -> Result<(), AllianceError> {
    match single_text(headers, header::CONTENT_TYPE.as_str())? {
        Some(value) if is_json_media_type(value) => Ok(()),
        Some(value) => Err(AllianceError::unsupported_media_type(format!(
            "Content-Type must be application/json, not {value}"
        ))),
        None => Err(AllianceError::unsupported_media_type(
            "Content-Type application/json is required",
        )),
    }
}

pub fn is_json_media_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

/// A header that must appear at most once and be visible ASCII.
fn single_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AllianceError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AllianceError::bad_request(format!("{name} header must appear once")));
    }
    first
        .to_str()
        .map(|value| Some(value.trim()))
        .map_err(|_| AllianceError::bad_request(format!("{name} header must be plain ASCII")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=UTF-8"));
        assert!(!is_json_media_type("application/json-patch+json"));
        assert!(!is_json_media_type("text/plain"));
    }

    #[test]
    fn repeated_headers_are_refused() {
        let mut headers = HeaderMap::new();
        headers.append(TARGET_NS, "a".parse().unwrap());
        headers.append(TARGET_NS, "b".parse().unwrap());
        assert_eq!(target_namespace(&headers).unwrap_err().status, 400);
    }
}
