//! Configuration file (TOML). See `config/alliance-glance.example.toml` for a
//! commented example; every field here is documented there too.
//!
//! One file per table. Every table is `#[serde(default, deny_unknown_fields)]`
//! and states all its defaults in its `impl Default`; a setting that must be
//! given defaults to empty and is refused by its table's `validate`, which
//! `Config::validate` calls. (`RateConfig`, whose rate has no default, and
//! `NamespaceConfig`, read through a raw table, say why they differ.)
//! A file names a sibling's type by its path (`super::auth::AuthConfig`),
//! not through the re-exports below, so that `tests/layers.rs` sees the
//! imports between them (and would find a cycle).

mod admin;
mod audit;
mod auth;
mod callers;
mod client;
mod limits;
mod namespace;
mod secret_file;
mod shared_cache;
mod tls;
mod upstream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

pub use admin::{AdminConfig, same_port};
pub use audit::AuditConfig;
pub use auth::{AuthConfig, KeystoneConfig, ScopeMethod, TrustedConfig};
pub use callers::{CallerConfig, CallerIdentity, Scope};
pub use client::ClientLimits;
pub use limits::{LimitsConfig, Rate, RateConfig};
pub use namespace::{EnvironmentIdFormat, FallbackConfig, GuardConfig, NamespaceConfig};
pub use secret_file::read_first_line;
pub use shared_cache::{SecurityStrategy, SharedCacheConfig};
pub use tls::{ClientAuth, TlsConfig};
pub use upstream::UpstreamLimits;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the Alliance API is served. Loopback by default: without
    /// `callers`, whoever reaches it acts as any environment.
    pub listen: SocketAddr,
    /// A `listen` address beyond loopback is refused unless the listener has
    /// TLS and `callers`, or this says that the openness is meant (a warning
    /// is logged at start).
    pub allow_open: bool,
    /// Larger request bodies are refused with 413 before they are read.
    pub max_body_bytes: usize,
    /// After SIGTERM, how long the facade goes on serving - `/readyz` 503,
    /// every answer with `Connection: close` - so that load balancers see
    /// it leave before it stops accepting.
    pub drain_secs: u64,
    /// How long in-flight requests may run on once it stops accepting
    /// (after the drain, or at once on Ctrl-C).
    pub shutdown_grace_secs: u64,
    /// What a client of the Alliance API may take: connections, time, head
    /// sizes (`[client]`).
    pub client: ClientLimits,
    /// Memory for upstream answers (`[upstream]`).
    pub upstream: UpstreamLimits,
    /// The admin listener: metrics, liveness, readiness.
    pub admin: AdminConfig,
    /// TLS on the Alliance listener (`[tls]`); plain HTTP without it.
    pub tls: Option<TlsConfig>,
    /// State shared with the other replicas in memcached (`[shared_cache]`):
    /// Keystone tokens, callers' token validations, refused environments,
    /// rates. None: each process keeps its own.
    pub shared_cache: Option<SharedCacheConfig>,
    /// Who may call, and as which namespaces and environments (`[[callers]]`,
    /// checked by `callers`). None: anyone who reaches the listener.
    pub callers: Vec<CallerConfig>,
    /// The audit trail (`[audit]`); none without the table.
    pub audit: Option<AuditConfig>,
    /// Clouds, by the name clients put in `X-Target-Ns`. At least one.
    pub namespaces: BTreeMap<String, NamespaceConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allow_open: false,
            max_body_bytes: 1024 * 1024,
            drain_secs: 10,
            shutdown_grace_secs: 10,
            client: ClientLimits::default(),
            upstream: UpstreamLimits::default(),
            admin: AdminConfig::default(),
            tls: None,
            shared_cache: None,
            callers: Vec::new(),
            audit: None,
            namespaces: BTreeMap::new(),
        }
    }
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

    /// Each table's own checks, and those between tables; the first failure.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.namespaces.is_empty() {
            return Err(ConfigError("at least one namespace must be configured".into()));
        }
        self.client.validate().map_err(ConfigError)?;
        self.upstream.validate().map_err(ConfigError)?;
        self.admin.validate(self.listen).map_err(ConfigError)?;
        if self.is_open_beyond_loopback() && !self.allow_open {
            return Err(ConfigError(format!(
                "listen = \"{}\" is not a loopback address: serve it with [tls] and [[callers]], \
                 or write allow_open = true to accept that whoever reaches it acts as any environment",
                self.listen
            )));
        }
        if let Some(tls) = &self.tls {
            tls.validate().map_err(ConfigError)?;
        }
        if let Some(shared_cache) = &self.shared_cache {
            shared_cache.validate().map_err(ConfigError)?;
        }
        if let Some(audit) = &self.audit {
            audit.validate().map_err(ConfigError)?;
        }
        callers::validate(&self.callers, self.tls.as_ref(), &self.namespaces).map_err(ConfigError)?;
        for (name, namespace) in &self.namespaces {
            namespace
                .validate()
                .map_err(|message| ConfigError(format!("namespace {name}: {message}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const MINIMAL: &str = r#"
        [namespaces.ccsr1]
        glance_url = "http://127.0.0.1:9292/image"
        auth = { type = "trusted", user_id = "alliance" }
    "#;

    pub(super) const TLS: &str = r#"
        [tls]
        cert_chain_file = "/etc/alliance-glance/chain.pem"
        key_file = "/etc/alliance-glance/key.pem"
    "#;

    pub(super) const RULE: &str = r#"
        [[callers]]
        name = "gateway"
        source_cidrs = ["10.0.0.0/8"]
        namespaces = "*"
        environments = "*"
    "#;

    /// The message a configuration is refused with.
    pub(super) fn error(text: &str) -> String {
        Config::parse(text).unwrap_err().0
    }

    #[test]
    fn defaults_apply() {
        let config = Config::parse(MINIMAL).unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
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
        let AuthConfig::Trusted(trusted) = &namespace.auth else {
            panic!("trusted auth expected");
        };
        assert_eq!(trusted.roles, ["member", "reader"]);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(Config::parse(&format!("{MINIMAL}\nbogus = 1")).is_err());
        assert!(Config::parse("namespaces = {}").is_err());
        assert_eq!(error(""), "at least one namespace must be configured");
        let bad_url = MINIMAL.replace("http://127.0.0.1:9292/image", "ftp://x");
        assert!(Config::parse(&bad_url).is_err());
        let bad_role = MINIMAL.replace("user_id = \"alliance\"", "user_id = \"a\", roles = [\"a,b\"]");
        assert!(Config::parse(&bad_role).is_err());
        // One answer may not need more than the whole budget.
        let answer_over_budget = format!("[upstream]\nbuffer_bytes = 1000\nmax_answer_bytes = 1001\n{MINIMAL}");
        assert!(Config::parse(&answer_over_budget).is_err());
    }

    #[test]
    fn the_shipped_files_parse() {
        Config::parse(include_str!("../../config/alliance-glance.example.toml")).unwrap();
        Config::parse(include_str!("../../config/docker-compose.toml")).unwrap();
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
}
