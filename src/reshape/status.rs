//! Upstream status -> Alliance status. Each Glance call has one explicit
//! [`StatusTable`] (next to the call, in `upstream::glance`): its success
//! status, the refusals the
//! client sees as Glance gave them (status and plain message), and - for
//! every call - 401 as the facade's own credentials failing (502). A status
//! missing from the table is never passed through: it becomes a generic 502
//! and the details go to the log.

use http::StatusCode;

use super::message::{for_log, glance_message};
use crate::error::AllianceError;
use crate::metrics::{LabelValue, UpstreamCall};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The call did what was asked.
    Success,
    /// Glance refused for a reason the client can act on: same status, and
    /// Glance's message made plain.
    Refused,
    /// Glance did not accept the facade's own credentials: never the
    /// client's fault, so 502.
    CredentialsRejected,
}

pub struct StatusTable {
    /// The Glance call, for logs and metrics: `"GET /v2/images/{id}"`.
    pub call: UpstreamCall,
    pub success: u16,
    /// Refusals passed to the client with their own status.
    pub refused: &'static [u16],
}

/// What Glance refuses for reasons the client can act on: bad values (400),
/// not allowed (403), not found (404), conflicting state (409), too large (413).
pub const CLIENT_REFUSALS: &[u16] = &[400, 403, 404, 409, 413];

impl StatusTable {
    pub fn outcome(&self, status: StatusCode) -> Option<Outcome> {
        match status.as_u16() {
            code if code == self.success => Some(Outcome::Success),
            401 => Some(Outcome::CredentialsRejected),
            code if self.refused.contains(&code) => Some(Outcome::Refused),
            _ => None,
        }
    }

    /// `Ok` for a success row; the Alliance error for anything else.
    pub fn check(&self, status: StatusCode, body: &[u8]) -> Result<(), AllianceError> {
        match self.outcome(status) {
            Some(Outcome::Success) => Ok(()),
            Some(Outcome::Refused) => {
                let message = glance_message(body);
                let message = if message.is_empty() {
                    status.canonical_reason().unwrap_or("refused").to_owned()
                } else {
                    message
                };
                Err(AllianceError::new(status, message))
            }
            Some(Outcome::CredentialsRejected) => {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: StatusTable = StatusTable {
        call: UpstreamCall::GetImage,
        success: 200,
        refused: &[404],
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
