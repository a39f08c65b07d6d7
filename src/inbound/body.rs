//! Request bodies: bounded reading and the `{"image": {...}}` envelope.

use std::pin::pin;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::header;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body;
use serde_json::{Map, Value};

use crate::error::AllianceError;
use crate::refusal::Refusal;

/// How long a request body may take to arrive (nginx's
/// `client_body_timeout` between two reads, and a bound on the whole, so
/// that a client trickling a byte now and then is refused as well).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeouts {
    pub idle: Duration,
    pub total: Duration,
}

/// Reads the whole body, refusing with 413 as soon as it is known to be
/// larger than `limit` (from `Content-Length` before reading anything, or
/// while reading a chunked body), and with 408 when it does not arrive
/// within `timeouts`. A refused body's bytes are freed with the request.
pub async fn read_limited<B>(
    request: http::Request<B>,
    limit: usize,
    timeouts: BodyTimeouts,
) -> Result<Bytes, AllianceError>
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
        return Err(AllianceError::refused(Refusal::BodyTooLarge { limit }));
    }
    let too_slow = || {
        AllianceError::refused(Refusal::BodyTimeout {
            idle_secs: timeouts.idle.as_secs(),
            total_secs: timeouts.total.as_secs(),
        })
    };
    let read = async {
        let mut body = pin!(Limited::new(request.into_body(), limit));
        // The chunks as they came (no copy while the body arrives).
        let mut chunks: Vec<Bytes> = Vec::new();
        while let Some(frame) = tokio::time::timeout(timeouts.idle, body.frame())
            .await
            .map_err(|_| too_slow())?
        {
            match frame {
                Ok(frame) => {
                    if let Ok(mut data) = frame.into_data() {
                        chunks.push(data.copy_to_bytes(data.remaining()));
                    }
                }
                Err(error) if error.is::<LengthLimitError>() => {
                    return Err(AllianceError::refused(Refusal::BodyTooLarge { limit }));
                }
                Err(_) => return Err(AllianceError::bad_request("the request body could not be read")),
            }
        }
        Ok(match chunks.len() {
            1 => chunks.swap_remove(0),
            _ => Bytes::from(chunks.concat()),
        })
    };
    tokio::time::timeout(timeouts.total, read)
        .await
        .map_err(|_| too_slow())?
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
    use futures_util::stream::{self, StreamExt};
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    const TIMEOUTS: BodyTimeouts = BodyTimeouts {
        idle: Duration::from_millis(200),
        total: Duration::from_millis(500),
    };

    /// A body sending `chunks`, each `every` after the last, then nothing.
    fn arriving(
        chunks: usize,
        every: Duration,
        then_end: bool,
    ) -> http::Request<impl Body<Data = Bytes, Error = std::io::Error>> {
        let sent = stream::iter(0..chunks).then(move |_| async move {
            tokio::time::sleep(every).await;
            Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"x")))
        });
        let rest = if then_end {
            stream::empty().left_stream()
        } else {
            stream::pending().right_stream()
        };
        http::Request::new(StreamBody::new(sent.chain(rest)))
    }

    #[tokio::test]
    async fn bodies_must_arrive_in_time() {
        let whole = read_limited(arriving(3, Duration::from_millis(10), true), 64, TIMEOUTS).await;
        assert_eq!(whole.unwrap(), "xxx");
        // Stops one byte short: 408 once nothing came for `idle`.
        let stalled = read_limited(arriving(3, Duration::from_millis(10), false), 64, TIMEOUTS).await;
        assert_eq!(stalled.unwrap_err().status, 408);
        // A byte every 100 ms never waits `idle`, but takes longer than `total`.
        let trickle = read_limited(arriving(20, Duration::from_millis(100), true), 64, TIMEOUTS).await;
        assert_eq!(trickle.unwrap_err().status, 408);
        // Too large while arriving is still 413.
        let large = read_limited(arriving(20, Duration::from_millis(1), true), 8, TIMEOUTS).await;
        assert_eq!(large.unwrap_err().status, 413);
    }

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
