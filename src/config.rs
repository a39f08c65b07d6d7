//! Configuration file (TOML). See `config/alliance-glance.example.toml` for a
//! commented example; every field here is documented there too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use url::Url;

use crate::ids;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the Alliance API is served. Loopback by default: without
    /// `callers`, whoever reaches it acts as any environment.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// A `listen` address beyond loopback is refused unless the listener has
    /// TLS and `callers`, or this says that the openness is meant (a warning
    /// is logged at start).
    #[serde(default)]
    pub allow_open: bool,
    /// Larger request bodies are refused with 413 before they are read.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How long in-flight requests may run on after SIGTERM or Ctrl-C.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// What a client of the Alliance API may take: connections, time, head
    /// sizes (`[client]`).
    #[serde(default)]
    pub client: ClientLimits,
    /// Memory for upstream answers (`[upstream]`).
    #[serde(default)]
    pub upstream: UpstreamLimits,
    /// The admin listener: metrics, liveness, readiness.
    #[serde(default)]
    pub admin: AdminConfig,
    /// TLS on the Alliance listener (`[tls]`); plain HTTP without it.
    pub tls: Option<TlsConfig>,
    /// Who may call, and as which namespaces and environments (`[[callers]]`,
    /// checked by `callers`). None: anyone who reaches the listener.
    #[serde(default)]
    pub callers: Vec<CallerConfig>,
    /// Clouds, by the name clients put in `X-Target-Ns`.
    pub namespaces: BTreeMap<String, NamespaceConfig>,
}
/// The listener's certificate and key, and client certificates (`[tls]`).
/// The files are read at start and again on SIGHUP (see `tls`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the server certificate first, then the intermediates.
    pub cert_chain_file: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM: the CAs whose client certificates `client_cert_name` callers
    /// are recognised by.
    pub client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// A connection that has not finished its handshake after this is closed.
    #[serde(default = "default_handshake_timeout_secs")]
    pub handshake_timeout_secs: u64,
}

/// Whether the listener asks clients for a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    None,
    /// Asked for; a client without one still connects (and is recognised
    /// otherwise, or refused with 401).
    Request,
    /// A client without a certificate fails the handshake.
    Require,
}

/// One `[[callers]]` rule: how the caller is recognised (exactly one of the
/// identity fields) and what it may act on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerConfig {
    /// Names the rule in logs.
    pub name: String,
    /// The SHA-256 fingerprint of the client certificate (hex, colons allowed).
    pub client_cert_sha256: Option<String>,
    /// A subject CN or SAN DNS name of a client certificate issued by
    /// `tls.client_ca_file`.
    pub client_cert_name: Option<String>,
    /// Source addresses.
    pub source_cidrs: Option<Vec<IpNet>>,
    /// `Authorization: Bearer <secret>`, held as `sha256:<salt>:<digest>`
    /// (`alliance-glance hash-secret` writes it).
    pub bearer_secret_sha256: Option<String>,
    /// `Authorization: Bearer <secret>`, the secret being the first line of
    /// this file (hashed when read; only the hash is kept).
    pub bearer_secret_file: Option<PathBuf>,
    /// `X-Auth-Token`, validated by the namespace's Keystone; the
    /// environment must be the token's project.
    #[serde(default)]
    pub keystone_token: bool,
    pub namespaces: Scope,
    pub environments: Scope,
    /// List and show only.
    #[serde(default)]
    pub read_only: bool,
    /// Requests a second of each caller the rule lets through (nginx's
    /// `limit_req`); none or 0: no limit. Over it: 429.
    pub rate: Option<RateConfig>,
}

