//! What the facade counts, served as Prometheus metrics by the admin
//! listener (`GET /metrics`, see `admin`), with the `prometheus-client`
//! crate.
//!
//! Every label set is bounded and fixed in this file: operations, status
//! classes, the Glance calls of the status tables, Keystone token request
//! kinds, outcomes, refusal reasons, and the configured namespaces (any
//! other namespace a client names is counted as [`UNKNOWN_NAMESPACE`]).
//! Never an environment id, an image id or a URL.
//!
//! The request path pays a few atomic increments: every series of a
//! namespace is created when the namespace is built (so that each is
//! exported from the start, at zero) and kept as a handle in an array
//! indexed by its labels ([`NamespaceMetrics`]); no label is formatted
//! and no map is looked up per request. Histograms are the facade's own
//! ([`DurationHistogram`]: one atomic add per observation in a bucket and
//! one to the sum), as prometheus-client's takes a lock per observation.
//! With `admin.metrics = false` the handles are empty and each update is
//! one branch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

/// The `namespace` label of requests naming no configured namespace (or none).
pub const UNKNOWN_NAMESPACE: &str = "-";

/// The media type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A closed set of label values: an enum whose variants index arrays of
/// series.
pub trait LabelValue: Copy + 'static {
    const ALL: &'static [Self];
    fn label(self) -> &'static str;
    fn index(self) -> usize;
}

