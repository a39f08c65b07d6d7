//! `[namespaces.X]`: one cloud, and its `copy_from` tables.

use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use url::Url;

use super::auth::AuthConfig;
use super::limits::LimitsConfig;
use crate::ids;

/// One cloud, by the name clients put in `X-Target-Ns`. Read through
/// `RawNamespace`, so that `auth`, which has no default, is always there.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawNamespace")]
pub struct NamespaceConfig {
    /// Glance endpoint, with or without a path prefix (DevStack serves Glance
    /// at `http://HOST/image`). Required with `trusted` auth; with `keystone`
    /// auth it overrides the endpoint found in the service catalog.
    pub glance_url: Option<Url>,
    /// `limit` sent on each list page; Glance caps it at its `api_limit_max`.
    pub page_size: u32,
    /// A list stops with an error rather than follow more pages than this.
    pub max_pages: u32,
    pub connect_timeout_ms: u64,
    /// Bound on each upstream call, from sending the request to the last
    /// byte of the answer.
    pub request_timeout_ms: u64,
    pub environment_id_format: EnvironmentIdFormat,
    /// Membership look-ups for another project's shared images (isolation
    /// checks) one request has in flight at once ...
    pub membership_concurrency: usize,
    /// ... how long their answers are kept, 0 for not at all ...
    pub membership_cache_secs: u64,
    /// ... and how many answers are kept at most.
    pub membership_cache_size: usize,
    /// How the facade proves to Glance which project it acts for.
    pub auth: AuthConfig,
    /// Where `copy_from` URLs may point (the SSRF guard's allow and deny lists).
    pub copy_from: GuardConfig,
    /// What to do for `copy_from` when the cloud offers no web-download import.
    pub copy_from_fallback: FallbackConfig,
    /// Backpressure and fairness (`[namespaces.X.limits]`): calls in flight
    /// to Glance and Keystone, rates per environment, shared shows.
    pub limits: LimitsConfig,
}

/// A `[namespaces.X]` table as written: `NamespaceConfig`'s fields, with
/// `auth` possibly missing (refused on conversion).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawNamespace {
    glance_url: Option<Url>,
    page_size: u32,
    max_pages: u32,
    connect_timeout_ms: u64,
    request_timeout_ms: u64,
    environment_id_format: EnvironmentIdFormat,
    membership_concurrency: usize,
    membership_cache_secs: u64,
    membership_cache_size: usize,
    auth: Option<AuthConfig>,
    copy_from: GuardConfig,
    copy_from_fallback: FallbackConfig,
    limits: LimitsConfig,
}

impl Default for RawNamespace {
    fn default() -> Self {
        RawNamespace {
            glance_url: None,
            page_size: 1000,
            max_pages: 1000,
            connect_timeout_ms: 3_000,
            request_timeout_ms: 30_000,
            environment_id_format: EnvironmentIdFormat::default(),
            membership_concurrency: 8,
            membership_cache_secs: 30,
            membership_cache_size: 10_000,
            auth: None,
            copy_from: GuardConfig::default(),
            copy_from_fallback: FallbackConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

impl TryFrom<RawNamespace> for NamespaceConfig {
    type Error = &'static str;

    fn try_from(raw: RawNamespace) -> Result<Self, Self::Error> {
        let RawNamespace {
            glance_url,
            page_size,
            max_pages,
            connect_timeout_ms,
            request_timeout_ms,
            environment_id_format,
            membership_concurrency,
            membership_cache_secs,
            membership_cache_size,
            auth,
            copy_from,
            copy_from_fallback,
            limits,
        } = raw;
        Ok(NamespaceConfig {
            glance_url,
            page_size,
            max_pages,
            connect_timeout_ms,
            request_timeout_ms,
            environment_id_format,
            membership_concurrency,
            membership_cache_secs,
            membership_cache_size,
            auth: auth.ok_or("missing field `auth` (a table with type = \"trusted\" or \"keystone\")")?,
            copy_from,
            copy_from_fallback,
            limits,
        })
    }
}

impl NamespaceConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The message leaves out `namespace NAME: `, which the caller adds.
    pub(super) fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.glance_url {
            if !matches!(url.scheme(), "http" | "https") {
                return Err("glance_url must be http or https".into());
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err("glance_url must not carry a query or fragment".into());
            }
        }
        if self.page_size == 0 || self.max_pages == 0 {
            return Err("page_size and max_pages must be positive".into());
        }
        if self.membership_concurrency == 0 || self.membership_cache_size == 0 {
            return Err("membership_concurrency and membership_cache_size must be positive".into());
        }
        self.limits.validate()?;
        let format = self.environment_id_format;
        let foreign = self
            .limits
            .environments
            .keys()
            .find(|id| format.normalise(id).is_none());
        if let Some(id) = foreign {
            return Err(format!(
                "limits.environments: {id:?} is not an environment id of this namespace's environment_id_format"
            ));
        }
        self.auth.validate(self.glance_url.as_ref())
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
#[serde(default, deny_unknown_fields)]
pub struct FallbackConfig {
    pub enabled: bool,
    /// Use the facade's transfer even where Glance offers web-download (for
    /// a Glance that cannot reach the sources the facade can).
    pub always: bool,
    /// Larger sources are refused (from `Content-Length`) or cut off.
    pub max_bytes: u64,
    /// Bound on one whole transfer.
    pub timeout_secs: u64,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        FallbackConfig {
            enabled: false,
            always: false,
            max_bytes: 64 * 1024 * 1024 * 1024,
            timeout_secs: 6 * 3600,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::{MINIMAL, error};

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
    fn a_namespace_needs_auth() {
        let message = error("[namespaces.ccsr1]\nglance_url = \"http://g\"");
        assert!(message.contains("missing field `auth`"), "{message}");
        assert!(message.contains("[namespaces.ccsr1]"), "the place is shown: {message}");
        let fallback = Config::parse(MINIMAL).unwrap().namespaces["ccsr1"]
            .copy_from_fallback
            .clone();
        assert_eq!(fallback, FallbackConfig::default());
        assert_eq!((fallback.enabled, fallback.max_bytes), (false, 64 << 30));
    }
}
