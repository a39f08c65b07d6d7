//! `[client]`: what a client of the Alliance API may take.

use ipnet::IpNet;
use serde::Deserialize;

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
    /// The load balancers in front of the facade: from these networks, and
    /// only from them, `proxy_protocol` and `x_forwarded_for` name the client.
    pub trusted_proxies: Vec<IpNet>,
    /// A connection from a trusted proxy may start with a PROXY protocol
    /// header (v1 or v2, HAProxy's `send-proxy`/`send-proxy-v2`), naming the
    /// client (before TLS, so TLS passed through keeps its client certificate).
    pub proxy_protocol: bool,
    /// A request from a trusted proxy names its client in `X-Forwarded-For`:
    /// the right-most address that is not a trusted proxy.
    pub x_forwarded_for: bool,
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
            trusted_proxies: Vec::new(),
            proxy_protocol: false,
            x_forwarded_for: false,
        }
    }
}

/// A head smaller than this could not carry the Alliance headers.
const MIN_HEADER_BYTES: usize = 1024;

impl ClientLimits {
    pub(super) fn validate(&self) -> Result<(), String> {
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
            return Err(format!("client.{name} must be positive"));
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(format!("client.max_header_bytes must be at least {MIN_HEADER_BYTES}"));
        }
        if (self.proxy_protocol || self.x_forwarded_for) && self.trusted_proxies.is_empty() {
            return Err(
                "client.proxy_protocol and client.x_forwarded_for need client.trusted_proxies (whose word to take)"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::MINIMAL;

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
}