impl CallerConfig {
    /// The identity fields that are set, by name.
    pub fn identities(&self) -> Vec<&'static str> {
        [
            ("client_cert_sha256", self.client_cert_sha256.is_some()),
            ("client_cert_name", self.client_cert_name.is_some()),
            ("source_cidrs", self.source_cidrs.is_some()),
            ("bearer_secret_sha256", self.bearer_secret_sha256.is_some()),
            ("bearer_secret_file", self.bearer_secret_file.is_some()),
            ("keystone_token", self.keystone_token),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// Names a rule covers: `"*"`, or a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ScopeValue")]
pub enum Scope {
    Any,
    Only(Vec<String>),
}

impl Scope {
    /// The names listed (none for `"*"`).
    pub fn names(&self) -> &[String] {
        match self {
            Scope::Any => &[],
            Scope::Only(names) => names,
        }
    }

    pub fn covers(&self, name: &str) -> bool {
        match self {
            Scope::Any => true,
            Scope::Only(names) => names.iter().any(|listed| listed == name),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeValue {
    One(String),
    List(Vec<String>),
}

impl TryFrom<ScopeValue> for Scope {
    type Error = String;

    fn try_from(value: ScopeValue) -> Result<Self, String> {
        match value {
            ScopeValue::One(star) if star == "*" => Ok(Scope::Any),
            ScopeValue::List(names) if !names.is_empty() && !names.iter().any(|name| name == "*") => {
                Ok(Scope::Only(names))
            }
            _ => Err("expected \"*\" or a non-empty list of names (without \"*\")".into()),
        }
    }
}

/// The admin listener (`[admin]`): `GET /metrics`, `GET /healthz`,
/// `GET /readyz`, on an address of its own, never the Alliance port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback by default: metrics name the namespaces.
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
    /// `false`: nothing is counted and `/metrics` answers 404.
    #[serde(default = "default_true")]
    pub metrics: bool,
    /// How long a readiness answer is reused, so that probes never load
    /// Glance or Keystone.
    #[serde(default = "default_readiness_cache_ms")]
    pub readiness_cache_ms: u64,
    /// Bound on one readiness check of a namespace (its checks run at once).
    #[serde(default = "default_readiness_timeout_ms")]
    pub readiness_timeout_ms: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_admin_listen(),
            metrics: true,
            readiness_cache_ms: default_readiness_cache_ms(),
            readiness_timeout_ms: default_readiness_timeout_ms(),
        }
    }
}

impl AdminConfig {
    pub fn readiness_cache(&self) -> Duration {
        Duration::from_millis(self.readiness_cache_ms)
    }

    pub fn readiness_timeout(&self) -> Duration {
        Duration::from_millis(self.readiness_timeout_ms)
    }
}

/// Whether two listen addresses would take the same port (an unspecified
/// address overlaps every address of its family). Port 0 never clashes: it
/// is a fresh port each time.
pub fn same_port(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0 && a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceConfig {
    /// Glance endpoint, with or without a path prefix (DevStack serves Glance
    /// at `http://HOST/image`). Required with `trusted` auth; with `keystone`
    /// auth it overrides the endpoint found in the service catalog.
    pub glance_url: Option<Url>,
    /// `limit` sent on each list page; Glance caps it at its `api_limit_max`.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// A list stops with an error rather than follow more pages than this.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Bound on each upstream call, from sending the request to the last
    /// byte of the answer.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default)]
    pub environment_id_format: EnvironmentIdFormat,
    /// Membership look-ups for another project's shared images (isolation
    /// checks) one request has in flight at once ...
    #[serde(default = "default_membership_concurrency")]
    pub membership_concurrency: usize,
    /// ... how long their answers are kept, 0 for not at all ...
    #[serde(default = "default_membership_cache_secs")]
    pub membership_cache_secs: u64,
    /// ... and how many answers are kept at most.
    #[serde(default = "default_membership_cache_size")]
    pub membership_cache_size: usize,
    pub auth: AuthConfig,
    /// Where `copy_from` URLs may point (the SSRF guard's allow and deny lists).
    #[serde(default)]
    pub copy_from: GuardConfig,
    /// What to do for `copy_from` when the cloud offers no web-download import.
    #[serde(default)]
    pub copy_from_fallback: FallbackConfig,
    /// Backpressure and fairness (`[namespaces.X.limits]`): calls in flight
    /// to Glance and Keystone, rates per environment, shared shows.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// What keeps one client, one environment or a crowd of pollers from taking
/// the namespace's Glance and Keystone from everyone else
/// (`[namespaces.X.limits]`, checked by `limits`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Calls in flight to the namespace's Glance at once (Envoy's
    /// `max_requests`) ...
    pub glance_max_in_flight: usize,
    /// ... and, apart, to its Keystone.
    pub keystone_max_in_flight: usize,
    /// Calls waiting for one of those slots, per service (Envoy's
    /// `max_pending_requests`); more are refused at once (503).
    pub max_queued_calls: usize,
    /// How long a call waits for a slot before its request is refused (503).
    pub queue_timeout_ms: u64,
    /// Requests a second per environment (nginx's `limit_req` rate); 0: no
    /// limit. Over it: 429.
    pub environment_rate_per_sec: u32,
    /// Requests an environment may send at once above its rate (the token
    /// bucket's size); by default one second's worth.
    pub environment_burst: Option<u32>,
    /// Environments whose buckets are kept at once (least recently seen
    /// forgotten first, as nginx's `limit_req_zone` size).
    pub tracked_environments: usize,
    /// Environments with a rate of their own, by id (in the form the
    /// facade uses: see `environment_id_format`).
    pub environments: BTreeMap<String, RateConfig>,
    /// A show of an image by id that starts within this long of an
    /// identical show's upstream call (same environment and image) gets
    /// that call's answer; 0: every show makes its own calls.
    pub coalesce_window_ms: u64,
    /// Identical shows tracked at once for that.
    pub coalesce_max_entries: usize,
    /// The bytes of the answers kept for those shows, in all; an answer
    /// past them goes only to the shows already waiting for it.
    pub coalesce_max_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            glance_max_in_flight: 64,
            keystone_max_in_flight: 16,
            max_queued_calls: 1000,
            queue_timeout_ms: 5_000,
            environment_rate_per_sec: 0,
            environment_burst: None,
            tracked_environments: 10_000,
            environments: BTreeMap::new(),
            coalesce_window_ms: 200,
            coalesce_max_entries: 10_000,
            coalesce_max_bytes: 16 << 20,
        }
    }
}

impl LimitsConfig {
    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }

    pub fn coalesce_window(&self) -> Duration {
        Duration::from_millis(self.coalesce_window_ms)
    }

    /// The rate of environments without one of their own; `None`: no limit.
    pub fn environment_rate(&self) -> Option<Rate> {
        RateConfig {
            rate_per_sec: self.environment_rate_per_sec,
            burst: self.environment_burst,
        }
        .limited()
    }

    fn validate(&self, format: EnvironmentIdFormat) -> Result<(), String> {
        let counts = [
            ("glance_max_in_flight", self.glance_max_in_flight),
            ("keystone_max_in_flight", self.keystone_max_in_flight),
            ("tracked_environments", self.tracked_environments),
            ("coalesce_max_entries", self.coalesce_max_entries),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return Err(format!("limits.{name} must be positive"));
        }
        if self.queue_timeout_ms == 0 && self.max_queued_calls > 0 {
            return Err("limits.queue_timeout_ms must be positive when calls may queue".into());
        }
        let bursts = std::iter::once(self.environment_burst).chain(self.environments.values().map(|rate| rate.burst));
        if bursts.into_iter().any(|burst| burst == Some(0)) {
            return Err("limits: a burst must be positive".into());
        }
        if let Some(id) = self.environments.keys().find(|id| format.normalise(id).is_none()) {
            return Err(format!(
                "limits.environments: {id:?} is not an environment id of this namespace's environment_id_format"
            ));
        }
        Ok(())
    }
}

