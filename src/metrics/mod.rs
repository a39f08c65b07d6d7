//! What the facade counts, served as Prometheus metrics by the admin
//! listener (`GET /metrics`, see `admin`), with the `prometheus-client`
//! crate.
//!
//! Every label set is bounded and fixed: operations, status classes, the
//! Glance calls of the status tables, Keystone token request kinds,
//! outcomes, refusals, and the configured namespaces (any other namespace a
//! client names is counted as [`UNKNOWN_NAMESPACE`]). Never an environment
//! id, an image id or a URL.
//!
//! Each metric is one line of [`families!`] below: its field, type, label
//! types, name and help. The request path pays a few atomic increments:
//! every series of a namespace is created when the namespace is built (so
//! that each is exported from the start, at zero) and kept as a handle in
//! a vector indexed by its labels ([`Series`]); no label is formatted and
//! no map is looked up per request. Histograms are the facade's own
//! ([`DurationHistogram`]: one atomic add per observation in a bucket and
//! one to the sum), as prometheus-client's takes a lock per observation.
//! With `admin.metrics = false` the handles are empty and each update is
//! one branch.

use std::marker::PhantomData;
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

mod labels;

pub use labels::*;

use crate::operation::Operation;
use crate::refusal::Refusal;

/// The `namespace` label of requests naming no configured namespace (or none).
pub const UNKNOWN_NAMESPACE: &str = "-";

/// The media type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

/// Every series of one metric for one namespace (or the process), created
/// at zero, indexed by its labels.
struct Series<M, L> {
    all: Vec<M>,
    labels: PhantomData<L>,
}

impl<M: Clone, L: LabelSet> Series<M, L> {
    fn create<C: prometheus_client::metrics::family::MetricConstructor<M>>(
        family: &Family<Labels, M, C>,
        namespace: Option<&str>,
    ) -> Self {
        let all = (0..L::COUNT)
            .map(|index| {
                let mut labels: Labels = namespace
                    .map(|namespace| ("namespace", namespace.to_owned()))
                    .into_iter()
                    .collect();
                labels.extend(L::labels(index));
                family.get_or_create_owned(&labels)
            })
            .collect();
        Series {
            all,
            labels: PhantomData,
        }
    }

    fn get(&self, labels: L) -> Option<&M> {
        self.all.get(labels.index())
    }
}

/// Declares a set of metric families, one line each - field, type, label
/// types (after `namespace` where there is one), name, unit, help - their
/// registration, and the handles of their series.
macro_rules! families {
    ($families:ident / $handles:ident { $($field:ident: $metric:ident<$labels:ty> = $name:literal $(in $unit:ident)?, $help:literal;)+ }) => {
        struct $families {
            $($field: Family<Labels, $metric>,)+
        }

        impl $families {
            fn register(registry: &mut Registry) -> Self {
                let families = $families { $($field: Family::default(),)+ };
                $(register(registry, $name, $help, unit!($($unit)?), families.$field.clone());)+
                families
            }
        }

        struct $handles {
            $($field: Series<$metric, $labels>,)+
        }

        impl $handles {
            fn create(families: &$families, namespace: Option<&str>) -> Self {
                $handles { $($field: Series::create(&families.$field, namespace),)+ }
            }
        }
    };
}

macro_rules! unit {
    () => {
        None
    };
    ($unit:ident) => {
        Some(Unit::$unit)
    };
}

fn register<M: prometheus_client::registry::Metric>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    metric: M,
) {
    match unit {
        Some(unit) => registry.register_with_unit(name, help, unit, metric),
        None => registry.register(name, help, metric),
    }
}

families! {
    ProcessFamilies / ProcessSeries {
        request_duration: DurationHistogram<(Option<Operation>,)> = "request_duration" in Seconds,
            "Time from a request's arrival to the last byte of its answer, by operation";
        in_flight: Gauge<()> = "requests_in_flight", "Alliance requests being served";
        connections_open: Gauge<()> = "connections_open", "Client connections open on the Alliance listener";
        connections_accepted: Counter<()> = "connections_accepted",
            "Client connections accepted on the Alliance listener";
        reloads: Counter<(ReloadOutcome,)> = "config_reloads", "Configuration reloads (SIGHUP), applied or refused";
        shared_cache: Counter<(SharedCacheEvent,)> = "shared_cache_events",
            "What the cache shared with the other replicas in memcached did: hits, misses, stores, errors, fallbacks, rejected entries";
        audit_events: Counter<(AuditOutcome,)> = "audit_events", "Audit events written, dropped (queue full) or given up (sink failed)";
    }
}

