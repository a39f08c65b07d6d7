//! Configuration file (TOML). See `config/alliance-glance.example.toml` for a
//! commented example; every field here is documented there too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use url::Url;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the Alliance API is served. Loopback by default: the API carries
    /// no credentials, so whoever reaches it acts as any environment.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
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
    /// Clouds, by the name clients put in `X-Target-Ns`.
    pub namespaces: BTreeMap<String, NamespaceConfig>,
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
                    if keystone.token_cache_size == 0 || keystone.refused_environments_size == 0 {
                        return fail("token_cache_size and refused_environments_size must be positive".into());
                    }
                    if keystone.new_environments_per_sec == 0 || keystone.new_environments_burst == 0 {
                        return fail("new_environments_per_sec and new_environments_burst must be positive".into());
                    }
                }
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
    fn the_shipped_files_parse() {
        Config::parse(include_str!("../config/alliance-glance.example.toml")).unwrap();
        Config::parse(include_str!("../config/docker-compose.toml")).unwrap();
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