/// A token bucket: `rate_per_sec` on average, `burst` at once (one
/// second's worth when not given). A rate of 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub rate_per_sec: u32,
    #[serde(default)]
    pub burst: Option<u32>,
}

/// A bucket's rate and size, both positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_sec: NonZeroU32,
    pub burst: NonZeroU32,
}

impl RateConfig {
    /// The bucket, or `None` for no limit.
    pub fn limited(self) -> Option<Rate> {
        let per_sec = NonZeroU32::new(self.rate_per_sec)?;
        let burst = self.burst.map_or(Some(per_sec), NonZeroU32::new)?;
        Some(Rate { per_sec, burst })
    }
}

/// Where `copy_from` URLs may point: the SSRF guard's per-namespace policy
/// (`[namespaces.X.copy_from]`), checked by `copy_from::guard`. Every field is optional; the default (all
/// empty) is the default policy alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Hosts (names, case-insensitive, trailing dot ignored, or IP literals)
    /// whose addresses skip the default range check. Exact matches only: a
    /// wildcard here would let any subdomain point anywhere. They are still
    /// resolved, port-checked and checked against `deny_cidrs`.
    pub allow_hosts: Vec<String>,
    /// Hosts refused outright, before DNS. `*.example.com` matches every
    /// subdomain of `example.com` but not `example.com` itself (list both).
    pub deny_hosts: Vec<String>,
    /// Resolved addresses inside these pass even when a default range
    /// blocks them (e.g. `"127.0.0.1/32"` for tests). A prefix is required.
    pub allow_cidrs: Vec<IpNet>,
    /// Further blocked ranges, checked against each address and the IPv4
    /// address it embeds; they beat every allow list.
    pub deny_cidrs: Vec<IpNet>,
    /// Empty: any port but 0. Otherwise only these, matched against the
    /// URL's effective port (explicit, or 80/443 by scheme).
    pub allow_ports: Vec<u16>,
    /// Ports refused; they beat `allow_ports`.
    pub deny_ports: Vec<u16>,
}

/// The facade-side `copy_from`: when Glance offers no web-download import,
/// the facade downloads the URL itself (through the same guard) and streams
/// it into `PUT /v2/images/{id}/file`, in the background, with bounded
/// memory. Off by default: the facade then carries image data.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Use the facade's transfer even where Glance offers web-download (for
    /// a Glance that cannot reach the sources the facade can).
    #[serde(default)]
    pub always: bool,
    /// Larger sources are refused (from `Content-Length`) or cut off.
    #[serde(default = "default_fallback_max_bytes")]
    pub max_bytes: u64,
    /// Bound on one whole transfer.
    #[serde(default = "default_fallback_timeout_secs")]
    pub timeout_secs: u64,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        FallbackConfig {
            enabled: false,
            always: false,

            max_bytes: default_fallback_max_bytes(),
            timeout_secs: default_fallback_timeout_secs(),
        }
    }
}

impl NamespaceConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Limits on Alliance API clients (`[client]`), named after nginx's
/// `client_*`, `send_timeout` and `lingering_*` settings they follow. Each
/// refusal is logged with a `reason`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientLimits {
    /// Open client connections, all workers together. At the limit, new
    /// connections wait in the listen queue while the open ones are served.
    /// Lowered at start to half the open-file limit (the other half is for
    /// upstream connections).
    pub max_connections: usize,
    /// A connection waiting for (the rest of) a request head is closed after
    /// this; it is also how long an idle keep-alive connection stays open.
    pub header_timeout_secs: u64,
    /// Request line and headers together; larger heads are refused (431).
    pub max_header_bytes: usize,
    /// Longer request targets (path and query) are refused (414).
    pub max_uri_bytes: usize,
    /// Longest wait for the next bytes of a request body (408).
    pub body_idle_timeout_secs: u64,
    /// Longest time to receive a whole request body (408).
    pub body_total_timeout_secs: u64,
    /// A client that reads nothing of an answer for this long is cut off.
    pub send_timeout_secs: u64,
    /// After an answer sent before its request was read, the facade reads
    /// and discards what the client still sends, so that the client reads
    /// the answer instead of a reset: for at most this long in all...
    pub lingering_time_secs: u64,
    /// ...while the client sends something at least this often...
    pub lingering_timeout_secs: u64,
    /// ...and up to this many bytes.
    pub lingering_max_bytes: u64,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_connections: 10_000,
            header_timeout_secs: 30,
            max_header_bytes: 32 * 1024,
            max_uri_bytes: 8 * 1024,
            body_idle_timeout_secs: 10,
            body_total_timeout_secs: 30,
            send_timeout_secs: 60,
            lingering_time_secs: 30,
            lingering_timeout_secs: 5,
            lingering_max_bytes: 16 * 1024 * 1024,
        }
    }
}

