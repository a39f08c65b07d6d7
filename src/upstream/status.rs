//! Upstream status -> Alliance status. Each operation declares one explicit
//! [`StatusTable`] per Glance call; a status missing from the table is never
//! passed through: it becomes a generic 502 and the details go to the log.

use http::StatusCode;

use super::Reply;
use crate::error::AllianceError;
use crate::reshape::message::glance_message;

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
    /// The Glance call, for logs: `"GET /v2/images/{id}"`.
    pub call: &'static str,
    pub rows: &'static [(u16, Outcome)],
}

impl StatusTable {
    pub fn outcome(&self, status: StatusCode) -> Option<Outcome> {
        self.rows
            .iter()
            .find(|(code, _)| *code == status.as_u16())
            .map(|(_, outcome)| *outcome)
    }

    /// `Ok` for a success row; the Alliance error for anything else.
    pub fn check(&self, reply: &Reply) -> Result<(), AllianceError> {
        match self.outcome(reply.status) {
            Some(Outcome::Success) => Ok(()),
            Some(Outcome::Refused) => {
                let message = glance_message(&reply.body);
                let message = if message.is_empty() {
                    reply.status.canonical_reason().unwrap_or("refused").to_owned()
                } else {
                    message
                };
                Err(AllianceError::new(reply.status, message))
            }
            Some(Outcome::CredentialsRejected) => {
                tracing::warn!(
                    call = self.call,
                    status = reply.status.as_u16(),
                    "image service rejected the facade's credentials"
                );
                Err(AllianceError::bad_gateway(
                    "the image service rejected the facade's credentials",
                ))
            }
            None => {
                tracing::warn!(
                    call = self.call,
                    status = reply.status.as_u16(),
                    message = %glance_message(&reply.body),
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
    use bytes::Bytes;
    use http::HeaderMap;

    const TABLE: StatusTable = StatusTable {
        call: "GET /v2/images/{id}",
        rows: &[
            (200, Outcome::Success),
            (404, Outcome::Refused),
            (401, Outcome::CredentialsRejected),
        ],
    };

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn applies_each_row() {
        assert!(TABLE.check(&reply(200, "{}")).is_ok());
        let refused = TABLE
            .check(&reply(404, r#"{"message": "No image found with ID x<br /><br />"}"#))
            .unwrap_err();
        assert_eq!(
            (refused.status.as_u16(), refused.message.as_str()),
            (404, "No image found with ID x")
        );
        assert_eq!(TABLE.check(&reply(401, "")).unwrap_err().status, 502);
        let unexpected = TABLE.check(&reply(500, "Traceback: secret details")).unwrap_err();
        assert_eq!(unexpected.status, 502);
        assert!(!unexpected.message.contains("secret"));
        assert_eq!(TABLE.check(&reply(404, "")).unwrap_err().message, "Not Found");
    }
}
