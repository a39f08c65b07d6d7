//! Upstream status -> Alliance answer. Each Glance call has one explicit
//! [`StatusTable`], next to the call in `upstream::glance`: every status
//! Glance may give and what it becomes. A status missing from the table is
//! never passed through: it becomes a generic 502 and the details go to the
//! log. (What a call that got no answer at all becomes - refused, timed
//! out, reset - is the same for every call to either service, and is the
//! transport's one table: `upstream::transport`.)

use http::StatusCode;

use super::message::{for_log, glance_message};
use crate::error::AllianceError;
use crate::metrics::{LabelValue, UpstreamCall};

/// What one status of one call becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The call did what was asked.
    Success,
    /// The answer "no" to a question the call asks (not a member, no such
    /// information): the operation decides what it means.
    No,
    /// Glance refused for a reason the client can act on: the same status,
    /// and Glance's message made plain.
    Refused,
    /// Refused, but the client gets this status (with Glance's message).
    RefusedAs(u16),
    /// Glance did not accept the facade's own credentials: never the
    /// client's fault, so 502.
    CredentialsRejected,
}

/// A Glance call's whole status mapping.
pub struct StatusTable {
    /// The Glance call, for logs and metrics: `"GET /v2/images/{id}"`.
    pub call: UpstreamCall,
    pub rows: &'static [(u16, Verdict)],
}

impl StatusTable {
    /// The row of `status`; `None` for a status the table does not know.
    pub fn verdict(&self, status: StatusCode) -> Option<Verdict> {
        let code = status.as_u16();
        self.rows
            .iter()
            .find(|(row, _)| *row == code)
            .map(|(_, verdict)| *verdict)
    }

    /// `Ok(true)` for the call's success, `Ok(false)` for its "no"; the
    /// Alliance error for anything else.
    pub fn judge(&self, status: StatusCode, body: &[u8]) -> Result<bool, AllianceError> {
        match self.verdict(status) {
            Some(Verdict::Success) => Ok(true),
            Some(Verdict::No) => Ok(false),
            Some(Verdict::Refused) => Err(refused(status, body)),
            Some(Verdict::RefusedAs(code)) => Err(refused(
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY),
                body,
            )),
            Some(Verdict::CredentialsRejected) => {
                tracing::warn!(
                    call = self.call.label(),
                    status = status.as_u16(),
                    reason = "upstream_credentials_rejected",
                    "image service rejected the facade's credentials"
                );
                Err(AllianceError::bad_gateway(
                    "the image service rejected the facade's credentials",
                ))
            }
            None => {
                tracing::warn!(
                    call = self.call.label(),
                    status = status.as_u16(),
                    reason = "upstream_unexpected_status",
                    body = %for_log(body),
                    "unexpected answer from the image service"
                );
                Err(AllianceError::bad_gateway("the image service answered unexpectedly"))
            }
        }
    }

    /// `Ok` for the call's success; the Alliance error for anything else
    /// (a table with a "no" row is read with [`StatusTable::judge`]).
    pub fn check(&self, status: StatusCode, body: &[u8]) -> Result<(), AllianceError> {
        match self.judge(status, body)? {
            true => Ok(()),
            false => Err(AllianceError::bad_gateway("the image service answered unexpectedly")),
        }
    }
}

/// Glance's refusal with `status`, its message made plain.
fn refused(status: StatusCode, body: &[u8]) -> AllianceError {
    let message = glance_message(body);
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        message
    };
    AllianceError::new(status, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: StatusTable = StatusTable {
        call: UpstreamCall::GetImage,
        rows: &[
            (200, Verdict::Success),
            (404, Verdict::Refused),
            (409, Verdict::RefusedAs(400)),
            (410, Verdict::No),
            (401, Verdict::CredentialsRejected),
        ],
    };

    fn reply(status: u16, body: &str) -> (StatusCode, &[u8]) {
        (StatusCode::from_u16(status).unwrap(), body.as_bytes())
    }

    fn check((status, body): (StatusCode, &[u8])) -> Result<(), AllianceError> {
        TABLE.check(status, body)
    }

    #[test]
    fn applies_each_row() {
        assert!(check(reply(200, "{}")).is_ok());
        let refused = check(reply(404, r#"{"message": "No image found with ID x<br /><br />"}"#)).unwrap_err();
        assert_eq!(
            (refused.status.as_u16(), refused.message.as_str()),
            (404, "No image found with ID x")
        );
        assert_eq!(check(reply(401, "")).unwrap_err().status, 502);
        let unexpected = check(reply(500, "Traceback: secret details")).unwrap_err();
        assert_eq!(unexpected.status, 502);
        assert!(!unexpected.message.contains("secret"));
        assert_eq!(check(reply(404, "")).unwrap_err().message, "Not Found");
        let remapped = check(reply(409, r#"{"message": "in use"}"#)).unwrap_err();
        assert_eq!((remapped.status.as_u16(), remapped.message.as_str()), (400, "in use"));
        assert_eq!(TABLE.judge(StatusCode::GONE, b""), Ok(false));
        assert_eq!(TABLE.judge(StatusCode::OK, b""), Ok(true));
    }

    #[test]
    fn unexpected_answers_are_logged_scrubbed_and_bounded() {
        let echo = format!(
            "<html><body>Traceback: auth failed for {{'password': 'Hunter2!', 'X-Auth-Token': 'gAAAAAsecret'}}\n{}</body></html>",
            "padding ".repeat(10_000)
        );
        let text = crate::logging::captured(|| {
            check(reply(500, &echo)).unwrap_err();
        });
        assert!(text.contains("reason=upstream_unexpected_status"), "{text}");
        assert!(text.contains("Traceback: auth failed for"), "{text}");
        assert!(!text.contains("Hunter2") && !text.contains("gAAAAAsecret"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.len() < 1000, "{} bytes logged", text.len());
    }
}