impl ClientLimits {
    fn validate(&self) -> Result<(), ConfigError> {
        let counts = [
            ("max_connections", self.max_connections as u64),
            ("header_timeout_secs", self.header_timeout_secs),
            ("max_uri_bytes", self.max_uri_bytes as u64),
            ("body_idle_timeout_secs", self.body_idle_timeout_secs),
            ("body_total_timeout_secs", self.body_total_timeout_secs),
            ("send_timeout_secs", self.send_timeout_secs),
            ("lingering_time_secs", self.lingering_time_secs),
            ("lingering_timeout_secs", self.lingering_timeout_secs),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError(format!("client.{name} must be positive")));
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(ConfigError(format!(
                "client.max_header_bytes must be at least {MIN_HEADER_BYTES}"
            )));
        }
        Ok(())
    }
}

/// A head smaller than this could not carry the Alliance headers.
const MIN_HEADER_BYTES: usize = 1024;

/// Memory for upstream answers (`[upstream]`), which are read whole before
/// they are judged: one budget for every namespace and thread together.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamLimits {
    /// All upstream answers held at once.
    pub buffer_bytes: usize,
    /// A larger answer is refused (502) without being read whole.
    pub max_answer_bytes: usize,
    /// How long an answer may wait for room in `buffer_bytes` before its
    /// request is refused with 503.
    pub buffer_wait_ms: u64,
}

impl Default for UpstreamLimits {
    fn default() -> Self {
        UpstreamLimits {
            buffer_bytes: 128 * 1024 * 1024,
            max_answer_bytes: 32 * 1024 * 1024,
            buffer_wait_ms: 5_000,
        }
    }
}

impl UpstreamLimits {
    pub fn buffer_wait(&self) -> Duration {
        Duration::from_millis(self.buffer_wait_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_answer_bytes == 0
            || self.max_answer_bytes > self.buffer_bytes
            || u32::try_from(self.max_answer_bytes).is_err()
        {
            return Err(ConfigError(
                "upstream.max_answer_bytes must be positive, below 4 GiB and at most upstream.buffer_bytes".into(),
            ));
        }
        Ok(())
    }
}

/// Which `X-Environment-Id` values a namespace accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentIdFormat {
    /// 32 hexadecimal digits (Keystone's own form).
    Hex32,
    /// A dashed UUID, used as given (lower-cased).
    Uuid,
    /// Either; a dashed UUID is turned into Keystone's 32-digit form so that
    /// both spellings name the same project.
    #[default]
    Hex32OrUuid,
    /// Any Keystone id: 1 to 64 characters of `A-Z a-z 0-9 _ -`, used as given.
    KeystoneId,
}

