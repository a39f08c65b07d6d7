//! Every refusal of the facade's limits and of its callers' rules, once:
//! [`Refusal`]. It is decided where the limit is (inbound, the server, the
//! callers' rules, the rates and gates, the transport, Keystone, the list's
//! pager) and carried by the error to the request's end, where its status,
//! message and `Retry-After` make the answer (`error`), its label is the
//! log line's `reason` and the `reason` of `alliance_glance_refused_total`.

/// The upstream service a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Glance.
    Image,
    /// Keystone.
    Identity,
}

impl Service {
    /// As messages and logs name it.
    pub fn name(self) -> &'static str {
        match self {
            Service::Image => "image service",
            Service::Identity => "identity service",
        }
    }
}

/// Why a caller a `[[callers]]` rule recognised may not do what it asks,
/// from the least to the most specific (the most specific one met is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denial {
    Namespace,
    Environment,
    ReadOnly,
    TokenNotProjectScoped,
    TokenOtherProject,
    TokenRoles,
}

impl Denial {
    /// The client's answer (403).
    pub fn message(self) -> &'static str {
        match self {
            Denial::Namespace => "this caller may not act on this namespace",
            Denial::Environment => "this caller may not act on this environment",
            Denial::ReadOnly => "this caller may only list and show images",
            Denial::TokenNotProjectScoped => "the token is not scoped to a project",
            Denial::TokenOtherProject => "the token is scoped to another project than X-Environment-Id",
            Denial::TokenRoles => "the token's roles do not allow this operation (reader to read, member to write)",
        }
    }

    /// The `why` of the caller's log line.
    pub fn name(self) -> &'static str {
        match self {
            Denial::Namespace => "namespace not allowed",
            Denial::Environment => "environment not allowed",
            Denial::ReadOnly => "read-only caller",
            Denial::TokenNotProjectScoped => "token not project-scoped",
            Denial::TokenOtherProject => "token of another project",
            Denial::TokenRoles => "token roles insufficient",
        }
    }
}