families! {
    NamespaceFamilies / NamespaceSeries {
        requests: Counter<(Option<Operation>, StatusClass)> = "requests",
            "Alliance requests answered, by operation, namespace and status class";
        upstream_requests: Counter<(UpstreamCall, UpstreamOutcome)> = "upstream_requests",
            "Calls to Glance, by namespace, call (as in its status table) and outcome";
        upstream_duration: DurationHistogram<(UpstreamCall,)> = "upstream_request_duration" in Seconds,
            "Time of each call to Glance, by namespace and call";
        token_requests: Counter<(TokenKind, TokenOutcome)> = "keystone_token_requests",
            "Token requests to Keystone, by namespace, kind and outcome";
        token_cache: Counter<(TokenCacheResult,)> = "token_cache_lookups",
            "Look-ups in the per-environment token cache, by namespace and result";
        list_images: Counter<()> = "list_images_streamed", "Images written into list answers, by namespace";
        list_aborted: Counter<()> = "list_streams_aborted",
            "List answers cut off after their first page because a later page failed, by namespace";
        copy_from: Counter<(CopyFromEvent,)> = "copy_from_events",
            "copy_from imports started and refused, images reported killed, facade-side transfers, by namespace";
        fallback_bytes: Counter<()> = "copy_from_fallback" in Bytes,
            "Bytes moved by facade-side copy_from transfers, by namespace";
        refused: Counter<(Refusal,)> = "refused",
            "Requests and answers refused by a limit or a caller rule, by namespace and reason";
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

/// The process's metrics: the registry that `GET /metrics` encodes, and
/// the series that are not per namespace. Cheap to clone (one `Arc`);
/// [`Metrics::disabled`] records nothing.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Option<Arc<Registered>>,
}

struct Registered {
    registry: Registry,
    namespace_families: NamespaceFamilies,
    process: ProcessSeries,
    /// The series of requests naming no configured namespace.
    unknown_namespace: NamespaceMetrics,
}

impl Metrics {
    /// Metrics registered under `alliance_glance_`, with a build info
    /// series naming `version` and `commit`.
    pub fn new(version: &str, commit: &str) -> Self {
        let mut registry = Registry::with_prefix("alliance_glance");
        registry.register(
            "build",
            "The running binary: its version and the commit it was built from",
            Info::new(vec![("version", version.to_owned()), ("commit", commit.to_owned())]),
        );
        let process = ProcessSeries::create(&ProcessFamilies::register(&mut registry), None);
        let namespace_families = NamespaceFamilies::register(&mut registry);
        let unknown_namespace = NamespaceMetrics::create(&namespace_families, UNKNOWN_NAMESPACE);
        Metrics {
            inner: Some(Arc::new(Registered {
                registry,
                namespace_families,
                process,
                unknown_namespace,
            })),
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
            .map(|registered| NamespaceMetrics::create(&registered.namespace_families, name))
            .unwrap_or_default()
    }

    /// The handles for requests naming no configured namespace.
    pub fn unknown_namespace(&self) -> NamespaceMetrics {
        self.inner
            .as_ref()
            .map(|registered| registered.unknown_namespace.clone())
            .unwrap_or_default()
    }

    fn process(&self) -> Option<&ProcessSeries> {
        self.inner.as_ref().map(|registered| &registered.process)
    }

    /// A request has arrived.
    pub fn request_started(&self) {
        if let Some(gauge) = self.process().and_then(|process| process.in_flight.get(())) {
            gauge.inc();
        }
    }

    /// A request's answer is done (sent, or abandoned by the client);
    /// `operation` is `None` when the request was refused before it was known.
    pub fn request_ended(
        &self,
        namespace: &NamespaceMetrics,
        operation: Option<Operation>,
        status: u16,
        took: Duration,
    ) {
        if let Some(process) = self.process() {
            if let Some(gauge) = process.in_flight.get(()) {
                gauge.dec();
            }
            if let Some(histogram) = process.request_duration.get((operation,)) {
                histogram.observe(took);
            }
            namespace.request(operation, StatusClass::of(status));
        }
    }

    pub fn connection_opened(&self) {
        if let Some(process) = self.process() {
            if let Some(gauge) = process.connections_open.get(()) {
                gauge.inc();
            }
            if let Some(counter) = process.connections_accepted.get(()) {
                counter.inc();
            }
        }
    }

    pub fn connection_closed(&self) {
        if let Some(gauge) = self.process().and_then(|process| process.connections_open.get(())) {
            gauge.dec();
        }
    }

    /// A limit refused something no namespace is known for (a connection).
    pub fn refused(&self, refusal: Refusal) {
        if let Some(registered) = &self.inner {
            registered.unknown_namespace.refused(refusal);
        }
    }

    pub fn shared_cache(&self, event: SharedCacheEvent) {
        if let Some(counter) = self.process().and_then(|process| process.shared_cache.get((event,))) {
            counter.inc();
        }
    }

    pub fn reload(&self, outcome: ReloadOutcome) {
        if let Some(counter) = self.process().and_then(|process| process.reloads.get((outcome,))) {
            counter.inc();
        }
    }

    pub fn audit_events(&self, outcome: AuditOutcome, count: u64) {
        if let Some(counter) = self.process().and_then(|process| process.audit_events.get((outcome,))) {
            counter.inc_by(count);
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

impl NamespaceMetrics {
    fn create(families: &NamespaceFamilies, namespace: &str) -> Self {
        NamespaceMetrics {
            inner: Some(Arc::new(NamespaceSeries::create(families, Some(namespace)))),
        }
    }

    fn request(&self, operation: Option<Operation>, class: StatusClass) {
        if let Some(counter) = self.series().and_then(|series| series.requests.get((operation, class))) {
            counter.inc();
        }
    }

    fn series(&self) -> Option<&NamespaceSeries> {
        self.inner.as_deref()
    }

    /// One call to Glance and how it ended.
    pub fn upstream(&self, call: UpstreamCall, outcome: UpstreamOutcome, took: Duration) {
        if let Some(series) = self.series() {
            if let Some(histogram) = series.upstream_duration.get((call,)) {
                histogram.observe(took);
            }
            if let Some(counter) = series.upstream_requests.get((call, outcome)) {
                counter.inc();
            }
        }
    }

    pub fn token_request(&self, kind: TokenKind, outcome: TokenOutcome) {
        if let Some(counter) = self
            .series()
            .and_then(|series| series.token_requests.get((kind, outcome)))
        {
            counter.inc();
        }
    }

    pub fn token_cache(&self, result: TokenCacheResult) {
        if let Some(counter) = self.series().and_then(|series| series.token_cache.get((result,))) {
            counter.inc();
        }
    }

    pub fn list_images(&self, count: u64) {
        if let Some(counter) = self.series().and_then(|series| series.list_images.get(())) {
            counter.inc_by(count);
        }
    }

    pub fn list_aborted(&self) {
        if let Some(counter) = self.series().and_then(|series| series.list_aborted.get(())) {
            counter.inc();
        }
    }

    pub fn copy_from(&self, event: CopyFromEvent) {
        if let Some(counter) = self.series().and_then(|series| series.copy_from.get((event,))) {
            counter.inc();
        }
    }

    pub fn fallback_bytes(&self, bytes: u64) {
        if let Some(counter) = self.series().and_then(|series| series.fallback_bytes.get(())) {
            counter.inc_by(bytes);
        }
    }

    /// A limit or a caller rule refused something while serving this namespace.
    pub fn refused(&self, refusal: Refusal) {
        if let Some(counter) = self.series().and_then(|series| series.refused.get((refusal,))) {
            counter.inc();
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
    fn label_sets_cover_every_combination_once() {
        fn check<L: LabelSet>() {
            let mut seen = std::collections::BTreeSet::new();
            for index in 0..L::COUNT {
                assert!(seen.insert(L::labels(index)));
            }
        }
        check::<(Option<Operation>, StatusClass)>();
        check::<(UpstreamCall, UpstreamOutcome)>();
        check::<(TokenKind, TokenOutcome)>();
        check::<(Refusal,)>();
        check::<()>();
        assert_eq!(
            (Some(Operation::Delete), StatusClass::ServerError).index(),
            <(Option<Operation>, StatusClass)>::COUNT - 5 - 1
        );
        assert_eq!(None::<Operation>.label(), "none");
        assert_eq!(
            Refusal::CallerRateLimited { retry_after: 3 }.label(),
            "caller_rate_limited"
        );
    }

    #[test]
    fn every_series_is_exported_at_zero() {
        let metrics = Metrics::new("1", "c");
        metrics.namespace("ccsr1").refused(Refusal::GlanceQueueFull);
        metrics.request_started();
        let text = metrics.encode().unwrap();
        assert!(text.contains("alliance_glance_requests_in_flight 1\n"), "{text}");
        assert!(text.contains("alliance_glance_refused_total{namespace=\"ccsr1\",reason=\"glance_queue_full\"} 1\n"));
        assert!(text.contains("alliance_glance_refused_total{namespace=\"-\",reason=\"connection_limit\"} 0\n"));
        assert!(text.contains(
            "alliance_glance_requests_total{namespace=\"ccsr1\",operation=\"none\",status_class=\"5xx\"} 0\n"
        ));
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
