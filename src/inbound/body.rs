//! Request bodies: bounded reading and the `{"image": {...}}` envelope.

use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;
use serde_json::{Map, Value};

use crate::error::AllianceError;

/// Reads the whole body, refusing with 413 as soon as it is known to be
/// larger than `limit`: from `Content-Length` before reading anything, or
/// while reading a chunked body.
pub async fn read_limited<B>(request: http::Request<B>, limit: usize) -> Result<Bytes, AllianceError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(AllianceError::payload_too_large(limit));
    }
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(AllianceError::payload_too_large(limit)),
        Err(_) => Err(AllianceError::bad_request("the request body could not be read")),
    }
}

/// `{"image": {...}}` -> the inner object.
pub fn image_object(bytes: &[u8]) -> Result<Map<String, Value>, AllianceError> {
    let document: Value = serde_json::from_slice(bytes)
        .map_err(|error| AllianceError::bad_request(format!("request body is not valid JSON: {error}")))?;
    let Value::Object(mut top) = document else {
        return Err(AllianceError::bad_request(
            r#"request body must be a JSON object {"image": {...}}"#,
        ));
    };
    if let Some(other) = top.keys().find(|key| *key != "image") {
        return Err(AllianceError::bad_request(format!(
            r#"unexpected key "{other}" in the request body; it must be {{"image": {{...}}}}"#
        )));
    }
    match top.remove("image") {
        Some(Value::Object(image)) => Ok(image),
        Some(_) => Err(AllianceError::bad_request(r#""image" must be a JSON object"#)),
        None => Err(AllianceError::bad_request(r#"request body must be {"image": {...}}"#)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_rules() {
        assert!(
            image_object(br#"{"image": {"name": "x"}}"#)
                .unwrap()
                .contains_key("name")
        );
        let cases: [(&[u8], &str); 6] = [
            (b"", "not valid JSON"),
            (b"{\"image\":", "not valid JSON"),
            (b"[1]", "must be a JSON object"),
            (b"{}", "must be {"),
            (br#"{"image": [], "x": 1}"#, "unexpected key \"x\""),
            (br#"{"image": "x"}"#, "\"image\" must be a JSON object"),
        ];
        for (body, expected) in cases {
            let error = image_object(body).unwrap_err();
            assert_eq!(error.status, 400);
            assert!(
                error.message.contains(expected),
                "{:?}: {}",
                String::from_utf8_lossy(body),
                error.message
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(image_object(deep.as_bytes()).unwrap_err().status, 400);
    }
}