/// Declares [`Refusal`] with each variant's label and answer status, and
/// [`Refusal::LABELS`] in the variants' order (the metric's series,
/// registered at start).
macro_rules! refusals {
    ($($(#[$doc:meta])* $variant:ident $({ $($field:ident: $type:ty),+ $(,)? })? => $label:literal, $status:expr,)+) => {
        /// A limit or a `[[callers]]` rule refusing a request (or a connection).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Refusal {
            $($(#[$doc])* $variant $({ $($field: $type),+ })?,)+
        }

        /// The variants without their fields, numbered in order.
        #[allow(dead_code, reason = "only cast to its index")]
        enum Position {
            $($variant,)+
        }

        impl Refusal {
            /// Every label, in the variants' order.
            pub const LABELS: &'static [&'static str] = &[$($label),+];

            /// The log line's `reason` and the metric's label.
            pub fn label(&self) -> &'static str {
                match self {
                    $(Refusal::$variant { .. } => $label,)+
                }
            }

            /// The answer's status; `None` for a refusal that has no answer
            /// (a connection waiting or cut).
            pub fn status(&self) -> Option<u16> {
                match self {
                    $(Refusal::$variant { .. } => $status,)+
                }
            }

            /// Its position in [`Refusal::LABELS`] (the metric's series).
            pub fn index(&self) -> usize {
                match self {
                    $(Refusal::$variant { .. } => Position::$variant as usize,)+
                }
            }
        }
    };
}

refusals! {
    /// A request body over `max_body_bytes` (413).
    BodyTooLarge { limit: usize } => "body_too_large", Some(413),
    /// A body that stalled or took too long (`[client]` body timeouts, 408).
    BodyTimeout { idle_secs: u64, total_secs: u64 } => "body_timeout", Some(408),
    /// A request target over `client.max_uri_bytes` (414); `None`: over
    /// the HTTP layer's own limit.
    UriTooLong { limit: Option<usize> } => "uri_too_long", Some(414),
    /// A request head over `client.max_header_bytes` (431).
    HeadersTooLarge { limit: usize } => "headers_too_large", Some(431),
    /// A request line or headers the HTTP layer could not parse (400).
    MalformedRequest => "malformed_request", Some(400),
    /// A client that did not read its answer in time (connection cut).
    SendTimeout => "send_timeout", None,
    /// A connection that had to wait: `client.max_connections` were open.
    ConnectionLimit => "connection_limit", None,
    /// An upstream answer over `upstream.max_answer_bytes` (502).
    UpstreamAnswerTooLarge { service: Service } => "upstream_answer_too_large", Some(502),
    /// An upstream answer that found no room in `upstream.buffer_bytes` in time (503).
    UpstreamBufferBudgetExhausted { service: Service } => "upstream_buffer_budget_exhausted", Some(503),
    /// An environment with no token beyond `new_environments_per_sec` (503).
    KeystoneNewEnvironmentRate { retry_after: u32 } => "keystone_new_environment_rate_limited", Some(503),
    /// A caller's token not in the cache beyond
    /// `caller_token_validations_per_sec` (503).
    KeystoneCallerTokenRate { retry_after: u32 } => "keystone_caller_token_rate_limited", Some(503),
    /// A list needing more than `max_pages` pages (502).
    TooManyListPages { max_pages: u32 } => "too_many_list_pages", Some(502),
    /// A caller no `[[callers]]` rule recognises (401).
    CallerNotRecognised => "caller_not_recognised", Some(401),
    /// A recognised caller its rules do not let act so (403).
    CallerNotAllowed { denial: Denial } => "caller_not_allowed", Some(403),
    /// A caller over its `[[callers]]` rule's `rate` (429).
    CallerRateLimited { retry_after: u32 } => "caller_rate_limited", Some(429),
    /// An environment over its rate (`limits.environment_rate_per_sec`, 429).
    EnvironmentRateLimited { retry_after: u32 } => "environment_rate_limited", Some(429),
    /// The replicas' rate buckets cannot be reached and `shared_cache.fail_closed` (503).
    SharedRateUnavailable => "shared_rate_unavailable", Some(503),
    /// Every slot to Glance taken and `limits.max_queued_calls` waiting (503).
    GlanceQueueFull => "glance_queue_full", Some(503),
    /// No slot to Glance within `limits.queue_timeout_ms` (503).
    GlanceQueueTimeout => "glance_queue_timeout", Some(503),
    /// The same for Keystone (503).
    KeystoneQueueFull => "keystone_queue_full", Some(503),
    KeystoneQueueTimeout => "keystone_queue_timeout", Some(503),
    /// A change while `[audit] required` and its event could not be
    /// written (the audit queue full, or the sink failing) (503).
    AuditUnavailable => "audit_unavailable", Some(503),
}

impl Refusal {
    /// What the client is told.
    pub fn message(&self) -> String {
        let queue = |service: Service| format!("too many calls to the {} at once; retry later", service.name());
        match *self {
            Refusal::BodyTooLarge { limit } => format!("request body is larger than the limit of {limit} bytes"),
            Refusal::BodyTimeout { idle_secs, total_secs } => format!(
                "the request body did not arrive in time ({idle_secs} s between two reads, {total_secs} s in all)"
            ),
            Refusal::UriTooLong { limit: Some(limit) } => {
                format!("the request target is longer than the limit of {limit} bytes")
            }
            Refusal::UriTooLong { limit: None } => "the request target is too long".to_owned(),
            Refusal::HeadersTooLarge { limit } => {
                format!("the request head is larger than the limit of {limit} bytes or has too many header fields")
            }
            Refusal::MalformedRequest => "the request line or headers are malformed".to_owned(),
            Refusal::SendTimeout => "the client read nothing of its answer in time".to_owned(),
            Refusal::ConnectionLimit => "too many connections at once".to_owned(),
            Refusal::UpstreamAnswerTooLarge { service } => format!("the {} exchange failed", service.name()),
            Refusal::UpstreamBufferBudgetExhausted { service } => format!(
                "the facade is short of memory for the {}'s answers; retry later",
                service.name()
            ),
            Refusal::KeystoneNewEnvironmentRate { .. } => {
                "too many new environments at once in this namespace; retry later".to_owned()
            }
            Refusal::KeystoneCallerTokenRate { .. } => {
                "too many new tokens at once in this namespace; retry later".to_owned()
            }
            Refusal::TooManyListPages { max_pages } => format!("the image list is longer than {max_pages} pages"),
            Refusal::CallerNotRecognised => {
                "authentication required: no credentials this service accepts were presented".to_owned()
            }
            Refusal::CallerNotAllowed { denial } => denial.message().to_owned(),
            Refusal::CallerRateLimited { .. } => "too many requests for this caller; retry later".to_owned(),
            Refusal::EnvironmentRateLimited { .. } => "too many requests for this environment; retry later".to_owned(),
            Refusal::SharedRateUnavailable => {
                "the rates shared by the replicas cannot be checked now; retry later".to_owned()
            }
            Refusal::GlanceQueueFull | Refusal::GlanceQueueTimeout => queue(Service::Image),
            Refusal::KeystoneQueueFull | Refusal::KeystoneQueueTimeout => queue(Service::Identity),
            Refusal::AuditUnavailable => {
                "changes cannot be recorded in the audit trail at the moment; retry later".to_owned()
            }
        }
    }

    /// Seconds after which a retry may be let through (`Retry-After`):
    /// what a rate computed, else 1 s for every 503 (a busy moment).
    pub fn retry_after(&self) -> Option<u32> {
        match *self {
            Refusal::KeystoneNewEnvironmentRate { retry_after }
            | Refusal::KeystoneCallerTokenRate { retry_after }
            | Refusal::CallerRateLimited { retry_after }
            | Refusal::EnvironmentRateLimited { retry_after } => Some(retry_after),
            _ => (self.status() == Some(503)).then_some(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each kind.
    const SAMPLES: &[Refusal] = &[
        Refusal::BodyTooLarge { limit: 1 },
        Refusal::BodyTimeout {
            idle_secs: 1,
            total_secs: 2,
        },
        Refusal::UriTooLong { limit: None },
        Refusal::HeadersTooLarge { limit: 1 },
        Refusal::MalformedRequest,
        Refusal::SendTimeout,
        Refusal::ConnectionLimit,
        Refusal::UpstreamAnswerTooLarge {
            service: Service::Image,
        },
        Refusal::UpstreamBufferBudgetExhausted {
            service: Service::Identity,
        },
        Refusal::KeystoneNewEnvironmentRate { retry_after: 2 },
        Refusal::KeystoneCallerTokenRate { retry_after: 2 },
        Refusal::TooManyListPages { max_pages: 3 },
        Refusal::CallerNotRecognised,
        Refusal::CallerNotAllowed {
            denial: Denial::ReadOnly,
        },
        Refusal::CallerRateLimited { retry_after: 2 },
        Refusal::EnvironmentRateLimited { retry_after: 2 },
        Refusal::SharedRateUnavailable,
        Refusal::GlanceQueueFull,
        Refusal::GlanceQueueTimeout,
        Refusal::KeystoneQueueFull,
        Refusal::KeystoneQueueTimeout,
        Refusal::AuditUnavailable,
    ];

    #[test]
    fn labels_are_distinct_and_indexes_are_their_positions() {
        assert_eq!(SAMPLES.len(), Refusal::LABELS.len());
        for (position, refusal) in SAMPLES.iter().enumerate() {
            assert_eq!(refusal.index(), position, "{refusal:?}");
            assert_eq!(Refusal::LABELS[position], refusal.label());
        }
    }

    #[test]
    fn answers_follow_from_the_refusal() {
        let environment = Refusal::EnvironmentRateLimited { retry_after: 3 };
        assert_eq!((environment.status(), environment.retry_after()), (Some(429), Some(3)));
        assert_eq!(
            environment.message(),
            "too many requests for this environment; retry later"
        );
        assert_eq!(
            Refusal::KeystoneQueueTimeout.message(),
            "too many calls to the identity service at once; retry later"
        );
        assert_eq!(
            Refusal::CallerNotAllowed {
                denial: Denial::TokenOtherProject
            }
            .message(),
            "the token is scoped to another project than X-Environment-Id"
        );
        assert_eq!(Refusal::ConnectionLimit.status(), None);
        for refusal in SAMPLES {
            if let Some(status) = refusal.status() {
                assert!((400..600).contains(&status), "{refusal:?}");
                assert!(!refusal.message().is_empty());
            }
        }
    }
}
