//! `[shared_cache]`: what the replicas of one deployment share in memcached,
//! as keystonemiddleware shares its token cache (`memcached_servers`,
//! `memcache_security_strategy`, `memcache_secret_key`, the pool's
//! settings). The secret comes from a file or an environment variable,
//! never from this file.

use std::path::PathBuf;

use serde::Deserialize;

use super::secret_file::read_first_line;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharedCacheConfig {
    /// `host:port` of each memcached; a key lives on one of them, chosen by
    /// hashing the key (the same choice in every replica). Must be given.
    pub servers: Vec<String>,
    /// `encrypt` (default): entries authenticated and encrypted - no token
    /// is stored in clear; `mac`: authenticated only.
    pub security_strategy: SecurityStrategy,
    /// The deployment's secret: the first line of this file ...
    pub secret_file: Option<PathBuf>,
    /// ... or this environment variable. At least 32 characters.
    pub secret_env: Option<String>,
    /// Connecting to a memcached, and each of its answers, take at most this long.
    pub timeout_ms: u64,
    /// Connections kept open to each memcached, per worker thread.
    pub pool_size: usize,
    /// A memcached that failed is left alone this long (its keys are the
    /// in-process state's meanwhile), then tried again.
    pub dead_retry_secs: u64,
    /// While memcached cannot be reached, rates refuse with 503 instead of
    /// falling back to each replica's own buckets (Envoy's
    /// `failure_mode_deny`); `/readyz` then says so too.
    pub fail_closed: bool,
    /// A replica takes tokens of a shared rate bucket this many milliseconds'
    /// worth at a time (at least one), and spends them without asking again:
    /// the fewer round trips, the coarser the rate.
    pub rate_lease_ms: u64,
}

/// keystonemiddleware's `memcache_security_strategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityStrategy {
    #[default]
    Encrypt,
    Mac,
}

/// Shorter secrets are refused: the keys of every entry derive from it.
pub const MIN_SECRET_CHARS: usize = 32;

impl Default for SharedCacheConfig {
    fn default() -> Self {
        SharedCacheConfig {
            servers: Vec::new(),
            security_strategy: SecurityStrategy::Encrypt,
            secret_file: None,
            secret_env: None,
            timeout_ms: 200,
            pool_size: 4,
            dead_retry_secs: 10,
            fail_closed: false,
            rate_lease_ms: 100,
        }
    }
}

impl SharedCacheConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err("shared_cache.servers: give at least one memcached (host:port)".into());
        }
        if let Some(server) = self.servers.iter().find(|server| server.rsplit_once(':').is_none()) {
            return Err(format!("shared_cache.servers: {server:?} is not host:port"));
        }
        if self.secret_file.is_some() == self.secret_env.is_some() {
            return Err("shared_cache: give exactly one of secret_file and secret_env".into());
        }
        let counts = [
            ("timeout_ms", self.timeout_ms),
            ("pool_size", self.pool_size as u64),
            ("rate_lease_ms", self.rate_lease_ms),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return Err(format!("shared_cache.{name} must be positive"));
        }
        Ok(())
    }

    /// The secret, read now (at start and on a reload check).
    pub fn secret(&self) -> Result<String, String> {
        let secret = match (&self.secret_file, &self.secret_env) {
            (Some(path), _) => read_first_line(path)
                .map_err(|error| format!("shared_cache.secret_file: cannot read {}: {error}", path.display()))?,
            (None, Some(name)) => std::env::var(name)
                .map_err(|_| format!("shared_cache.secret_env: {name} is not set"))?
                .trim()
                .to_owned(),
            (None, None) => String::new(),
        };
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "shared_cache: the secret must be at least {MIN_SECRET_CHARS} characters"
            ));
        }
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::MINIMAL;

    #[test]
    fn shared_cache_settings() {
        let config = Config::parse(&format!(
            "[shared_cache]\nservers = [\"127.0.0.1:11211\"]\nsecret_env = \"S\"\n{MINIMAL}"
        ))
        .unwrap();
        let shared = config.shared_cache.unwrap();
        assert_eq!(
            (shared.timeout_ms, shared.pool_size, shared.fail_closed),
            (200, 4, false)
        );
        for bad in [
            "servers = []\nsecret_env = \"S\"",
            "servers = [\"memcached\"]\nsecret_env = \"S\"",
            "servers = [\"m:11211\"]",
            "servers = [\"m:11211\"]\nsecret_env = \"S\"\nsecret_file = \"/f\"",
            "servers = [\"m:11211\"]\nsecret_env = \"S\"\ntimeout_ms = 0",
            "servers = [\"m:11211\"]\nsecret = \"in the file\"",
        ] {
            assert!(
                Config::parse(&format!("[shared_cache]\n{bad}\n{MINIMAL}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        let config = super::SharedCacheConfig {
            secret_env: Some("ALLIANCE_GLANCE_TEST_SHORT_SECRET".into()),
            ..super::SharedCacheConfig::default()
        };
        assert!(config.secret().unwrap_err().contains("not set"));
    }
}
