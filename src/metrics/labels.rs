//! The labels of the metrics: each label a closed set of values (a
//! fieldless enum, or a type of its own such as [`Operation`] and
//! [`Refusal`]), and each metric's labels a tuple of them ([`LabelSet`]).

use crate::operation::Operation;
use crate::refusal::Refusal;

/// A closed set of label values, indexing vectors of series.
pub trait LabelValue: Copy {
    /// The label's name.
    const NAME: &'static str;
    /// Every value, by index.
    const LABELS: &'static [&'static str];
    fn index(self) -> usize;

    fn label(self) -> &'static str {
        Self::LABELS.get(self.index()).copied().unwrap_or_default()
    }
}

/// A fieldless enum whose variants are the values of one label.
macro_rules! label_values {
    ($(#[$meta:meta])* $name:ident = $label:literal { $($(#[$vmeta:meta])* $variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl LabelValue for $name {
            const NAME: &'static str = $label;
            const LABELS: &'static [&'static str] = &[$($value),+];
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

/// The Alliance call of a request (`none`: refused before it was known).
impl LabelValue for Option<Operation> {
    const NAME: &'static str = "operation";
    const LABELS: &'static [&'static str] = &{
        let mut labels = ["none"; Operation::ALL.len() + 1];
        let mut index = 0;
        while index < Operation::ALL.len() {
            labels[index] = Operation::ALL[index].label();
            index += 1;
        }
        labels
    };
    fn index(self) -> usize {
        self.map_or(Operation::ALL.len(), |operation| operation as usize)
    }
}

/// Why a limit or a caller rule refused.
impl LabelValue for Refusal {
    const NAME: &'static str = "reason";
    const LABELS: &'static [&'static str] = Refusal::LABELS;
    fn index(self) -> usize {
        Refusal::index(&self)
    }
}

label_values! {
    /// The class of an answer's status.
    StatusClass = "status_class" {
        Informational = "1xx",
        Success = "2xx",
        Redirection = "3xx",
        ClientError = "4xx",
        ServerError = "5xx",
    }
}

impl StatusClass {
    pub fn of(status: u16) -> Self {
        match status {
            ..200 => StatusClass::Informational,
            200..300 => StatusClass::Success,
            300..400 => StatusClass::Redirection,
            400..500 => StatusClass::ClientError,
            _ => StatusClass::ServerError,
        }
    }
}

label_values! {
    /// Every Glance call the facade makes, named as in its status table
    /// (`upstream::glance`), and the readiness probe's healthcheck.
    UpstreamCall = "call" {
        GetImage = "GET /v2/images/{id}",
        ListImages = "GET /v2/images",
        CreateImage = "POST /v2/images",
        PatchImage = "PATCH /v2/images/{id}",
        DeleteImage = "DELETE /v2/images/{id}",
        ImportImage = "POST /v2/images/{id}/import",
        GetMember = "GET /v2/images/{id}/members/{member}",
        GetTasks = "GET /v2/images/{id}/tasks",
        InfoImport = "GET /v2/info/import",
        UploadData = "PUT /v2/images/{id}/file",
        Healthcheck = "GET /healthcheck",
    }
}

label_values! {
    /// How an upstream call ended: by its status table's row, or without an
    /// HTTP answer.
    UpstreamOutcome = "outcome" {
        Success = "success",
        /// A refusal passed to the client (400, 403, 404, 409, 413), or a "no".
        Refused = "refused",
        /// 401: the facade's own credentials.
        CredentialsRejected = "credentials_rejected",
        /// A status outside the table (502 for the client).
        Unexpected = "unexpected_status",
        Unreachable = "unreachable",
        Timeout = "timeout",
        /// Reset, unreadable, too large.
        Failed = "failed",
    }
}