macro_rules! label_values {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl LabelValue for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

label_values! {
    /// The Alliance call of a request (`none`: refused before it was known).
    Operation {
        List = "list",
        Show = "show",
        Create = "create",
        Update = "update",
        Delete = "delete",
        None = "none",
    }
}

label_values! {
    /// The class of an answer's status.
    StatusClass {
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
    UpstreamCall {
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
    UpstreamOutcome {
        Success = "success",
        /// A refusal passed to the client (400, 403, 404, 409, 413).
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
    TokenKind {
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
    TokenOutcome {
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
    TokenCacheResult {
        Hit = "hit",
        Miss = "miss",
        /// A failure kept for its short window, repeated without a call.
        CachedFailure = "cached_failure",
    }
}

label_values! {
    /// `copy_from` as it goes.
    CopyFromEvent {
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
    /// A limit refusing something; the labels are the `reason`s of the
    /// request log where there is one.
    Refusal {
        /// A request body over `max_body_bytes` (413).
        BodyTooLarge = "body_too_large",
        /// A body that stalled or took too long (`[client]` body timeouts, 408).
        BodyTimeout = "body_timeout",
        /// A request target over `client.max_uri_bytes` (414).
        UriTooLong = "uri_too_long",
        /// A request head over `client.max_header_bytes` (431).
        HeadersTooLarge = "headers_too_large",
        /// A client that did not read its answer in time (connection cut).
        SendTimeout = "send_timeout",
        /// A connection that had to wait: `client.max_connections` were open.
        ConnectionLimit = "connection_limit",
        /// An upstream answer over `upstream.max_answer_bytes` (502).
        UpstreamAnswerTooLarge = "upstream_answer_too_large",
        /// An upstream answer that found no room in `upstream.buffer_bytes` in time (503).
        UpstreamBufferBudgetExhausted = "upstream_buffer_budget_exhausted",
        /// An environment with no token beyond `new_environments_per_sec` (503).
        KeystoneNewEnvironmentRate = "keystone_new_environment_rate_limited",
        /// A caller's token not in the cache beyond
        /// `caller_token_validations_per_sec` (503).
        KeystoneCallerTokenRate = "keystone_caller_token_rate_limited",
        /// A list needing more than `max_pages` pages (502).
        TooManyListPages = "too_many_list_pages",
        /// A caller no `[[callers]]` rule recognises (401).
        CallerNotRecognised = "caller_not_recognised",
        /// A recognised caller its rules do not let act so (403).
        CallerNotAllowed = "caller_not_allowed",
        /// A caller over its `[[callers]]` rule's `rate` (429).
        CallerRateLimited = "caller_rate_limited",
        /// An environment over its rate (`limits.environment_rate_per_sec`, 429).
        EnvironmentRateLimited = "environment_rate_limited",
        /// Every slot to Glance taken and `limits.max_queued_calls` waiting (503).
        GlanceQueueFull = "glance_queue_full",
        /// No slot to Glance within `limits.queue_timeout_ms` (503).
        GlanceQueueTimeout = "glance_queue_timeout",
        /// The same for Keystone (503).
        KeystoneQueueFull = "keystone_queue_full",
        KeystoneQueueTimeout = "keystone_queue_timeout",
    }
}

impl Refusal {
    /// The refusal a request log `reason` names, if it names one (not
    /// `client_gone`, `shutdown` and the like).
    pub fn from_reason(reason: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|refusal| refusal.label() == reason)
    }
}

label_values! {
    ReloadOutcome {
        Applied = "applied",
        Refused = "refused",
    }
}

/// Histogram buckets of durations, in microseconds (0.5 ms to 30 s): a
/// proxied call takes a millisecond, a list of 100,000 images seconds.
const BUCKETS_MICROS: [u64; 15] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000, 30_000_000,
];

/// A duration histogram updated with two atomic adds: the observation's
/// bucket (counts kept per bucket, made cumulative when encoded) and the
/// sum, in microseconds. A scrape may see one without the other (the
/// count is the buckets' total): off by one observation at most.
#[derive(Debug, Clone, Default)]
pub struct DurationHistogram {
    inner: Arc<HistogramCounts>,
}

#[derive(Debug, Default)]
struct HistogramCounts {
    /// One more than the bounds: the last is `+Inf`.
    buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl DurationHistogram {
    pub fn observe(&self, duration: Duration) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_MICROS.partition_point(|&bound| bound < micros);
        self.inner.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.inner.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Observations so far (for tests and the admin's own checks).
    pub fn count(&self) -> u64 {
        self.inner
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .sum()
    }
}

impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts: Vec<u64> = self
            .inner
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        let buckets: Vec<(f64, u64)> = BUCKETS_MICROS
            .iter()
            .map(|&bound| bound as f64 / 1e6)
            .chain(std::iter::once(f64::INFINITY))
            .zip(counts.iter().copied())
            .collect();
        let sum = self.inner.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, counts.iter().sum(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

type Labels<const N: usize> = [(&'static str, String); N];
type Counters<const N: usize> = Family<Labels<N>, Counter>;
type Histograms<const N: usize> = Family<Labels<N>, DurationHistogram>;

/// Every metric family, registered once per process; the handles of
/// [`NamespaceMetrics`] point into them.
#[derive(Debug)]
struct Families {
    requests: Counters<3>,
    request_duration: Histograms<1>,
    in_flight: Gauge,
    connections_open: Gauge,
    connections_accepted: Counter,
    upstream_requests: Counters<3>,
    upstream_duration: Histograms<2>,
    token_requests: Counters<3>,
    token_cache: Counters<2>,
    list_images: Counters<1>,
    list_aborted: Counters<1>,
    copy_from: Counters<2>,
    fallback_bytes: Counters<1>,
    refused: Counters<2>,
    reloads: Counters<1>,
}

/// The process's metrics: the registry that `GET /metrics` encodes, and
/// the series that are not per namespace. Cheap to clone (one `Arc`);
/// [`Metrics::disabled`] records nothing.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Option<Arc<Registered>>,
}

struct Registered {
    registry: Registry,
    families: Families,
    request_duration: Vec<DurationHistogram>,
    reloads: Vec<Counter>,
    /// The series of requests naming no configured namespace.
    unknown_namespace: NamespaceMetrics,
}

impl Metrics {
    /// Metrics registered under `alliance_glance_`, with a build info
    /// series naming `version` and `commit`.
    pub fn new(version: &str, commit: &str) -> Self {
        let families = Families {
            requests: Counters::default(),
            request_duration: Histograms::default(),
            in_flight: Gauge::default(),
            connections_open: Gauge::default(),
            connections_accepted: Counter::default(),
            upstream_requests: Counters::default(),
            upstream_duration: Histograms::default(),
            token_requests: Counters::default(),
            token_cache: Counters::default(),
            list_images: Counters::default(),
            list_aborted: Counters::default(),
            copy_from: Counters::default(),
            fallback_bytes: Counters::default(),
            refused: Counters::default(),
            reloads: Counters::default(),
        };
        let mut registry = Registry::with_prefix("alliance_glance");
        let f = &families;
        registry.register(
            "build",
            "The running binary: its version and the commit it was built from",
            Info::new(vec![("version", version.to_owned()), ("commit", commit.to_owned())]),
        );
        registry.register(
            "requests",
            "Alliance requests answered, by operation, namespace and status class",
            f.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival to the last byte of its answer, by operation",
            Unit::Seconds,
            f.request_duration.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Alliance requests being served",
            f.in_flight.clone(),
        );
        registry.register(
            "connections_open",
            "Client connections open on the Alliance listener",
            f.connections_open.clone(),
        );
        registry.register(
            "connections_accepted",
            "Client connections accepted on the Alliance listener",
            f.connections_accepted.clone(),
        );
        registry.register(
            "upstream_requests",
            "Calls to Glance, by namespace, call (as in its status table) and outcome",
            f.upstream_requests.clone(),
        );
        registry.register_with_unit(
            "upstream_request_duration",
            "Time of each call to Glance, by namespace and call",
            Unit::Seconds,
            f.upstream_duration.clone(),
        );
        registry.register(
            "keystone_token_requests",
            "Token requests to Keystone, by namespace, kind and outcome",
            f.token_requests.clone(),
        );
        registry.register(
            "token_cache_lookups",
            "Look-ups in the per-environment token cache, by namespace and result",
            f.token_cache.clone(),
        );
        registry.register(
            "list_images_streamed",
            "Images written into list answers, by namespace",
            f.list_images.clone(),
        );
        registry.register(
            "list_streams_aborted",
            "List answers cut off after their first page because a later page failed, by namespace",
            f.list_aborted.clone(),
        );
        registry.register(
            "copy_from_events",
            "copy_from imports started and refused, images reported killed, facade-side transfers, by namespace",
            f.copy_from.clone(),
        );
        registry.register_with_unit(
            "copy_from_fallback",
            "Bytes moved by facade-side copy_from transfers, by namespace",
            Unit::Bytes,
            f.fallback_bytes.clone(),
        );
        registry.register(
            "refused",
            "Requests and answers refused by a limit, by namespace and reason",
            f.refused.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads (SIGHUP), applied or refused",
            f.reloads.clone(),
        );
        let request_duration = Operation::ALL
            .iter()
            .map(|operation| {
                f.request_duration
                    .get_or_create_owned(&[("operation", operation.label().to_owned())])
            })
            .collect();
        let reloads = ReloadOutcome::ALL
            .iter()
            .map(|outcome| {
                f.reloads
                    .get_or_create_owned(&[("outcome", outcome.label().to_owned())])
            })
            .collect();
        let mut registered = Registered {
            registry,
            families,
            request_duration,
            reloads,
            unknown_namespace: NamespaceMetrics::default(),
        };
        registered.unknown_namespace = NamespaceMetrics::create(&registered, UNKNOWN_NAMESPACE);
        Metrics {
            inner: Some(Arc::new(registered)),
        }
    }

    /// Metrics that record nothing (`admin.metrics = false`).
    pub fn disabled() -> Self {
        Metrics { inner: None }
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The handles of one configured namespace (its series created now, at zero).
    pub fn namespace(&self, name: &str) -> NamespaceMetrics {
        self.inner
            .as_ref()
            .map(|registered| NamespaceMetrics::create(registered, name))
            .unwrap_or_default()
    }

    /// The handles for requests naming no configured namespace.
    pub fn unknown_namespace(&self) -> NamespaceMetrics {
        self.inner
            .as_ref()
            .map(|registered| registered.unknown_namespace.clone())
            .unwrap_or_default()
    }

    /// A request has arrived.
    pub fn request_started(&self) {
        if let Some(registered) = &self.inner {
            registered.families.in_flight.inc();
        }
    }

    /// A request's answer is done (sent, or abandoned by the client).
    pub fn request_ended(&self, namespace: &NamespaceMetrics, operation: Operation, status: u16, took: Duration) {
        if let Some(registered) = &self.inner {
            registered.families.in_flight.dec();
            registered.request_duration[operation.index()].observe(took);
            namespace.request(operation, StatusClass::of(status));
        }
    }

    pub fn connection_opened(&self) {
        if let Some(registered) = &self.inner {
            registered.families.connections_open.inc();
            registered.families.connections_accepted.inc();
        }
    }

    pub fn connection_closed(&self) {
        if let Some(registered) = &self.inner {
            registered.families.connections_open.dec();
        }
    }

    /// A limit refused something no namespace is known for (a connection).
    pub fn refused(&self, reason: Refusal) {
        if let Some(registered) = &self.inner {
            registered.unknown_namespace.refused(reason);
        }
    }

    pub fn reload(&self, outcome: ReloadOutcome) {
        if let Some(registered) = &self.inner {
            registered.reloads[outcome.index()].inc();
        }
    }

    /// The OpenMetrics text of every series; `None` when disabled.
    pub fn encode(&self) -> Option<String> {
        let registered = self.inner.as_ref()?;
        let mut text = String::with_capacity(64 * 1024);
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut text, &registered.registry).ok()?;
        Some(text)
    }
}

/// The series of one namespace, as handles indexed by their labels. Cheap
/// to clone (one `Arc`); the default records nothing.
#[derive(Clone, Default)]
pub struct NamespaceMetrics {
    inner: Option<Arc<NamespaceSeries>>,
}

struct NamespaceSeries {
    /// `[operation][status class]`.
    requests: Vec<Vec<Counter>>,
    /// `[call][outcome]`.
    upstream_requests: Vec<Vec<Counter>>,
    upstream_duration: Vec<DurationHistogram>,
    /// `[kind][outcome]`.
    token_requests: Vec<Vec<Counter>>,
    token_cache: Vec<Counter>,
    list_images: Counter,
    list_aborted: Counter,
    copy_from: Vec<Counter>,
    fallback_bytes: Counter,
    refused: Vec<Counter>,
}

/// Every combination of `A` and `B`'s values, as series of `family` with
/// the namespace label first.
fn grid<A: LabelValue, B: LabelValue>(
    family: &Counters<3>,
    namespace: &str,
    names: [&'static str; 2],
) -> Vec<Vec<Counter>> {
    A::ALL
        .iter()
        .map(|a| {
            B::ALL
                .iter()
                .map(|b| {
                    family.get_or_create_owned(&[
                        ("namespace", namespace.to_owned()),
                        (names[0], a.label().to_owned()),
                        (names[1], b.label().to_owned()),
                    ])
                })
                .collect()
        })
        .collect()
}

fn by_namespace(family: &Counters<1>, namespace: &str) -> Counter {
    family.get_or_create_owned(&[("namespace", namespace.to_owned())])
}

impl NamespaceMetrics {
    fn create(registered: &Registered, namespace: &str) -> Self {
        let f = &registered.families;
        let series = NamespaceSeries {
            requests: grid::<Operation, StatusClass>(&f.requests, namespace, ["operation", "status_class"]),
            upstream_requests: grid::<UpstreamCall, UpstreamOutcome>(
                &f.upstream_requests,
                namespace,
                ["call", "outcome"],
            ),
            upstream_duration: UpstreamCall::ALL
                .iter()
                .map(|call| {
                    f.upstream_duration
                        .get_or_create_owned(&[("namespace", namespace.to_owned()), ("call", call.label().to_owned())])
                })
                .collect(),
            token_requests: grid::<TokenKind, TokenOutcome>(&f.token_requests, namespace, ["kind", "outcome"]),
            token_cache: TokenCacheResult::ALL
                .iter()
                .map(|result| {
                    f.token_cache.get_or_create_owned(&[
                        ("namespace", namespace.to_owned()),
                        ("result", result.label().to_owned()),
                    ])
                })
                .collect(),
            list_images: by_namespace(&f.list_images, namespace),
            list_aborted: by_namespace(&f.list_aborted, namespace),
            copy_from: CopyFromEvent::ALL
                .iter()
                .map(|event| {
                    f.copy_from.get_or_create_owned(&[
                        ("namespace", namespace.to_owned()),
                        ("event", event.label().to_owned()),
                    ])
                })
                .collect(),
            fallback_bytes: by_namespace(&f.fallback_bytes, namespace),
            refused: Refusal::ALL
                .iter()
                .map(|reason| {
                    f.refused.get_or_create_owned(&[
                        ("namespace", namespace.to_owned()),
                        ("reason", reason.label().to_owned()),
                    ])
                })
                .collect(),
        };
        NamespaceMetrics {
            inner: Some(Arc::new(series)),
        }
    }

    fn request(&self, operation: Operation, class: StatusClass) {
        if let Some(series) = &self.inner {
            series.requests[operation.index()][class.index()].inc();
        }
    }

    /// One call to Glance and how it ended.
    pub fn upstream(&self, call: UpstreamCall, outcome: UpstreamOutcome, took: Duration) {
        if let Some(series) = &self.inner {
            series.upstream_duration[call.index()].observe(took);
            series.upstream_requests[call.index()][outcome.index()].inc();
        }
    }

    pub fn token_request(&self, kind: TokenKind, outcome: TokenOutcome) {
        if let Some(series) = &self.inner {
            series.token_requests[kind.index()][outcome.index()].inc();
        }
    }

    pub fn token_cache(&self, result: TokenCacheResult) {
        if let Some(series) = &self.inner {
            series.token_cache[result.index()].inc();
        }
    }

    pub fn list_images(&self, count: u64) {
        if let Some(series) = &self.inner {
            series.list_images.inc_by(count);
        }
    }

    pub fn list_aborted(&self) {
        if let Some(series) = &self.inner {
            series.list_aborted.inc();
        }
    }

    pub fn copy_from(&self, event: CopyFromEvent) {
        if let Some(series) = &self.inner {
            series.copy_from[event.index()].inc();
        }
    }

    pub fn fallback_bytes(&self, bytes: u64) {
        if let Some(series) = &self.inner {
            series.fallback_bytes.inc_by(bytes);
        }
    }

    /// A limit refused something while serving this namespace.
    pub fn refused(&self, reason: Refusal) {
        if let Some(series) = &self.inner {
            series.refused[reason.index()].inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_hold_their_bounds() {
        let histogram = DurationHistogram::default();
        for micros in [0, 500, 501, 30_000_000, 30_000_001, u64::MAX] {
            histogram.observe(Duration::from_micros(micros));
        }
        let counts: Vec<u64> = histogram
            .inner
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        // 0 and 500 in the first bucket (le 0.0005), 501 in the second,
        // 30 s in the last bound, the rest in +Inf.
        assert_eq!(counts[0], 2);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[BUCKETS_MICROS.len() - 1], 1);
        assert_eq!(counts[BUCKETS_MICROS.len()], 2);
        assert_eq!(histogram.count(), 6);
    }

    #[test]
    fn status_classes() {
        assert_eq!(StatusClass::of(200).label(), "2xx");
        assert_eq!(StatusClass::of(404).label(), "4xx");
        assert_eq!(StatusClass::of(503).label(), "5xx");
        assert_eq!(StatusClass::of(100).label(), "1xx");
        assert_eq!(StatusClass::of(302).label(), "3xx");
    }

    #[test]
    fn label_indexes_are_positions() {
        fn check<L: LabelValue>() {
            for (position, value) in L::ALL.iter().enumerate() {
                assert_eq!(value.index(), position);
            }
        }
        check::<Operation>();
        check::<StatusClass>();
        check::<UpstreamCall>();
        check::<UpstreamOutcome>();
        check::<TokenKind>();
        check::<TokenOutcome>();
        check::<TokenCacheResult>();
        check::<CopyFromEvent>();
        check::<Refusal>();
        check::<ReloadOutcome>();
    }

    #[test]
    fn log_reasons_name_their_refusals() {
        assert_eq!(Refusal::from_reason("body_timeout"), Some(Refusal::BodyTimeout));
        assert_eq!(
            Refusal::from_reason("headers_too_large"),
            Some(Refusal::HeadersTooLarge)
        );
        assert_eq!(Refusal::from_reason("client_gone"), None);
        assert_eq!(Refusal::from_reason("shutdown"), None);
    }

    #[test]
    fn disabled_metrics_record_and_export_nothing() {
        let metrics = Metrics::disabled();
        metrics.request_started();
        metrics.namespace("x").upstream(
            UpstreamCall::GetImage,
            UpstreamOutcome::Success,
            Duration::from_millis(1),
        );
        assert!(metrics.encode().is_none());
    }
}