impl EnvironmentIdFormat {
    /// The project id `value` names under this rule, or `None` if the rule
    /// does not accept it.
    pub fn normalise(self, value: &str) -> Option<String> {
        let hex32 = || ids::is_hex32(value).then(|| value.to_ascii_lowercase());
        let uuid = || ids::is_dashed_uuid(value).then(|| value.to_ascii_lowercase());
        match self {
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
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// Glance trusts identity headers from the facade (a Glance pipeline with
    /// `ContextMiddleware` instead of keystonemiddleware, on a private network).
    Trusted {
        /// Sent as `X-User-Id`.
        user_id: String,
        /// Sent as `X-Roles`; Glance needs `reader` to read and `member` to write.
        #[serde(default = "default_trusted_roles")]
        roles: Vec<String>,
    },
    /// The facade gets a Keystone token scoped to each environment.
    Keystone(Box<KeystoneConfig>),
}

/// Keystone v3 credentials of a namespace. Either name a `cloud` of a
/// `clouds.yaml` (its `auth`, `region_name` and `interface` are used; fields
/// given here win), or give the fields here. Secrets come from an
/// environment variable or a file, never from this file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoneConfig {
    pub cloud: Option<String>,
    /// Identity endpoint, with or without `/v3`.
    pub auth_url: Option<Url>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// An application credential binds the namespace to its one project.
    pub application_credential_id: Option<String>,
    pub application_credential_secret_env: Option<String>,
    pub application_credential_secret_file: Option<PathBuf>,
    /// Catalog interface of the image endpoint (default `public`).
    pub interface: Option<String>,
    pub region_name: Option<String>,
    #[serde(default)]
    pub scope_method: ScopeMethod,
    /// Most environments whose tokens are kept at once.
    #[serde(default = "default_token_cache_size")]
    pub token_cache_size: usize,
    /// Most environments whose refused scope is remembered at once.
    #[serde(default = "default_refused_environments_size")]
    pub refused_environments_size: usize,
    /// How long a refused scope is answered without asking Keystone again.
    #[serde(default = "default_refused_environment_secs")]
    pub refused_environment_secs: u64,
    /// Keystone calls for environments the facade holds no token for (nor
    /// a remembered refusal): this many a second, on average ...
    #[serde(default = "default_new_environments_per_sec")]
    pub new_environments_per_sec: u32,
    /// ... and this many at once.
    #[serde(default = "default_new_environments_burst")]
    pub new_environments_burst: u32,
    /// The project on which the service user holds the `service` role (as
    /// keystonemiddleware's user does): a token scoped to it may validate
    /// the callers' tokens. Needed by `keystone_token` callers only.
    pub service_project_id: Option<String>,
    /// How long a caller's validated token is trusted without asking
    /// Keystone again (never beyond its expiry): a revoked token keeps
    /// working this long at most. keystonemiddleware's default.
    #[serde(default = "default_caller_token_cache_secs")]
    pub caller_token_cache_secs: u64,
    /// Most callers' tokens kept at once.
    #[serde(default = "default_token_cache_size")]
    pub caller_token_cache_size: usize,
    /// Validations of callers' tokens not in the cache (each a Keystone
    /// call): this many a second, on average ...
    #[serde(default = "default_new_environments_per_sec")]
    pub caller_token_validations_per_sec: u32,
    /// ... and this many at once.
    #[serde(default = "default_new_environments_burst")]
    pub caller_token_validations_burst: u32,
}

/// How a project-scoped token is obtained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeMethod {
    /// Re-scope one unscoped token per environment: one password check in
    /// all, instead of one per environment.
    #[default]
    Rescope,
    /// A password authentication per environment.
    Password,
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError(format!("cannot read {}: {error}", path.display())))?;
        Self::parse(&text).map_err(|ConfigError(message)| ConfigError(format!("{}: {message}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| ConfigError(error.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Served beyond loopback with no TLS or no `callers`: anyone who
    /// reaches the port acts as any environment.
    pub fn is_open_beyond_loopback(&self) -> bool {
        !self.listen.ip().is_loopback() && (self.tls.is_none() || self.callers.is_empty())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.namespaces.is_empty() {
            return Err(ConfigError("at least one namespace must be configured".into()));
        }
        self.client.validate()?;
        self.upstream.validate()?;
        if same_port(self.listen, self.admin.listen) {
            return Err(ConfigError(format!(
                "admin.listen ({}) must not be the Alliance port (listen = {})",
                self.admin.listen, self.listen
            )));
        }
        if self.admin.readiness_timeout_ms == 0 {
            return Err(ConfigError("admin.readiness_timeout_ms must be positive".into()));
        }
        if self.is_open_beyond_loopback() && !self.allow_open {
            return Err(ConfigError(format!(
                "listen = \"{}\" is not a loopback address: serve it with [tls] and [[callers]], \
                 or write allow_open = true to accept that whoever reaches it acts as any environment",
                self.listen
            )));
        }
        if let Some(tls) = &self.tls {
            if tls.client_ca_file.is_some() && tls.client_auth == ClientAuth::None {
                return Err(ConfigError(
                    "tls.client_auth must be \"request\" or \"require\" when tls.client_ca_file is given".into(),
                ));
            }
            if tls.handshake_timeout_secs == 0 {
                return Err(ConfigError("tls.handshake_timeout_secs must be positive".into()));
            }
        }
        for (index, caller) in self.callers.iter().enumerate() {
            self.validate_caller(index, caller)
                .map_err(|message| ConfigError(format!("callers[{index}]{message}")))?;
        }
        for (name, namespace) in &self.namespaces {
            let fail = |message: String| Err(ConfigError(format!("namespace {name}: {message}")));
            if let Some(url) = &namespace.glance_url {
                if !matches!(url.scheme(), "http" | "https") {
                    return fail("glance_url must be http or https".into());
                }
                if url.query().is_some() || url.fragment().is_some() {
                    return fail("glance_url must not carry a query or fragment".into());
                }
            }
            if namespace.page_size == 0 || namespace.max_pages == 0 {
                return fail("page_size and max_pages must be positive".into());
            }
            if namespace.membership_concurrency == 0 || namespace.membership_cache_size == 0 {
                return fail("membership_concurrency and membership_cache_size must be positive".into());
            }
            if let Err(message) = namespace.limits.validate(namespace.environment_id_format) {
                return fail(message);
            }
            match &namespace.auth {
                AuthConfig::Trusted { user_id, roles } => {
                    let header_safe =
                        |value: &str| !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b',');
                    if !header_safe(user_id) || roles.is_empty() || !roles.iter().all(|r| header_safe(r)) {
                        return fail("trusted auth needs a user_id and roles made of visible ASCII".into());
                    }
                    if namespace.glance_url.is_none() {
                        return fail("trusted auth needs glance_url".into());
                    }
                }
                AuthConfig::Keystone(keystone) => {
                    if keystone.token_cache_size == 0
                        || keystone.refused_environments_size == 0
                        || keystone.caller_token_cache_size == 0
                    {
                        return fail(
                            "token_cache_size, refused_environments_size and caller_token_cache_size must be positive"
                                .into(),
                        );
                    }
                    if keystone.new_environments_per_sec == 0 || keystone.new_environments_burst == 0 {
                        return fail("new_environments_per_sec and new_environments_burst must be positive".into());
                    }
                    if keystone.caller_token_validations_per_sec == 0 || keystone.caller_token_validations_burst == 0 {
                        return fail(
                            "caller_token_validations_per_sec and caller_token_validations_burst must be positive"
                                .into(),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// One `[[callers]]` rule; the message starts with the field at fault
    /// (`.name: ...`), or with `: ` when the rule has no identity field.
    fn validate_caller(&self, index: usize, caller: &CallerConfig) -> Result<(), String> {
        if caller.name.is_empty() || self.callers[..index].iter().any(|earlier| earlier.name == caller.name) {
            return Err(format!(".name: {:?} must be given and unique", caller.name));
        }
        let identities = caller.identities();
        match identities[..] {
            [] => {
                return Err(
                    ": a rule needs one identity: client_cert_sha256, client_cert_name, source_cidrs, \
                            bearer_secret_sha256, bearer_secret_file or keystone_token"
                        .into(),
                );
            }
            [_] => {}
            _ => return Err(format!(".{}: a rule has exactly one identity", identities.join(", "))),
        }
        let client_auth = self.tls.as_ref().map_or(ClientAuth::None, |tls| tls.client_auth);
        if (caller.client_cert_sha256.is_some() || caller.client_cert_name.is_some()) && client_auth == ClientAuth::None
        {
            return Err(format!(
                ".{}: client certificates need [tls] with client_auth = \"request\" or \"require\"",
                identities[0]
            ));
        }
        if caller.client_cert_name.is_some() && self.tls.as_ref().is_none_or(|tls| tls.client_ca_file.is_none()) {
            return Err(".client_cert_name: needs tls.client_ca_file, the CA that issues the certificates".into());
        }
        if caller.source_cidrs.as_ref().is_some_and(Vec::is_empty) {
            return Err(".source_cidrs: must not be empty".into());
        }
        if caller.rate.is_some_and(|rate| rate.burst == Some(0)) {
            return Err(".rate.burst: must be positive".into());
        }
        for namespace in caller.namespaces.names() {
            if !self.namespaces.contains_key(namespace) {
                return Err(format!(".namespaces: {namespace:?} is not a configured namespace"));
            }
        }
        if caller.keystone_token {
            let covered: Vec<(&String, &NamespaceConfig)> = self
                .namespaces
                .iter()
                .filter(|(name, _)| caller.namespaces.covers(name))
                .collect();
            let mut keystone = 0;
            for (name, namespace) in covered {
                match &namespace.auth {
                    AuthConfig::Keystone(auth) => {
                        if auth.service_project_id.is_none() {
                            return Err(format!(
                                ".keystone_token: namespace {name} needs service_project_id in its auth table \
                                 (the project on which its service user has the service role)"
                            ));
                        }
                        keystone += 1;
                    }
                    AuthConfig::Trusted { .. } if caller.namespaces != Scope::Any => {
                        return Err(format!(
                            ".keystone_token: namespace {name} has trusted auth: no Keystone to validate tokens with"
                        ));
                    }
                    AuthConfig::Trusted { .. } => {}
                }
            }
            if keystone == 0 {
                return Err(".keystone_token: no namespace of the rule has keystone auth".into());
            }
        }
        Ok(())
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9180))
}

fn default_true() -> bool {
    true
}

fn default_readiness_cache_ms() -> u64 {
    5_000
}

fn default_readiness_timeout_ms() -> u64 {
    2_000
}

fn default_max_body_bytes() -> usize {
    1024 * 1024
}

fn default_shutdown_grace_secs() -> u64 {
    10
}

fn default_page_size() -> u32 {
    1000
}

fn default_max_pages() -> u32 {
    1000
}

fn default_membership_concurrency() -> usize {
    8
}

fn default_membership_cache_secs() -> u64 {
    30
}

fn default_membership_cache_size() -> usize {
    10_000
}

fn default_connect_timeout_ms() -> u64 {
    3_000
}

fn default_request_timeout_ms() -> u64 {
    30_000
}

fn default_fallback_max_bytes() -> u64 {
    64 * 1024 * 1024 * 1024
}

fn default_fallback_timeout_secs() -> u64 {
    6 * 3600
}

fn default_handshake_timeout_secs() -> u64 {
    10
}

fn default_caller_token_cache_secs() -> u64 {
    300
}

fn default_token_cache_size() -> usize {
    10_000
}

fn default_refused_environments_size() -> usize {
    10_000
}

fn default_refused_environment_secs() -> u64 {
    60
}

fn default_new_environments_per_sec() -> u32 {
    20
}

fn default_new_environments_burst() -> u32 {
    100
}

fn default_trusted_roles() -> Vec<String> {
    vec!["member".into(), "reader".into()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [namespaces.ccsr1]
        glance_url = "http://127.0.0.1:9292/image"
        auth = { type = "trusted", user_id = "alliance" }
    "#;

    #[test]
    fn defaults_apply() {
        let config = Config::parse(MINIMAL).unwrap();
        assert_eq!(config.listen, default_listen());
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert_eq!(
            (config.upstream.buffer_bytes, config.upstream.max_answer_bytes),
            (128 << 20, 32 << 20)
        );
        let namespace = &config.namespaces["ccsr1"];
        assert_eq!(namespace.page_size, 1000);
        assert_eq!(
            (
                namespace.membership_concurrency,
                namespace.membership_cache_secs,
                namespace.membership_cache_size
            ),
            (8, 30, 10_000)
        );
        assert_eq!(namespace.environment_id_format, EnvironmentIdFormat::Hex32OrUuid);
        let AuthConfig::Trusted { roles, .. } = &namespace.auth else {
            panic!("trusted auth expected");
        };
        assert_eq!(roles, &["member", "reader"]);
    }

    #[test]
    fn the_admin_listener_never_takes_the_alliance_port() {
        let config = Config::parse(MINIMAL).unwrap();
        assert_eq!(config.admin.listen, SocketAddr::from(([127, 0, 0, 1], 9180)));
        assert!(config.admin.metrics);
        for clash in [
            "listen = \"127.0.0.1:8080\"\n[admin]\nlisten = \"127.0.0.1:8080\"",
            "listen = \"0.0.0.0:8080\"\n[admin]\nlisten = \"127.0.0.1:8080\"",
        ] {
            let error = Config::parse(&format!("{clash}\n{MINIMAL}")).unwrap_err();
            assert!(error.0.contains("admin.listen"), "{error}");
        }
        // Other ports, other addresses, and fresh ports are fine.
        for fine in [
            "listen = \"127.0.0.1:8080\"\n[admin]\nlisten = \"127.0.0.1:8081\"",
            "listen = \"127.0.0.1:8080\"\n[admin]\nlisten = \"127.0.0.2:8080\"",
            "listen = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"",
        ] {
            Config::parse(&format!("{fine}\n{MINIMAL}")).unwrap();
        }
    }

    #[test]
    fn environment_rules() {
        use EnvironmentIdFormat::*;
        let hex = "54915A05b0bb43dcbb218525c426b6a5";
        let uuid = "54915a05-b0bb-43dc-bb21-8525c426b6a5";
        assert_eq!(
            Hex32.normalise(hex).as_deref(),
            Some("54915a05b0bb43dcbb218525c426b6a5")
        );
        assert_eq!(Hex32.normalise(uuid), None);
        assert_eq!(Uuid.normalise(uuid).as_deref(), Some(uuid));
        assert_eq!(Uuid.normalise(hex), None);
        assert_eq!(
            Hex32OrUuid.normalise(uuid).as_deref(),
            Some("54915a05b0bb43dcbb218525c426b6a5")
        );
        assert_eq!(KeystoneId.normalise("default").as_deref(), Some("default"));
        assert_eq!(KeystoneId.normalise("a b"), None);
        assert_eq!(KeystoneId.normalise(&"a".repeat(65)), None);
        for bad in [
            "",
            "xyz",
            "54915a05b0bb43dcbb218525c426b6a",
            "54915a05b0bb43dcbb218525c426b6a5\n",
        ] {
            assert_eq!(Hex32OrUuid.normalise(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(Config::parse(&format!("{MINIMAL}\nbogus = 1")).is_err());
        assert!(Config::parse("namespaces = {}").is_err());
        let bad_url = MINIMAL.replace("http://127.0.0.1:9292/image", "ftp://x");
        assert!(Config::parse(&bad_url).is_err());
        let bad_role = MINIMAL.replace("user_id = \"alliance\"", "user_id = \"a\", roles = [\"a,b\"]");
        assert!(Config::parse(&bad_role).is_err());
        // One answer may not need more than the whole budget.
        let answer_over_budget = format!("[upstream]\nbuffer_bytes = 1000\nmax_answer_bytes = 1001\n{MINIMAL}");
        assert!(Config::parse(&answer_over_budget).is_err());
    }

    #[test]
    fn client_limits() {
        assert_eq!(Config::parse(MINIMAL).unwrap().client, ClientLimits::default());
        let config = Config::parse(&format!(
            "[client]\nmax_connections = 5\nsend_timeout_secs = 2\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(config.client.max_connections, 5);
        assert_eq!(config.client.send_timeout_secs, 2);
        assert_eq!(config.client.lingering_timeout_secs, 5);
        for bad in [
            "max_connections = 0",
            "body_idle_timeout_secs = 0",
            "max_header_bytes = 100",
            "bogus = 1",
        ] {
            assert!(Config::parse(&format!("[client]\n{bad}\n{MINIMAL}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits() {
        let limits = &Config::parse(MINIMAL).unwrap().namespaces["ccsr1"].limits;
        assert_eq!(
            (
                limits.glance_max_in_flight,
                limits.keystone_max_in_flight,
                limits.max_queued_calls,
                limits.queue_timeout_ms,
                limits.coalesce_window_ms,
                limits.coalesce_max_bytes,
            ),
            (64, 16, 1000, 5000, 200, 16 << 20)
        );
        assert_eq!(limits.environment_rate(), None, "no rate limit by default");
        let rate = |per_sec: u32, burst: u32| {
            Some(Rate {
                per_sec: NonZeroU32::new(per_sec).unwrap(),
                burst: NonZeroU32::new(burst).unwrap(),
            })
        };
        let config = Config::parse(&format!(
            "{MINIMAL}
            [namespaces.ccsr1.limits]
            environment_rate_per_sec = 5
            [namespaces.ccsr1.limits.environments.54915a05-b0bb-43dc-bb21-8525c426b6a5]
            rate_per_sec = 50
            burst = 80
            [namespaces.ccsr1.limits.environments.c3c3c3c3c3c34c3c8c3cc3c3c3c3c3c3]
            rate_per_sec = 0
            "
        ))
        .unwrap();
        let limits = &config.namespaces["ccsr1"].limits;
        assert_eq!(limits.environment_rate(), rate(5, 5), "one second's worth of burst");
        let own: Vec<_> = limits.environments.values().map(|own| own.limited()).collect();
        assert_eq!(own, [rate(50, 80), None]);
        for bad in [
            "glance_max_in_flight = 0",
            "keystone_max_in_flight = 0",
            "tracked_environments = 0",
            "coalesce_max_entries = 0",
            "queue_timeout_ms = 0",
            "environment_rate_per_sec = 5\nenvironment_burst = 0",
            "environments.not-an-id = { rate_per_sec = 1 }",
            "environments.c3c3c3c3c3c34c3c8c3cc3c3c3c3c3c3 = { rate_per_sec = 1, burst = 0 }",
            "bogus = 1",
        ] {
            let text = format!("{MINIMAL}\n[namespaces.ccsr1.limits]\n{bad}");
            assert!(Config::parse(&text).is_err(), "{bad}");
        }
        // No queue, no wait needed.
        Config::parse(&format!(
            "{MINIMAL}\n[namespaces.ccsr1.limits]\nmax_queued_calls = 0\nqueue_timeout_ms = 0"
        ))
        .unwrap();
    }

    #[test]
    fn the_shipped_files_parse() {
        Config::parse(include_str!("../config/alliance-glance.example.toml")).unwrap();
        Config::parse(include_str!("../config/docker-compose.toml")).unwrap();
    }

    const TLS: &str = r#"
        [tls]
        cert_chain_file = "/etc/alliance-glance/chain.pem"
        key_file = "/etc/alliance-glance/key.pem"
    "#;

    const RULE: &str = r#"
        [[callers]]
        name = "gateway"
        source_cidrs = ["10.0.0.0/8"]
        namespaces = "*"
        environments = "*"
    "#;

    fn error(text: &str) -> String {
        Config::parse(text).unwrap_err().0
    }

    #[test]
    fn beyond_loopback_only_with_tls_and_callers_or_allow_open() {
        let wide = |extra: &str| format!("listen = \"0.0.0.0:8443\"\n{extra}\n{MINIMAL}");
        assert!(error(&wide("")).contains("allow_open = true"));
        assert!(error(&format!("{}{TLS}", wide(""))).contains("allow_open"));
        assert!(error(&format!("{}{RULE}", wide(""))).contains("allow_open"));
        let guarded = Config::parse(&format!("{}{TLS}{RULE}", wide(""))).unwrap();
        assert!(!guarded.is_open_beyond_loopback());
        let open = Config::parse(&wide("allow_open = true")).unwrap();
        assert!(open.is_open_beyond_loopback());
        let loopback = Config::parse(&format!("listen = \"[::1]:8080\"\n{MINIMAL}")).unwrap();
        assert!(!loopback.is_open_beyond_loopback());
    }

    #[test]
    fn bad_caller_rules_name_their_field() {
        let rule = |body: &str| {
            format!("{MINIMAL}{TLS}\n[[callers]]\nname = \"r\"\nnamespaces = \"*\"\nenvironments = \"*\"\n{body}")
        };
        let cases = [
            ("", "callers[0]: a rule needs one identity: client_cert_sha256,"),
            (
                "source_cidrs = [\"10.0.0.0/8\"]\nkeystone_token = true",
                "callers[0].source_cidrs, keystone_token: a rule has exactly one identity",
            ),
            (
                "client_cert_sha256 = \"ab\"",
                "callers[0].client_cert_sha256: client certificates need [tls] with client_auth",
            ),
            ("source_cidrs = []", "callers[0].source_cidrs: must not be empty"),
            (
                "source_cidrs = [\"10.0.0.0/8\"]\nrate = { rate_per_sec = 5, burst = 0 }",
                "callers[0].rate.burst: must be positive",
            ),
            (
                "keystone_token = true",
                "callers[0].keystone_token: no namespace of the rule has keystone auth",
            ),
        ];
        for (body, expected) in cases {
            let message = error(&rule(body));
            assert!(message.starts_with(expected), "{body:?}: {message}");
        }
        let with_client_auth = format!("{}client_auth = \"request\"\n", TLS);
        let named = format!(
            "{MINIMAL}{with_client_auth}\n[[callers]]\nname = \"r\"\nnamespaces = \"*\"\nenvironments = \"*\"\nclient_cert_name = \"gw\""
        );
        assert!(error(&named).starts_with("callers[0].client_cert_name: needs tls.client_ca_file"));
        let unknown = format!("{MINIMAL}{RULE}").replace("namespaces = \"*\"", "namespaces = [\"nope\"]");
        assert!(error(&unknown).starts_with("callers[0].namespaces: \"nope\" is not a configured namespace"));
        let twice = format!("{MINIMAL}{RULE}{RULE}");
        assert!(error(&twice).starts_with("callers[1].name: \"gateway\" must be given and unique"));
        let star_in_list = format!("{MINIMAL}{RULE}").replace("environments = \"*\"", "environments = [\"*\"]");
        assert!(error(&star_in_list).contains("environments"));
        let trusted_token = format!(
            "{MINIMAL}\n[[callers]]\nname = \"t\"\nkeystone_token = true\nnamespaces = [\"ccsr1\"]\nenvironments = \"*\""
        );
        assert!(error(&trusted_token).starts_with("callers[0].keystone_token: namespace ccsr1 has trusted auth"));
        let keystone = "[namespaces.ks]\nauth = { type = \"keystone\", auth_url = \"http://k/v3\", username = \"u\", password_env = \"P\" }\n";
        let no_service_project = format!(
            "{keystone}\n[[callers]]\nname = \"t\"\nkeystone_token = true\nnamespaces = \"*\"\nenvironments = \"*\""
        );
        assert!(
            error(&no_service_project).starts_with("callers[0].keystone_token: namespace ks needs service_project_id")
        );
        Config::parse(&no_service_project.replace(
            "password_env = \"P\"",
            "password_env = \"P\", service_project_id = \"5e\"",
        ))
        .unwrap();
        let ca_without_client_auth = format!("{MINIMAL}{TLS}client_ca_file = \"/ca.pem\"\n");
        assert!(error(&ca_without_client_auth).starts_with("tls.client_auth must be"));
    }

    #[test]
    fn keystone_namespaces() {
        let config = Config::parse(
            r#"
            [namespaces.ccsr2]
            auth = { type = "keystone", cloud = "devstack", scope_method = "password" }
            "#,
        )
        .unwrap();
        let AuthConfig::Keystone(keystone) = &config.namespaces["ccsr2"].auth else {
            panic!("keystone auth expected");
        };
        assert_eq!(keystone.cloud.as_deref(), Some("devstack"));
        assert_eq!(keystone.scope_method, ScopeMethod::Password);
        assert_eq!(keystone.token_cache_size, 10_000);
        assert_eq!(
            (
                keystone.refused_environments_size,
                keystone.refused_environment_secs,
                keystone.new_environments_per_sec,
                keystone.new_environments_burst
            ),
            (10_000, 60, 20, 100)
        );
        // Trusted mode has no catalog to find Glance in.
        assert!(Config::parse("[namespaces.x]\nauth = { type = \"trusted\", user_id = \"u\" }").is_err());
        // Secrets are never written in this file.
        assert!(Config::parse("[namespaces.x]\nauth = { type = \"keystone\", password = \"p\" }").is_err());
    }
}