label_values! {
    /// The Keystone token requests the facade makes.
    TokenKind = "kind" {
        /// A password authentication scoped to an environment.
        PasswordScoped = "password_scoped",
        /// The service user's unscoped token (re-scoped per environment).
        PasswordUnscoped = "password_unscoped",
        Rescope = "rescope",
        ApplicationCredential = "application_credential",
        /// The unscoped token's validation of itself, after a refused re-scope.
        Validate = "validate",
        /// A `keystone_token` caller's token, validated with the service
        /// project's token (once per `caller_token_cache_secs`).
        CallerToken = "caller_token",
    }
}

label_values! {
    TokenOutcome = "outcome" {
        Issued = "issued",
        /// 401 (credentials or scope refused).
        Unauthorized = "unauthorized",
        /// 404 (the token to re-scope is gone).
        NotFound = "not_found",
        /// Anything else: unreachable, timeout, 5xx, an unusable answer.
        Failed = "failed",
    }
}

label_values! {
    /// A look-up in the per-environment token cache.
    TokenCacheResult = "result" {
        Hit = "hit",
        Miss = "miss",
        /// A failure kept for its short window, repeated without a call.
        CachedFailure = "cached_failure",
    }
}

label_values! {
    /// `copy_from` as it goes.
    CopyFromEvent = "event" {
        /// Glance accepted the web-download import.
        ImportStarted = "import_started",
        /// Glance refused the import; the image just created was deleted.
        ImportRefused = "import_refused",
        /// An image shown `killed` (its import failed); counted each time
        /// it is shown, as the facade keeps no state.
        ReportedKilled = "reported_killed",
        FallbackStarted = "fallback_started",
        FallbackSucceeded = "fallback_succeeded",
        FallbackFailed = "fallback_failed",
    }
}

label_values! {
    /// What the shared cache in memcached did.
    SharedCacheEvent = "event" {
        /// An entry found and opened.
        Hit = "hit",
        Miss = "miss",
        Stored = "stored",
        /// memcached failed or did not answer in time.
        Error = "error",
        /// The in-process state (or a fetch of its own) served instead.
        Fallback = "fallback",
        /// An entry that did not open (another secret, or changed): ignored.
        Rejected = "rejected",
    }
}

label_values! {
    /// What became of an audit event (`audit`).
    AuditOutcome = "outcome" {
        /// Appended to every configured sink.
        Written = "written",
        /// Not queued: the queue was full (the sink not keeping up).
        QueueFull = "queue_full",
        /// Given up: the sink refused it (without `required`).
        WriteFailed = "write_failed",
    }
}

label_values! {
    ReloadOutcome = "outcome" {
        Applied = "applied",
        Refused = "refused",
    }
}

/// The labels of a metric after `namespace`: none, or a tuple of label
/// types; each combination is one series.
pub trait LabelSet: Copy {
    const COUNT: usize;
    fn index(self) -> usize;
    /// The names and values of combination `index`.
    fn labels(index: usize) -> Vec<(&'static str, String)>;
}

impl LabelSet for () {
    const COUNT: usize = 1;
    fn index(self) -> usize {
        0
    }
    fn labels(_: usize) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

impl<A: LabelValue> LabelSet for (A,) {
    const COUNT: usize = A::LABELS.len();
    fn index(self) -> usize {
        self.0.index()
    }
    fn labels(index: usize) -> Vec<(&'static str, String)> {
        vec![(A::NAME, A::LABELS[index].to_owned())]
    }
}

impl<A: LabelValue, B: LabelValue> LabelSet for (A, B) {
    const COUNT: usize = A::LABELS.len() * B::LABELS.len();
    fn index(self) -> usize {
        self.0.index() * B::LABELS.len() + self.1.index()
    }
    fn labels(index: usize) -> Vec<(&'static str, String)> {
        let width = B::LABELS.len();
        vec![
            (A::NAME, A::LABELS[index / width].to_owned()),
            (B::NAME, B::LABELS[index % width].to_owned()),
        ]
    }
}
