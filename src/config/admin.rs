//! `[admin]`: the admin listener.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// The admin listener (`[admin]`): `GET /metrics`, `GET /healthz`,
/// `GET /readyz`, on an address of its own, never the Alliance port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback by default: metrics name the namespaces.
    pub listen: SocketAddr,
    /// `false`: nothing is counted and `/metrics` answers 404.
    pub metrics: bool,
    /// How long a readiness answer is reused, so that probes never load
    /// Glance or Keystone.
    pub readiness_cache_ms: u64,
    /// Bound on one readiness check of a namespace (its checks run at once).
    pub readiness_timeout_ms: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9180)),
            metrics: true,
            readiness_cache_ms: 5_000,
            readiness_timeout_ms: 2_000,
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

    /// `alliance_listen`: the top-level `listen`, whose port this one must not take.
    pub(super) fn validate(&self, alliance_listen: SocketAddr) -> Result<(), String> {
        if same_port(alliance_listen, self.listen) {
            return Err(format!(
                "admin.listen ({}) must not be the Alliance port (listen = {alliance_listen})",
                self.listen
            ));
        }
        if self.readiness_timeout_ms == 0 {
            return Err("admin.readiness_timeout_ms must be positive".into());
        }
        Ok(())
    }
}

/// Whether two listen addresses would take the same port (an unspecified
/// address overlaps every address of its family). Port 0 never clashes: it
/// is a fresh port each time.
pub fn same_port(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0 && a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::MINIMAL;

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
}
