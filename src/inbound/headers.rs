//! The two Alliance headers and the body media type.

use http::{HeaderMap, header};

use crate::config::EnvironmentIdFormat;
use crate::error::AllianceError;
use crate::ids;

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
    normalise_environment_id(value, format).ok_or_else(|| {
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

/// Pure rule behind [`environment_id`].
pub fn normalise_environment_id(value: &str, format: EnvironmentIdFormat) -> Option<String> {
    let hex32 = || ids::is_hex32(value).then(|| value.to_ascii_lowercase());
    let uuid = || ids::is_dashed_uuid(value).then(|| value.to_ascii_lowercase());
    match format {
        EnvironmentIdFormat::Hex32 => hex32(),
        EnvironmentIdFormat::Uuid => uuid(),
        EnvironmentIdFormat::Hex32OrUuid => hex32().or_else(|| uuid().map(|id| id.replace('-', ""))),
        EnvironmentIdFormat::KeystoneId => (!value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        .then(|| value.to_owned()),
    }
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
    fn environment_rules() {
        use EnvironmentIdFormat::*;
        let hex = "54915A05b0bb43dcbb218525c426b6a5";
        let uuid = "54915a05-b0bb-43dc-bb21-8525c426b6a5";
        assert_eq!(
            normalise_environment_id(hex, Hex32).as_deref(),
            Some("54915a05b0bb43dcbb218525c426b6a5")
        );
        assert_eq!(normalise_environment_id(uuid, Hex32), None);
        assert_eq!(normalise_environment_id(uuid, Uuid).as_deref(), Some(uuid));
        assert_eq!(normalise_environment_id(hex, Uuid), None);
        assert_eq!(
            normalise_environment_id(uuid, Hex32OrUuid).as_deref(),
            Some("54915a05b0bb43dcbb218525c426b6a5")
        );
        assert_eq!(
            normalise_environment_id("default", KeystoneId).as_deref(),
            Some("default")
        );
        assert_eq!(normalise_environment_id("a b", KeystoneId), None);
        assert_eq!(normalise_environment_id(&"a".repeat(65), KeystoneId), None);
        for bad in [
            "",
            "xyz",
            "54915a05b0bb43dcbb218525c426b6a",
            "54915a05b0bb43dcbb218525c426b6a5\n",
        ] {
            assert_eq!(normalise_environment_id(bad, Hex32OrUuid), None, "{bad:?}");
        }
    }

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
